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
