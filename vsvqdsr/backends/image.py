"""Image runners on the inference layer: the degrader and the single-image SR models.

Both are built for one backend, one device and one largest image size, own their engine (it is
freed with the runner; no module-level caches) and take host frames ``(3, h, w)`` float arrays:

* :class:`DegradeRunner`: the multi-scale VQGAN with the three top-k ranks as graph inputs
  (:class:`~vsvqdsr.nets.vqgan.DegradeModule`); frames are reflect-padded to multiples of 8 and
  frames above ``max_pixels`` run in overlapping tiles, exactly as
  :meth:`~vsvqdsr.nets.vqgan.MultiScaleVQGAN.degrade` does;
* :class:`SISRRunner`: an SRVGG / RRDB x``scale`` model on reflect-padded tiles (``pad`` LR
  pixels around each tile, as the ncnn Real-ESRGAN front end does).
"""
from __future__ import annotations

import threading
from collections.abc import Sequence

import numpy as np
from torch import nn

from .base import RunnerSpec
from .graph import GraphDef, open_graph
from .host import pad_host

# The runners keep only their engine: an engine that runs an ONNX export holds no torch weights.
__all__ = ["DegradeRunner", "SISRRunner", "SISR_PAD", "degrade_graph", "sisr_graph", "tile_windows"]

#: Reflect padding (LR pixels) around each SISR tile, as the ncnn Real-ESRGAN front end does.
SISR_PAD = 10


