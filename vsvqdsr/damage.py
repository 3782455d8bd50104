"""Seeded "old footage" damage on RGB frames: optical blur, film grain, chroma bleed, analogue tape.

Each operation takes ``T,H,W,3`` uint8 RGB frames and a ``numpy.random.Generator`` and returns
uint8 frames of the same shape. They exist twice over in the project's chains: fixed parameters in
the benchmark's "old footage" severities (``vsvqdsr.evaluation.build``) and sampled parameters in
the training degradations (``vsvqdsr.training.degradations``), which is why they live here, below
both layers (numpy only).

Reproducible byte for byte: every filter is a fixed sequence of element-wise IEEE float64
arithmetic (no BLAS, no reductions whose order depends on the CPU, no vectorised exp/pow whose last
bit may differ between CPUs; kernel taps come from Python's ``math``, summed with ``math.fsum``),
random fields come from the generator in a fixed order (frame by frame, fields in the order listed
per operation), and the result is rounded half-to-even and clipped to 0..255.

Colour difference uses BT.601 luma (Kr 0.299, Kb 0.114) with Cb = (B - Y) / 1.772 and
Cr = (R - Y) / 1.402, on full-range 0..255 values.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

import numpy as np

__all__ = ["ArrayStep", "OPS", "optical_blur", "film_grain", "chroma_bleed", "tape_luma", "tape_chroma",
           "line_jitter", "tape_noise"]

_KR, _KB = 0.299, 0.114
_KG = 1.0 - _KR - _KB


def _taps(sigma: float) -> list[float]:
    """Normalised Gaussian taps, radius ceil(3 sigma) (sigma > 0)."""
    r = max(1, math.ceil(3.0 * sigma))
    k = [math.exp(-(i * i) / (2.0 * sigma * sigma)) for i in range(-r, r + 1)]
    s = math.fsum(k)
    return [v / s for v in k]


def _conv(x: np.ndarray, taps: list[float], axis: int) -> np.ndarray:
    """Convolve float64 ``x`` along ``axis`` with odd-length ``taps`` (edges mirrored), in a fixed order."""
    r = len(taps) // 2
    pad = [(0, 0)] * x.ndim
    pad[axis] = (r, r)
    xp = np.pad(x, pad, mode="symmetric")
    n = x.shape[axis]
    out = np.zeros_like(x)
    for i, t in enumerate(taps):
        out += t * np.take(xp, np.arange(i, i + n), axis=axis)
    return out


def _blur2(x: np.ndarray, sigma: float) -> np.ndarray:
    """Separable Gaussian over the first two axes (H, W) of float64 ``x``."""
    k = _taps(sigma)
    return _conv(_conv(x, k, 0), k, 1)


def _shift_right(x: np.ndarray, px: int) -> np.ndarray:
    """Shift float64 ``H,W`` right by ``px`` whole pixels, repeating the left column."""
    if px <= 0:
        return x
    px = min(px, x.shape[1])
    return np.concatenate([np.repeat(x[:, :1], px, axis=1), x[:, :-px]], axis=1)


def _ycc(f: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    r, g, b = (f[..., i].astype(np.float64) for i in range(3))
    y = _KR * r + _KG * g + _KB * b
    return y, (b - y) / (2.0 * (1.0 - _KB)), (r - y) / (2.0 * (1.0 - _KR))


def _rgb(y: np.ndarray, cb: np.ndarray, cr: np.ndarray) -> np.ndarray:
    r = y + 2.0 * (1.0 - _KR) * cr
    b = y + 2.0 * (1.0 - _KB) * cb
    g = (y - _KR * r - _KB * b) / _KG
    return _u8(np.stack([r, g, b], axis=-1))


def _u8(x: np.ndarray) -> np.ndarray:
    return np.clip(np.rint(x), 0.0, 255.0).astype(np.uint8)


def _each(frames: np.ndarray, fn: Callable[[np.ndarray], np.ndarray]) -> np.ndarray:
    if frames.ndim != 4 or frames.shape[-1] != 3 or frames.dtype != np.uint8:
        raise ValueError(f"damage: need T,H,W,3 uint8 RGB frames; got {frames.shape} {frames.dtype}")
    return np.stack([fn(f) for f in frames])


def optical_blur(frames: np.ndarray, rng: np.random.Generator, sigma: float) -> np.ndarray:
    """Lens/printer softness: a Gaussian blur of ``sigma`` pixels on every channel (draws nothing)."""
    return _each(frames, lambda f: _u8(_blur2(f.astype(np.float64), sigma)))


def film_grain(frames: np.ndarray, rng: np.random.Generator, strength: float, size: float,
               chroma: float) -> np.ndarray:
    """Moving film grain: per frame a fresh normal field blurred by ``size`` pixels (clumps), scaled
    to unit deviation, times ``strength`` (0-255 units) and a midtone-heavy luma weight
    ``0.35 + 0.65 * 4 y (1 - y)``; added to R, G, B alike, plus a second field times
    ``chroma * strength`` added to R and subtracted from B (dye-layer colour grain).
    Draws two ``H,W`` normal fields per frame (mono first)."""
    k = _taps(size)
    norm = math.fsum(v * v for v in k)  # deviation of a separably blurred unit white field

    def one(f: np.ndarray) -> np.ndarray:
        h, w = f.shape[:2]
        mono = _blur2(rng.standard_normal((h, w)), size) / norm
        col = _blur2(rng.standard_normal((h, w)), size) / norm
        x = f.astype(np.float64)
        yn = (_KR * x[..., 0] + _KG * x[..., 1] + _KB * x[..., 2]) / 255.0
        amp = strength * (0.35 + 0.65 * 4.0 * yn * (1.0 - yn))
        g = mono * amp
        c = col * (amp * chroma)
        return _u8(np.stack([x[..., 0] + g + c, x[..., 1] + g, x[..., 2] + g - c], axis=-1))

    return _each(frames, one)


def chroma_bleed(frames: np.ndarray, rng: np.random.Generator, sigma: float, shift: float) -> np.ndarray:
    """Colour smearing past edges: Cb/Cr blurred horizontally by ``sigma`` pixels and delayed
    (shifted right) by ``shift`` whole pixels; luma untouched (draws nothing)."""
    k, px = _taps(sigma), int(round(shift))

    def one(f: np.ndarray) -> np.ndarray:
        y, cb, cr = _ycc(f)
        return _rgb(y, _shift_right(_conv(cb, k, 1), px), _shift_right(_conv(cr, k, 1), px))

    return _each(frames, one)


def tape_luma(frames: np.ndarray, rng: np.random.Generator, sigma: float, ringing: float) -> np.ndarray:
    """Band-limited tape luma with the playback sharpener's ringing: Y low-passed horizontally by
    ``sigma`` pixels, then ``Y + ringing * (Y - blur(Y, 2 sigma))`` (overshoot halos beside edges);
    chroma untouched (draws nothing)."""
    k1, k2 = _taps(sigma), _taps(2.0 * sigma)

    def one(f: np.ndarray) -> np.ndarray:
        y, cb, cr = _ycc(f)
        yl = _conv(y, k1, 1)
        return _rgb(yl + ringing * (yl - _conv(yl, k2, 1)), cb, cr)

    return _each(frames, one)


def tape_chroma(frames: np.ndarray, rng: np.random.Generator, sigma: float, shift: float) -> np.ndarray:
    """Colour-under chroma bandwidth loss: Cb/Cr blurred horizontally by ``sigma`` pixels, each pair of
    lines (0-1, 2-3, ...) set to its mean (chroma of alternate lines shared), delayed by ``shift``
    whole pixels (draws nothing)."""
    k, px = _taps(sigma), int(round(shift))

    def pairs(c: np.ndarray) -> np.ndarray:
        h = c.shape[0] - c.shape[0] % 2
        out = c.copy()
        m = 0.5 * (c[0:h:2] + c[1:h:2])
        out[0:h:2], out[1:h:2] = m, m
        return out

    def one(f: np.ndarray) -> np.ndarray:
        y, cb, cr = _ycc(f)
        return _rgb(y, _shift_right(pairs(_conv(cb, k, 1)), px), _shift_right(pairs(_conv(cr, k, 1)), px))

    return _each(frames, one)


def line_jitter(frames: np.ndarray, rng: np.random.Generator, amplitude: float, smooth: float) -> np.ndarray:
    """Time-base error: every line shifted horizontally by its own sub-pixel offset (linear
    interpolation, edges repeated); offsets are a per-frame normal field along the lines, smoothed
    over ``smooth`` lines and scaled to a deviation of ``amplitude`` pixels. Draws one ``H``-vector
    per frame."""
    k = _taps(smooth)
    norm = math.sqrt(math.fsum(v * v for v in k))

    def one(f: np.ndarray) -> np.ndarray:
        h, w = f.shape[:2]
        off = _conv(rng.standard_normal(h), k, 0) / norm * amplitude
        src = np.arange(w, dtype=np.float64)[None, :] - off[:, None]
        src = np.clip(src, 0.0, w - 1.0)
        x0 = np.floor(src).astype(np.intp)
        x1 = np.minimum(x0 + 1, w - 1)
        fr = (src - x0)[..., None]
        rows = np.arange(h)[:, None]
        x = f.astype(np.float64)
        return _u8(x[rows, x0] * (1.0 - fr) + x[rows, x1] * fr)

    return _each(frames, one)


def tape_noise(frames: np.ndarray, rng: np.random.Generator, strength: float, streak: float) -> np.ndarray:
    """Tape noise: per frame a normal field blurred along the lines by ``streak`` pixels (horizontal
    streaks), scaled to a deviation of ``strength`` (0-255 units), added to luma. Draws one ``H,W``
    field per frame."""
    k = _taps(streak)
    norm = math.sqrt(math.fsum(v * v for v in k))

    def one(f: np.ndarray) -> np.ndarray:
        y, cb, cr = _ycc(f)
        n = _conv(rng.standard_normal(y.shape), k, 1) / norm
        return _rgb(y + strength * n, cb, cr)

    return _each(frames, one)


#: Operation name -> function ``(frames, rng, **params) -> frames``.
OPS: dict[str, Callable[..., np.ndarray]] = {
    "optical_blur": optical_blur, "film_grain": film_grain, "chroma_bleed": chroma_bleed,
    "tape_luma": tape_luma, "tape_chroma": tape_chroma, "line_jitter": line_jitter, "tape_noise": tape_noise,
}


@dataclass(frozen=True)
class ArrayStep:
    """One damage operation with fixed parameters, as a step of a degradation chain.

    ``op`` names a function of :data:`OPS`; ``params`` are its keyword arguments as
    ``((name, value), ...)`` (a tuple, so steps are hashable and print the same every time).
    """

    op: str
    params: tuple[tuple[str, float], ...] = ()

    def __post_init__(self) -> None:
        if self.op not in OPS:
            raise ValueError(f"ArrayStep: unknown operation {self.op!r}; known: {', '.join(OPS)}")

    def apply(self, frames: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """The operation on ``T,H,W,3`` uint8 RGB frames, drawing from ``rng``."""
        return OPS[self.op](frames, rng, **dict(self.params))

    def describe(self) -> str:
        """The step as one manifest line, e.g. ``numpy optical_blur(sigma=1.5) [vsvqdsr.damage]``."""
        args = ", ".join(f"{k}={v:g}" for k, v in self.params)
        return f"numpy {self.op}({args}) [vsvqdsr.damage]"
