"""The compared x4 upscalers: resizers, single-image SR and VSR models (registry or file).

Every method maps a clip of LR frames (``T,h,w,3`` uint8 RGB) to ``T,4h,4w,3`` uint8 RGB (network
outputs are clamped to [0, 1] and rounded), so every method is scored on what a user would store.

* ``bicubic`` -- ``resize.Bicubic`` with b = 0, c = 0.5 (Keys / Catmull-Rom, as MATLAB and PIL);
* ``lanczos`` -- ``resize.Lanczos``, 3 taps; ``nearest`` -- ``resize.Point`` (a lower bound);
* single-image SR models in :func:`vsvqdsr.weights.fetch.sisr_dir` (``realesr-animevideov3``, ...):
  frame by frame through :class:`vsvqdsr.backends.image.SISRRunner` (setting ``backend``, default
  ``cpu``: its fastest engine; ``tile``; ``precision``, default the CPU engines' ``"auto"``);
* VSR models (installed names, or ``.safetensors``/``.pth`` files): ``vsvqdsr.Upscale`` with
  ``scene_detect=False`` (every benchmark clip is one shot; a camera move must not be cut).
"""
from __future__ import annotations

import hashlib
import json
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Iterator, Sequence

import numpy as np

from .build import sha256_file
from .dataset import frames_to_clip

__all__ = ["Method", "RESIZERS", "DEFAULT_SISR", "available_methods", "resolve_methods", "run_method", "run_clips"]

#: Resizer methods: name -> (VapourSynth resize function, its keyword arguments).
RESIZERS: dict[str, tuple[str, dict]] = {
    "bicubic": ("Bicubic", {"filter_param_a": 0.0, "filter_param_b": 0.5}),
    "lanczos": ("Lanczos", {"filter_param_a": 3}),
    "nearest": ("Point", {}),
}
#: Single-image SR baselines in the default method list.
DEFAULT_SISR = ("realesr-animevideov3", "realesrgan-x4plus-anime")  # the anchors of the default-model rule
#: Bump when a method's implementation changes its output (invalidates cached SR frames).
IMPL_VERSION = 1


@dataclass(frozen=True)
class Method:
    """One method: ``kind`` is ``"resize"``, ``"sisr"`` or ``"vsr"``; ``path`` the weights file."""

    name: str
    kind: str
    path: Path | None = None
    model_sha256: str = "none"
    settings: dict = field(default_factory=dict, compare=False)

    def cache_key(self, manifest_sha256: str) -> str:
        """16 hex digits from (name, kind, model file SHA-256, manifest SHA-256, settings)."""
        blob = json.dumps({"name": self.name, "kind": self.kind, "model": self.model_sha256,
                           "manifest": manifest_sha256, "settings": self.settings, "impl": IMPL_VERSION},
                          sort_keys=True)
        return hashlib.sha256(blob.encode()).hexdigest()[:16]


def _sisr_names() -> list[str]:
    from ..weights.fetch import sisr_dir

    d = sisr_dir()
    return sorted(p.stem for p in d.glob("*.safetensors")) if d.is_dir() else []


def available_methods() -> dict[str, str]:
    """Every method name usable in ``--methods`` -> kind (resizers, installed SISR and VSR models)."""
    from ..weights.registry import installed_models

    out = {n: "resize" for n in RESIZERS}
    out.update({n: "sisr" for n in _sisr_names()})
    out.update({n: "vsr" for n in installed_models("vsr")})
    return out


def default_method_names() -> list[str]:
    """bicubic, lanczos, the default SISR baselines that are installed, every installed VSR model."""
    from ..weights.registry import installed_models

    have = set(_sisr_names())
    return ["bicubic", "lanczos", *[n for n in DEFAULT_SISR if n in have], *sorted(installed_models("vsr"))]


def ran_precision(backend: str, caps: Iterable[str] | None = None) -> dict:
    """The settings entry for the precision a network method runs at with ``backend`` and
    ``precision="auto"``: ``{"precision_ran": "bf16"}`` on a CPU with AMX-BF16 (for the CPU engines that
    have bf16 kernels), else ``{}`` -- so an f32 run keeps the cache keys of every f32 result, and a
    bf16 run never reuses f32 frames (or the reverse)."""
    from ..backends.precision import capabilities, choose

    if backend not in ("cpu", "openvino"):  # CUDA/TensorRT take fp16 explicitly; ORT's CPU engine is f32 only
        return {}
    return {"precision_ran": "bf16"} if choose("auto", capabilities() if caps is None else caps) == "bf16" else {}


def resolve_methods(names: Sequence[str] | None, checkpoints: Sequence[str | os.PathLike] = (),
                    backend: str = "cpu") -> list[Method]:
    """Methods for ``names`` (None: :func:`default_method_names`) followed by ``checkpoints``
    (VSR weights files, named by their stem; a clash gets the file's short hash appended).

    Raises ``ValueError("resolve_methods: ...")`` for an unknown name or a missing file.
    """
    from ..weights.fetch import sisr_dir
    from ..weights.registry import installed_models

    avail = available_methods()
    vsr = installed_models("vsr")
    ran = ran_precision(backend)
    chosen = list(default_method_names() if names is None else names)
    methods: list[Method] = []
    for n in chosen:
        kind = avail.get(n)
        if kind is None:
            raise ValueError(f"resolve_methods: unknown method {n!r}; available: {', '.join(avail)} "
                             "(or give a weights file with --checkpoint)")
        if kind == "resize":
            methods.append(Method(n, "resize", settings={"resize": RESIZERS[n][0], **RESIZERS[n][1]}))
        elif kind == "sisr":
            p = sisr_dir() / f"{n}.safetensors"
            methods.append(Method(n, "sisr", p, sha256_file(p), {"tile": 0, **ran_precision("cpu")}))
        else:
            p = vsr[n].path
            methods.append(Method(n, "vsr", p, sha256_file(p), {"backend": backend, "scene_detect": False, **ran}))
    for c in checkpoints:
        p = Path(c).expanduser()
        if not p.is_file():
            raise ValueError(f"resolve_methods: checkpoint {p} does not exist")
        digest = sha256_file(p)
        name = p.stem
        if any(m.name == name for m in methods):
            name = f"{name}-{digest[:8]}"
        methods.append(Method(name, "vsr", p.resolve(), digest, {"backend": backend, "scene_detect": False, **ran}))
    if len({m.name for m in methods}) != len(methods):
        raise ValueError("resolve_methods: a method is named twice")
    return methods


