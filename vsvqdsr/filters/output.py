"""The size and format an encoder asked for: downscale after super-resolution and convert.

:func:`finish` turns the float RGB x4 output of a filter into ``width`` x ``height`` in ``format``
(a scaler's contract: output at a target size and, if asked, in the input's format), optionally
resizing in linear light and clamping float samples to [0, 1]. The colour parameters of the
conversion come from each *input* frame's props (``_Matrix``, ``_Range``, ``_Transfer``): the float
RGB frames have lost them (they carry ``_Matrix=0``), and a per-frame choice keeps a round trip
``YUV -> Upscale(format="same")`` consistent with how the input was decoded.
"""
from __future__ import annotations

import vapoursynth as vs

from .formats import default_matrix

__all__ = ["KERNELS", "check_output_args", "finish"]

#: ``kernel`` name -> ``core.resize`` function name.
KERNELS: dict[str, str] = {"point": "Point", "bilinear": "Bilinear", "bicubic": "Bicubic", "lanczos": "Lanczos",
                           "spline16": "Spline16", "spline36": "Spline36", "spline64": "Spline64"}

#: Transfers ``resize`` takes by number (ITU-T H.273) for linear-light resizing; others fall back to BT.709.
_TRANSFERS = frozenset({1, 4, 5, 6, 7, 8, 11, 13, 14, 15, 16, 18})


def _resolve_format(fmt: object, src: vs.VideoNode, func: str) -> vs.VideoFormat | None:
    if fmt is None:
        return None
    if isinstance(fmt, str):
        if fmt == "same":
            return src.format
        raise vs.Error(f'{func}: format must be None (float RGB), "same" (the input\'s format) or a VapourSynth '
                       f"format (vs.YUV420P10, a format id or a VideoFormat), got {fmt!r}")
    try:
        out = vs.core.get_video_format(fmt.id if isinstance(fmt, vs.VideoFormat) else int(fmt))
    except (vs.Error, TypeError, ValueError):
        raise vs.Error(f'{func}: format must be None, "same" or a VapourSynth format, got {fmt!r}') from None
    if out.color_family not in (vs.RGB, vs.YUV, vs.GRAY):
        raise vs.Error(f"{func}: format {out.name} is not supported; accepted: RGB, YUV or GRAY formats")
    return out


def check_output_args(src: vs.VideoNode, scale: int, width, height, kernel, linear, fmt, clamp,
                      func: str) -> tuple[int | None, int | None, vs.VideoFormat | None]:
    """Validate the output arguments; returns ``(width, height, format)`` with a missing side derived
    from the other (aspect kept, rounded to even) and ``format`` resolved (None = unchanged)."""
    for name, v in (("width", width), ("height", height)):
        if v is not None and (not isinstance(v, int) or isinstance(v, bool) or v < 1):
            raise vs.Error(f"{func}: {name} must be a positive integer (output pixels) or None, got {v!r}")
    if not isinstance(kernel, str) or kernel not in KERNELS:
        raise vs.Error(f"{func}: kernel must be one of {', '.join(KERNELS)}, got {kernel!r}")
    for name, v in (("linear", linear), ("clamp", clamp)):
        if not isinstance(v, bool):
            raise vs.Error(f"{func}: {name} must be True or False, got {v!r}")
    out_fmt = _resolve_format(fmt, src, func)
    sw, sh = src.width * scale, src.height * scale
    if width is not None and height is None:
        height = max(2, round(width * sh / sw / 2) * 2)
    elif height is not None and width is None:
        width = max(2, round(height * sw / sh / 2) * 2)
    if linear and width is None:
        raise vs.Error(f"{func}: linear only applies together with width/height (it resizes in linear light)")
    if out_fmt is not None and width is not None:
        if width % (1 << out_fmt.subsampling_w) or height % (1 << out_fmt.subsampling_h):
            raise vs.Error(f"{func}: {width}x{height} does not fit {out_fmt.name}'s chroma subsampling; "
                           "accepted: a width/height divisible by its subsampling")
    return width, height, out_fmt


def finish(up: vs.VideoNode, src: vs.VideoNode, width: int | None, height: int | None, kernel: str,
           linear: bool, out_fmt: vs.VideoFormat | None, clamp: bool,
           shift: tuple[float, float] = (0.0, 0.0)) -> vs.VideoNode:
    """``up`` (float RGB, x4 of ``src``) resized to ``width`` x ``height`` with ``kernel`` (in linear
    light with ``linear``), converted to ``out_fmt`` and clamped to [0, 1] with ``clamp`` (float output).
    ``shift``: ``(top, left)`` offset of the resize's source window in pixels of ``up`` (``resize``'s
    ``src_top``/``src_left``).

    Nothing is added when every option is at its default (the output is ``up`` itself).
    """
    core = vs.core
    src_win = {"src_top": float(shift[0]), "src_left": float(shift[1])} if tuple(shift) != (0, 0) else {}
    if src_win and width is None:
        width = up.width
    if width is None and out_fmt is None:
        return core.std.Limiter(up, 0.0, 1.0) if clamp else up
    width = width or up.width
    height = height or up.height
    fmt = out_fmt or up.format
    resize = getattr(core.resize, KERNELS[kernel])
    # the matrix the input was decoded with where it was YUV/GRAY without _Matrix, else by output size
    decode_matrix = (default_matrix(src.width, src.height) if src.format.color_family != vs.RGB
                     else default_matrix(width, height))
    needs_matrix = fmt.color_family in (vs.YUV, vs.GRAY)
    float_out = fmt.sample_type == vs.FLOAT
    nodes: dict[tuple, vs.VideoNode] = {}

    def build(matrix: int | None, rng: int | None, transfer: int | None) -> vs.VideoNode:
        x = core.std.Limiter(up, 0.0, 1.0) if clamp else up
        if linear:
            tr = {"transfer_in": transfer} if transfer is not None else {"transfer_in_s": "709"}
            x = core.resize.Point(x, transfer_s="linear", **tr)
            x = resize(x, width, height, **src_win)
            back = {"transfer": transfer} if transfer is not None else {"transfer_s": "709"}
            x = core.resize.Point(x, transfer_in_s="linear", **back)
            kw: dict = {}
        else:
            kw = {"width": width, "height": height, **src_win}
        if fmt.id != x.format.id:
            if needs_matrix:
                kw.update({"matrix": matrix} if matrix is not None else {"matrix_s": decode_matrix})
                # R81's _Range: 1 = full, 0 = limited (the inverse of the deprecated _ColorRange);
                # missing: limited, as when the input was decoded
                kw["range_s"] = "full" if rng == 1 else "limited"
            kw["format"] = fmt.id
        if kw:
            x = resize(x, **kw)
        if clamp and float_out and (linear or src_win or width != up.width or height != up.height):
            x = core.std.Limiter(x, 0.0, 1.0)  # the kernel's ringing overshoots again
        return x

    def pick(n: int, f: vs.VideoFrame) -> vs.VideoNode:
        props = f.props
        m, r, t = props.get("_Matrix"), props.get("_Range"), props.get("_Transfer")
        key = (m if needs_matrix and isinstance(m, int) and m not in (0, 2) else None,
               int(r) if needs_matrix and src.format.color_family != vs.RGB and r in (0, 1) else None,
               t if linear and t in _TRANSFERS else None)
        node = nodes.get(key)
        if node is None:
            node = nodes[key] = build(*key)
        return node

    template = core.std.BlankClip(up, width=width, height=height, format=fmt.id, keep=True)
    if not needs_matrix and not linear:
        return build(None, None, None)
    return core.std.FrameEval(template, pick, prop_src=[src], clip_src=[up])
