"""``vqdsr adapt``: learn the damage of your own footage and fine-tune the upscaler to it.

Frames from your LQ videos -> VQ degrader (stage 1, stage 2) -> its k = 1 floor on your frames ->
VSR stage-2 fine-tune from --base on clean clips degraded by it -> a model registered as --out,
usable at once as vqdsr.Upscale(clip, model=NAME). --minutes splits across the stages
(frames 5 %, degrader 20 % + 20 %, floor 2 %, VSR 50 %, export 3 %). Interrupted? Run the same
command with --resume. docs/training.md, "Adapting to your show".
"""
from __future__ import annotations

import argparse
import json

from .main import CLIError, check_output_dir


def _run(args: argparse.Namespace) -> int:
    from ..training.adapt import AdaptError, AdaptOptions, adapt
    from ..weights.loading import WeightsError
    from ..weights.registry import model_dir

    if not args.minutes > 0:
        raise CLIError(f"--minutes must be > 0, got {args.minutes}")
    check_output_dir(model_dir(), "model folder")
    if args.work:
        check_output_dir(args.work, "work folder (--work)")
    opt = AdaptOptions(videos=args.videos, name=args.out, clean=args.clean or [], reference=args.reference or [],
                       base=args.base, minutes=args.minutes, device=args.device, work=args.work, resume=args.resume,
                       force=args.force, degrader_steps=args.degrader_steps, vsr_iters=args.vsr_iters,
                       degrader_crop=args.degrader_crop, batch=args.batch, frames=args.frames, patch=args.patch,
                       percep_weight=args.percep_weight, gan_weight=args.gan_weight, threads=args.threads,
                       seed=args.seed)
    try:
        res = adapt(opt)
    except (AdaptError, ValueError, WeightsError, FileNotFoundError, RuntimeError) as e:
        raise CLIError(str(e).splitlines()[0] if str(e) else type(e).__name__) from e
    print(json.dumps({"model": res["model"], "file": res["file"], "work": res["work"],
                      "floor_psnr_db": res["stages"]["floor"]["reconstruction_k1"]["psnr_db"],
                      "vsr_iterations": res["stages"]["vsr"]["iterations"]}))
    return 0


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("adapt", help="adapt the upscaler to your footage's damage (VQ degrader + fine-tune)",
                       description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("videos", nargs="+", metavar="LQ_VIDEO", help="your low-quality videos")
    p.add_argument("--out", required=True, metavar="MODEL_NAME", help="name to register the adapted model under")
    p.add_argument("--clean", nargs="+", metavar="DIR", help="clean HR training clips (default: synthetic clips)")
    p.add_argument("--reference", nargs="+", metavar="VIDEO",
                   help="clean versions of the LQ videos (same frames), to measure the damage the degrader imitates")
    p.add_argument("--base", default="vqdsr-ft", help="VSR model to fine-tune (name or file; default vqdsr-ft)")
    p.add_argument("--minutes", type=float, default=60.0, help="time budget of the whole run (default 60)")
    p.add_argument("--device", default="cpu", help="cpu, cuda or cuda:N")
    p.add_argument("--resume", action="store_true", help="continue an interrupted run (finished stages are skipped)")
    p.add_argument("--work", metavar="DIR", help="work folder (default: beside the model folder, adapt/MODEL_NAME)")
    p.add_argument("--force", action="store_true", help="replace an existing model of that name and its work folder")
    p.add_argument("--degrader-steps", type=int, help="cap on each degrader stage's steps (default: the budget)")
    p.add_argument("--degrader-crop", type=int, default=256, help="degrader training crop (default 256)")
    p.add_argument("--vsr-iters", type=int, help="cap on the VSR iterations (default: the budget)")
    p.add_argument("--batch", type=int, default=2, help="VSR clips per step (default 2)")
    p.add_argument("--frames", type=int, default=5, help="VSR frames per clip (default 5)")
    p.add_argument("--patch", type=int, default=128, help="VSR HR crop, multiple of 16, >= 96 (default 128)")
    p.add_argument("--percep-weight", type=float, default=1.0,
                   help="VSR perceptual loss weight (paper stage 2: 1; 0 with --gan-weight 0: a fidelity fine-tune)")
    p.add_argument("--gan-weight", type=float, default=1.0, help="VSR adversarial loss weight (paper stage 2: 1)")
    p.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: the trainers' default)")
    p.add_argument("--seed", type=int, default=0)
    p.set_defaults(func=_run)
