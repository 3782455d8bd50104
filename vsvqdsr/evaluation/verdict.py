"""The benchmark verdict: does a method beat every baseline, and which model is the default.

:func:`compare` puts a method beside the best baseline per metric, overall and per severity, and
marks each cell WIN or LOSS (the metric's direction comes from the results file). With per-clip
figures in the results it adds one *clip cell* per metric and severity: the method must beat the
best baseline of each clip on at least :func:`clips_needed` of the severity's clips (5 of 6; never
fewer than five sixths). :func:`update_card` writes a model's figures and the per-cell table into
its model card and sets ``benchmark_rank = 1`` (the registry's default-model marker) only when
every goal cell, clip cells included, is a win against every baseline.
``vqdsr eval verdict`` and ``vqdsr eval card`` are the command-line faces of these two functions.
"""
from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import Mapping, Sequence

__all__ = ["GOAL_METRICS", "BASELINES", "CLIP_SHARE", "clips_needed", "compare", "figures", "update_card",
           "read_results", "write_card"]

#: The metrics a default model must win: SSIMULACRA2, ColorVideoVDP and temporal flicker.
GOAL_METRICS: tuple[str, ...] = ("ssimulacra2", "cvvdp", "flicker")
#: The baselines a default model must beat (the animation VSR/SR models of the comparison, and the
#: RealESRGAN x4plus anime 6B that the set-up converts).
BASELINES: tuple[str, ...] = ("realesr-animevideov3", "animesr-v1", "animesr-v2", "realesrgan-x4plus-anime")
#: Share of a severity's clips on which a default model must beat every baseline (5 of 6).
CLIP_SHARE = 5 / 6


def clips_needed(n: int) -> int:
    """Clips of ``n`` that a method must win per severity: ``ceil(n * 5 / 6)`` (5 of 6, 4 of 4, 2 of 2)."""
    return math.ceil(n * CLIP_SHARE - 1e-9)


def read_results(path: str | os.PathLike) -> dict:
    """A ``vqdsr eval`` ``results.json`` (raises OSError or ValueError)."""
    return json.loads(Path(path).read_text(encoding="utf-8"))


def compare(results: Mapping, method: str, against: Sequence[str], metrics: Sequence[str],
            clips: bool = True) -> list[dict]:
    """One row per (metric, scope), metrics outermost: scope ``overall``, each severity name, then
    (when ``clips`` and the results hold ``per_clip``) ``<severity>/clips`` for each severity.

    Each row: ``metric``, ``scope``, ``value`` (the method's), ``best_baseline`` and
    ``baseline_value`` (the best of ``against`` in that cell), ``higher_is_better`` and ``win``
    (strictly better than the best baseline). A clip cell's ``value`` is the number of clips won,
    its ``baseline_value`` the number needed (:func:`clips_needed`), ``best_baseline`` is
    ``"per clip"`` and ``clips`` maps each clip to its own ``value``/``best_baseline``/
    ``baseline_value``/``win``.

    Raises:
        KeyError: a method or metric that is not in ``results`` (the message lists what is).
    """
    known = set(results["overall"])
    missing = [m for m in [method, *against] if m not in known]
    if missing:
        raise KeyError(f"not in the results: {', '.join(missing)}; have: {', '.join(sorted(known))}")
    if not against:
        raise KeyError("no baselines to compare against")
    rows = []
    for metric in metrics:
        if metric not in results["metrics"]:
            raise KeyError(f"unknown metric {metric!r}; have: {', '.join(results['metrics'])}")
        higher = bool(results["metrics"][metric]["higher_is_better"])
        scopes = [("overall", {m: results["overall"][m] for m in [method, *against]})]
        for sev in results["benchmark"]["severities"]:
            scopes.append((sev, {m: results["per_severity"][m][sev] for m in [method, *against]}))
        pick = max if higher else min
        for scope, table in scopes:
            mine = table[method][metric]
            best_name = pick(against, key=lambda m: table[m][metric])
            best = table[best_name][metric]
            win = mine > best if higher else mine < best
            rows.append({"metric": metric, "scope": scope, "value": mine, "best_baseline": best_name,
                         "baseline_value": best, "higher_is_better": higher, "win": win})
        if clips and "per_clip" in results:
            for sev in results["benchmark"]["severities"]:
                table = {m: results["per_clip"][m][sev] for m in [method, *against]}
                detail = {}
                for clip in table[method]:
                    mine = table[method][clip][metric]
                    best_name = pick(against, key=lambda m: table[m][clip][metric])
                    best = table[best_name][clip][metric]
                    detail[clip] = {"value": mine, "best_baseline": best_name, "baseline_value": best,
                                    "win": mine > best if higher else mine < best}
                won, need = sum(d["win"] for d in detail.values()), clips_needed(len(detail))
                rows.append({"metric": metric, "scope": f"{sev}/clips", "value": won, "best_baseline": "per clip",
                             "baseline_value": need, "higher_is_better": True, "win": bool(detail) and won >= need,
                             "clips": detail})
    return rows


