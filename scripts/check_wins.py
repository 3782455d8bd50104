#!/usr/bin/env python3
"""Does a method beat every baseline on the quality benchmark? Reads a `vqdsr eval` results.json.

    python scripts/check_wins.py out/eval/results.json vqdsr-ft \
        --against realesr-animevideov3 animesr-v1 animesr-v2 --metrics ssimulacra2 cvvdp flicker

Prints, per metric, the method's value overall and per severity beside the best baseline's (with the
metric's direction from the results file), a WIN/LOSS verdict per cell, and exits 0 only when every
cell is a win (1 otherwise, 2 for bad input). Used for the model card's figures and the decision to
make a model the default.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path


def compare(results: dict, method: str, against: list[str], metrics: list[str]) -> list[dict]:
    """One row per (metric, scope): scope is ``overall`` or a severity name."""
    known = set(results["overall"])
    missing = [m for m in [method, *against] if m not in known]
    if missing:
        raise KeyError(f"not in the results: {', '.join(missing)}; have: {', '.join(sorted(known))}")
    rows = []
    for metric in metrics:
        if metric not in results["metrics"]:
            raise KeyError(f"unknown metric {metric!r}; have: {', '.join(results['metrics'])}")
        higher = bool(results["metrics"][metric]["higher_is_better"])
        scopes = [("overall", {m: results["overall"][m] for m in [method, *against]})]
        for sev in results["benchmark"]["severities"]:
            scopes.append((sev, {m: results["per_severity"][m][sev] for m in [method, *against]}))
        for scope, table in scopes:
            mine = table[method][metric]
            pick = max if higher else min
            best_name = pick(against, key=lambda m: table[m][metric])
            best = table[best_name][metric]
            win = mine > best if higher else mine < best
            rows.append({"metric": metric, "scope": scope, "value": mine, "best_baseline": best_name,
                         "baseline_value": best, "higher_is_better": higher, "win": win})
    return rows


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("results", help="results.json written by `vqdsr eval`")
    ap.add_argument("method", help="method name in the results (a checkpoint's file stem)")
    ap.add_argument("--against", nargs="+", default=["realesr-animevideov3", "animesr-v1", "animesr-v2"])
    ap.add_argument("--metrics", nargs="+", default=["ssimulacra2", "cvvdp", "flicker"])
    ap.add_argument("--json", help="also write the rows here")
    args = ap.parse_args(argv)
    try:
        results = json.loads(Path(args.results).read_text(encoding="utf-8"))
        rows = compare(results, args.method, args.against, args.metrics)
    except (OSError, ValueError, KeyError) as e:
        print(f"check_wins: {e}", file=sys.stderr)
        return 2
    for r in rows:
        arrow = "higher" if r["higher_is_better"] else "lower"
        print(f"{r['metric']:<12} {r['scope']:<8} {args.method} {r['value']:8.3f}  vs  best baseline "
              f"{r['best_baseline']:<22} {r['baseline_value']:8.3f}  ({arrow} is better)  "
              f"{'WIN' if r['win'] else 'LOSS'}")
    wins = sum(r["win"] for r in rows)
    print(f"{wins} of {len(rows)} cells won")
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=1), encoding="utf-8")
    return 0 if wins == len(rows) else 1


if __name__ == "__main__":
    sys.exit(main())
