"""``vqdsr eval``: the quality benchmark (methods side by side on a benchmark set).

Writes ``DIR/results.md``, ``DIR/results.json``, ``DIR/charts/<metric>.png`` and ``DIR/crops.png``
(all atomically); SR frames and per-clip metrics are cached under ``DIR/cache``. See docs/benchmark.md.
"""
from __future__ import annotations

import argparse
import sys

from .main import CLIError


def _crop(s: str) -> list[int] | None:
    if s in ("0", "none", "full"):
        return None
    try:
        h, w = (int(v) for v in s.lower().split("x"))
    except ValueError as e:
        raise argparse.ArgumentTypeError(f"expected HxW (e.g. 272x480) or 'full', got {s!r}") from e
    return [h, w]


def _run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from ..evaluation.dataset import load_set
    from ..evaluation.methods import available_methods, resolve_methods
    from ..evaluation.metrics import METRICS
    from ..evaluation.report import write_reports
    from ..evaluation.options import DEFAULT_OPTIONS
    from ..evaluation.runner import evaluate, sr_folder

    if args.list_methods:
        for name, kind in available_methods().items():
            print(f"{name:<24} {kind}")
        return 0
    if args.eval_set is None or args.out is None:
        raise CLIError("EVAL_SET and --out are required (build a set with scripts/make_eval_set.py)")
    try:
        bset = load_set(args.eval_set, verify=args.verify)
    except (FileNotFoundError, ValueError) as e:
        raise CLIError(str(e)) from e
    try:
        methods = resolve_methods(args.methods, args.checkpoint or (), backend=args.backend)
    except ValueError as e:
        raise CLIError(str(e)) from e
    if not methods:
        raise CLIError("no methods to run")
    metrics = args.metrics or list(DEFAULT_OPTIONS["metrics"])  # type: ignore[arg-type]
    bad = [m for m in metrics if m not in METRICS]
    if bad:
        raise CLIError(f"unknown metrics {bad}; known: {', '.join(METRICS)}")
    if args.crop_clip and args.crop_clip not in bset.clip_names:
        raise CLIError(f"--crop-clip {args.crop_clip!r} is not a clip of the set ({', '.join(bset.clip_names)})")
    options = {"metrics": metrics, "niqe_step": args.niqe_step, "cvvdp_display": args.cvvdp_display,
               "cvvdp_frames": args.cvvdp_frames, "cvvdp_crop": args.cvvdp_crop}
    out = Path(args.out)
    try:
        res = evaluate(bset, methods, out, options, threads=args.threads, progress=not args.quiet)
    except (ValueError, RuntimeError, OSError) as e:
        raise CLIError(str(e)) from e
    crop_clip = args.crop_clip or bset.clip_names[0]
    clip_objs = {c.severity: c for c in bset.clips if c.name == crop_clip}
    folders = {m.name: {s: sr_folder(out, m, bset, c) for s, c in clip_objs.items()} for m in methods}
    paths = write_reports(res, bset, folders, out, crop_clip)
    print(f"vqdsr eval: {len(methods)} methods, {res['run']['wall_seconds']:.1f} s; wrote {paths['markdown']}, "
          f"{paths['json']}, {out / 'charts'}/, {paths['crops']}", file=sys.stderr)
    if args.print:
        print((out / "results.md").read_text(encoding="utf-8"))
    return 0


def add_parser(sub: argparse._SubParsersAction) -> None:
    from ..evaluation.options import DEFAULT_OPTIONS as D

    crop = D["cvvdp_crop"]
    crop_s = f"{crop[0]}x{crop[1]}" if crop else "full"  # type: ignore[index]
    p = sub.add_parser("eval", help="quality benchmark: methods side by side on a benchmark set",
                       description="Run methods over a benchmark set (scripts/make_eval_set.py) and write "
                                   "results.md, results.json, charts/*.png and crops.png to --out.")
    p.add_argument("eval_set", nargs="?", metavar="EVAL_SET", help="benchmark set folder (holds benchmark.json)")
    p.add_argument("--out", "-o", help="output folder (also holds the cache)")
    p.add_argument("--methods", nargs="+", metavar="NAME",
                   help="methods to compare (default: bicubic lanczos realesr-animevideov3 and every installed "
                        "VSR model); see --list-methods")
    p.add_argument("--checkpoint", nargs="+", metavar="FILE", action="extend",
                   help="VSR weights files to compare as well (named by file stem)")
    p.add_argument("--metrics", nargs="+", metavar="NAME", help="metrics (default all: psnr_y ssim_y ssimulacra2 "
                   "cvvdp flicker niqe)")
    p.add_argument("--threads", type=int, default=None, help="torch / VapourSynth / backend threads")
    p.add_argument("--backend", default="cpu", help="Upscale backend for VSR models (default cpu)")
    p.add_argument("--niqe-step", type=int, default=D["niqe_step"],
                   help=f"NIQE on every N-th frame (default {D['niqe_step']})")
    p.add_argument("--cvvdp-display", default=D["cvvdp_display"], help="ColorVideoVDP display model "
                   f"(default {D['cvvdp_display']})")
    p.add_argument("--cvvdp-frames", type=int, default=D["cvvdp_frames"],
                   help=f"ColorVideoVDP on the first N frames of each clip (0 = all; default {D['cvvdp_frames']})")
    p.add_argument("--cvvdp-crop", type=_crop, default=crop, metavar="HxW",
                   help=f"ColorVideoVDP on a centred HR crop ('full' = whole frame; default {crop_s})")
    p.add_argument("--crop-clip", help="clip shown in crops.png (default: the first)")
    p.add_argument("--verify", action="store_true", help="check every file's sha256 against the manifest")
    p.add_argument("--print", action="store_true", help="print results.md to stdout")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    p.add_argument("--list-methods", action="store_true", help="list available method names and exit")
    p.set_defaults(func=_run)
