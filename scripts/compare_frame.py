"""Write a side-by-side PNG: the source frame scaled 4x with bicubic, beside the model's output.

Usage: compare_frame.py SOURCE UPSCALED OUT.png [--frame N]
Both videos are read with VapourSynth's bestsource, so this shows exactly what a script sees.
"""
from __future__ import annotations

import argparse
import sys

import numpy as np
import vapoursynth as vs
from PIL import Image, ImageDraw


def rgb8(clip: vs.VideoNode, n: int) -> np.ndarray:
    rgb = vs.core.resize.Bicubic(clip, format=vs.RGB24, matrix_in_s="709")
    f = rgb.get_frame(n)
    return np.dstack([np.asarray(f[p]) for p in range(3)])


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("source")
    ap.add_argument("upscaled")
    ap.add_argument("out")
    ap.add_argument("--frame", type=int, default=None, help="frame number (default: the middle)")
    args = ap.parse_args()
    core = vs.core
    src = core.bs.VideoSource(args.source)
    up = core.bs.VideoSource(args.upscaled)
    if (up.width, up.height) != (4 * src.width, 4 * src.height):
        print(f"compare_frame: {args.upscaled} is {up.width}x{up.height}, expected 4x the source", file=sys.stderr)
        return 1
    n = args.frame if args.frame is not None else src.num_frames // 2
    bicubic = core.resize.Bicubic(src, width=up.width, height=up.height)
    left, right = rgb8(bicubic, n), rgb8(up, n)
    gap = 8
    canvas = Image.new("RGB", (left.shape[1] * 2 + gap, left.shape[0] + 28), "white")
    canvas.paste(Image.fromarray(left), (0, 28))
    canvas.paste(Image.fromarray(right), (left.shape[1] + gap, 28))
    draw = ImageDraw.Draw(canvas)
    draw.text((6, 8), f"source frame {n}, bicubic x4", fill="black")
    draw.text((left.shape[1] + gap + 6, 8), "vqdsr.Upscale x4", fill="black")
    canvas.save(args.out)
    print(f"compare_frame: wrote {args.out} (frame {n})", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
