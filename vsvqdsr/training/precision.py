"""Training precision (``--precision auto|fp32|bf16`` of ``train-vsr`` and ``train-degrader``).

``bf16`` runs the forward passes (networks and losses) under ``torch.autocast`` with bfloat16;
weights, optimizer state and gradients stay float32, and backward runs outside the autocast
region, as torch's mixed-precision recipe does. bf16 needs no loss scaling (fp32's exponent range).
``auto`` is bf16 on CPUs with AMX-BF16 (:mod:`vsvqdsr.backends.precision`) and on CUDA GPUs that
support bf16, fp32 elsewhere -- including AVX2/AVX-512 CPUs without AMX, where torch's bf16
convolutions are slower than fp32.
"""
from __future__ import annotations

import contextlib
from collections.abc import Iterable

import torch

from ..log import get_logger

__all__ = ["TRAIN_PRECISIONS", "choose_train_precision", "resolve_train_precision", "autocast"]

TRAIN_PRECISIONS: tuple[str, ...] = ("auto", "fp32", "bf16")

log = get_logger(__name__)


def choose_train_precision(precision: str, device_type: str, cpu_caps: Iterable[str] = (),
                           cuda_bf16: bool = False) -> str:
    """Pure rule: ``"fp32"`` or ``"bf16"`` for ``precision`` on a device of ``device_type``."""
    if precision not in TRAIN_PRECISIONS:
        raise ValueError(f"precision must be one of {', '.join(TRAIN_PRECISIONS)}, got {precision!r}")
    if precision != "auto":
        return precision
    if device_type == "cuda":
        return "bf16" if cuda_bf16 else "fp32"
    if device_type == "cpu":
        return "bf16" if "amx_bf16" in set(cpu_caps) else "fp32"
    return "fp32"


def resolve_train_precision(precision: str, device: torch.device) -> str:
    """:func:`choose_train_precision` for ``device`` of this machine; says on stderr what it chose."""
    from ..backends.precision import capabilities, summary

    caps = capabilities() if device.type == "cpu" else frozenset()
    cuda_bf16 = device.type == "cuda" and torch.cuda.is_bf16_supported()
    chosen = choose_train_precision(precision, device.type, caps, cuda_bf16)
    why = ""
    if precision == "auto":
        why = f" (auto on {device.type}" + (f": {summary(caps)})" if device.type == "cpu" else ")")
    log.info(f"training precision: {chosen}{why}")
    return chosen


def autocast(precision: str, device: torch.device):
    """The context of a forward pass: bf16 autocast, or nothing for fp32."""
    if precision == "bf16":
        return torch.autocast(device_type=device.type, dtype=torch.bfloat16)
    return contextlib.nullcontext()
