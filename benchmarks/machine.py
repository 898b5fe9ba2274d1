"""One line naming the machine a benchmark ran on, for the tables in benchmarks/results/."""

from __future__ import annotations

import os
import platform
from pathlib import Path

import torch


def describe(device: str = "cpu") -> str:
    """GPU name, or CPU model and core count; then torch's version and CPU threads."""
    if device.startswith("cuda"):
        hardware = torch.cuda.get_device_name(torch.device(device))
    else:
        cpu = platform.processor() or platform.machine()
        cpuinfo = Path("/proc/cpuinfo")
        if cpuinfo.is_file():
            names = [
                line.split(":", 1)[1].strip()
                for line in cpuinfo.read_text().splitlines()
                if line.startswith("model name")
            ]
            cpu = names[0] if names else cpu
        hardware = f"{cpu}, {os.cpu_count()} CPUs"
    return f"{hardware}, torch {torch.__version__}, {torch.get_num_threads()} threads"