def _to_uint8(x: np.ndarray) -> np.ndarray:
    return np.clip(np.rint(x * 255.0), 0, 255).astype(np.uint8)


def _resize(method: Method, lr: np.ndarray) -> np.ndarray:
    import vapoursynth as vs


    t, h, w, _ = lr.shape
    fn, kw = RESIZERS[method.name]
    clip = getattr(vs.core.resize, fn)(frames_to_clip(lr), width=4 * w, height=4 * h, format=vs.RGBS, **kw)
    out = np.empty((t, 4 * h, 4 * w, 3), np.uint8)
    for i in range(t):
        f = clip.get_frame(i)
        out[i] = _to_uint8(np.stack([np.asarray(f[p]) for p in range(3)], -1))
    return out


def _sisr(method: Method, lr: np.ndarray) -> np.ndarray:
    from ..backends import RunnerSpec
    from ..backends.image import SISRRunner
    from ..weights import load_model

    net = load_model(str(method.path), "sisr")[0]
    _, h, w, _ = lr.shape
    opts = {"precision": method.settings["precision"]} if "precision" in method.settings else {}
    runner = SISRRunner(net, RunnerSpec(h, w), str(method.settings.get("backend", "cpu")),
                        tile=int(method.settings.get("tile", 0)), **opts)  # CPU: precision auto unless set
    out = []
    for f in lr:
        y = runner.run(np.ascontiguousarray(f.transpose(2, 0, 1), dtype=np.float32) / 255.0)
        out.append(_to_uint8(np.clip(y.transpose(1, 2, 0), 0, 1)))
    return np.stack(out)


def _vsr_clips(method: Method, clips: Sequence[np.ndarray], fps: int,
               threads: int | None) -> Iterator[tuple[np.ndarray, float]]:
    """All ``clips`` (one size) through ONE ``Upscale`` instance: concatenated, each clip's first
    frame flagged ``_SceneChangePrev`` so the recurrence restarts there (exactly as separate runs;
    a filter instance per clip would keep its engine in memory, ~300 MB each)."""
    import vapoursynth as vs

    from ..filters.upscale import Upscale

    opts = {}
    if threads and method.settings.get("backend") == "cpu":
        opts["threads"] = threads
    t_build = time.perf_counter()
    starts = np.cumsum([0] + [len(c) for c in clips])
    allf = np.concatenate(list(clips))
    clip = Upscale(frames_to_clip(allf, fps, set(int(s) for s in starts[:-1])), model=str(method.path),
                   backend=str(method.settings.get("backend", "cpu")), scene_detect=False, **opts)
    if clip.format.id != vs.RGBS:
        clip = vs.core.resize.Point(clip, format=vs.RGBS)
    for k, c in enumerate(clips):
        t0 = t_build if k == 0 else time.perf_counter()  # the first clip also pays for the set-up
        out = np.empty((len(c), 4 * c.shape[1], 4 * c.shape[2], 3), np.uint8)
        for i in range(len(c)):  # linear: one network step per frame
            f = clip.get_frame(int(starts[k]) + i)
            out[i] = _to_uint8(np.stack([np.asarray(f[p]) for p in range(3)], -1))
        yield out, time.perf_counter() - t0


def _check(lr: np.ndarray) -> None:
    if lr.ndim != 4 or lr.shape[-1] != 3 or lr.dtype != np.uint8:
        raise ValueError(f"run_method: need T,h,w,3 uint8 frames, got {lr.shape} {lr.dtype}")


def run_clips(method: Method, clips: Sequence[np.ndarray], fps: Sequence[int],
              threads: int | None = None) -> Iterator[tuple[np.ndarray, float]]:
    """Upscale several clips (each ``T,h,w,3`` uint8 RGB, frame rate ``fps[i]``), yielding
    ``(T,4h,4w,3 uint8 RGB, seconds)`` per clip in order. VSR models run consecutive clips of one
    size and frame rate through one filter instance (recurrence reset at each clip)."""
    for c in clips:
        _check(c)
    if method.kind not in ("resize", "sisr", "vsr"):
        raise ValueError(f"run_method: unknown method kind {method.kind!r}")
    i = 0
    while i < len(clips):
        if method.kind != "vsr":
            t0 = time.perf_counter()
            sr = _resize(method, clips[i]) if method.kind == "resize" else _sisr(method, clips[i])
            yield sr, time.perf_counter() - t0
            i += 1
            continue
        j = i + 1
        while j < len(clips) and clips[j].shape[1:] == clips[i].shape[1:] and fps[j] == fps[i]:
            j += 1
        yield from _vsr_clips(method, clips[i:j], int(fps[i]), threads)
        i = j


def run_method(method: Method, lr: np.ndarray, fps: int = 24, threads: int | None = None) -> np.ndarray:
    """Upscale one clip: ``lr`` ``T,h,w,3`` uint8 RGB -> ``T,4h,4w,3`` uint8 RGB."""
    _check(lr)
    return next(iter(run_clips(method, [lr], [fps], threads)))[0]
