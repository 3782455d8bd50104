"""Clip validation, conversion to float RGB, and frame <-> numpy plumbing shared by the filters."""
from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import vapoursynth as vs

__all__ = ["check_clip", "check_color_props", "to_float_rgb", "default_matrix", "frame_to_array",
           "array_to_frame", "copy_props", "scale_alpha"]


def check_clip(clip: object, func: str) -> vs.VideoNode:
    """Reject what no filter of ours can process, with a message naming ``func``."""
    if not isinstance(clip, vs.VideoNode):
        raise vs.Error(f"{func}: clip must be a vapoursynth.VideoNode, got {type(clip).__name__}")
    if clip.format is None or clip.format.id == vs.PresetVideoFormat.NONE:
        raise vs.Error(f"{func}: variable format is not supported; "
                       "accepted: clips with one constant format and size (resize or convert first)")
    if clip.width == 0 or clip.height == 0:
        raise vs.Error(f"{func}: variable size is not supported; "
                       "accepted: clips with one constant format and size (resize or convert first)")
    if clip.num_frames < 1:
        raise vs.Error(f"{func}: the clip is empty (0 frames)")
    if clip.format.color_family not in (vs.RGB, vs.YUV, vs.GRAY):
        raise vs.Error(f"{func}: colour family {clip.format.color_family.name} is not supported; "
                       "accepted: RGB, YUV, GRAY")
    return clip


_H273_TRANSFER = frozenset({1, 2, *range(4, 19)})
_H273_PRIMARIES = frozenset({1, 2, *range(4, 13), 22})
#: Colour props ``resize`` can convert to RGB from, per colour family (ITU-T H.273 codes, measured
#: against VapourSynth R81's resize; 2 = unspecified). RGB input reads only ``_Matrix``.
ACCEPTED_PROPS: dict[int, dict[str, frozenset[int]]] = {
    vs.YUV: {"_Matrix": frozenset({1, 2, *range(4, 10)}), "_Transfer": _H273_TRANSFER,
             "_Primaries": _H273_PRIMARIES},
    vs.GRAY: {"_Matrix": frozenset({1, 2, *range(4, 11), 12, 13, 14}), "_Transfer": _H273_TRANSFER,
              "_Primaries": _H273_PRIMARIES},
    vs.RGB: {"_Matrix": frozenset({0, 2})},
}
#: ``_Range`` is VapourSynth R81's name of ``_ColorRange`` (setting either sets ``_Range``).
_COMMON_PROPS = {"_Range": frozenset({0, 1}), "_ChromaLocation": frozenset(range(-1, 6))}


def _codes(values: frozenset[int]) -> str:
    out, run = [], []
    for v in sorted(values) + [None]:
        if run and (v is None or v != run[-1] + 1):
            out.append(str(run[0]) if len(run) < 3 else f"{run[0]}-{run[-1]}")
            if len(run) == 2:
                out.append(str(run[1]))
            run = []
        if v is not None:
            run.append(v)
    return ", ".join(out)


def check_color_props(clip: vs.VideoNode, func: str) -> vs.VideoNode:
    """``clip`` with a per-frame check that its colour props are ones ``resize`` converts to RGB.

    Props are per frame, so they are checked as each frame passes (one dict lookup per prop): a bad
    ``_Matrix``/``_Transfer``/``_Primaries``/``_Range``/``_ChromaLocation`` fails that frame
    with ``"<func>: frame n has _Matrix=99 ...; accepted: ..."`` instead of resize's text, which
    names neither the filter nor what is accepted. Only needed where :func:`to_float_rgb` converts.
    """
    family = clip.format.color_family
    table = {**ACCEPTED_PROPS.get(family, {}), **_COMMON_PROPS}

    def check(n: int, f: vs.VideoFrame) -> vs.VideoFrame:
        props = f.props
        for key, accepted in table.items():
            value = props.get(key)
            if isinstance(value, int) and value not in accepted:
                raise vs.Error(f"{func}: frame {n} has {key}={value}, which cannot be converted to RGB; "
                               f"accepted for {family.name} clips: {_codes(accepted)} (ITU-T H.273 codes), "
                               "or delete the prop (std.RemoveFrameProps) to use the default")
        return f

    return clip.std.ModifyFrame(clip, check)


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


def _linear_taps(n_in: int, n_out: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Centre-aligned linear interpolation taps (edge-clamped) from ``n_in`` to ``n_out`` samples."""
    pos = np.clip((np.arange(n_out) + 0.5) * (n_in / n_out) - 0.5, 0, n_in - 1)
    i0 = np.floor(pos).astype(np.intp)
    i1 = np.minimum(i0 + 1, n_in - 1)
    return i0, i1, (pos - i0).astype(np.float32)


def scale_alpha(alpha: vs.VideoFrame, width: int, height: int) -> vs.VideoFrame:
    """An ``_Alpha`` frame resized to ``width`` x ``height`` (same format): centre-aligned bilinear,
    edges clamped (within 1e-5 of ``resize.Bilinear`` for float alpha), integers rounded.

    The network sees no alpha; this keeps a mask aligned with the upscaled picture so that
    ``std.MaskedMerge`` and friends work downstream.
    """
    out = vs.core.create_video_frame(alpha.format, width, height)
    fmt = alpha.format
    for p in range(fmt.num_planes):
        src = np.asarray(alpha[p]).astype(np.float32)
        dst = np.asarray(out[p])
        ys0, ys1, wy = _linear_taps(src.shape[0], dst.shape[0])
        xs0, xs1, wx = _linear_taps(src.shape[1], dst.shape[1])
        rows = src[ys0] * (1 - wy)[:, None] + src[ys1] * wy[:, None]
        res = rows[:, xs0] * (1 - wx) + rows[:, xs1] * wx
        if fmt.sample_type == vs.INTEGER:
            res = np.clip(np.rint(res), 0, (1 << fmt.bits_per_sample) - 1)
        np.copyto(dst, res, casting="unsafe")
    for key, value in alpha.props.items():
        out.props[key] = value
    return out
