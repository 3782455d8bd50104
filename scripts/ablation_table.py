#!/usr/bin/env python3
"""The paper's ablation, read off a `vqdsr eval` results.json: VQ degradation vs basic operators only.

    python scripts/ablation_table.py out/eval-abl/results.json \
        --basic abl-basic-150 abl-basic-s8-150 --vq abl-vq-150 abl-vq-s8-150

``--basic`` and ``--vq`` name the checkpoints of the two recipes, paired in order (same seed, so the
same clips, crops and basic-operator draws; only the VQ step differs). Prints a Markdown table to
stdout: per metric (direction from the results file) and scope (overall, then each severity), the
mean of each recipe over its runs and how many seed pairs VQ wins. A direction "holds" in a cell when
VQ wins every pair there. Exit status 0; 2 for bad input.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path


def ablation_rows(results: dict, basic: list[str], vq: list[str], metrics: list[str] | None = None) -> list[dict]:
    """One row per (metric, scope) with the two means, the pairs VQ wins and whether it wins them all."""
    if not basic or len(basic) != len(vq):
        raise ValueError(f"--basic and --vq must name the same number (>= 1) of runs, got {len(basic)} and {len(vq)}")
    known = set(results["overall"])
    missing = [m for m in basic + vq if m not in known]
    if missing:
        raise KeyError(f"not in the results: {', '.join(missing)}; have: {', '.join(sorted(known))}")
    metrics = metrics or list(results["metrics"])
    rows = []
    for metric in metrics:
        if metric not in results["metrics"]:
            raise KeyError(f"unknown metric {metric!r}; have: {', '.join(results['metrics'])}")
        higher = bool(results["metrics"][metric]["higher_is_better"])
        scopes = [("overall", results["overall"])]
        scopes += [(sev, {m: results["per_severity"][m][sev] for m in basic + vq})
                   for sev in results["benchmark"]["severities"]]
        for scope, table in scopes:
            b = [float(table[m][metric]) for m in basic]
            v = [float(table[m][metric]) for m in vq]
            wins = sum((y > x) if higher else (y < x) for x, y in zip(b, v))
            rows.append({"metric": metric, "scope": scope, "higher_is_better": higher,
                         "basic": sum(b) / len(b), "vq": sum(v) / len(v), "vq_wins": wins, "pairs": len(b),
                         "holds": wins == len(b)})
    return rows


def to_markdown(rows: list[dict], labels: dict[str, str]) -> str:
    scopes = list(dict.fromkeys(r["scope"] for r in rows))
    by = {(r["metric"], r["scope"]): r for r in rows}
    lines = ["| metric | " + " | ".join(scopes) + " |", "|---|" + "---|" * len(scopes)]
    for metric in dict.fromkeys(r["metric"] for r in rows):
        cells = []
        for scope in scopes:
            r = by[metric, scope]
            mark = "**VQ**" if r["holds"] else ("basic" if r["vq_wins"] == 0 else "mixed")
            cells.append(f"{r['basic']:.3f} / {r['vq']:.3f} {mark} ({r['vq_wins']}/{r['pairs']})")
        arrow = "↑" if by[metric, scopes[0]]["higher_is_better"] else "↓"
        lines.append(f"| {labels.get(metric, metric)} {arrow} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("results", help="a vqdsr eval results.json")
    ap.add_argument("--basic", nargs="+", required=True, metavar="NAME", help="runs of the basic-operator recipe")
    ap.add_argument("--vq", nargs="+", required=True, metavar="NAME", help="runs of the VQ recipe, same order")
    ap.add_argument("--metrics", nargs="+", metavar="NAME", help="metrics (default: all in the file)")
    args = ap.parse_args(argv)
    try:
        results = json.loads(Path(args.results).read_text())
        rows = ablation_rows(results, args.basic, args.vq, args.metrics)
    except (OSError, ValueError, KeyError) as e:
        print(f"ablation_table: {e}", file=sys.stderr)
        return 2
    labels = {k: v.get("label", k) for k, v in results["metrics"].items()}
    print("Cells: basic mean / VQ mean, who wins, (pairs VQ wins / pairs).")
    print(to_markdown(rows, labels))
    held = [f"{r['metric']} {r['scope']}" for r in rows if r["holds"]]
    print(f"VQ beats basic in every pair in {len(held)} of {len(rows)} cells"
          + (f": {', '.join(held)}" if held else ""))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
