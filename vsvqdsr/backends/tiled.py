"""Halo tiling of one recurrent step: big frames in bounded memory, the same output as untiled.

:class:`TiledRunner` wraps a runner built for one *window* size and runs every step of a full frame
as overlapping windows. The hidden state (and the fed-back SR frame) stays full-frame; each window
gets the input frames and the state over its region plus a halo on every side that is not the frame
border, and only the window's interior is kept. The halo is at least :func:`step_reach`, the
receptive field of one step, so every kept pixel is computed from exactly the values the untiled step
sees: no seams and no drift along the recurrence, only float rounding (a convolution engine may
order its sums differently for another shape). Window origins are multiples of 4 so the network's
1/2- and 1/4-scale grids line up with the full frame's. Memory for activations is bounded by the
window, not the frame.

Device objects of the inner runner are numpy arrays (CPU engines) or torch tensors (torch, CUDA);
both are handled. Inputs are kept on the host and sliced per window.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from .base import RunnerSpec, StepRunner
from .host import pad_host

__all__ = ["ACTIVATION_BYTES_PER_PIXEL", "TileLayout", "TiledRunner", "step_reach", "tile_layout"]

#: Peak activation bytes per LR input pixel of one fp32 step on the CPU engines (OpenVINO), measured:
#: ~3.4 GB above the rest of the process for one untiled 1280x720 step.
ACTIVATION_BYTES_PER_PIXEL = 3700


def step_reach(num_block: tuple[int, int, int]) -> int:
    """Receptive radius of one recurrent step in LR input pixels: output pixel (and new state
    pixel) j depends only on inputs (frames, state, fed-back frame) within ``j - r .. j + r``.

    Interval arithmetic over :class:`~vsvqdsr.nets.vsr.MultiScaleCell`: a tensor at stride k holds
    ``(lo, hi)`` such that its pixel i depends on full-resolution inputs ``k*i + lo .. k*i + hi``.
    A 3x3 convolution (stride 1 or 2) widens it by k on both sides; a bilinear x f upsample
    (``align_corners=False``, two taps) from stride k to k' = k/f gives ``lo + k'/2 - 3k/2`` and
    ``hi + k'/2 + k/2``; a sum or concatenation takes the union. The image path adds the x4 bilinear
    upsample of the current frame (reach 1 LR pixel).
    """
    n1, n2, n4 = (int(v) for v in num_block)

    def conv(iv, k):
        return iv[0] - k, iv[1] + k

    def up(iv, k, f):
        k2 = k / f
        return iv[0] + k2 / 2 - 1.5 * k, iv[1] + k2 / 2 + 0.5 * k

    def union(*ivs):
        return min(i[0] for i in ivs), max(i[1] for i in ivs)

    def block(iv, k):  # x + conv(relu(conv(x)))
        return conv(conv(iv, k), k)

    s1 = conv((0.0, 0.0), 1)
    s2 = conv(s1, 1)          # stride-2 conv from stride 1 to 2: widens by the input stride
    s4 = conv(s2, 2)          # stride 2 -> 4
    s2_live = s4_live = False
    for i in range(n1):
        acc = s1
        if s2_live:
            acc = union(acc, up(s2, 2, 2))
        if s4_live:
            acc = union(acc, up(s4, 4, 4))
        s1 = block(acc, 1)
        if i >= n1 - n2:
            s2 = block(union(s2, up(s4, 4, 2)) if s4_live else s2, 2)
            s2_live = True
        if i >= n1 - n4:
            s4 = block(s4, 4)
            s4_live = True
    fused = conv(conv(union(s1, up(s2, 2, 2), up(s4, 4, 4)), 1), 1)
    return int(math.ceil(max(-fused[0], fused[1], 2.0)))


@dataclass(frozen=True)
class TileLayout:
    """Windows over a padded ``hp x wp`` frame. ``windows``: ``(wy, wx, iy0, iy1, ix0, ix1)`` per
    tile: the window's origin and the interior it keeps (frame coordinates, LR pixels); every window
    is ``win_h x win_w``."""

    hp: int
    wp: int
    win_h: int
    win_w: int
    halo: int
    grid: tuple[int, int]  # tiles across, down
    windows: tuple[tuple[int, int, int, int, int, int], ...]


def _axis(length: int, count: int, halo: int, multiple: int) -> tuple[int, list[tuple[int, int, int]]]:
    """Split ``length`` into ``count`` interiors (multiples of ``multiple``) with windows of one size
    reaching ``halo`` beyond each interior where the frame allows; returns the window size and
    ``(window origin, interior begin, interior end)`` per tile."""
    tile = -(-length // count)
    tile = -(-tile // multiple) * multiple
    count = -(-length // tile)
    win = min(length, tile + 2 * halo)
    out = []
    for i in range(count):
        a, b = i * tile, min(length, (i + 1) * tile)
        origin = min(max(0, a - halo), length - win)
        out.append((origin, a, b))
    return win, out


def tile_layout(hp: int, wp: int, grid: tuple[int, int], halo: int, multiple: int = 4) -> TileLayout:
    """The windows for ``grid = (across, down)`` tiles over a padded ``hp x wp`` frame with ``halo``
    (rounded up to ``multiple``) LR pixels of context on inner sides."""
    halo = -(-halo // multiple) * multiple
    win_w, xs = _axis(wp, max(1, grid[0]), halo, multiple)
    win_h, ys = _axis(hp, max(1, grid[1]), halo, multiple)
    windows = tuple((wy, wx, iy0, iy1, ix0, ix1) for wy, iy0, iy1 in ys for wx, ix0, ix1 in xs)
    return TileLayout(hp, wp, win_h, win_w, halo, (len(xs), len(ys)), windows)


# -- numpy / torch device objects ------------------------------------------------------------------
def _is_torch(x: Any) -> bool:
    return type(x).__module__.startswith("torch")


def _window(x: Any, y0: int, y1: int, x0: int, x1: int) -> Any:
    w = x[..., y0:y1, x0:x1]
    return w.contiguous() if _is_torch(x) else np.ascontiguousarray(w)


def _empty_like(x: Any, h: int, w: int) -> Any:
    shape = tuple(x.shape[:-2]) + (h, w)
    return x.new_empty(shape) if _is_torch(x) else np.empty(shape, x.dtype)


class TiledRunner(StepRunner):
    """A :class:`StepRunner` for the full frame that runs each step window by window on ``inner``
    (built for ``layout.win_h x layout.win_w``). One step counts once, however many windows."""

    def __init__(self, inner: StepRunner, desc, spec: RunnerSpec, layout: TileLayout) -> None:
        super().__init__(None, desc, spec)
        if (layout.hp, layout.wp) != self.padded:
            raise ValueError(f"tile layout for {layout.hp}x{layout.wp}, frame padded to {self.padded}")
        if inner.padded != (layout.win_h, layout.win_w):
            raise ValueError(f"inner runner built for {inner.padded}, windows are {layout.win_h}x{layout.win_w}")
        self.inner = inner
        self.layout = layout
        self.name = inner.name
        self.feedback = bool(desc.feedback)

    def upload(self, frame: np.ndarray) -> np.ndarray:
        if frame.ndim != 3 or frame.shape[0] != 3:
            raise ValueError(f"tiled: upload expects a (3, h, w) array, got shape {frame.shape}")
        return pad_host(np.asarray(frame)[None], *self.padded)

    def initial_state(self) -> tuple[Any, Any]:
        state, prev_out = self.inner.initial_state()
        hp, wp = self.padded
        full = _empty_like(state, hp, wp)
        full[...] = 0
        if prev_out is not None:
            s = self.scale
            out = _empty_like(prev_out, hp * s, wp * s)
            out[...] = 0
            prev_out = out
        return full, prev_out

    def step(self, prev: Any, cur: Any, nxt: Any, state: Any, prev_out: Any) -> tuple[Any, Any]:
        lay, s, inner = self.layout, self.scale, self.inner
        if self.feedback and prev_out is None:
            raise ValueError("tiled: the feedback network needs prev_out")
        new_state = out = None
        for wy, wx, iy0, iy1, ix0, ix1 in lay.windows:
            y1, x1 = wy + lay.win_h, wx + lay.win_w
            up = [inner.upload(f[0, :, wy:y1, wx:x1]) for f in (prev, cur, nxt)]
            po = _window(prev_out, wy * s, y1 * s, wx * s, x1 * s) if self.feedback else None
            o, st = inner.step(*up, _window(state, wy, y1, wx, x1), po)
            if new_state is None:
                new_state = _empty_like(st, *self.padded)
                out = _empty_like(o, self.padded[0] * s, self.padded[1] * s)
            ry0, ry1, rx0, rx1 = iy0 - wy, iy1 - wy, ix0 - wx, ix1 - wx
            new_state[..., iy0:iy1, ix0:ix1] = st[..., ry0:ry1, rx0:rx1]
            out[..., iy0 * s:iy1 * s, ix0 * s:ix1 * s] = o[..., ry0 * s:ry1 * s, rx0 * s:rx1 * s]
        self._counted()
        return out, new_state

    def download(self, out: Any) -> np.ndarray:
        h, w = self.spec.height * self.scale, self.spec.width * self.scale
        crop = out[0, :, :h, :w]
        if _is_torch(crop):
            crop = crop.float().cpu().numpy()
        return np.ascontiguousarray(crop, dtype=self.spec.host_dtype)

    def nbytes_per_step(self) -> int:
        return self.inner.nbytes_per_step() * (self.padded[0] * self.padded[1]) // (
            self.layout.win_h * self.layout.win_w)

    def describe(self) -> str:
        gx, gy = self.layout.grid
        return (f"{self.inner.describe()}, {gx}x{gy} tiles of {self.layout.win_w}x{self.layout.win_h} "
                f"(halo {self.layout.halo})")
