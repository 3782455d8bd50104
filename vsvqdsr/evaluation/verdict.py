"""The benchmark verdict: does a method beat every baseline, and which model is the default.

:func:`compare` puts a method beside the best baseline per metric, overall and per severity, and
marks each cell WIN or LOSS (the metric's direction comes from the results file). :func:`update_card`
writes a model's figures and the goal cells into its model card and sets ``benchmark_rank = 1`` (the
registry's default-model marker) only when every goal cell is a win against every baseline.
``vqdsr eval verdict`` and ``vqdsr eval card`` are the command-line faces of these two functions.
"""
from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Mapping, Sequence

__all__ = ["GOAL_METRICS", "BASELINES", "compare", "figures", "update_card", "read_results", "write_card"]

#: The metrics a default model must win: SSIMULACRA2, ColorVideoVDP and temporal flicker.
GOAL_METRICS: tuple[str, ...] = ("ssimulacra2", "cvvdp", "flicker")
#: The baselines a default model must beat (the animation VSR/SR models of the comparison).
BASELINES: tuple[str, ...] = ("realesr-animevideov3", "animesr-v1", "animesr-v2")


def read_results(path: str | os.PathLike) -> dict:
    """A ``vqdsr eval`` ``results.json`` (raises OSError or ValueError)."""
    return json.loads(Path(path).read_text(encoding="utf-8"))


def compare(results: Mapping, method: str, against: Sequence[str], metrics: Sequence[str]) -> list[dict]:
    """One row per (metric, scope), scope ``overall`` or a severity name, metrics outermost.

    Each row: ``metric``, ``scope``, ``value`` (the method's), ``best_baseline`` and
    ``baseline_value`` (the best of ``against`` in that cell), ``higher_is_better`` and ``win``
    (strictly better than the best baseline).

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
    ``baselines`` (each baseline's figures), ``goal_cells`` and ``goal_cells_won``; other keys of
    ``benchmark`` (a hand-written verdict, ablation figures) are kept. ``benchmark_rank = 1`` is set
    only when every :data:`GOAL_METRICS` cell is a win, and removed otherwise.
    """
    rows = compare(results, method, list(baselines), list(GOAL_METRICS))
    bench = dict(card.get("benchmark", {}))
    bench.update({
        "command": command,
        "manifest_sha256": results["benchmark"]["manifest_sha256"],
        "options": results["options"],
        "figures": figures(results, method),
        "baselines": {b: figures(results, b) for b in baselines},
        "goal_cells": {f"{r['metric']}/{r['scope']}": "WIN" if r["win"] else "LOSS" for r in rows},
        "goal_cells_won": f"{sum(r['win'] for r in rows)} of {len(rows)}",
    })
    out = dict(card)
    out["benchmark"] = bench
    if all(r["win"] for r in rows):
        out["benchmark_rank"] = 1
    else:
        out.pop("benchmark_rank", None)
    return out


def write_card(path: str | os.PathLike, card: Mapping) -> None:
    """Rewrite a model card atomically (2-space JSON, UTF-8, trailing newline; the umask's mode)."""
    from ..weights.loading import atomic_write_bytes

    atomic_write_bytes(path, (json.dumps(card, indent=2, ensure_ascii=False) + "\n").encode("utf-8"))
