"""``vqdsr enhance-hr``: HR-SR enhancement of training ground truth (x4 SR, MATLAB bicubic back)."""
from __future__ import annotations

import argparse
from pathlib import Path

from ..log import get_logger
from .main import CLIError, check_output_dir

log = get_logger(__name__)


def _run(args: argparse.Namespace) -> int:
    from ..training.enhance import enhance_dir
    from ..weights.loading import WeightsError

    src = Path(args.in_dir)
    if not src.is_dir():
        raise CLIError(f"input folder not found: {src}")
    check_output_dir(args.out_dir, "output folder")
    from ..backends import BackendUnavailable

    device = args.device
    if device == "auto":
        import torch
        device = "cuda" if torch.cuda.is_available() else "cpu"
    options = {"engine": args.engine} if args.engine else {}
    if args.precision != "auto":  # auto is every CPU engine's default; GPU backends take no precision
        from ..backends.precision import check
        try:
            options["precision"] = check(args.precision, "--precision")
        except ValueError as e:
            raise CLIError(str(e)) from e
    try:
        n = enhance_dir(src, Path(args.out_dir), args.model, device, args.tile, args.overwrite,
                        backend=args.backend, **options)
    except (ValueError, WeightsError, BackendUnavailable) as e:
        raise CLIError(str(e)) from e
    print(f"{n} frame(s) written to {args.out_dir}")
    log.info("enhance-hr: done")
    return 0


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("enhance-hr", help="clean HR training frames: x4 SR then MATLAB bicubic back to size",
                       description="Runs a pretrained x4 SR model on every image under IN_DIR and resizes the "
                                   "result back to exactly the original size with MATLAB-style antialiased "
                                   "bicubic; writes PNGs under OUT_DIR with the same relative paths "
                                   "(existing outputs are kept, so interrupted runs resume).")
    p.add_argument("in_dir")
    p.add_argument("out_dir")
    p.add_argument("--model", default="realesr-animevideov3",
                   help="SR model name (installed by `vqdsr fetch-weights`) or SRVGG .safetensors path")
    p.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:N")
    p.add_argument("--backend", default=None,
                   help="inference backend (cpu, ort, openvino, cuda, trt, torch_trt; default from --device)")
    p.add_argument("--engine", default=None, help="CPU engine for --backend cpu (openvino, ort, torch, torch_nchw)")
    p.add_argument("--precision", default="auto",
                   help="CPU engines' precision: auto (bf16 on CPUs with AMX-BF16, else f32), f32, bf16")
    p.add_argument("--tile", type=int, default=256, help="LR tile edge (0 = whole frame)")
    p.add_argument("--overwrite", action="store_true")
    p.set_defaults(func=_run)
