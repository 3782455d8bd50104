"""Recognise a checkpoint's architecture from its keys and tensor shapes (spandrel-style).

A descriptor states what the network is and what it can do; it never runs anything.
"""
from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass

import torch

from .loading import WeightsError

__all__ = ["ModelDescriptor", "describe", "build_network"]


@dataclass(frozen=True)
class ModelDescriptor:
    """What a checkpoint is.

    Attributes:
        arch: architecture family (``"recurrent-vsr"``).
        variant: ``"vqdsr"`` (no SR feedback) or ``"animesr"`` (SR feedback).
        feedback: whether the previous SR frame is fed back.
        num_feat: hidden-state channels.
        num_block: residual blocks per scale (n1, n2, n4).
        scale: upscaling factor.
        size_multiple: input height and width must be multiples of this (the filter pads).
        fp16: whether half precision is supported by the architecture.
        num_params: parameter count.
    """

    arch: str
    variant: str
    feedback: bool
    num_feat: int
    num_block: tuple[int, int, int]
    scale: int
    size_multiple: int
    fp16: bool
    num_params: int


_BODY = re.compile(r"^recurrent_cell\.body_s([124])_first\.(\d+)\.conv1\.weight$")


def describe(sd: Mapping[str, torch.Tensor]) -> ModelDescriptor:
    """Identify a recurrent VSR state dict, or raise :class:`WeightsError` naming what is missing."""
    first = sd.get("recurrent_cell.conv_s1_first.0.weight")
    fusion = sd.get("recurrent_cell.fusion.2.weight")
    if first is None or fusion is None or first.dim() != 4 or fusion.dim() != 4:
        raise WeightsError("not a recurrent VSR checkpoint (AnimeSR / VQD-SR): "
                           "missing recurrent_cell.conv_s1_first / recurrent_cell.fusion keys")
    num_feat, in_ch = int(first.shape[0]), int(first.shape[1])
    out_ch = int(fusion.shape[0])
    img_ch = out_ch - num_feat
    scale = int(round(math.sqrt(img_ch / 3))) if img_ch > 0 else 0
    if scale < 1 or 3 * scale * scale != img_ch:
        raise WeightsError(f"fusion output has {out_ch} channels; expected num_feat + 3*scale^2")
    extra = in_ch - 9 - num_feat
    if extra == 0:
        feedback = False
    elif extra == img_ch:
        feedback = True
    else:
        raise WeightsError(f"first convolution has {in_ch} input channels; expected {9 + num_feat} "
                           f"(VQD-SR) or {9 + num_feat + img_ch} (AnimeSR)")
    counts = {"1": 0, "2": 0, "4": 0}
    for key in sd:
        m = _BODY.match(key)
        if m:
            counts[m.group(1)] = max(counts[m.group(1)], int(m.group(2)) + 1)
    num_block = (counts["1"], counts["2"], counts["4"])
    if not num_block[0] >= num_block[1] >= num_block[2]:
        raise WeightsError(f"residual block counts {num_block} are not non-increasing")
    return ModelDescriptor(
        arch="recurrent-vsr", variant="animesr" if feedback else "vqdsr", feedback=feedback,
        num_feat=num_feat, num_block=num_block, scale=scale, size_multiple=4, fp16=True,
        num_params=int(sum(v.numel() for k, v in sd.items() if k.startswith("recurrent_cell."))),
    )


def build_network(sd: Mapping[str, torch.Tensor]):
    """Build the network a state dict describes and load it strictly (CPU, eval mode)."""
    from ..nets.vsr import RecurrentVSR

    desc = describe(sd)
    net = RecurrentVSR(desc.num_feat, desc.num_block, desc.scale, desc.feedback)
    cell_sd = {k: v for k, v in sd.items() if k.startswith("recurrent_cell.")}
    try:
        net.load_state_dict(cell_sd, strict=True)
    except RuntimeError as e:
        raise WeightsError(f"weights do not fit the recognised {desc.variant} network: {e}") from e
    return net.eval().requires_grad_(False), desc
