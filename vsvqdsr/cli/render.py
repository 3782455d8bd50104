"""``vqdsr render``: scene-aligned chunked rendering of many inputs on a Ray cluster."""
from __future__ import annotations

import argparse
from pathlib import Path

from .main import CLIError, check_output_dir


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "render", help="render videos in scene-aligned chunks on Ray (needs vsvqdsr[farm])",
        description="Render each INPUT through a .vpy template in chunks cut at scene starts, one Ray "
                    "task per chunk (one GPU each where the cluster has GPUs, else one CPU), join them "
                    "without re-encoding and mux the source's audio, subtitles and chapters. Finished "
                    "chunks are kept: running the same command again resumes.")
    p.add_argument("inputs", nargs="+", metavar="INPUT", help="video files (output OUTDIR/<stem>.mkv)")
    p.add_argument("-o", "--outdir", required=True, help="output directory")
    p.add_argument("--vpy", metavar="TEMPLATE", help="template script; gets -a src=, cuts=, model=, backend=, "
                   "max_chain=, threads= (default: the built-in source -> Upscale -> YUV420P8)")
    p.add_argument("--encoder", choices=["x264", "x265", "ffv1"], default="x264")
    p.add_argument("--crf", type=float, default=16.0, help="x264/x265 CRF, 0..51 (default 16)")
    p.add_argument("--preset", help="x264/x265 preset (default medium)")
    p.add_argument("--model", help="model name or weights file passed to the template")
    p.add_argument("--backend", help="Upscale backend passed to the template (default auto)")
    p.add_argument("--workers", type=int, help="CPUs of the local Ray cluster (default: all cores)")
    p.add_argument("--address", help="join this Ray cluster instead of starting a local one")
    p.add_argument("--min-chunk", type=int, default=240, help="minimum chunk length in frames (default 240)")
    p.add_argument("--max-chain", type=int, help="Upscale max_chain: also lets long scenes be split")
    p.add_argument("--retries", type=int, default=2, help="extra attempts per failed chunk (default 2)")
    p.add_argument("--threads", type=int, help="VapourSynth/torch threads per job")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..farm.render import DEFAULT_TEMPLATE, FarmError, RenderSettings, render

    settings = RenderSettings(template=Path(args.vpy) if args.vpy else DEFAULT_TEMPLATE, encoder=args.encoder,
                              crf=args.crf, preset=args.preset, model=args.model, backend=args.backend,
                              max_chain=args.max_chain, min_chunk=args.min_chunk, retries=args.retries,
                              threads=args.threads)
    if args.workers is not None and args.workers < 1:
        raise CLIError(f"--workers must be >= 1, got {args.workers}")
    check_output_dir(args.outdir, "output folder (-o)")
    try:
        report = render(args.inputs, args.outdir, settings, workers=args.workers, address=args.address,
                        progress=not args.no_progress)
    except FarmError as e:
        raise CLIError(str(e)) from None
    print(report.summary())
    return 0
