#!/usr/bin/env python3
"""Write a model's benchmark figures into its model card, from a `vqdsr eval` results.json.

    python scripts/card_figures.py out/eval/results.json vqdsr-ft vsvqdsr/models/vqdsr-ft.json \
        --command "vqdsr eval eval_set --out out/eval ..."

Fills ``card["benchmark"]``: the command, the benchmark manifest SHA-256, the eval options, the
method's figures (overall and per severity, every metric) and the same for each baseline, and the
WIN/LOSS cells of scripts/check_wins.py on the goal metrics (SSIMULACRA2, ColorVideoVDP, flicker).
``card["benchmark_rank"] = 1`` (which makes the model the default) is set only when every goal cell
is a win against every baseline, and removed otherwise. Other keys of ``card["benchmark"]`` (a
hand-written verdict, ablation figures) are kept. The card is rewritten atomically.
"""
from __future__ import annotations

import argparse
import importlib.util
import json
import os
import sys
from pathlib import Path

GOAL_METRICS = ("ssimulacra2", "cvvdp", "flicker")
BASELINES = ("realesr-animevideov3", "animesr-v1", "animesr-v2")


def _check_wins():
    spec = importlib.util.spec_from_file_location("check_wins", Path(__file__).resolve().parent / "check_wins.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def figures(results: dict, method: str) -> dict:
    """``{"overall": {metric: value}, severity: {...}}`` rounded to 4 decimals."""
    out = {"overall": {k: round(float(v), 4) for k, v in results["overall"][method].items()}}
    for sev in results["benchmark"]["severities"]:
        out[sev] = {k: round(float(v), 4) for k, v in results["per_severity"][method][sev].items()}
    return out


def update_card(card: dict, results: dict, method: str, command: str,
                baselines: tuple[str, ...] = BASELINES) -> dict:
    """Return ``card`` with its benchmark section (and ``benchmark_rank``) set from ``results``."""
    rows = _check_wins().compare(results, method, list(baselines), list(GOAL_METRICS))
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
    card = dict(card)
    card["benchmark"] = bench
    if all(r["win"] for r in rows):
        card["benchmark_rank"] = 1
    else:
        card.pop("benchmark_rank", None)
    return card


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("results", help="results.json written by `vqdsr eval`")
    ap.add_argument("method", help="the model's method name in the results")
    ap.add_argument("card", help="the model card (.json) to update")
    ap.add_argument("--command", required=True, help="the vqdsr eval command that produced the results")
    args = ap.parse_args(argv)
    try:
        results = json.loads(Path(args.results).read_text(encoding="utf-8"))
        card_path = Path(args.card)
        card = update_card(json.loads(card_path.read_text(encoding="utf-8")), results, args.method, args.command)
    except (OSError, ValueError, KeyError) as e:
        print(f"card_figures: {e}", file=sys.stderr)
        return 2
    from vsvqdsr.weights.loading import atomic_write_bytes

    atomic_write_bytes(card_path, (json.dumps(card, indent=2, ensure_ascii=False) + "\n").encode("utf-8"))
    os.chmod(card_path, 0o644)  # a card ships in the package: world-readable like the weights
    b = card["benchmark"]
    print(f"card_figures: {card_path}: goal cells won {b['goal_cells_won']}; "
          f"{'benchmark_rank 1 (default model)' if 'benchmark_rank' in card else 'no benchmark_rank (not the default)'}",
          file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
