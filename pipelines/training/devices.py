"""Which device trains a grid, and how provenance names it.

On the CPU the name carries the processor's model and the widest vector instruction set torch's
kernels use there (AVX2, AVX512, ...): the kernels round differently from one instruction set to
another, so a rerun is bit-identical on the same kind of CPU and only on it, and the instruction
set roughly halves or doubles the training time (float32 lanes per instruction).
"""

from __future__ import annotations

import platform
from pathlib import Path

import torch

from pipelines.core.errors import ParamsError


def choose_device(requested: str, tf32: bool = False) -> torch.device:
    """'auto' is CUDA when there is one, else the CPU. `tf32` lets CUDA matmuls use TF32."""
    if requested == "cuda" and not torch.cuda.is_available():
        raise ParamsError("params.yaml: train.device: found 'cuda'; no CUDA device is available (use auto or cpu)")
    device = torch.device(("cuda" if torch.cuda.is_available() else "cpu") if requested == "auto" else requested)
    torch.backends.cuda.matmul.allow_tf32 = tf32 and device.type == "cuda"
    return device


def device_name(device: torch.device) -> str:
    """The GPU's name, or the CPU's model and instruction set, e.g. "Intel(R) Xeon(R) Processor (AVX512)"."""
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    return f"{_cpu_model()} ({torch.backends.cpu.get_cpu_capability()})"


def _cpu_model(cpuinfo: Path = Path("/proc/cpuinfo")) -> str:
    """Linux names the model in /proc/cpuinfo; elsewhere platform.processor() does, or nothing does."""
    if cpuinfo.exists():
        for line in cpuinfo.read_text(errors="replace").splitlines():
            key, _, value = line.partition(":")
            if key.strip() == "model name":
                return value.strip()
    return platform.processor() or platform.machine() or "cpu"
