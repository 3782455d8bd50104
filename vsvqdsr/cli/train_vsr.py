"""``vqdsr train-vsr`` (two-stage VSR training) and ``vqdsr export`` (run -> model file)."""
from __future__ import annotations

import argparse
import json

from ..log import get_logger
from .main import CLIError, check_output_dir, check_output_file

log = get_logger(__name__)


#: Stage-2 extras, not in the paper (docs/training.md section 4): ``(TrainConfig field = option dest,
#: metavar, help)``; their defaults (the paper's: off) are TrainConfig's.
STAGE2_EXTRAS: tuple[tuple[str, str, str], ...] = (
    ("clean_prob", "P", "stage 2: share of clips (0-1) that skip blur and noise, as clean sources do "
                        "(paper 0: every clip is blurred and noised)"),
    ("antialias_prob", "P", "stage 2: share of clips (0-1) whose bilinear/bicubic x1/4 downscale is antialiased, "
                            "as ffmpeg's and VapourSynth's scalers are (paper 0: no antialias)"),
    ("grad_weight", "W", "stage 2: weight of an L1 on horizontal/vertical pixel differences against the GT, "
                         "which charges softened edges (paper 0)"),
    ("halo_weight", "W", "stage 2: weight of the overshoot/undershoot beyond the GT's 5x5 local range "
                         "(ringing: the bright/dark rims of a USM-trained prior) (paper 0)"),
    ("zoom_prob", "P", "stage 2: share of clips (0-1) whose GT is a camera zoom past the art's resolution "
                       "(a window upscaled by U(1, --zoom-max)), so soft edges are learned too (paper 0)"),
    ("zoom_max", "Z", "stage 2: largest zoom of --zoom-prob"),
    ("old_prob", "P", "stage 2: share of clips (0-1) whose LR comes from an old-footage chain instead (film: "
                      "optical blur and grain before the downscale, chroma bleed, 2-3 codec generations; "
                      "analogue: tape ringing, chroma loss, line jitter, noise, MPEG-2 then x264) (paper 0)"),
    ("vq_colour_sigma", "S", "stage 2: the VQ step keeps its input's content below a Gaussian of sigma S (LR px), "
                             "so a weak degrader adds artefacts but no large-area colour shifts (paper 0: raw VQ "
                             "output)"),
)

#: Option dests whose TrainConfig field has another name.
_FIELD_OF = {"topk": "topk_mode"}


def config_from_args(args: argparse.Namespace):
    """The :class:`~vsvqdsr.training.vsr_train.TrainConfig` of a parsed ``train-vsr`` command line.

    The parser leaves an option that was not given out of ``args`` (``argument_default=SUPPRESS``), so
    every default is TrainConfig's: the dataclass is the one source of them.
    """
    from dataclasses import fields

    from ..training.vsr_train import TrainConfig

    given = {_FIELD_OF.get(k, k): v for k, v in vars(args).items()}
    if given.pop("no_h264", False):
        given["h264"] = False
    names = {f.name for f in fields(TrainConfig)}
    return TrainConfig(**{k: v for k, v in given.items() if k in names})


def _train(args: argparse.Namespace) -> int:
    from ..training.vsr_train import train
    from ..weights.loading import WeightsError

    cfg = config_from_args(args)
    if cfg.stage == 2 and cfg.init == "random":
        log.warning("train-vsr: stage 2 normally starts from a stage-1 run (--init RUN)")
    if cfg.stage == 2 and not cfg.degrader:
        raise CLIError("stage 2 needs --degrader (a VQ degradation model name or file; 'none' for basic operators only)")
    check_output_dir(cfg.out, "run folder (--out)")
    try:
        summary = train(cfg)
    except (ValueError, WeightsError, FileNotFoundError) as e:
        raise CLIError(str(e)) from e
    if summary.get("rank", 0) != 0:
        return 0
    print(json.dumps({"iter": summary["iter"], "its_per_s": round(summary["its_per_s"], 4),
                      "last": summary.get("last", {}), "run": cfg.out}))
    return 0


