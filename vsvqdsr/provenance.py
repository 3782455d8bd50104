"""Keeping the evaluation benchmark set out of training (used by training and evaluation alike).

A benchmark set is a folder whose ``benchmark.json`` carries :data:`BENCHMARK_MARKER`
(:mod:`vsvqdsr.evaluation.build` writes it); every training data loader refuses paths inside or
containing one. Standard library only, so every layer may import it.
"""
from __future__ import annotations

import json
import os
from pathlib import Path

__all__ = ["BENCHMARK_MARKER", "MANIFEST_NAME", "is_benchmark_dir", "find_benchmark", "check_not_benchmark"]

#: Key set in a benchmark set's manifest.
BENCHMARK_MARKER = "vsvqdsr-benchmark"
#: The manifest's file name.
MANIFEST_NAME = "benchmark.json"


def is_benchmark_dir(path: str | os.PathLike) -> bool:
    """True if ``path`` is a folder holding a ``benchmark.json`` with the benchmark marker."""
    m = Path(path) / MANIFEST_NAME
    if not m.is_file():
        return False
    try:
        data = json.loads(m.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return isinstance(data, dict) and bool(data.get(BENCHMARK_MARKER))


def find_benchmark(path: str | os.PathLike, max_depth: int = 4) -> Path | None:
    """The benchmark set that ``path`` is inside of (itself or any parent) or that it contains
    (down to ``max_depth`` folder levels); None if there is none."""
    p = Path(path).expanduser().resolve()
    for q in (p, *p.parents):
        if is_benchmark_dir(q):
            return q
    if p.is_dir():
        level = [p]
        for _ in range(max_depth):
            nxt = []
            for d in level:
                try:  # scandir's entry types need no stat per file (frame folders are large)
                    with os.scandir(d) as it:
                        subs = [Path(e.path) for e in it if e.is_dir(follow_symlinks=False)]
                except OSError:
                    continue
                for e in subs:
                    if is_benchmark_dir(e):
                        return e
                nxt.extend(subs)
            level = nxt
    return None


def check_not_benchmark(paths, what: str) -> None:
    """Raise ``ValueError("<what>: ...")`` if any of ``paths`` is inside or contains a benchmark set.

    ``what`` names the caller (e.g. ``"find_sources"``), so the message says who refused.
    """
    for raw in paths:
        b = find_benchmark(raw)
        if b is not None:
            raise ValueError(f"{what}: {raw} is or contains the evaluation benchmark set {b} "
                             f"({MANIFEST_NAME} with {BENCHMARK_MARKER!r}); it must never be used for training")
