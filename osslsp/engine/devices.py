"""The machine's CUDA devices as plain data, for the parts of osslsp that must not import torch
themselves (the doctor, the engine server's /metrics): they import this module inside a function."""

from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class Gpu:
    """One CUDA device: its name, memory free and in all, and what this process holds on it."""

    index: int
    name: str
    free_bytes: int
    total_bytes: int
    allocated_bytes: int


def torch_version() -> str:
    return torch.__version__


def gpus() -> list[Gpu]:
    """Every visible CUDA device; none on a machine without CUDA."""
    if not torch.cuda.is_available():
        return []
    found = []
    for index in range(torch.cuda.device_count()):
        free, total = torch.cuda.mem_get_info(index)
        found.append(Gpu(index, torch.cuda.get_device_name(index), free, total, torch.cuda.memory_allocated(index)))
    return found


def allocated_bytes() -> dict[int, int]:
    """What this process holds on each CUDA device it has used (no device is initialised to ask)."""
    if not torch.cuda.is_initialized():
        return {}
    return {index: torch.cuda.memory_allocated(index) for index in range(torch.cuda.device_count())}
