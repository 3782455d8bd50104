"""Scene starts as a VapourSynth-resolved chain: for every frame n, the first frame of n's scene.

The scene-cut rule (:func:`cut_flags`, the one definition ``vqdsr.Upscale`` and the render farm's
``detect_cuts`` share): frame 0 starts a scene; any other frame, by mode (``scene_detect``):

* ``"auto"`` (or True): a cut when it carries ``_SceneChangePrev`` = 1 itself, else (no such prop)
  when ``scd.Detect`` on half-size GRAY8 luma (BT.709) flags it;
* ``"always"``: a cut when either the prop or ``scd.Detect`` says so. Trims and splices keep props,
  so a splice of detected clips (``det[0:3] + det[100:104]``) carries a stale ``_SceneChangePrev=0``
  at the join that only detection on the spliced clip sees;
* ``"never"`` (or False): the props alone. The default warm-up before a restart inside a scene
(:func:`default_warmup`) lives here for the same reason: the farm plans chunk boundaries on it.

``scene_start(n)`` is found without requesting any frame of the recurrent output: a tiny clip whose
frame n is produced once frame n-1's start is known (VapourSynth resolves that chain), remembered in
an array of one integer per frame (8 bytes a frame; never evicted, so no race between deciding and
reading).

Lifetime: the nodes' callbacks hold this object weakly; the user of :attr:`SceneIndex.info` (the
recurrent chain, the degrade filter's selector) must keep the ``SceneIndex`` itself alive.
"""
from __future__ import annotations

import numpy as np
import vapoursynth as vs

from .lifetime import WeakCall

__all__ = ["SceneIndex", "SCENE_MODES", "cut_flags", "default_warmup", "scene_mode"]

#: Accepted ``scene_detect`` values; ``True``/``False`` are ``"auto"``/``"never"``.
SCENE_MODES: tuple[str, ...] = ("auto", "always", "never")


def scene_mode(value: object) -> str | None:
    """The mode a ``scene_detect`` value names, or None if it names none."""
    if isinstance(value, bool):
        return "auto" if value else "never"
    return value if isinstance(value, str) and value in SCENE_MODES else None


def default_warmup(max_chain: int) -> int:
    """``Upscale``'s default warm-up for ``max_chain=N``: ``min(16, N // 2)`` frames run (and
    dropped) before each restart inside a scene, so the restart does not show."""
    return min(16, max_chain // 2)


def cut_flags(rgb: vs.VideoNode, scene_detect: bool | str, thresh: int | None = None) -> vs.VideoNode:
    """The scene-cut rule as a tiny clip: frame n is 8x8 GRAY8 with prop ``C`` = 1 when n starts a
    scene, 0 otherwise (see the module docstring).

    Args:
        rgb: the clip whose props are read and which is measured (``Upscale`` passes its float RGB).
        scene_detect: ``"auto"``/True, ``"always"`` or ``"never"``/False (see the module docstring).
        thresh: ``scd.Detect``'s threshold (its own default when None).
    """
    mode = scene_mode(scene_detect)
    if mode is None:
        raise ValueError(f"scene_detect must be one of {', '.join(SCENE_MODES)}, True or False, "
                         f"got {scene_detect!r}")
    always = mode == "always"
    core = vs.core
    tiny = core.std.BlankClip(rgb, width=8, height=8, format=vs.GRAY8, keep=True)
    sources = [tiny, rgb]
    if mode != "never":
        # Luma at half size is plenty for cut detection and cheap.
        gray = core.resize.Bilinear(rgb, format=vs.GRAY8, matrix_s="709",
                                    width=max(8, rgb.width // 2), height=max(8, rgb.height // 2))
        sources.append(core.scd.Detect(gray, **({} if thresh is None else {"thresh": int(thresh)})))

    def flag(n: int, f: list[vs.VideoFrame]) -> vs.VideoFrame:
        cut = n == 0
        if not cut:
            own = f[1].props.get("_SceneChangePrev")
            detected = len(f) > 2 and bool(f[2].props.get("_SceneChangePrev", 0))
            cut = (bool(own) or detected) if always else (bool(own) if own is not None else detected)
        out = f[0].copy()
        out.props["C"] = int(cut)
        return out

    return core.std.ModifyFrame(tiny, sources, flag)


class SceneIndex:
    """Cut flags and scene starts of ``rgb`` (any format clip carrying the input's props).

    Attributes:
        cuts: tiny clip; frame n has prop ``C`` = 1 when n starts a scene (n == 0 included).
        cuts_next: tiny clip; frame n has ``C`` = 1 when n+1 starts a scene or n is the last frame.
        info: tiny clip; requesting frame n guarantees :meth:`start` (n) is known.
    """

    def __init__(self, rgb: vs.VideoNode, scene_detect: bool | str, thresh: int | None = None) -> None:
        core = vs.core
        n_frames = rgb.num_frames
        self.num_frames = n_frames
        self._starts = np.full(n_frames, -1, dtype=np.int64)
        tiny = core.std.BlankClip(rgb, width=8, height=8, format=vs.GRAY8, keep=True)
        self._tiny = tiny
        self.cuts = cut_flags(rgb, scene_detect, thresh)
        end = core.std.SetFrameProps(tiny[0], C=1)
        self.cuts_next = end if n_frames == 1 else self.cuts[1:] + end

        known = core.std.ModifyFrame(tiny, tiny, lambda n, f: f)
        self._known = known
        if n_frames > 1:
            # The callbacks hold this object weakly (see .lifetime): ``info`` and ``_rec`` reference
            # each other through ``info_prev``, and whoever uses ``info`` owns this object.
            self.info = core.std.FrameEval(tiny, WeakCall(self, "_decide"), prop_src=[self.cuts],
                                           clip_src=[known, tiny])
            info_prev = tiny[0] + self.info[:-1]
            self._rec = core.std.ModifyFrame(tiny, [tiny, info_prev], WeakCall(self, "_from_prev"))
        else:
            self._starts[0] = 0
            self.info = known

    def _from_prev(self, n: int, f: list[vs.VideoFrame]) -> vs.VideoFrame:
        # f[1] is info[n-1]: its start is now recorded.
        self._record(n, int(self._starts[n - 1]))
        return f[0]

    def _decide(self, n: int, f: vs.VideoFrame) -> vs.VideoNode:
        if self._starts[n] >= 0:
            return self._known
        if f.props["C"]:
            self._record(n, n)
            return self._known
        prev = self._starts[n - 1]
        if prev >= 0:
            self._record(n, int(prev))
            return self._known
        return self._rec

    def _record(self, n: int, start: int) -> None:
        self._starts[n] = start

    def start(self, n: int) -> int:
        """Scene start of frame n (valid once ``info`` frame n has been produced)."""
        s = int(self._starts[n])
        if s < 0:
            raise RuntimeError(f"scene start of frame {n} requested before it was resolved")
        return s
