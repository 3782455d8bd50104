"""Reports of an evaluation run: Markdown tables, JSON, one bar chart per metric, a crop sheet."""
from __future__ import annotations

import io
import math
from pathlib import Path
from typing import Mapping

import numpy as np

from ..weights.loading import atomic_write_bytes
from .build import read_png
from .dataset import BenchmarkSet
from .runner import write_json

__all__ = ["markdown_table", "markdown_report", "per_clip_tables", "write_reports", "bar_charts", "crop_sheet",
           "pick_crop"]


def _fmt(v: float, key: str) -> str:
    if isinstance(v, str) or v is None:
        return str(v)
    if math.isinf(v):
        return "inf"
    if math.isnan(v):
        return "n/a"
    return f"{v:.4f}" if key == "ssim_y" else f"{v:.2f}"


def _header(metrics: Mapping[str, Mapping]) -> list[str]:
    cols = []
    for m in metrics.values():
        unit = f" ({m['unit']})" if m["unit"] else ""
        cols.append(f"{m['label']}{unit} {'↑' if m['higher_is_better'] else '↓'}")
    return cols


def markdown_table(rows: Mapping[str, Mapping[str, float]], metrics: Mapping[str, Mapping]) -> str:
    """Methods as rows, metrics as columns; the best value of each column is **bold** (ties too)."""
    lines = ["| method | " + " | ".join(_header(metrics)) + " |", "|---|" + "---:|" * len(metrics)]
    best = {}
    for k, m in metrics.items():
        vals = [r[k] for r in rows.values() if isinstance(r.get(k), float) and not math.isnan(r[k])]
        if vals:
            best[k] = max(vals) if m["higher_is_better"] else min(vals)
    for name, r in rows.items():
        cells = []
        for k in metrics:
            s = _fmt(r.get(k, math.nan), k)
            cells.append(f"**{s}**" if k in best and r.get(k) == best[k] else s)
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def markdown_report(res: Mapping) -> str:
    """The whole ``results.md``: overall table, one table per severity, timing, settings."""
    b, o = res["benchmark"], res["options"]
    parts = [
        "# vqdsr eval results", "",
        f"Benchmark `{b['path']}` (manifest sha256 `{b['manifest_sha256'][:16]}`): {len(b['clips'])} clips "
        f"({', '.join(b['clips'])}) x {len(b['severities'])} severities, {b['lr_frames_per_method']} LR frames "
        f"per method, HR {b['hr_size'][0]}x{b['hr_size'][1]}. ↑ higher is better, ↓ lower is better; "
        "best in **bold**. Means over clips (overall: over every clip of every severity).", "",
        f"Settings: NIQE on every frame n with n % {o['niqe_step']} == 0; ColorVideoVDP display `{o['cvvdp_display']}`, "
        f"{'all frames' if not o['cvvdp_frames'] else 'first %d frames' % o['cvvdp_frames']}, "
        f"{'full frame' if not o['cvvdp_crop'] else 'centre crop %dx%d' % tuple(o['cvvdp_crop'])}; "
        "flicker = mean |ΔSR - ΔGT| between consecutive frames on Y (0-255).", "",
        "## Overall", "", markdown_table(res["overall"], res["metrics"]), ""]
    for s in b["severities"]:
        rows = {m: v[s] for m, v in res["per_severity"].items()}
        parts += [f"## Severity: {s}", "", markdown_table(rows, res["metrics"]), ""]
    parts += per_clip_tables(res)
    parts += ["## Time", "", "| method | SR s/frame | SR s total | metrics s | from cache |", "|---|---:|---:|---:|---|"]
    for m in res["methods"]:
        parts.append(f"| {m['name']} | {m['sr_seconds_per_frame']:.3f} | {m['sr_seconds']:.1f} | "
                     f"{m['metric_seconds']:.1f} | {'yes' if m['from_cache'] else 'no'} |")
    r = res["run"]
    parts += ["", f"This run: {r['wall_seconds']:.1f} s wall, {r['computed_sr_clips']} SR clips and "
              f"{r['computed_metric_clips']} metric clips computed (the rest came from the cache).", ""]
    return "\n".join(parts)


def per_clip_tables(res: Mapping) -> list[str]:
    """``results.md`` lines: per severity and metric, methods x clips (best of each clip in **bold**)."""
    if "per_clip" not in res:
        return []
    parts = ["## Per clip", "", "Every clip's value (the tables above are their means).", ""]
    for s in res["benchmark"]["severities"]:
        for key, m in res["metrics"].items():
            rows = {meth: {c: v[key] for c, v in sev[s].items()} for meth, sev in res["per_clip"].items()}
            clips = list(next(iter(rows.values())))
            arrow = "↑" if m["higher_is_better"] else "↓"
            unit = f" ({m['unit']})" if m["unit"] else ""
            lines = [f"### {s}: {m['label']}{unit} {arrow}", "", "| method | " + " | ".join(clips) + " |",
                     "|---|" + "---:|" * len(clips)]
            best = {}
            for c in clips:
                vals = [r[c] for r in rows.values() if isinstance(r[c], float) and not math.isnan(r[c])]
                if vals:
                    best[c] = max(vals) if m["higher_is_better"] else min(vals)
            for meth, r in rows.items():
                cells = [f"**{_fmt(r[c], key)}**" if c in best and r[c] == best[c] else _fmt(r[c], key) for c in clips]
                lines.append(f"| {meth} | " + " | ".join(cells) + " |")
            parts += lines + [""]
    return parts


def _png_bytes(fig) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100)
    return buf.getvalue()


