"""Scene starts of a whole input, found the way ``vqdsr.Upscale`` finds them, and put back as props.

``detect_cuts`` runs the very rule ``Upscale`` runs (:func:`vsvqdsr.filters.scenes.cut_flags`, on
the float RGB that ``Upscale`` sees): a frame starts a scene when it carries ``_SceneChangePrev`` = 1
itself, else when ``scd.Detect`` on half-size GRAY8 luma flags it; frame 0 always starts one.
``apply_cuts`` sets ``_SceneChangePrev`` on every frame from such a list, so a script that uses it
sees exactly these scenes whatever range of it is rendered.
"""
from __future__ import annotations

from typing import Callable

import vapoursynth as vs

from ..filters.formats import to_float_rgb
from ..filters.scenes import cut_flags

__all__ = ["detect_cuts", "apply_cuts", "parse_cuts", "format_cuts"]


def parse_cuts(text: str | bytes) -> list[int]:
    """``"0,84,200"`` -> ``[0, 84, 200]`` (empty text -> ``[0]``)."""
    if isinstance(text, bytes):
        text = text.decode()
    try:
        vals = sorted({0, *(int(t) for t in str(text).split(",") if t.strip())})
    except ValueError:
        raise ValueError(f"apply_cuts: cuts must be comma-separated frame numbers, got {text!r}") from None
    return vals


def format_cuts(cuts: list[int]) -> str:
    """Inverse of :func:`parse_cuts`."""
    return ",".join(str(int(c)) for c in cuts)


def apply_cuts(clip: vs.VideoNode, cuts: list[int] | str | bytes) -> vs.VideoNode:
    """``clip`` with ``_SceneChangePrev`` = 1 on the frames in ``cuts`` and 0 on all others.

    Args:
        clip: any clip.
        cuts: scene starts (frame numbers in ``[0, clip.num_frames)``), a list or ``"0,84"``.
    """
    starts = set(parse_cuts(cuts) if isinstance(cuts, (str, bytes)) else cuts)
    bad = sorted(c for c in starts if not 0 <= c < clip.num_frames)
    if bad:
        raise vs.Error(f"apply_cuts: scene starts {bad[:5]} lie outside 0..{clip.num_frames - 1}")

    def mark(n: int, f: vs.VideoFrame) -> vs.VideoFrame:
        out = f.copy()
        out.props["_SceneChangePrev"] = int(n in starts)
        return out

    return vs.core.std.ModifyFrame(clip, clip, mark)


def detect_cuts(clip: vs.VideoNode, scene_detect: bool = True, thresh: int | None = None,
                progress: Callable[[int], None] | None = None) -> list[int]:
    """Scene starts of ``clip`` (sorted, 0 first), decided exactly as ``Upscale`` decides them.

    Args:
        clip: the input as the template hands it to ``Upscale`` (any format).
        scene_detect: use ``scd.Detect`` where frames carry no ``_SceneChangePrev``.
        thresh: ``scd.Detect`` threshold (its default when None).
        progress: called with the number of frames done after each frame.
    """
    flags = cut_flags(to_float_rgb(clip), scene_detect, thresh)
    cuts = []
    for n, frame in enumerate(flags.frames()):
        if frame.props["C"]:
            cuts.append(n)
        if progress is not None:
            progress(n + 1)
    return cuts
