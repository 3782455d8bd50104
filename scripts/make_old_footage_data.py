#!/usr/bin/env python3
"""Old-footage LQ training material: the damage families of the benchmark's old-film and
old-analogue severities, with every parameter drawn per sample, over clean *training* clips.

usage: python scripts/make_old_footage_data.py CLEAN [CLEAN ...] --out OUT [--samples 2] [--frames 12]
           [--crop 256] [--family film|analogue|both] [--seed 0] [--force]

Each clean clip (a folder of frames or a video, found by ``vsvqdsr.training.data.find_sources``,
which refuses any path that is, is inside or contains the benchmark set) gives ``--samples`` random
square crops of ``--frames`` consecutive frames; each goes through
``vsvqdsr.training.degradations.old_footage_clip`` (film: optical blur and grain before the
downscale, chroma bleed, 2-3 generations of MPEG-4 part 2 / MPEG-2 / x264 in random order;
analogue: tape luma ringing, chroma loss, line jitter, tape noise, MPEG-2 then x264) and is written
as LR-size PNG frames: ``OUT/lq/<family>_<clip>_<k>/00000.png ...`` (LQ frames for degrader
training, at the pixel density of the VSR model's input; ``vqdsr train-degrader --data OUT/lq``).
``OUT/chains.json`` records every drawn chain. ``scripts/make_degrade_data.sh`` runs this with
``OLD=1`` over its clean clips. Reproducible for a given ``--seed`` and inputs.

Errors: one line on stderr, exit status 2. Progress goes to stderr; nothing to stdout.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np


def _fail(msg: str) -> int:
    print(f"make_old_footage_data: {msg}", file=sys.stderr)
    return 2


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description="old-footage LQ training frames from clean training clips")
    ap.add_argument("clean", nargs="+", help="clean training clips (frame folders, videos, or folders of them)")
    ap.add_argument("--out", required=True, help="output folder (OUT/lq/..., OUT/chains.json)")
    ap.add_argument("--samples", type=int, default=2, help="crops per clip (default 2)")
    ap.add_argument("--frames", type=int, default=12, help="consecutive frames per crop (default 12)")
    ap.add_argument("--crop", type=int, default=256, help="HR crop size, a multiple of 8 (default 256 -> LR 64)")
    ap.add_argument("--family", choices=("film", "analogue", "both"), default="both",
                    help="damage family (default both: alternating, film first)")
    ap.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    ap.add_argument("--force", action="store_true", help="write into an existing, non-empty OUT")
    a = ap.parse_args(argv)
    if a.samples < 1 or a.frames < 1:
        return _fail(f"--samples and --frames must be >= 1; got {a.samples}, {a.frames}")
    if a.crop < 16 or a.crop % 8:
        return _fail(f"--crop must be a multiple of 8 and >= 16; got {a.crop}")

    import cv2

    from vsvqdsr.provenance import check_not_benchmark
    from vsvqdsr.training.data import find_sources
    from vsvqdsr.training.degradations import old_footage_clip

    out = Path(a.out)
    try:
        check_not_benchmark([out], "make_old_footage_data")  # not in (or holding) the benchmark set
        sources = find_sources(a.clean, min_frames=a.frames)
    except ValueError as e:
        return _fail(str(e).splitlines()[0])
    if not sources:
        return _fail(f"no clips with >= {a.frames} frames under {', '.join(a.clean)}")
    if out.is_dir() and any(out.iterdir()) and not a.force:
        return _fail(f"{out} exists and is not empty; pass --force to write into it")
    rng = np.random.default_rng(a.seed)
    chains = []
    n = 0
    for src in sources:
        size = min(a.crop, src.height - src.height % 8, src.width - src.width % 8)
        if size < 16:
            print(f"make_old_footage_data: {src.name}: {src.width}x{src.height} too small, skipped", file=sys.stderr)
            continue
        for k in range(a.samples):
            fam = a.family if a.family != "both" else ("film", "analogue")[n % 2]
            start = int(rng.integers(0, src.num_frames - a.frames + 1))
            top = int(rng.integers(0, src.height - size + 1))
            left = int(rng.integers(0, src.width - size + 1))
            hr = src.read(list(range(start, start + a.frames)), top, left, size)
            lr, rec = old_footage_clip(hr, rng, fam)
            name = f"{fam}_{src.name}_{k}"
            folder = out / "lq" / name
            folder.mkdir(parents=True, exist_ok=True)
            for i, f in enumerate(np.clip(np.rint(lr * 255.0), 0, 255).astype(np.uint8)):
                cv2.imwrite(str(folder / f"{i:05d}.png"), np.ascontiguousarray(f[..., ::-1]))
            chains.append({"folder": f"lq/{name}", "source": src.name, "frames": [start, start + a.frames],
                           "crop": [top, left, size], "family": rec.family, "resize": rec.resize, "ok": rec.ok,
                           "steps": [s.describe() if hasattr(s, "describe") else f"{s.codec} quality {s.quality:g}"
                                     for s in rec.steps]})
            n += 1
            print(f"make_old_footage_data: {name} ({len(lr)} frames {lr.shape[2]}x{lr.shape[1]})", file=sys.stderr)
    (out / "chains.json").write_text(json.dumps({"seed": a.seed, "samples": chains}, indent=1) + "\n")
    print(f"make_old_footage_data: {n} LQ clips under {out / 'lq'}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
