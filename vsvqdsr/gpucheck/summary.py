"""``summary.json`` and ``summary.md`` of a GPU check run.

The run result is one JSON object::

    {"format": 1, "mode": "gpu" | "dry-run", "started_utc": ..., "seconds": ..., "machine": {...},
     "steps": [{"name", "title", "status": "pass" | "fail" | "skip", "reason", "seconds",
                "checks": [{"name", "ok", "detail"}], "figures": {key: value},
                "tables": [{"title", "columns": [...], "rows": [[...], ...]}]}, ...]}

:func:`markdown` renders it without knowing what the steps measure: a status table, the failed
checks, then each step's figures and tables.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

__all__ = ["STATUSES", "counts", "fmt", "markdown", "write"]

STATUSES = ("pass", "fail", "skip")


def counts(result: dict) -> dict[str, int]:
    out = {s: 0 for s in STATUSES}
    for step in result.get("steps", []):
        st = step.get("status")
        out[st if st in out else "fail"] += 1
    return out


def fmt(v: Any) -> str:
    """A value as a table cell: floats to a readable precision, None as ``-``, no ``|``."""
    if v is None:
        return "-"
    if isinstance(v, bool):
        return "yes" if v else "no"
    if isinstance(v, float):
        if v != v:
            return "nan"
        a = abs(v)
        if a == float("inf"):
            return "inf" if v > 0 else "-inf"
        if a >= 1000:
            return f"{v:.0f}"
        if a >= 100:
            return f"{v:.1f}"
        if a >= 1 or a == 0:
            return f"{v:.2f}"
        return f"{v:.3g}"
    if isinstance(v, (list, tuple)):
        return ", ".join(fmt(x) for x in v)
    return str(v).replace("|", "/").replace("\n", " ")


def _cell(text: str, limit: int = 160) -> str:
    text = fmt(text)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def markdown(result: dict) -> str:
    steps = result.get("steps", [])
    c = counts(result)
    mode = result.get("mode", "?")
    lines = [f"# vsvqdsr GPU check ({mode})", ""]
    machine = result.get("machine") or {}
    if machine:
        lines.append("; ".join(f"{k}: {fmt(v)}" for k, v in machine.items()))
        lines.append("")
    when = result.get("started_utc", "?")
    lines.append(f"{when}, {fmt(result.get('seconds'))} s: {c['pass']} passed, {c['fail']} failed, "
                 f"{c['skip']} skipped.")
    lines += ["", "| step | status | s | what / why |", "|---|---|---:|---|"]
    for s in steps:
        st = s.get("status", "fail")
        what = s.get("title", "")
        if st != "pass" and s.get("reason"):
            what = f"{what}: {s['reason']}" if what else s["reason"]
        lines.append(f"| {s.get('name', '?')} | {st.upper() if st == 'fail' else st} | "
                     f"{fmt(s.get('seconds'))} | {_cell(what, 240)} |")
    failed = [(s, ch) for s in steps for ch in s.get("checks", []) if not ch.get("ok")]
    if failed:
        lines += ["", "## Failed checks", ""]
        for s, ch in failed:
            detail = f": {_cell(ch.get('detail', ''), 300)}" if ch.get("detail") else ""
            lines.append(f"- {s.get('name')}: {fmt(ch.get('name'))}{detail}")
    for s in steps:
        figs, tables = s.get("figures") or {}, s.get("tables") or []
        if not figs and not tables:
            continue
        lines += ["", f"## {s.get('name')}", ""]
        if figs:
            lines.append("; ".join(f"{k}: {_cell(v)}" for k, v in figs.items()))
        for t in tables:
            cols = t.get("columns", [])
            if t.get("title"):
                lines += ["", f"{t['title']}:"]
            lines += ["", "| " + " | ".join(fmt(x) for x in cols) + " |", "|" + "---|" * len(cols)]
            for row in t.get("rows", []):
                lines.append("| " + " | ".join(_cell(x) for x in row) + " |")
    return "\n".join(lines) + "\n"


def write(result: dict, outdir: Path) -> str:
    """Write ``summary.json`` and ``summary.md`` into ``outdir``; return the Markdown."""
    outdir.mkdir(parents=True, exist_ok=True)
    result = dict(result, counts=counts(result))
    (outdir / "summary.json").write_text(json.dumps(result, indent=1, sort_keys=False) + "\n")
    md = markdown(result)
    (outdir / "summary.md").write_text(md)
    return md
