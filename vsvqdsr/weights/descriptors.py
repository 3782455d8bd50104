"""What a checkpoint is: the one descriptor type every architecture entry returns.

A descriptor states what the network is and what it can do; it never runs anything. The entries
that recognise state dicts (by keys, hyperparameters from shapes, all checked before anything is
allocated) live in :mod:`.archs`; :func:`describe` and :func:`build_network` are the recurrent-VSR
shortcuts the filters and tests use.
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import torch

__all__ = ["ModelDescriptor", "KINDS", "describe", "build_network"]

#: Model kinds: ``vsr`` (``Upscale``), ``degrader`` (``Degrade``), ``sisr`` (HR-SR enhancement, baselines).
KINDS: tuple[str, ...] = ("vsr", "degrader", "sisr")


@dataclass(frozen=True)
class ModelDescriptor:
    """What a checkpoint is (every kind).

    Attributes:
        arch: architecture family (``"recurrent-vsr"``, ``"vqgan"``, ``"srvgg"``, ``"rrdb"``).
        variant: ``"vqdsr"`` / ``"animesr"`` (VSR), ``"paper"`` / ``"lite"`` / ``"custom"`` (VQGAN),
            else the arch name.
        feedback: whether the previous SR frame is fed back (VSR only).
        num_feat: feature (VSR: hidden-state) channels.
        num_block: block counts (VSR: n1, n2, n4; SISR: one entry; VQGAN: ResnetBlocks per stage).
        scale: upscaling factor (1 for the degrader).
        size_multiple: input height and width must be multiples of this (runners pad).
        fp16, bf16: whether half / bfloat16 precision is supported by the architecture.
        num_params: parameter count.
        kind: one of :data:`KINDS`.
        in_channels, out_channels: image channels in and out.
        stage: VQGAN training stage (1: top branch only, 2: multi-scale); 0 for other kinds.
        config: the full hyperparameters (``VQGANConfig`` for degraders, a dict otherwise).
    """

    arch: str
    variant: str
    feedback: bool
    num_feat: int
    num_block: tuple[int, ...]
    scale: int
    size_multiple: int
    fp16: bool
    num_params: int
    kind: str = "vsr"
    in_channels: int = 3
    out_channels: int = 3
    bf16: bool = True
    stage: int = 0
    config: Any = field(default=None, compare=False, hash=False)


def describe(sd: Mapping[str, torch.Tensor]) -> ModelDescriptor:
    """Identify a recurrent VSR state dict, or raise :class:`WeightsError` naming what is wrong."""
    from .archs import RECURRENT_VSR

    return RECURRENT_VSR.describe(sd)


def build_network(sd: Mapping[str, torch.Tensor]):
    """Build the recurrent VSR network a state dict describes and load it strictly (CPU, eval mode)."""
    from .archs import RECURRENT_VSR

    desc = RECURRENT_VSR.describe(sd)
    return RECURRENT_VSR.load(sd, desc), desc
