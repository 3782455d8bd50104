"""``vqdsr train-degrader``: train the VQ degradation model on real low-quality footage (the released
recipe and augmentation).

Learn the degradation of *your* source: point ``--data`` at folders of frames or video files of
the low-quality material you want to imitate. Stage 1 trains the top branch; stage 2 adds the
middle and bottom branches (``--init`` the stage-1 run) and is what ``vqdsr.Degrade`` uses.
"""
from __future__ import annotations

import argparse
import json

from .main import CLIError


def _run(args: argparse.Namespace) -> int:
    from ..training.vqgan_train import TrainOptions, train_vqgan

    if args.stage == 2 and not args.init:
        raise CLIError("--stage 2 needs --init RUN_OR_FILE (the stage-1 run); pass --init none to start from random")
    if args.crop % 8 or args.crop < 32:
        raise CLIError(f"--crop must be a multiple of 8 and >= 32, got {args.crop}")
    opt = TrainOptions(
        data=args.data, out=args.out, stage=args.stage, config=args.config,
        init=None if args.init in (None, "none") else args.init, crop=args.crop, batch=args.batch,
        steps=args.steps, max_minutes=args.max_minutes, base_lr=args.base_lr, lr=args.lr,
        top_lr_weight=args.top_lr_weight, disc_start=args.disc_start, disc_weight=args.disc_weight, disc_ndf=args.disc_ndf,
        perceptual=args.perceptual, perceptual_weight=args.perceptual_weight, vgg_weights=args.vgg_weights,
        lpips_weights=args.lpips_weights, dedup_threshold=args.dedup, video_step=args.video_step,
        workers=args.workers, seed=args.seed, save_every=args.save_every, sample_every=args.sample_every,
        threads=args.threads, precision=args.precision)
    try:
        summary = train_vqgan(opt)
    except (FileNotFoundError, ValueError, RuntimeError) as e:
        raise CLIError(str(e)) from e
    print(json.dumps(summary, indent=2))
    return 0


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("train-degrader", help="train the VQGAN degradation model on low-quality frames/videos",
                       description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", nargs="+", required=True, metavar="DIR_OR_VIDEO",
                   help="folders of images (recursive) and/or video files (decoded with ffmpeg)")
    p.add_argument("--out", required=True, metavar="RUN", help="run folder (resumes when it holds last.pt)")
    p.add_argument("--stage", type=int, choices=(1, 2), default=1)
    p.add_argument("--config", choices=("lite", "paper"), default="lite",
                   help="lite: 2.0 M params (CPU-friendly); paper: the official 121 M model")
    p.add_argument("--init", help="stage 2: stage-1 run folder or file (or 'none')")
    p.add_argument("--crop", type=int, default=256, help="training crop size (default 256, as the paper)")
    p.add_argument("--batch", type=int, default=4, help="batch per process (paper: 4 stage 1, 3 stage 2, x8 GPUs)")
    p.add_argument("--steps", type=int, default=1000, help="total optimizer steps (the paper gives none)")
    p.add_argument("--max-minutes", type=float, help="stop and save after this wall time")
    p.add_argument("--base-lr", type=float, help="per-sample base LR (default 4.5e-6 stage 1, 2e-6 stage 2)")
    p.add_argument("--lr", type=float, help="absolute LR, overrides base-lr x batch x processes")
    p.add_argument("--top-lr-weight", type=float, default=0.25, help="stage 2: LR factor of the top group")
    p.add_argument("--disc-start", type=int, default=10000, help="step at which the GAN term starts")
    p.add_argument("--disc-weight", type=float, default=0.8)
    p.add_argument("--disc-ndf", type=int, help="discriminator width (default 64; 16 with --config lite)")
    p.add_argument("--perceptual", choices=("auto", "lpips", "dfm", "none"), default="auto",
                   help="auto: LPIPS-VGG16 when ImageNet VGG16 weights are found, else discriminator "
                        "feature matching (dfm)")
    p.add_argument("--perceptual-weight", type=float, default=1.0)
    p.add_argument("--vgg-weights", help="torchvision vgg16-*.pth (else the torch hub cache is searched)")
    p.add_argument("--lpips-weights", help="LPIPS linear heads vgg.pth (optional)")
    p.add_argument("--dedup", type=float, default=0.0, metavar="MAD",
                   help="drop frames whose mean abs difference (0-255) to the last kept frame is below MAD")
    p.add_argument("--video-step", type=int, default=1, help="decode every N-th video frame")
    p.add_argument("--workers", type=int, default=0, help="DataLoader workers")
    p.add_argument("--seed", type=int, default=23)
    p.add_argument("--save-every", type=int, default=200)
    p.add_argument("--sample-every", type=int, default=200)
    p.add_argument("--threads", type=int, help="torch CPU threads")
    p.add_argument("--precision", choices=("auto", "fp32", "bf16"), default="auto",
                   help="forward passes in bf16 autocast or fp32; auto: bf16 on CPUs with AMX-BF16 and on GPUs "
                        "with bf16, else fp32")
    p.set_defaults(func=_run)
