"""Infrastructure both trainers share: process group and device."""
from __future__ import annotations

import os

import torch
import torch.distributed as dist

__all__ = ["setup_distributed"]


def setup_distributed(device: str = "auto") -> tuple[torch.device, int, int, int]:
    """``(device, rank, world size, local rank)`` of this process; under torchrun (``WORLD_SIZE`` > 1)
    the process group is initialised (NCCL on CUDA, else Gloo) and each process gets ``cuda:LOCAL_RANK``.

    ``device``: ``auto`` (CUDA when available), ``cpu``, ``cuda`` or ``cuda:N``.
    """
    world = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    local = int(os.environ.get("LOCAL_RANK", "0"))
    if device == "auto":
        dev = torch.device(f"cuda:{local}" if torch.cuda.is_available() else "cpu")
    else:
        dev = torch.device(device)
        if dev.type == "cuda" and world > 1:
            dev = torch.device(f"cuda:{local}")
    if dev.type == "cuda":
        torch.cuda.set_device(dev)
    if world > 1 and not dist.is_initialized():
        dist.init_process_group("nccl" if dev.type == "cuda" else "gloo")
    return dev, rank, world, local
