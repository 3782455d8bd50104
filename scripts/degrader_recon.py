#!/usr/bin/env python3
"""How faithfully does a VQ degradation model pass *clean* LR frames through? (the degrader's floor)

    python scripts/degrader_recon.py degrade-lite runs/deg2/degrader.safetensors --clips data/train/clean

For each model: PSNR (dB, RGB, 0-1) of ``degrade(x)`` against ``x`` on clean LR frames (frame 5 of the
first N clips, bicubic 960x540 -> 240x136, as VSR stage 2 feeds it), at k = 1 on whole frames and on
fixed 32x32 tiles (the LR patch size of scripts/train_own_weights.sh), and at top-k ranks drawn as the
released recipe does (k2 ~ U{1..10}, k3 ~ U{1..50}, seeded) on the same tiles. A degrader that
reconstructs clean frames badly at k = 1 turns training inputs into something no real source
looks like; that is the first thing to check before a VQ-vs-basic ablation.
``--damage EVAL_SET`` also prints, per severity of a benchmark set, the PSNR of its LR frames against
an antialiased bicubic x1/4 of their GT: how much real damage there is to emulate. A degrader whose
floor at k = 1 lies far below that draws its own reconstruction error, not codec damage.
Prints one line per model to stdout (this is a script, not a filter). ``--sheet FILE`` also writes a
side-by-side PNG: per row one clean LR crop (clips 1, 2 and 7), then for each model its output at
k = 1 and at k2 = 5, k3 = 25, then with ``--real`` the same frame after each real lossy chain; shown at
2x, nearest neighbour.
"""
from __future__ import annotations

import argparse
import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import torch


CHAINS = ("mpeg2i", "mpeg4", "h264x2", "analog")


def real_lq_frames(lq_dir: Path, clips: Path, n: int, chain: str) -> torch.Tensor:
    """``n,3,136,240`` in [0, 1]: frame 5 of the same clips as :func:`clean_lr_frames` after one real
    lossy chain at LR size (``lq_dir/<chain>_<clip>/00006.png``, ``make_degrade_data.sh`` with
    ``LR_SCALE=1``). Raises ``FileNotFoundError`` naming the first missing frame."""
    from PIL import Image

    frames = []
    for p in sorted(clips.glob("*.mkv"))[:n]:
        f = lq_dir / f"{chain}_{p.stem}" / "00006.png"
        if not f.is_file():
            raise FileNotFoundError(f"{f} is missing (make it with LR_SCALE=1 scripts/make_degrade_data.sh)")
        im = Image.open(f).convert("RGB")
        if im.size != (240, 136):
            im = im.resize((240, 136), Image.BICUBIC)
        frames.append(np.asarray(im))
    return torch.from_numpy(np.stack(frames)).permute(0, 3, 1, 2).float() / 255


def clean_lr_frames(clips: Path, n: int) -> torch.Tensor:
    """``n,3,136,240`` float in [0, 1]: frame 5 of each of the first ``n`` clips, bicubic x1/4."""
    frames = []
    for p in sorted(clips.glob("*.mkv"))[:n]:
        raw = subprocess.run(["ffmpeg", "-loglevel", "error", "-i", str(p), "-vf",
                              "select=eq(n\\,5),scale=240:136:flags=bicubic", "-frames:v", "1", "-f", "rawvideo",
                              "-pix_fmt", "rgb24", "-"], capture_output=True, check=True).stdout
        frames.append(np.frombuffer(raw, np.uint8).reshape(136, 240, 3))
    if not frames:
        raise SystemExit(f"degrader_recon: no .mkv clips under {clips}")
    return torch.from_numpy(np.stack(frames)).permute(0, 3, 1, 2).float() / 255


def psnr(a: torch.Tensor, b: torch.Tensor) -> float:
    return float(np.mean([10 * math.log10(1 / max(float(((u - v) ** 2).mean()), 1e-10)) for u, v in zip(a, b)]))