def _export(args: argparse.Namespace) -> int:
    from ..training.vsr_train import export_run
    from ..weights.loading import WeightsError

    check_output_file(args.output, args.force, "output file (-o)")
    try:
        path = export_run(args.run, args.output, args.name)
    except WeightsError as e:
        raise CLIError(str(e)) from e
    print(path)
    return 0


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("train-vsr", help="train the VQD-SR video SR network (stage 1 or 2)",
                       description="Two-stage VQD-SR training. Stage 1: basic-operator degradations, L1 vs "
                                   "USM-sharpened GT, LR 1e-4. Stage 2: + VQ degradation model and H.264, "
                                   "L1 + perceptual + LSGAN, LR 5e-5. Runs resume from OUT/checkpoints/latest.pt. "
                                   "Several GPUs: torchrun --nproc_per_node N -m vsvqdsr.cli.main train-vsr ...",
                       argument_default=argparse.SUPPRESS)  # options not given keep TrainConfig's defaults
    p.add_argument("--stage", type=int, choices=(1, 2), required=True)
    p.add_argument("--data", nargs="+", required=True,
                   help="HR clips: folders of frames (one folder per clip), folders of such folders, video files")
    p.add_argument("--out", required=True, help="run folder (checkpoints, losses.png, samples/)")
    p.add_argument("--init",
                   help="G start: random (paper stage 1), animesr-v1/animesr-v2 or a VSR weights file "
                        "(feedback channels dropped), or a run folder / run .pt (paper stage 2)")
    p.add_argument("--degrader", help="stage 2: VQ degradation model (name, file, or 'none')")
    p.add_argument("--iters", type=int)
    p.add_argument("--batch", type=int, help="clips per process (paper: 2 per GPU x 8)")
    p.add_argument("--frames", type=int)
    p.add_argument("--patch", type=int, help="HR crop edge (multiple of 16; stage 2 >= 96)")
    p.add_argument("--lr", type=float, help="G learning rate (default 1e-4 stage 1, 5e-5 stage 2)")
    p.add_argument("--lr-d", type=float, help="D learning rate (default 5e-5)")
    p.add_argument("--ema", type=float)
    p.add_argument("--perceptual", choices=("auto", "vgg19", "srvgg", "none"),
                   help="stage 2: VGG19 if ImageNet weights are found, else the realesr-animevideov3 trunk")
    p.add_argument("--vgg-weights", help="path of torchvision's vgg19-dcbb9e9d.pth")
    p.add_argument("--topk", choices=("released", "paper", "nearest"))
    p.add_argument("--no-h264", action="store_true", help="stage 2: skip the H.264 round trip (ablation)")
    p.add_argument("--percep-weight", type=float, help="stage 2: perceptual loss weight (paper 1; 0 = off)")
    p.add_argument("--gan-weight", type=float,
                   help="stage 2: adversarial loss weight (paper 1; 0 = no discriminator: a fidelity fine-tune)")
    p.add_argument("--usm-gt", action="store_true",
                   help="stage 2: L1 against the USM-sharpened GT, as stage 1 does (counters the softening of a "
                        "pixel-loss-only fine-tune; paper stage 2 uses the plain GT)")
    for dest, metavar, help_ in STAGE2_EXTRAS:
        p.add_argument("--" + dest.replace("_", "-"), type=float, metavar=metavar, help=help_)
    p.add_argument("--workers", type=int,
                   help="DataLoader worker processes (0 = in-process; default: half the cores, 1 to 4)")
    p.add_argument("--seed", type=int)
    p.add_argument("--save-every", type=int)
    p.add_argument("--sample-every", type=int)
    p.add_argument("--log-every", type=int)
    p.add_argument("--device", help="auto, cpu, cuda, cuda:N")
    p.add_argument("--threads", type=int, help="torch CPU threads (0 = the cores left after the data workers)")
    p.add_argument("--precision", choices=("auto", "fp32", "bf16"),
                   help="forward passes in bf16 autocast or fp32; auto: bf16 on CPUs with AMX-BF16 and on GPUs "
                        "with bf16, else fp32")
    p.set_defaults(func=_train)

    p = sub.add_parser("export", help="write a training run's EMA weights as a model file Upscale loads")
    p.add_argument("run", help="run folder or run checkpoint .pt")
    p.add_argument("-o", "--output", required=True, help="output .safetensors")
    p.add_argument("--name", default=None, help="model name stored in the metadata")
    p.add_argument("--force", action="store_true", help="overwrite an existing output file")
    p.set_defaults(func=_export)
