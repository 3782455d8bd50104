"""One evaluation run: every method over every clip of a set, with a cache of SR frames and metrics.

Cache layout under the output folder::

    cache/<method>-<key>/method.json                    what the key stands for
    cache/<method>-<key>/sr/<severity>/<clip>/0000.png  SR frames (uint8 RGB)
    cache/<method>-<key>/sr/<severity>/<clip>/done.json SR wall time of that clip
    cache/<method>-<key>/metrics-<mkey>.json            per-clip metrics for one metric setting

``key`` = :meth:`Method.cache_key` (method, model file SHA-256, benchmark manifest SHA-256,
method settings); ``mkey`` hashes the metric options. A later run with an added checkpoint
computes only that method; a changed metric option recomputes metrics, not SR frames.
"""
from __future__ import annotations

import hashlib
import json
import math
import sys
import time
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np

from ..log import progress_enabled
from ..weights.loading import atomic_write_bytes
from .build import read_png, write_png
from .dataset import BenchmarkSet, EvalClip
from .methods import Method, run_clips, run_method
from .metrics import METRICS, clip_metrics
from .options import DEFAULT_OPTIONS

__all__ = ["DEFAULT_OPTIONS", "METRIC_VERSION", "evaluate", "method_dir", "sr_folder", "write_json"]

#: Bump when a metric implementation changes its values (invalidates cached metrics).
METRIC_VERSION = 1



def write_json(path: Path, data: object) -> None:
    """Atomically write ``data`` as JSON; non-finite floats become the strings "inf"/"-inf"/"nan"."""
    atomic_write_bytes(path, (json.dumps(_finite(data), indent=1) + "\n").encode())