def bar_charts(res: Mapping, folder: Path) -> list[Path]:
    """One PNG per metric in ``folder``: grouped bars (severities + overall) per method."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    groups = list(res["benchmark"]["severities"]) + ["overall"]
    methods = list(res["overall"])
    paths = []
    for key, meta in res["metrics"].items():
        fig, ax = plt.subplots(figsize=(max(6.0, 0.45 * len(groups) * max(1, len(methods)) + 3), 4))
        width = 0.8 / max(1, len(methods))
        finite = []
        for j, m in enumerate(methods):
            vals = [res["per_severity"][m][g][key] if g != "overall" else res["overall"][m][key] for g in groups]
            vals = [v if isinstance(v, float) and math.isfinite(v) else np.nan for v in vals]
            finite += [v for v in vals if not np.isnan(v)]
            ax.bar(np.arange(len(groups)) + (j - (len(methods) - 1) / 2) * width, vals, width, label=m)
        if finite:  # zoom on the values: the differences matter, not the distance from 0
            lo, hi = min(finite), max(finite)
            pad = 0.15 * (hi - lo) + 1e-6 * max(1.0, abs(hi))
            ax.set_ylim(lo - pad, hi + pad)
        ax.set_xticks(np.arange(len(groups)), groups)
        unit = f" ({meta['unit']})" if meta["unit"] else ""
        ax.set_ylabel(meta["label"] + unit)
        ax.set_title(f"{meta['label']} ({'higher' if meta['higher_is_better'] else 'lower'} is better; "
                     "axis not from 0)")
        ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0))
        fig.tight_layout()
        p = folder / f"{key}.png"
        atomic_write_bytes(p, _png_bytes(fig))
        plt.close(fig)
        paths.append(p)
    return paths


def pick_crop(gt: np.ndarray, size: int) -> tuple[int, int]:
    """Top-left ``(y, x)`` of the ``size`` x ``size`` window with the most gradient energy in ``gt``
    (``H,W,3`` uint8), searched on a grid of ``size // 2``."""
    y = gt.astype(np.float32).mean(-1)
    g = np.abs(np.diff(y, axis=0))[:, :-1] + np.abs(np.diff(y, axis=1))[:-1]
    best, pos = -1.0, (0, 0)
    h, w = g.shape
    step = max(1, size // 2)
    for y0 in range(0, max(1, h - size + 1), step):
        for x0 in range(0, max(1, w - size + 1), step):
            e = float(g[y0:y0 + size, x0:x0 + size].sum())
            if e > best:
                best, pos = e, (y0, x0)
    return pos


def crop_sheet(bset: BenchmarkSet, sr_folders: Mapping[str, Mapping[str, Path]], path: Path,
               clip: str | None = None, frame: int | None = None, size: int = 160) -> dict:
    """A labelled PNG: one row per severity, columns LR (nearest x4), GT, then every method, all the
    same ``size`` x ``size`` HR crop of the same frame. ``sr_folders[method][severity]`` is the
    folder of that method's frames of ``clip``. Returns what was shown (clip, frame, crop)."""
    from PIL import Image, ImageDraw

    clip = clip or bset.clip_names[0]
    n = int(bset.manifest["clips"][clip]["frames"])
    frame = n // 2 if frame is None else frame
    gt = read_png(bset.root / "gt" / clip / f"{frame:04d}.png")
    size = min(size, gt.shape[0], gt.shape[1])
    y0, x0 = pick_crop(gt, size)
    cols = ["LR (nearest)", "GT", *sr_folders]
    label_h, left_w, pad = 18, 70, 4
    sheet = Image.new("RGB", (left_w + len(cols) * (size + pad), label_h + len(bset.severities) * (size + pad)),
                      "white")
    draw = ImageDraw.Draw(sheet)
    for j, c in enumerate(cols):
        draw.text((left_w + j * (size + pad) + 2, 3), c[: size // 6], fill="black")
    for i, sev in enumerate(bset.severities):
        lr = read_png(bset.root / "lr" / sev / clip / f"{frame:04d}.png")
        tiles = [np.repeat(np.repeat(lr, 4, 0), 4, 1), gt]
        tiles += [read_png(sr_folders[m][sev] / f"{frame:04d}.png") for m in sr_folders]
        top = label_h + i * (size + pad)
        draw.text((4, top + size // 2 - 6), sev, fill="black")
        for j, t in enumerate(tiles):
            sheet.paste(Image.fromarray(np.ascontiguousarray(t[y0:y0 + size, x0:x0 + size])),
                        (left_w + j * (size + pad), top))
    buf = io.BytesIO()
    sheet.save(buf, format="PNG")
    atomic_write_bytes(path, buf.getvalue())
    return {"clip": clip, "frame": frame, "crop": [y0, x0, size, size]}


def write_reports(res: dict, bset: BenchmarkSet, sr_folders: Mapping[str, Mapping[str, Path]],
                  out: Path, crop_clip: str | None = None) -> dict[str, Path]:
    """Write ``results.md``, ``results.json``, ``charts/*.png`` and ``crops.png`` under ``out``."""
    out = Path(out)
    paths = {"crops": out / "crops.png", "markdown": out / "results.md", "json": out / "results.json"}
    res["crop_sheet"] = crop_sheet(bset, sr_folders, paths["crops"], crop_clip)
    charts = bar_charts(res, out / "charts")
    atomic_write_bytes(paths["markdown"], markdown_report(res).encode())
    write_json(paths["json"], res)
    return {**paths, **{f"chart:{p.stem}": p for p in charts}}
