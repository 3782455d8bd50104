"""Seam error of ``Upscale``'s tiling: a whole scene upscaled tiled and untiled, compared per frame.

Reads the bundled sample (or ``--src``), optionally resizes it, finds the first scene exactly as
``Upscale`` does (the frames whose ``VQDSR_ChainStart`` is the first frame's), renders that scene once
with ``tiles=1`` and once with ``--tiles``, and prints for every frame the max and mean absolute
difference in 8-bit code values (RGB, x255, unclamped) and the PSNR (RGB clamped to [0, 1], peak 1;
``inf`` when identical). Errors growing along the scene would be drift through the hidden state.

    python scripts/tile_seams.py --tiles 3x2
    python scripts/tile_seams.py --size 640x360 --tiles 4x3 --engine torch

Figures depend on the CPU and engine: the header names them.
"""
from __future__ import annotations

import argparse
import math
import re
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from scripts.upscale_memory import cpu_line  # noqa: E402


def _arr(frame) -> np.ndarray:
    return np.stack([np.asarray(frame[p]) for p in range(3)]).astype(np.float64)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--src", default=str(ROOT / "examples" / "sample" / "sample.mkv"))
    p.add_argument("--size", default=None, help="resize the input to WxH first")
    p.add_argument("--tiles", default="3x2", help="tiles AxD (or N)")
    p.add_argument("--overlap", type=int, default=None, help="Upscale's overlap (default: the receptive field)")
    p.add_argument("--engine", default=None, help="CPU engine (openvino, ort, torch); default: the fastest")
    p.add_argument("--max-frames", type=int, default=None, help="stop after this many frames of the scene")
    args = p.parse_args()
    import vapoursynth as vs

    import vsvqdsr as vqdsr

    core = vs.core
    t = [int(v) for v in args.tiles.split("x")]
    tiles = t[0] if len(t) == 1 else tuple(t)
    src = core.bs.VideoSource(args.src)
    if args.size:
        m = re.fullmatch(r"(\d+)x(\d+)", args.size)
        if not m:
            p.error(f"--size: {args.size!r} is not WxH")
        src = core.resize.Bicubic(src, int(m.group(1)), int(m.group(2)))
    opts = {"backend": "cpu"} | ({"engine": args.engine} if args.engine else {})
    st_a: dict = {}
    st_b: dict = {}
    plain = vqdsr.Upscale(src, tiles=1, stats=st_a, **opts)
    tiled = vqdsr.Upscale(src, tiles=tiles, overlap=args.overlap, stats=st_b, **opts)
    print(f"CPU: {cpu_line()}")
    print(f"input {src.width}x{src.height}; untiled: {st_a['runner']}")
    print(f"tiled: {st_b['runner']}")
    print("frame  max|d| (8-bit)  mean|d| (8-bit)  PSNR (dB)")
    worst, n, psnrs = 0.0, 0, []
    while n < src.num_frames:
        fa = plain.get_frame(n)
        if n > 0 and fa.props["VQDSR_ChainStart"] != 0:
            break
        a, b = _arr(fa), _arr(tiled.get_frame(n))
        d = np.abs(a - b) * 255
        mse = float(np.mean((np.clip(a, 0, 1) - np.clip(b, 0, 1)) ** 2))
        psnr = math.inf if mse == 0 else 10 * math.log10(1 / mse)
        psnrs.append(psnr)
        worst = max(worst, float(d.max()))
        print(f"{n:5d}  {d.max():14.6f}  {d.mean():15.8f}  {psnr:9.2f}", flush=True)
        n += 1
        if args.max_frames and n >= args.max_frames:
            break
    print(f"scene frames 0..{n - 1}: max |d| {worst:.6f} code values (8-bit), min PSNR {min(psnrs):.2f} dB; "
          f"steps untiled {st_a['steps']}, tiled {st_b['steps']}")


if __name__ == "__main__":
    main()
