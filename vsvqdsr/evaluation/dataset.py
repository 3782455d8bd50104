"""Loading a benchmark set (see :mod:`.build` for the layout) and keeping it out of training."""
from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..provenance import check_not_benchmark, find_benchmark, is_benchmark_dir
from .build import BENCHMARK_MARKER, MANIFEST_NAME, SCALE, read_png, sha256_file

__all__ = ["BenchmarkSet", "EvalClip", "load_set", "frames_to_clip", "is_benchmark_dir", "find_benchmark",
           "check_not_benchmark"]


@dataclass(frozen=True)
class EvalClip:
    """One clip of one severity: ``lr`` and ``gt`` frame files (same count, in order)."""

    severity: str
    name: str
    lr: tuple[Path, ...]
    gt: tuple[Path, ...]
    fps: int

    def load_lr(self) -> np.ndarray:
        """``T,h,w,3`` uint8 RGB."""
        return np.stack([read_png(p) for p in self.lr])

    def load_gt(self) -> np.ndarray:
        """``T,4h,4w,3`` uint8 RGB."""
        return np.stack([read_png(p) for p in self.gt])


@dataclass(frozen=True)
class BenchmarkSet:
    """A loaded set: its folder, parsed manifest and the manifest's SHA-256 (the cache key)."""

    root: Path
    manifest: dict
    sha256: str
    clips: tuple[EvalClip, ...]

    @property
    def severities(self) -> list[str]:
        return list(self.manifest["severities"])

    @property
    def clip_names(self) -> list[str]:
        return list(self.manifest["clips"])

    @property
    def num_lr_frames(self) -> int:
        return sum(len(c.lr) for c in self.clips)


def load_set(root: str | os.PathLike, verify: bool = False) -> BenchmarkSet:
    """Read ``root/benchmark.json`` and list its clips.

    With ``verify`` every stored file's SHA-256 is checked against the manifest. Raises
    ``FileNotFoundError`` / ``ValueError`` naming ``load_set`` for a missing or damaged set.
    """
    root = Path(root).expanduser()
    mpath = root / MANIFEST_NAME
    if not mpath.is_file():
        raise FileNotFoundError(f"load_set: {root} is not a benchmark set (no {MANIFEST_NAME}); "
                                "build one with `vqdsr eval build --out DIR`")
    raw = mpath.read_bytes()
    try:
        man = json.loads(raw)
    except ValueError as e:
        raise ValueError(f"load_set: {mpath}: not JSON ({e})") from e
    if not isinstance(man, dict) or not man.get(BENCHMARK_MARKER):
        raise ValueError(f"load_set: {mpath} lacks the benchmark marker {BENCHMARK_MARKER!r}")
    if int(man.get("scale", SCALE)) != SCALE:
        raise ValueError(f"load_set: {mpath}: scale {man.get('scale')} (only x{SCALE} is supported)")
    files = man.get("files", {})
    clips = []
    for sev in man["severities"]:
        for name, info in man["clips"].items():
            n = int(info["frames"])
            lr = tuple(root / "lr" / sev / name / f"{i:04d}.png" for i in range(n))
            gt = tuple(root / "gt" / name / f"{i:04d}.png" for i in range(n))
            for p in lr + gt:
                if not p.is_file():
                    raise FileNotFoundError(f"load_set: {p} is missing (the set is incomplete)")
            clips.append(EvalClip(sev, name, lr, gt, int(info.get("fps", 24))))
    if verify:
        for rel, digest in files.items():
            if sha256_file(root / rel) != digest:
                raise ValueError(f"load_set: {root / rel} does not match the manifest's sha256")
    return BenchmarkSet(root, man, hashlib.sha256(raw).hexdigest(), tuple(clips))


def frames_to_clip(frames: np.ndarray, fps: int = 24, scene_starts: set[int] | None = None):
    """uint8 ``T,H,W,3`` RGB as an RGB24 VapourSynth clip (each frame copied on request).

    With ``scene_starts``, every frame carries ``_SceneChangePrev`` (1 at those frames, else 0).
    """
    import vapoursynth as vs

    t, h, w, _ = frames.shape
    blank = vs.core.std.BlankClip(format=vs.RGB24, width=w, height=h, length=t, fpsnum=fps, fpsden=1, keep=True)

    def fill(n: int, f: vs.VideoFrame) -> vs.VideoFrame:
        out = f.copy()
        for p in range(3):
            np.copyto(np.asarray(out[p]), frames[n, :, :, p])
        if scene_starts is not None:
            out.props["_SceneChangePrev"] = int(n in scene_starts)
        return out

    return vs.core.std.ModifyFrame(blank, blank, fill)