def figures(results: Mapping, method: str) -> dict:
    """``{"overall": {metric: value}, severity: {...}}`` of ``method``, rounded to 4 decimals."""
    out = {"overall": {k: round(float(v), 4) for k, v in results["overall"][method].items()}}
    for sev in results["benchmark"]["severities"]:
        out[sev] = {k: round(float(v), 4) for k, v in results["per_severity"][method][sev].items()}
    return out


def update_card(card: Mapping, results: Mapping, method: str, command: str,
                baselines: Sequence[str] = BASELINES) -> dict:
    """A copy of ``card`` with its ``benchmark`` section (and ``benchmark_rank``) set from ``results``.

    Sets ``benchmark.command``, ``manifest_sha256``, ``options``, ``figures`` (the method's),
    ``baselines`` (each baseline's figures), ``rule``, ``goal_cells`` (cell -> WIN/LOSS),
    ``goal_table`` (one row per cell: value, best baseline and its value, WIN/LOSS; clip cells with
    their per-clip figures) and ``goal_cells_won``; other keys of ``benchmark`` (a hand-written
    verdict, ablation figures) are kept. ``benchmark_rank = 1`` is set only when every
    :data:`GOAL_METRICS` cell, clip cells included, is a win, and removed otherwise.

    Raises:
        KeyError: a method, baseline or metric missing from ``results``, or results without
            per-clip figures (the clip cells cannot be judged).
    """
    if "per_clip" not in results:
        raise KeyError("the results have no per-clip figures (per_clip); re-run vqdsr eval")
    rows = compare(results, method, list(baselines), list(GOAL_METRICS))
    bench = dict(card.get("benchmark", {}))
    bench.update({
        "command": command,
        "manifest_sha256": results["benchmark"]["manifest_sha256"],
        "options": results["options"],
        "figures": figures(results, method),
        "baselines": {b: figures(results, b) for b in baselines},
        "rule": (f"default only when {method} beats the best of {', '.join(baselines)} on "
                 f"{', '.join(GOAL_METRICS)}: overall, in every severity's mean, and per severity on at least "
                 "5 of 6 clips (ceil(5 n / 6) of n)"),
        "goal_cells": {f"{r['metric']}/{r['scope']}": "WIN" if r["win"] else "LOSS" for r in rows},
        "goal_table": [_table_row(r) for r in rows],
        "goal_cells_won": f"{sum(r['win'] for r in rows)} of {len(rows)}",
    })
    out = dict(card)
    out["benchmark"] = bench
    if all(r["win"] for r in rows):
        out["benchmark_rank"] = 1
    else:
        out.pop("benchmark_rank", None)
    return out


def _table_row(r: Mapping) -> dict:
    out = {"cell": f"{r['metric']}/{r['scope']}", "value": _r4(r["value"]), "best_baseline": r["best_baseline"],
           "baseline_value": _r4(r["baseline_value"]), "result": "WIN" if r["win"] else "LOSS"}
    if "clips" in r:
        out["clips"] = {c: {"value": _r4(d["value"]), "best_baseline": d["best_baseline"],
                            "baseline_value": _r4(d["baseline_value"]), "result": "WIN" if d["win"] else "LOSS"}
                        for c, d in r["clips"].items()}
    return out


def _r4(v: float) -> float | int:
    return v if isinstance(v, int) else round(float(v), 4)


def write_card(path: str | os.PathLike, card: Mapping) -> None:
    """Rewrite a model card atomically (2-space JSON, UTF-8, trailing newline; the umask's mode)."""
    from ..weights.loading import atomic_write_bytes

    atomic_write_bytes(path, (json.dumps(card, indent=2, ensure_ascii=False) + "\n").encode("utf-8"))
