"""Whether an accelerator is there, found without importing torch or Lightning (a second, not ten), so a
command refuses a missing one in one line saying what the machine has, not Lightning's several lines later."""

from __future__ import annotations

import ctypes
import importlib.util
import os
import platform


def cuda_devices() -> tuple[int, str]:
    """How many CUDA devices the NVIDIA driver sees, and what was found when there are none."""
    if os.environ.get("CUDA_VISIBLE_DEVICES", None) in ("", "-1"):
        return 0, "CUDA_VISIBLE_DEVICES hides every GPU"
    try:
        driver = ctypes.CDLL("libcuda.so.1")
    except OSError:
        return 0, "no NVIDIA driver (libcuda.so.1 is not installed)"
    count = ctypes.c_int(0)
    if driver.cuInit(0) != 0 or driver.cuDeviceGetCount(ctypes.byref(count)) != 0:
        return 0, "an NVIDIA driver that finds no usable GPU"
    return count.value, f"{count.value} CUDA GPU(s)"


def missing_accelerator(name: str) -> str | None:
    """Why ``trainer.accelerator=name`` cannot run here (what was found instead), or None when it can."""
    name = str(name).lower()
    if name in ("gpu", "cuda"):
        count, found = cuda_devices()
        mps = missing_accelerator("mps") is None
        return None if count or (name == "gpu" and mps) else f"found {found}, so only the CPU"
    if name == "mps":
        apple = platform.system() == "Darwin" and platform.machine() == "arm64"
        return None if apple else f"mps is Apple silicon's GPU; this is {platform.system()} on {platform.machine()}"
    if name == "tpu" and importlib.util.find_spec("torch_xla") is None:
        return "found no TPU runtime (torch_xla is not installed)"
    return None


NVML_CHECK = "PYTORCH_NVML_BASED_CUDA_CHECK"


def skip_nvml_probe_without_driver() -> None:
    """Let torch ask the CUDA runtime, not NVML, whether CUDA is there, on machines without the NVIDIA driver.

    Lightning sets ``PYTORCH_NVML_BASED_CUDA_CHECK=1`` when imported, so that asking does not initialise CUDA
    before worker processes fork. torch's Adam and AdamW ask at every step, and until CUDA is initialised the
    answer is not cached: without a driver each step tries to load ``libnvidia-ml.so.1``, fails, and asks the
    runtime anyway (about 80 microseconds per step, a few percent of a small model's CPU step). Without a
    driver there is nothing a fork could find initialised, so the NVML attempt only costs time.
    """
    if os.environ.get(NVML_CHECK) != "1":
        return
    try:
        ctypes.CDLL("libnvidia-ml.so.1")
    except OSError:
        os.environ[NVML_CHECK] = "0"