def _pad8(h: int, w: int) -> tuple[int, int]:
    return -(-h // 8) * 8, -(-w // 8) * 8


def degrade_graph(net, k_max: int | Sequence[int]) -> GraphDef:
    """The degrader as a graph: ``x`` ``1,3,H,W`` in [0, 1] and ranks ``k_top/k_mid/k_bottom`` -> ``y``
    (``k_max``: the constant TopK K, one for all branches or one per branch). The top-k lookup (the
    distances, TopK and codebook Gathers) stays f32 under a bf16 precision (``keep_f32_ops``)."""
    from ..nets.vqgan import DegradeModule

    img = {2: "h", 3: "w"}
    ks = ("k_top", "k_mid", "k_bottom")
    kk = (k_max,) * 3 if isinstance(k_max, int) else tuple(k_max)
    return GraphDef(name=f"degrader-k{'-'.join(str(k) for k in kk)}", module=DegradeModule(net, k_max), inputs=("x",) + ks, output="y",
                    image_dynamic=img, output_dynamic=img, int_inputs=frozenset(ks),
                    shape_of=lambda h, w: {"x": (1, 3, h, w), **{k: (1,) for k in ks}},
                    keep_f32_ops=frozenset({"TopK"}))


def sisr_graph(net: nn.Module, in_ch: int = 3) -> GraphDef:
    """A single-image SR model as a graph: ``x`` ``1,C,H,W`` -> ``y`` ``1,C,sH,sW``."""
    return GraphDef(name=f"sisr-{type(net).__name__.lower()}", module=net, inputs=("x",), output="y",
                    image_dynamic={2: "h", 3: "w"}, output_dynamic={2: "sh", 3: "sw"},
                    shape_of=lambda h, w: {"x": (1, in_ch, h, w)})


def tile_windows(h: int, w: int, tile: int, overlap: int) -> list[tuple[tuple[int, int, int, int], tuple[int, int, int, int]]]:
    """``(core y0, y1, x0, x1), (window a0, a1, b0, b1)`` of the degrader's overlapping tiles (the
    same rule as :meth:`MultiScaleVQGAN._degrade_tiled`)."""
    tile = max(64, tile - tile % 8)
    overlap = min(max(0, overlap - overlap % 8), tile // 4)
    step = tile - 2 * overlap
    out = []
    for y0 in range(0, h, step):
        for x0 in range(0, w, step):
            y1, x1 = min(y0 + step, h), min(x0 + step, w)
            a0, b0 = max(0, y0 - overlap), max(0, x0 - overlap)
            a1, b1 = min(h, y1 + overlap), min(w, x1 + overlap)
            out.append(((y0, y1, x0, x1), (a0, a1, b0, b1)))
    return out


class DegradeRunner:
    """A multi-scale VQGAN degrader on one backend for frames up to ``spec.height x spec.width``.

    Args:
        net: a :class:`~vsvqdsr.nets.vqgan.MultiScaleVQGAN` (float32, CPU; the runner copies it).
        spec: frame size, ``fp16``, ``device_id``, ``host_dtype``.
        backend: a backend name or ``"auto"``; ``options`` go to it (see :mod:`.graph`; the CPU
            engines take ``precision``, and the top-k lookup stays f32 under bf16).
        k_max: the graph's constant TopK K: one int for every branch, or (top, middle, bottom);
            every rank asked for must be at most its branch's K.
        max_pixels, tile, overlap: frames with more than ``max_pixels`` pixels run in tiles.
    """

    def __init__(self, net, spec: RunnerSpec, backend: str = "auto", k_max: int | Sequence[int] = 50,
                 max_pixels: int = 1920 * 1088, tile: int = 512, overlap: int = 32, **options) -> None:
        self.spec = spec
        self.k_max = (int(k_max),) * 3 if isinstance(k_max, int) else tuple(int(k) for k in k_max)
        self.tiled = spec.height * spec.width > max_pixels
        self.tile, self.overlap = tile, overlap
        hp, wp = _pad8(spec.height, spec.width)
        if self.tiled:
            t = max(64, tile - tile % 8)
            max_hw = (min(t, hp), min(t, wp))
        else:
            max_hw = (hp, wp)
        self.engine = open_graph(backend, degrade_graph(net, self.k_max), spec, max_hw, multiple=8, **options)
        self.frames = 0
        self._lock = threading.Lock()

    def _run_window(self, x: np.ndarray, ks: dict[str, np.ndarray]) -> np.ndarray:
        h, w = x.shape[-2:]
        xp = np.ascontiguousarray(pad_host(x[None], *_pad8(h, w)))
        y = self.engine.run({"x": xp, **ks})[0]
        return y[0, :, :h, :w]

    def run(self, frame: np.ndarray, ks: Sequence[int]) -> np.ndarray:
        """Degrade one ``(3, h, w)`` frame in [0, 1] with ranks ``(top, mid, bottom)``."""
        if frame.ndim != 3 or frame.shape[0] != 3:
            raise ValueError(f"DegradeRunner.run: expected a (3, h, w) frame, got {frame.shape}")
        if len(ks) != 3 or not all(1 <= int(k) <= m for k, m in zip(ks, self.k_max)):
            raise ValueError(f"DegradeRunner.run: ranks must be three ints, each in 1..{'/'.join(map(str, self.k_max))} "
                             f"(top/middle/bottom), got {list(ks)}")
        x = np.asarray(frame, dtype=np.float32)
        feeds = {n: np.array([int(k)], np.int64) for n, k in zip(("k_top", "k_mid", "k_bottom"), ks)}
        h, w = x.shape[-2:]
        if not self.tiled:
            y = self._run_window(x, feeds)
        else:
            y = np.empty_like(x)
            for (y0, y1, x0, x1), (a0, a1, b0, b1) in tile_windows(h, w, self.tile, self.overlap):
                res = self._run_window(x[:, a0:a1, b0:b1], feeds)
                y[:, y0:y1, x0:x1] = res[:, y0 - a0:y1 - a0, x0 - b0:x1 - b0]
        with self._lock:
            self.frames += 1
        return np.ascontiguousarray(y, dtype=self.spec.host_dtype)

    @property
    def precision(self) -> str | None:
        """The precision the engine runs (``"f32"`` / ``"bf16"`` on the CPU engines, else None)."""
        return getattr(self.engine, "precision", None)

    def describe(self) -> str:
        return self.engine.describe()


class SISRRunner:
    """A single-image x``scale`` SR model (SRVGG, RRDB) on one backend, tiled.

    Args:
        net: the network (float32, CPU), with a ``scale`` attribute.
        spec: the largest frame size (tiles are at most ``tile + 2 pad`` pixels a side), fp16, device.
        tile: tile edge in LR pixels (0: the whole frame); ``pad``: reflect margin around each tile.
        options: go to the backend (see :mod:`.graph`; the CPU engines take ``threads``, ``precision``).
    """

    def __init__(self, net: nn.Module, spec: RunnerSpec, backend: str = "auto", tile: int = 256,
                 pad: int = SISR_PAD, **options) -> None:
        self.spec = spec
        self.scale = int(net.scale)
        self.tile, self.pad = int(tile), int(pad)
        t = self.tile if self.tile > 0 else max(spec.height, spec.width)
        max_hw = (min(t, spec.height) + 2 * self.pad, min(t, spec.width) + 2 * self.pad)
        in_ch = int(next(net.parameters()).shape[1])
        self.engine = open_graph(backend, sisr_graph(net, in_ch), spec, max_hw, multiple=1, **options)

    def run(self, img: np.ndarray) -> np.ndarray:
        """``(C, h, w)`` float in [0, 1] -> ``(C, s h, s w)`` (unclamped), like ``sr_image``."""
        if img.ndim != 3:
            raise ValueError(f"SISRRunner.run: expected a (C, h, w) image, got {img.shape}")
        x = np.asarray(img, dtype=np.float32)
        c, h, w = x.shape
        s, pad = self.scale, self.pad
        tile = self.tile if self.tile > 0 else max(h, w)
        out = np.empty((c, h * s, w * s), np.float32)
        for y0 in range(0, h, tile):
            for x0 in range(0, w, tile):
                y1, x1 = min(y0 + tile, h), min(x0 + tile, w)
                ya, xa = max(y0 - pad, 0), max(x0 - pad, 0)
                yb, xb = min(y1 + pad, h), min(x1 + pad, w)
                part = x[:, ya:yb, xa:xb]
                pt, pl = pad - (y0 - ya), pad - (x0 - xa)
                pb, pr = pad - (yb - y1), pad - (xb - x1)
                if max(pt, pl, pb, pr) > 0:
                    mode = "reflect" if min(part.shape[-2:]) > pad else "edge"
                    part = np.pad(part, ((0, 0), (pt, pb), (pl, pr)), mode=mode)
                res = self.engine.run({"x": np.ascontiguousarray(part[None])})[0]
                out[:, y0 * s:y1 * s, x0 * s:x1 * s] = res[0, :, pad * s:pad * s + (y1 - y0) * s,
                                                           pad * s:pad * s + (x1 - x0) * s]
        return np.ascontiguousarray(out, dtype=self.spec.host_dtype)

    @property
    def precision(self) -> str | None:
        """The precision the engine runs (``"f32"`` / ``"bf16"`` on the CPU engines, else None)."""
        return getattr(self.engine, "precision", None)

    def describe(self) -> str:
        return self.engine.describe()


