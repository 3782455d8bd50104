"""Clip validation, conversion to float RGB, and frame <-> numpy plumbing shared by the filters."""
from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import vapoursynth as vs

__all__ = ["check_clip", "to_float_rgb", "default_matrix", "frame_to_array", "array_to_frame", "copy_props"]


def check_clip(clip: object, func: str) -> vs.VideoNode:
    """Reject what no filter of ours can process, with a message naming ``func``."""
    if not isinstance(clip, vs.VideoNode):
        raise vs.Error(f"{func}: clip must be a vapoursynth.VideoNode, got {type(clip).__name__}")
    if clip.format is None or clip.width == 0 or clip.height == 0:
        raise vs.Error(f"{func}: variable format or size is not supported; "
                       "accepted: clips with one constant format and size (resize or convert first)")
    if clip.num_frames < 1:
        raise vs.Error(f"{func}: the clip is empty (0 frames)")
    if clip.format.color_family not in (vs.RGB, vs.YUV, vs.GRAY):
        raise vs.Error(f"{func}: colour family {clip.format.color_family.name} is not supported; "
                       "accepted: RGB, YUV, GRAY")
    return clip


def default_matrix(width: int, height: int) -> str:
    """Matrix assumed when a YUV clip has no ``_Matrix`` prop: BT.709 above SD, else BT.601 (ST 170M)."""
    return "709" if width > 1024 or height > 576 else "170m"


def to_float_rgb(clip: vs.VideoNode, half: bool = False) -> vs.VideoNode:
    """Convert any constant-format clip to RGBS (or RGBH with ``half=True``).

    Float RGB clips of the requested precision pass through untouched. Others are converted with
    ``resize.Bicubic``, which reads ``_Matrix``, ``_ColorRange``/``_Range``, ``_Primaries``,
    ``_Transfer`` and ``_ChromaLocation`` from the frame props; where ``_Matrix`` is missing,
    :func:`default_matrix` is used, and a missing range means limited for YUV and full for RGB
    (resize's defaults). The transfer is not changed: the networks work on gamma-encoded RGB.
    """
    fmt = vs.RGBH if half else vs.RGBS
    if clip.format.id == fmt:
        return clip
    kwargs = {}
    if clip.format.color_family == vs.YUV:
        # Frame props take precedence over this argument in resize; it only fills in a missing _Matrix.
        kwargs["matrix_in_s"] = default_matrix(clip.width, clip.height)
    return clip.resize.Bicubic(format=fmt, **kwargs)


def frame_to_array(frame: vs.VideoFrame) -> np.ndarray:
    """Planes of a frame as one ``(planes, height, width)`` array (a copy, native dtype)."""
    return np.stack([np.asarray(frame[p]) for p in range(frame.format.num_planes)])


def array_to_frame(arr: np.ndarray, frame: vs.VideoFrame) -> vs.VideoFrame:
    """Write ``(planes, h, w)`` ``arr`` into a writable copy of ``frame`` (same format) and return it."""
    out = frame.copy()
    for p in range(out.format.num_planes):
        np.copyto(np.asarray(out[p]), arr[p], casting="same_kind")
    return out


def copy_props(dst: vs.VideoFrame, src: vs.VideoFrame | Mapping, extra: Mapping | None = None) -> None:
    """Copy every prop of ``src`` onto the writable frame ``dst``, then set ``extra``."""
    props = src.props if isinstance(src, vs.VideoFrame) else src
    for key, value in props.items():
        dst.props[key] = value
    for key, value in (extra or {}).items():
        dst.props[key] = value
