"""Infrastructure both trainers share (:mod:`.vsr_train` and :mod:`.vqgan_train`): process group and
device, DDP wrapping, the EMA update, the progress bar, checkpoints (CPU tensors, written atomically,
read back with ``torch.load(weights_only=True)``) and the JSON-lines loss log. Nothing here knows
about a network or a loss."""
from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import torch
import torch.distributed as dist
from torch import Tensor, nn

from ..log import progress_enabled
from ..weights.loading import WeightsError, atomic_torch_save

__all__ = ["setup_distributed", "finish_distributed", "wrap_ddp", "ema_update", "progress_bar", "to_cpu",
           "save_checkpoint", "load_checkpoint", "LossLog"]


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


def finish_distributed() -> None:
    """Wait for every process, then leave the process group (nothing to do in a single process)."""
    if dist.is_initialized():
        dist.barrier()
        dist.destroy_process_group()


def wrap_ddp(module: nn.Module, dev: torch.device, world: int) -> nn.Module:
    """``module`` in DistributedDataParallel when there are several processes, else itself."""
    if world <= 1:
        return module
    return nn.parallel.DistributedDataParallel(module, device_ids=[dev.index] if dev.type == "cuda" else None)


@torch.no_grad()
def ema_update(ema: nn.Module, net: nn.Module, decay: float) -> None:
    """``ema = decay * ema + (1 - decay) * net``, parameter by parameter."""
    for pe, pg in zip(ema.parameters(), net.parameters()):
        pe.mul_(decay).add_(pg.detach(), alpha=1 - decay)


def progress_bar(total: int, initial: int, desc: str, show: bool = True, unit: str = "it"):
    """A tqdm bar on stderr; hidden when ``show`` is false or the package logger is quiet (``-q``)."""
    from tqdm import tqdm

    return tqdm(total=total, initial=initial, desc=desc, unit=unit, file=sys.stderr,
                disable=not (show and progress_enabled()), dynamic_ncols=True)


def to_cpu(v):
    """Tensors (inside dicts and lists too) detached and moved to the CPU; everything else as is."""
    if isinstance(v, Tensor):
        return v.detach().cpu()
    if isinstance(v, dict):
        return {k: to_cpu(x) for k, x in v.items()}
    if isinstance(v, list):
        return [to_cpu(x) for x in v]
    return v


def save_checkpoint(state: dict, *paths: str | os.PathLike) -> None:
    """Write ``state`` (tensors moved to the CPU) atomically to every path."""
    state = to_cpu(state)
    for p in paths:
        atomic_torch_save(state, p)


def load_checkpoint(path: str | os.PathLike) -> dict:
    """Read a checkpoint written by :func:`save_checkpoint` safely (``weights_only``); a file that is
    not one raises :class:`~vsvqdsr.weights.loading.WeightsError`."""
    try:
        state = torch.load(str(path), map_location="cpu", weights_only=True)
    except Exception as e:
        raise WeightsError(f"{path}: not a readable run checkpoint ({type(e).__name__}: {e})") from e
    if not isinstance(state, dict):
        raise WeightsError(f"{path}: not a run checkpoint (a {type(state).__name__}, not a mapping)")
    return state


class LossLog:
    """Appends one JSON object per line to ``path`` (only where ``enabled``: the main process)."""

    def __init__(self, path: str | os.PathLike, enabled: bool = True) -> None:
        self.path, self.enabled = Path(path), enabled

    def write(self, record: dict) -> None:
        if self.enabled:
            with open(self.path, "a", encoding="utf-8") as f:
                f.write(json.dumps(record) + "\n")
