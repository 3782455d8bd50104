#!/usr/bin/env python3
"""What does a degrader make of clean frames, beside the real damage it was trained to imitate?

    python scripts/adapt_sheet.py runs/adapt-exp/show --degraders degrade-lite runs/adapt-exp/adapt/degrader2/degrader.safetensors \
        --out docs/img/adapt-show.png

For a show made by ``scripts/make_show.py`` (``SHOW/lq/*.mkv`` damaged at 1/4 size, ``SHOW/clean/*.mkv``
clean at full size): per clip, frame ``--frame`` of the clean clip scaled x1/4 (area: the clean LR),
the real damaged frame, and each degrader's output from the clean LR at k = 1 (its reconstruction
floor) and at the ranks k2 = 5, k3 = 25 (a typical stochastic top-k draw of the released recipe). Prints
per degrader and column the PSNR (dB, RGB, 0-1) against the clean LR, and for the real damage the
same: a degrader that imitates the damage should sit near the real frame's figure, not far below it.
Writes a labelled side-by-side PNG (each crop at 2x, nearest neighbour). Progress and figures go to
stderr; nothing to stdout.
"""
from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

import numpy as np


def _frame(path: Path, index: int) -> np.ndarray:
    probe = subprocess.run(["ffprobe", "-v", "error", "-select_streams", "v:0", "-show_entries",
                            "stream=width,height", "-of", "csv=p=0", str(path)], capture_output=True, text=True, check=True)
    w, h = (int(v) for v in probe.stdout.strip().split(",")[:2])
    raw = subprocess.run(["ffmpeg", "-nostdin", "-v", "error", "-i", str(path), "-vf", f"select=eq(n\\,{index})",
                          "-frames:v", "1", "-f", "rawvideo", "-pix_fmt", "rgb24", "-"],
                         capture_output=True, check=True).stdout
    return np.frombuffer(raw, np.uint8).reshape(h, w, 3)


def _psnr(a: np.ndarray, b: np.ndarray) -> float:
    """PSNR (dB) of two uint8 RGB frames, by the package's RGB PSNR."""
    from vsvqdsr.evaluation.precision_gate import psnr_rgb

    return psnr_rgb(a / 255.0, b / 255.0)


def main(argv: list[str] | None = None) -> int:
    import cv2
    import torch

    from vsvqdsr.weights.degrader import load_degrader

    ap = argparse.ArgumentParser(description="degrader outputs beside the real damage of a made show")
    ap.add_argument("show", help="a folder written by scripts/make_show.py")
    ap.add_argument("--degraders", nargs="+", required=True, help="degrader names or files")
    ap.add_argument("--labels", nargs="+", help="one label per degrader (default: the names)")
    ap.add_argument("--out", required=True, help="PNG to write")
    ap.add_argument("--clips", type=int, default=3, help="clips shown (default 3, sorted by name)")
    ap.add_argument("--frame", type=int, default=5, help="frame index (default 5)")
    ap.add_argument("--crop", type=int, default=96, help="crop edge in LR pixels (default 96)")
    a = ap.parse_args(argv)
    show = Path(a.show)
    lq_files = sorted((show / "lq").glob("*.mkv"))[: a.clips]
    if not lq_files:
        print(f"adapt_sheet: no {show}/lq/*.mkv (make one with scripts/make_show.py)", file=sys.stderr)
        return 2
    labels = a.labels or [Path(d).stem if d.endswith(".safetensors") else d for d in a.degraders]
    if len(labels) != len(a.degraders):
        print("adapt_sheet: give one --labels entry per degrader", file=sys.stderr)
        return 2
    degs = [load_degrader(d).eval() for d in a.degraders]
    rows, names = [], ["clean LR (area x1/4)", "real damage"]
    for d in labels:
        names += [f"{d} k=1", f"{d} k=1,5,25"]
    scores: dict[str, list[float]] = {n: [] for n in names[1:]}
    for f in lq_files:
        lq = _frame(f, a.frame)
        hr = _frame(show / "clean" / f.name, a.frame)
        clean = cv2.resize(hr, (lq.shape[1], lq.shape[0]), interpolation=cv2.INTER_AREA)
        x = torch.from_numpy(clean).permute(2, 0, 1)[None].float() / 255.0
        cols = [clean, lq]
        scores["real damage"].append(_psnr(lq, clean))
        for d, lab in zip(degs, labels):
            for ks, name in (((1, 1, 1), f"{lab} k=1"), ((1, 5, 25), f"{lab} k=1,5,25")):
                with torch.no_grad():
                    y = d.degrade(x, *(torch.tensor([k]) for k in ks))
                out = np.clip(np.rint(y[0].permute(1, 2, 0).numpy() * 255), 0, 255).astype(np.uint8)
                scores[name].append(_psnr(out, clean))
                cols.append(out)
        h, w = clean.shape[:2]
        c = min(a.crop, h, w)
        top, left = (h - c) // 2, (w - c) // 2
        rows.append([col[top:top + c, left:left + c] for col in cols])
        print(f"adapt_sheet: {f.stem}: " + ", ".join(f"{n} {s[-1]:.2f} dB" for n, s in scores.items()), file=sys.stderr)
    for n, s in scores.items():
        print(f"adapt_sheet: mean PSNR vs clean LR, {n}: {np.mean(s):.2f} dB", file=sys.stderr)

    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(len(rows), len(names), figsize=(1.9 * len(names), 2.0 * len(rows)), squeeze=False)
    for r, row in enumerate(rows):
        for c, img in enumerate(row):
            ax = axes[r][c]
            ax.imshow(np.repeat(np.repeat(img, 2, 0), 2, 1), interpolation="nearest")
            ax.set_xticks([]), ax.set_yticks([])
            if r == 0:
                ax.set_title(names[c], fontsize=7)
            if c == 0:
                ax.set_ylabel(lq_files[r].stem, fontsize=7)
            if c > 0:
                ax.set_xlabel(f"{scores[names[c]][r]:.1f} dB", fontsize=7)
    fig.tight_layout()
    Path(a.out).parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(a.out, dpi=110)
    print(f"adapt_sheet: wrote {a.out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
