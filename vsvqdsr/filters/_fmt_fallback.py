"""Temporary stand-in for ``formats.py`` (lands on main from the lead); same functions and rules."""
from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import vapoursynth as vs


def check_clip(clip: object, func: str) -> vs.VideoNode:
    if not isinstance(clip, vs.VideoNode):
        raise vs.Error(f"{func}: clip must be a vapoursynth.VideoNode, got {type(clip).__name__}")
    if clip.format is None or clip.width == 0 or clip.height == 0:
        raise vs.Error(f"{func}: variable format or size is not supported; accepted: constant format and size")
    if clip.format.color_family not in (vs.RGB, vs.YUV, vs.GRAY):
        raise vs.Error(f"{func}: colour family {clip.format.color_family.name} is not supported")
    return clip


def to_float_rgb(clip: vs.VideoNode, half: bool = False) -> vs.VideoNode:
    fmt = vs.RGBH if half else vs.RGBS
    if clip.format.id == fmt:
        return clip
    kw = {}
    if clip.format.color_family == vs.YUV:
        kw["matrix_in_s"] = "709" if clip.width > 1024 or clip.height > 576 else "170m"
    return clip.resize.Bicubic(format=fmt, **kw)


def frame_to_array(frame: vs.VideoFrame) -> np.ndarray:
    return np.stack([np.asarray(frame[p]) for p in range(frame.format.num_planes)])


def array_to_frame(arr: np.ndarray, frame: vs.VideoFrame) -> vs.VideoFrame:
    out = frame.copy()
    for p in range(out.format.num_planes):
        np.copyto(np.asarray(out[p]), arr[p], casting="same_kind")
    return out


def copy_props(dst: vs.VideoFrame, src: vs.VideoFrame | Mapping, extra: Mapping | None = None) -> None:
    props = src.props if isinstance(src, vs.VideoFrame) else src
    for k, v in props.items():
        dst.props[k] = v
    for k, v in (extra or {}).items():
        dst.props[k] = v