def _finite(x: object) -> object:
    if isinstance(x, float) and not math.isfinite(x):
        return "nan" if math.isnan(x) else ("inf" if x > 0 else "-inf")
    if isinstance(x, dict):
        return {k: _finite(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_finite(v) for v in x]
    return x


def _unfinite(x: object) -> object:
    if x in ("inf", "-inf", "nan"):
        return float(x)  # type: ignore[arg-type]
    if isinstance(x, dict):
        return {k: _unfinite(v) for k, v in x.items()}
    if isinstance(x, list):
        return [_unfinite(v) for v in x]
    return x


def method_dir(out: Path, method: Method, bset: BenchmarkSet) -> Path:
    """The cache folder of ``method`` on ``bset``."""
    return Path(out) / "cache" / f"{method.name}-{method.cache_key(bset.sha256)}"


def sr_folder(out: Path, method: Method, bset: BenchmarkSet, clip: EvalClip) -> Path:
    """Where the SR frames of ``clip`` by ``method`` are cached."""
    return method_dir(out, method, bset) / "sr" / clip.severity / clip.name


def _options_key(options: Mapping[str, object]) -> str:
    blob = json.dumps({"options": dict(options), "version": METRIC_VERSION}, sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def _load_sr(folder: Path, n: int) -> tuple[np.ndarray, float] | None:
    done = folder / "done.json"
    if not done.is_file():
        return None
    try:
        info = json.loads(done.read_text())
        frames = np.stack([read_png(folder / f"{i:04d}.png") for i in range(n)])
    except (OSError, ValueError):
        return None
    return frames, float(info.get("seconds", 0.0))


def _mean(vals: Sequence[float]) -> float:
    return float(np.mean(vals)) if len(vals) else math.nan


def evaluate(bset: BenchmarkSet, methods: Sequence[Method], out: str | Path,
             options: Mapping[str, object] | None = None, threads: int | None = None,
             progress: bool = True) -> dict:
    """Run ``methods`` over ``bset`` and return the results (the structure of ``results.json``).

    SR frames and per-clip metrics are read from / written to the cache under ``out``. ``threads``
    sets torch's and VapourSynth's thread counts (None: leave them). Progress bars go to stderr.
    """
    import torch
    import vapoursynth as vs
    from tqdm import tqdm

    out = Path(out)
    opts = {**DEFAULT_OPTIONS, **dict(options or {})}
    unknown = [m for m in opts["metrics"] if m not in METRICS]  # type: ignore[union-attr]
    if unknown:
        raise ValueError(f"evaluate: unknown metrics {unknown}; known: {', '.join(METRICS)}")
    if threads:
        torch.set_num_threads(int(threads))
        vs.core.num_threads = int(threads)
    mkey = _options_key(opts)
    t_start = time.perf_counter()
    computed_sr = computed_metrics = 0
    per_clip: dict[str, dict[str, dict[str, dict[str, float]]]] = {}
    info_rows = []
    gt_cache: dict[str, np.ndarray] = {}
    for method in methods:
        mdir = method_dir(out, method, bset)
        mdir.mkdir(parents=True, exist_ok=True)
        write_json(mdir / "method.json", {"name": method.name, "kind": method.kind,
                                          "model": str(method.path) if method.path else None,
                                          "model_sha256": method.model_sha256, "settings": method.settings,
                                          "manifest_sha256": bset.sha256})
        mpath = mdir / f"metrics-{mkey}.json"
        cached_metrics: dict = _unfinite(json.loads(mpath.read_text())) if mpath.is_file() else {}  # type: ignore
        sr_seconds = metric_seconds = 0.0
        was_cached = True
        # clips without cached SR frames run in one go (one filter instance for a VSR model)
        missing = [c for c in bset.clips if not (sr_folder(out, method, bset, c) / "done.json").is_file()]
        fresh = run_clips(method, [c.load_lr() for c in missing], [c.fps for c in missing], threads)
        bar = tqdm(bset.clips, desc=f"eval {method.name}", unit="clip", file=sys.stderr,
                   disable=not (progress and progress_enabled()), leave=False)
        for clip in bar:
            cid = f"{clip.severity}/{clip.name}"
            folder = sr_folder(out, method, bset, clip)
            cached_sr = None if clip in missing else _load_sr(folder, len(clip.lr))
            if cached_sr is not None:
                sr, secs = cached_sr
            else:
                was_cached = False
                if clip in missing:
                    sr, secs = next(fresh)
                else:  # a damaged cache entry
                    t0 = time.perf_counter()
                    sr = run_method(method, clip.load_lr(), clip.fps, threads)
                    secs = time.perf_counter() - t0
                for i, f in enumerate(sr):
                    write_png(folder / f"{i:04d}.png", f)
                write_json(folder / "done.json", {"seconds": secs, "frames": len(sr)})
                computed_sr += 1
            sr_seconds += secs
            if cid not in cached_metrics or set(cached_metrics[cid]["values"]) != set(opts["metrics"]):  # type: ignore
                was_cached = False
                if clip.name not in gt_cache:  # the GT of a clip serves every severity and method
                    gt_cache[clip.name] = clip.load_gt()
                t0 = time.perf_counter()
                vals = clip_metrics(sr, gt_cache[clip.name], clip.fps, opts)
                cached_metrics[cid] = {"values": vals, "seconds": time.perf_counter() - t0}
                write_json(mpath, cached_metrics)
                computed_metrics += 1
            metric_seconds += float(cached_metrics[cid].get("seconds", 0.0))
            per_clip.setdefault(method.name, {}).setdefault(clip.severity, {})[clip.name] = \
                dict(cached_metrics[cid]["values"])
        bar.close()
        info_rows.append({"name": method.name, "kind": method.kind,
                          "model": str(method.path) if method.path else None,
                          "model_sha256": method.model_sha256, "settings": method.settings,
                          "cache": str(mdir.relative_to(out)), "from_cache": was_cached,
                          "sr_seconds": sr_seconds, "sr_seconds_per_frame": sr_seconds / max(1, bset.num_lr_frames),
                          "metric_seconds": metric_seconds})
    names = list(opts["metrics"])  # type: ignore[arg-type]
    per_sev = {m: {s: {k: _mean([c[k] for c in per_clip[m][s].values()]) for k in names}
                   for s in bset.severities} for m in per_clip}
    overall = {m: {k: _mean([c[k] for s in bset.severities for c in per_clip[m][s].values()]) for k in names}
               for m in per_clip}
    return {
        "benchmark": {"path": str(bset.root), "manifest_sha256": bset.sha256, "severities": bset.severities,
                      "clips": bset.clip_names, "lr_frames_per_method": bset.num_lr_frames,
                      "hr_size": next(iter(bset.manifest["clips"].values()))["hr_size"]},
        "options": opts,
        "metrics": {k: {"label": METRICS[k][0], "unit": METRICS[k][1], "higher_is_better": METRICS[k][2]}
                    for k in names},
        "methods": info_rows,
        "per_clip": per_clip,
        "per_severity": per_sev,
        "overall": overall,
        "run": {"wall_seconds": time.perf_counter() - t_start, "computed_sr_clips": computed_sr,
                "computed_metric_clips": computed_metrics, "threads": threads},
    }