def benchmark_damage(root: Path) -> dict[str, float]:
    """Per severity: mean per-frame PSNR (dB, RGB) of a benchmark set's LR frames against an
    antialiased bicubic x1/4 downscale of their GT (the clean LR the degradation started from)."""
    import torch.nn.functional as F

    from vsvqdsr.evaluation.dataset import load_set

    bset = load_set(root)
    out = {}
    for sev in bset.severities:
        vals = []
        for c in bset.clips:
            if c.severity != sev:
                continue
            lr = torch.from_numpy(c.load_lr()).permute(0, 3, 1, 2).float() / 255
            gt = torch.from_numpy(c.load_gt()).permute(0, 3, 1, 2).float() / 255
            ref = F.interpolate(gt, size=lr.shape[-2:], mode="bicubic", antialias=True).clamp(0, 1)
            vals.append(psnr(lr, ref))
        out[sev] = float(np.mean(vals))
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("models", nargs="*", help="degrader names or files")
    ap.add_argument("--damage", metavar="EVAL_SET", help="also print a benchmark set's LR damage per severity")
    ap.add_argument("--clips", default="data/train/clean", help="folder of clean .mkv clips")
    ap.add_argument("--n", type=int, default=8, help="clips used")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--sheet", help="also write a comparison PNG here")
    ap.add_argument("--real", metavar="LQ_DIR", help="LR-size real-chain frames of the same clips (OUT/lq_lr of "
                    "LR_SCALE=1 scripts/make_degrade_data.sh): print their PSNR against the clean LR frames and "
                    "add them to the sheet, one column per chain")
    args = ap.parse_args(argv)
    if not args.models and not args.damage and not args.real:
        ap.error("give at least one degrader, --damage EVAL_SET or --real LQ_DIR")
    if args.damage:
        try:
            dmg = benchmark_damage(Path(args.damage))
        except (OSError, ValueError) as e:
            print(f"degrader_recon: --damage: {e}", file=sys.stderr)
            return 2
        print("benchmark LR damage (PSNR of LR vs clean LR): "
              + ", ".join(f"{sev} {v:.2f} dB" for sev, v in dmg.items()))
        if not args.models and not args.real:
            return 0
    from vsvqdsr.weights.degrader import load_degrader

    torch.set_num_threads(1)
    x = clean_lr_frames(Path(args.clips), args.n)
    tiles = x[:, :, 40:72, 80:112]
    one = torch.ones(len(x), dtype=torch.int64)
    rng = np.random.default_rng(args.seed)
    k2 = torch.tensor(rng.integers(1, 11, len(x)))
    k3 = torch.tensor(rng.integers(1, 51, len(x)))
    sheet_cols = []
    real_cols = []
    if args.real:
        vals = []
        for chain in CHAINS:
            try:
                r = real_lq_frames(Path(args.real), Path(args.clips), args.n, chain)
            except FileNotFoundError as e:
                print(f"degrader_recon: --real: {e}", file=sys.stderr)
                return 2
            vals.append(f"{chain} {psnr(r, x):.2f} dB")
            real_cols.append(r)
        print(f"real chains at LR size (PSNR vs clean LR, {len(x)} frames): " + ", ".join(vals))
    for m in args.models:
        try:
            net = load_degrader(m).eval()
        except Exception as e:  # a bad name or file: say which
            print(f"degrader_recon: {m}: {e}", file=sys.stderr)
            return 2
        with torch.no_grad():
            full = psnr(net.degrade(x, one, one, one), x)
            t1 = psnr(net.degrade(tiles, one, one, one), tiles)
            tk = psnr(net.degrade(tiles, one, k2, k3), tiles)
            if args.sheet:
                sel = x[[0, 1, 6]] if len(x) > 6 else x[:3]
                o = torch.ones(len(sel), dtype=torch.int64)
                sheet_cols.append([net.degrade(sel, o, o, o), net.degrade(sel, o, 5 * o, 25 * o)])
        print(f"{m}: k=1 full frames {full:.2f} dB, k=1 32x32 tiles {t1:.2f} dB, sampled k on tiles {tk:.2f} dB "
              f"({len(x)} clean LR frames)")
    if args.sheet:
        from PIL import Image

        sel = x[[0, 1, 6]] if len(x) > 6 else x[:3]
        pick = [0, 1, 6] if len(x) > 6 else list(range(min(3, len(x))))
        cols = [sel] + [c for pair in sheet_cols for c in pair] + [r[pick] for r in real_cols]
        rows = [torch.cat([c[i][:, 20:100, 40:160] for c in cols], 2) for i in range(len(sel))]
        im = (torch.cat(rows, 1).clamp(0, 1).permute(1, 2, 0).numpy() * 255).round().astype(np.uint8)
        Image.fromarray(im).resize((im.shape[1] * 2, im.shape[0] * 2), Image.NEAREST).save(args.sheet)
        print(f"degrader_recon: wrote {args.sheet}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
