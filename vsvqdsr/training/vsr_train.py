"""The two-stage VSR training loop of VQD-SR (the paper's schedule and the released options), single
process or DDP (torchrun).

Stage 1: basic-operator degradations (on the CPU in DataLoader workers), L1 against the
USM-sharpened GT, LR 1e-4. Stage 2: basic operators + VQ degradation + H.264 (batched on the
training device), L1 + perceptual + LSGAN with the 3-scale spectral-norm PatchGAN, G and D LR 5e-5,
one D update per G update. Both: Adam (0.9, 0.99), EMA 0.999 of G after every iteration.

Run folder layout::

    RUN/config.json            the configuration of the first start
    RUN/checkpoints/latest.pt  resumable state (G, EMA, D, optimisers, iteration, history), atomic
    RUN/checkpoints/iter_N.pt  every ``save_every`` iterations
    RUN/losses.jsonl           one line per logged iteration
    RUN/losses.png             loss curves (matplotlib, Agg)
    RUN/samples/iter_N.png     strips: LR (nearest x4) | EMA SR | GT of one frame

Checkpoints are plain tensors/lists/numbers, readable with ``torch.load(weights_only=True)``.

``init`` of G:

* ``"random"``: PyTorch default init (the paper's stage 1);
* a VSR registry name or weights file (``animesr-v1``...): if it is the SR-feedback AnimeSR variant,
  the 48 input channels of ``recurrent_cell.conv_s1_first.0.weight`` that see the pixel-unshuffled
  previous SR output (channels 9..56 of prev(3), cur(3), next(3), feedback(48), state(64)) are
  dropped and every other weight is kept. The network's first layer then lacks the feedback term it
  was trained with, so its first outputs are somewhat off; training adapts the rest quickly. Both
  G and its EMA start from these weights;
* a run folder or a run checkpoint: ``params`` into G, ``params_ema`` into the EMA (the paper's
  stage-2 start from stage 1).
"""
from __future__ import annotations

import json
import math
import os
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch import Tensor, nn

from ..log import get_logger
from ..nets.discriminators import MIN_INPUT, MultiScaleDiscriminator
from ..nets.vsr import RecurrentVSR
from ..weights.loading import WeightsError, atomic_write, atomic_write_bytes, load_state_dict
from .degradations import Stage2Options, old_footage_lr, stage2_degrade, usm_sharp, zoom_clips
from .loop import (LossLog, ema_update, finish_distributed, load_checkpoint, progress_bar, save_checkpoint,
                   setup_distributed, wrap_ddp)
from .losses import gradient_l1_loss, halo_loss, l1_loss, lsgan_loss
from .perceptual import VSR_KINDS, PerceptualWeights, build_perceptual
from .precision import TRAIN_PRECISIONS, autocast, resolve_train_precision

__all__ = ["TrainConfig", "train", "init_generator_weights", "drop_feedback_channels", "load_run_checkpoint",
           "export_run", "STAGE_LR"]

STAGE_LR = {1: 1e-4, 2: 5e-5}
FEEDBACK_SLICE = slice(9, 57)


@dataclass
class TrainConfig:
    """Everything a run needs. Sizes: ``patch`` is the HR crop edge in pixels (multiple of 16)."""

    stage: int
    data: list[str]
    out: str
    init: str = "random"
    degrader: str | None = None
    iters: int = 300_000
    batch: int = 2
    frames: int = 15
    patch: int = 256
    lr: float | None = None
    lr_d: float | None = None
    ema: float = 0.999
    perceptual: str = "auto"
    vgg_weights: str | None = None
    topk_mode: str = "released"
    h264: bool = True
    percep_weight: float = 1.0
    gan_weight: float = 1.0
    usm_gt: bool = False  # stage 2: L1 against the USM-sharpened GT (stage 1 always uses it)
    clean_prob: float = 0.0  # stage 2: share of clips with no blur and no noise (paper: 0)
    antialias_prob: float = 0.0  # stage 2: share of clips with an antialiased downscale (paper: 0)
    vq_colour_sigma: float = 0.0  # stage 2: VQ output keeps its input below this blur, LR px (paper: 0)
    grad_weight: float = 0.0  # stage 2: weight of the L1 on pixel differences (paper: 0)
    halo_weight: float = 0.0  # stage 2: weight of the over/undershoot of the local GT range (paper: 0)
    zoom_prob: float = 0.0  # stage 2: share of clips whose GT is a zoom past the art's resolution (paper: 0)
    zoom_max: float = 1.5  # stage 2: largest such zoom
    old_prob: float = 0.0  # stage 2: share of clips degraded by the old-footage chains instead (paper: 0)
    workers: int = -1
    seed: int = 0
    save_every: int = 5000
    sample_every: int = 1000
    log_every: int = 10
    device: str = "auto"
    threads: int = 0
    precision: str = "auto"  # auto | fp32 | bf16 (autocast of the forward passes; training.precision)
    intervals: list[int] = field(default_factory=lambda: [1, 2, 3])

    def stage2_options(self) -> Stage2Options:
        """The stage-2 degradation options of this run."""
        return Stage2Options(topk_mode=self.topk_mode, h264=self.h264, clean_prob=self.clean_prob,
                             antialias_prob=self.antialias_prob, vq_colour_sigma=self.vq_colour_sigma)

    def validate(self) -> None:
        if self.stage not in (1, 2):
            raise ValueError(f"stage must be 1 or 2, got {self.stage}")
        if self.patch % 16:
            raise ValueError(f"patch must be a multiple of 16 (LR a multiple of 4), got {self.patch}")
        if self.stage == 2 and self.patch < MIN_INPUT:
            raise ValueError(f"stage 2 needs patch >= {MIN_INPUT} (the 1/4-scale discriminator), got {self.patch}")
        if self.frames < 1 or self.batch < 1 or self.iters < 1:
            raise ValueError("frames, batch and iters must be >= 1")
        if not self.data:
            raise ValueError("no training data given")
        if self.precision not in TRAIN_PRECISIONS:
            raise ValueError(f"precision must be one of {', '.join(TRAIN_PRECISIONS)}, got {self.precision!r}")
        if min(self.percep_weight, self.gan_weight, self.grad_weight, self.halo_weight) < 0:
            raise ValueError("percep_weight, gan_weight, grad_weight and halo_weight must be >= 0")
        if not (0 <= self.clean_prob <= 1 and 0 <= self.antialias_prob <= 1):
            raise ValueError(f"clean_prob and antialias_prob must be in [0, 1], got {self.clean_prob}, "
                             f"{self.antialias_prob}")
        if not 0 <= self.zoom_prob <= 1 or self.zoom_max < 1:
            raise ValueError(f"zoom_prob must be in [0, 1] and zoom_max >= 1, got {self.zoom_prob}, {self.zoom_max}")
        if not 0 <= self.old_prob <= 1:
            raise ValueError(f"old_prob must be in [0, 1], got {self.old_prob}")
        if self.vq_colour_sigma < 0:
            raise ValueError(f"vq_colour_sigma must be >= 0, got {self.vq_colour_sigma}")


# ----------------------------------------------------------------------------------------- weights
def drop_feedback_channels(sd: dict[str, Tensor]) -> dict[str, Tensor]:
    """AnimeSR (121 input channels) -> VQD-SR (73): drop the 48 feedback channels of the first conv."""
    key = "recurrent_cell.conv_s1_first.0.weight"
    w = sd[key]
    if w.shape[1] != 121:
        raise WeightsError(f"expected 121 input channels in {key}, found {w.shape[1]}")
    keep = torch.cat([w[:, :FEEDBACK_SLICE.start], w[:, FEEDBACK_SLICE.stop:]], dim=1)
    out = dict(sd)
    out[key] = keep.contiguous()
    return out


def _checkpoint_path(init: str) -> Path | None:
    p = Path(init).expanduser()
    if p.is_dir() and (p / "checkpoints" / "latest.pt").is_file():
        return p / "checkpoints" / "latest.pt"
    if p.is_file() and p.suffix == ".pt":
        return p
    return None


def load_run_checkpoint(path: str | os.PathLike) -> dict:
    """Read a run checkpoint (a run folder or a ``.pt`` file) safely."""
    p = _checkpoint_path(str(path)) or Path(path)
    if not p.is_file():
        raise WeightsError(f"no run checkpoint at {path}")
    return load_checkpoint(p)


def init_generator_weights(init: str) -> tuple[dict[str, Tensor] | None, dict[str, Tensor] | None, str]:
    """``(G weights, EMA weights, description)`` for ``init`` (see the module docstring)."""
    if init in ("random", "none", ""):
        return None, None, "random"
    ck = _checkpoint_path(init)
    if ck is not None:
        state = load_run_checkpoint(ck)
        return state["params"], state.get("params_ema", state["params"]), f"run checkpoint {ck}"
    from ..weights.descriptors import describe
    from ..weights.registry import resolve_model

    name, path = resolve_model(init)
    sd = {k: v.float() for k, v in load_state_dict(path).items() if k.startswith("recurrent_cell.")}
    desc = describe(sd)
    how = f"{name} ({desc.variant})"
    if desc.feedback:
        sd = drop_feedback_channels(sd)
        how += ", 48 feedback input channels dropped"
    return sd, sd, how


# ----------------------------------------------------------------------------------------- helpers
log = get_logger(__name__)


def _plot_losses(history: list[dict], path: Path) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    if not history:
        return
    keys = sorted({k for h in history for k in h if k not in ("iter", "time")})
    fig, ax = plt.subplots(figsize=(8, 4.5))
    its = [h["iter"] for h in history]
    for k in keys:
        ax.plot(its, [h.get(k, math.nan) for h in history], label=k, linewidth=1)
    ax.set_xlabel("iteration")
    ax.set_ylabel("loss")
    ax.set_yscale("log")
    ax.grid(True, alpha=0.3)
    ax.legend()
    fig.tight_layout()
    atomic_write(path, lambda f: fig.savefig(f, format="png", dpi=100))
    plt.close(fig)


def _save_strip(lr: Tensor, sr: Tensor, gt: Tensor, path: Path) -> None:
    """LR (nearest x4) | SR | GT of the middle frame of the first clip, as an 8-bit PNG."""
    import cv2

    t = lr.shape[1] // 2
    s = gt.shape[-1] // lr.shape[-1]
    up = torch.nn.functional.interpolate(lr[:1, t], scale_factor=s, mode="nearest")
    row = torch.cat([up, sr[:1, t], gt[:1, t]], dim=-1)[0].clamp(0, 1)
    img = (row.permute(1, 2, 0).float().cpu().numpy() * 255.0).round().astype(np.uint8)
    path.parent.mkdir(parents=True, exist_ok=True)
    ok, buf = cv2.imencode(".png", np.ascontiguousarray(img[..., ::-1]))
    if ok:
        atomic_write_bytes(path, buf.tobytes())


class _IndexBatches(torch.utils.data.Sampler):
    """Batches of global sample numbers: iteration i, rank r -> ``((i * world + r) * batch + j)``."""

    def __init__(self, start: int, stop: int, batch: int, rank: int, world: int) -> None:
        self.start, self.stop, self.batch, self.rank, self.world = start, stop, batch, rank, world

    def __iter__(self):
        for it in range(self.start, self.stop):
            base = (it * self.world + self.rank) * self.batch
            yield list(range(base, base + self.batch))

    def __len__(self) -> int:
        return self.stop - self.start


def _worker_init(_: int) -> None:
    """DataLoader workers: one thread each for torch and OpenCV (no oversubscription)."""
    import cv2

    torch.set_num_threads(1)
    cv2.setNumThreads(1)


# ----------------------------------------------------------------------------------------- training
@dataclass
class _Nets:
    """G, its EMA, D (stage 2 with a GAN term only) and their optimisers; ``g_train``/``d_train`` are
    the modules the step calls (DDP-wrapped under torchrun)."""

    g: RecurrentVSR
    ema: RecurrentVSR
    d: MultiScaleDiscriminator | None
    opt_g: torch.optim.Optimizer
    opt_d: torch.optim.Optimizer | None
    g_train: nn.Module | None = None
    d_train: nn.Module | None = None

    def state(self, cfg: TrainConfig, it: int, history: list[dict], percep_kind: str) -> dict:
        """The resumable checkpoint (plain tensors, lists and numbers)."""
        state = {"stage": cfg.stage, "iter": it, "params": self.g.state_dict(), "params_ema": self.ema.state_dict(),
                 "opt_g": self.opt_g.state_dict(), "history": history, "config": json.dumps(asdict(cfg)),
                 "perceptual": percep_kind}
        if self.d is not None and self.opt_d is not None:
            state["params_d"] = self.d.state_dict()
            state["opt_d"] = self.opt_d.state_dict()
        return state

    def load(self, state: dict) -> None:
        """Resume from :meth:`state` (D only when both the run and the checkpoint have one)."""
        self.g.load_state_dict(state["params"])
        self.ema.load_state_dict(state["params_ema"])
        self.opt_g.load_state_dict(state["opt_g"])
        if self.d is not None and self.opt_d is not None and "params_d" in state:
            self.d.load_state_dict(state["params_d"])
            self.opt_d.load_state_dict(state["opt_d"])


@dataclass
class _Stage2Parts:
    """What stage 2 adds: the VQ degrader (None: basic operators + H.264 only) and the perceptual
    module (None: off) with the name of its kind."""

    degrader: nn.Module | None = None
    percep: nn.Module | None = None
    percep_kind: str = "none"


def _set_threads(cfg: TrainConfig, dev: torch.device, world: int) -> None:
    """Resolve ``workers = -1`` (half the cores per process, 1 to 4) and set torch's CPU threads."""
    if cfg.workers < 0:
        cfg.workers = max(1, min(4, (os.cpu_count() or 2) // max(1, world) // 2))
    if cfg.threads > 0:
        torch.set_num_threads(cfg.threads)
    elif dev.type == "cpu":
        # leave one core per data worker: oversubscribed CPUs train many times slower
        torch.set_num_threads(max(1, (os.cpu_count() or 1) // max(1, world) - cfg.workers))


def _build_nets(cfg: TrainConfig, dev: torch.device, lr_g: float, lr_d: float) -> _Nets:
    g = RecurrentVSR(feedback=False).to(dev)
    ema = RecurrentVSR(feedback=False).to(dev).eval().requires_grad_(False)
    # gan_weight 0 (a fidelity fine-tune) trains no discriminator at all
    d = MultiScaleDiscriminator().to(dev) if cfg.stage == 2 and cfg.gan_weight > 0 else None
    opt_g = torch.optim.Adam(g.parameters(), lr=lr_g, betas=(0.9, 0.99))
    opt_d = torch.optim.Adam(d.parameters(), lr=lr_d, betas=(0.9, 0.99)) if d is not None else None
    return _Nets(g, ema, d, opt_g, opt_d)


def _resume_or_start(cfg: TrainConfig, nets: _Nets, out: Path, main: bool, lr_g: float,
                     lr_d: float) -> tuple[int, list[dict]]:
    """Load ``OUT/checkpoints/latest.pt`` when there is one, else initialise G from ``cfg.init`` and
    write ``config.json``; returns ``(first iteration, loss history)``."""
    ck_latest = out / "checkpoints" / "latest.pt"
    if ck_latest.is_file():
        state = load_run_checkpoint(ck_latest)
        if int(state["stage"]) != cfg.stage:
            raise ValueError(f"{out} holds a stage-{state['stage']} run; use another --out for stage {cfg.stage}")
        nets.load(state)
        start = int(state["iter"])
        if main:
            log.info(f"train-vsr: resuming {out} at iteration {start}")
        return start, list(state.get("history", []))
    g_sd, ema_sd, how = init_generator_weights(cfg.init)
    if g_sd is not None:
        nets.g.load_state_dict(g_sd)
        nets.ema.load_state_dict(ema_sd)
    else:
        nets.ema.load_state_dict(nets.g.state_dict())
    if main:
        log.info(f"train-vsr: stage {cfg.stage}: G from {how}; LR G {lr_g:g}" + (f", D {lr_d:g}" if nets.d else ""))
        out.mkdir(parents=True, exist_ok=True)
        atomic_write_bytes(out / "config.json", json.dumps(asdict(cfg), indent=2).encode("utf-8"))
    return 0, []


def _stage2_parts(cfg: TrainConfig, dev: torch.device, main: bool) -> _Stage2Parts:
    parts = _Stage2Parts()
    if cfg.stage != 2:
        return parts
    if cfg.degrader and cfg.degrader.lower() != "none":
        from ..weights.degrader import load_degrader
        parts.degrader = load_degrader(cfg.degrader).to(dev)
    elif main:
        log.info("train-vsr: stage 2 without a VQ degradation model (--degrader none): basic operators + "
                 "H.264 only")
    if cfg.percep_weight > 0:
        parts.percep, parts.percep_kind = build_perceptual(cfg.perceptual, VSR_KINDS,
                                                           PerceptualWeights(cfg.vgg_weights))
    if parts.percep is not None:
        parts.percep = parts.percep.to(dev)
    if main:
        log.info(f"train-vsr: perceptual loss: {parts.percep_kind}")
    return parts


def _loader(dataset, cfg: TrainConfig, start: int, rank: int, world: int, dev: torch.device):
    """Batches of iterations ``start..iters`` of this rank (the sample numbers fix every draw, so a
    resumed run sees what an uninterrupted one would)."""
    return torch.utils.data.DataLoader(
        dataset, batch_sampler=_IndexBatches(start, cfg.iters, cfg.batch, rank, world),
        num_workers=cfg.workers, pin_memory=dev.type == "cuda", persistent_workers=False,
        prefetch_factor=2 if cfg.workers > 0 else None, worker_init_fn=_worker_init if cfg.workers > 0 else None)


def _lr_gt(batch, cfg: TrainConfig, dev: torch.device, rank: int, it: int,
           s2: _Stage2Parts) -> tuple[Tensor, Tensor]:
    """The LR input and GT of one batch: stage 1's come from the data workers; stage 2 degrades the
    GT here, on the training device, from a random stream fixed by (seed, rank, iteration)."""
    if cfg.stage == 1:
        lr, gt = (x.to(dev, non_blocking=True) for x in batch)
        return lr, gt
    gt = batch.to(dev, non_blocking=True)
    rng = np.random.default_rng((cfg.seed, rank, it, 2))
    if cfg.zoom_prob > 0:  # its own stream: the paper's draws stay as they were
        gt, _ = zoom_clips(gt, np.random.default_rng((cfg.seed, rank, it, 3)), cfg.zoom_prob, cfg.zoom_max)
    lr, _ = stage2_degrade(gt, rng, s2.degrader, cfg.stage2_options())
    if cfg.old_prob > 0:  # its own stream, drawn after the paper's chain ran: those draws stay as they were
        lr, _ = old_footage_lr(gt, lr, np.random.default_rng((cfg.seed, rank, it, 4)), cfg.old_prob)
    return lr, gt


def _g_loss(cfg: TrainConfig, nets: _Nets, s2: _Stage2Parts, sr: Tensor, gt: Tensor,
            losses: dict[str, Tensor]) -> Tensor:
    """G's total loss, each term also into ``losses``: stage 1 L1 against the USM-sharpened GT;
    stage 2 L1 (+ gradient, halo) + perceptual + LSGAN, each with its weight."""
    if cfg.stage == 1:
        losses["l1"] = l1_loss(sr, usm_sharp(gt))
        return losses["l1"]
    frames = sr.shape[0] * sr.shape[1]
    sr_f, gt_f = sr.reshape(frames, *sr.shape[2:]), gt.reshape(frames, *gt.shape[2:])
    losses["l1"] = l1_loss(sr, usm_sharp(gt) if cfg.usm_gt else gt)
    loss = losses["l1"]
    if cfg.grad_weight > 0:
        losses["grad"] = gradient_l1_loss(sr, gt)
        loss = loss + cfg.grad_weight * losses["grad"]
    if cfg.halo_weight > 0:
        losses["halo"] = halo_loss(sr, gt)
        loss = loss + cfg.halo_weight * losses["halo"]
    if s2.percep is not None:
        losses["percep"] = s2.percep(sr_f, gt_f)
        loss = loss + cfg.percep_weight * losses["percep"]
    if nets.d is not None:
        nets.d.requires_grad_(False)
        losses["gan_g"] = lsgan_loss(nets.d(sr_f), True)  # raw module: no DDP hooks in the G step
        loss = loss + cfg.gan_weight * losses["gan_g"]
    return loss


def _d_step(nets: _Nets, sr: Tensor, gt: Tensor, losses: dict[str, Tensor], prec: str) -> None:
    """One LSGAN update of D on the GT (real) and the detached SR (fake) frames, in one call."""
    assert nets.d is not None and nets.d_train is not None and nets.opt_d is not None
    nets.d.requires_grad_(True)
    frames = sr.shape[0] * sr.shape[1]
    gt_f, sr_f = gt.reshape(frames, *gt.shape[2:]), sr.reshape(frames, *sr.shape[2:])
    with autocast(prec, gt.device):
        preds = nets.d_train(torch.cat([gt_f, sr_f.detach()]))
        losses["d_real"] = lsgan_loss([p[:frames] for p in preds], True)
        losses["d_fake"] = lsgan_loss([p[frames:] for p in preds], False)
    nets.opt_d.zero_grad(set_to_none=True)
    (losses["d_real"] + losses["d_fake"]).backward()
    nets.opt_d.step()


def _train_step(cfg: TrainConfig, nets: _Nets, s2: _Stage2Parts, lr: Tensor, gt: Tensor,
                prec: str) -> dict[str, Tensor]:
    """One iteration: the G update, the EMA update, then (with a discriminator) the D update. The
    forward passes and losses run under ``prec``'s autocast (:mod:`.precision`), backward outside it."""
    assert nets.g_train is not None
    losses: dict[str, Tensor] = {}
    nets.g.train()
    with autocast(prec, lr.device):  # fp32 master weights
        sr = nets.g_train(lr)
        loss_g = _g_loss(cfg, nets, s2, sr, gt, losses)
    nets.opt_g.zero_grad(set_to_none=True)
    loss_g.backward()
    nets.opt_g.step()
    ema_update(nets.ema, nets.g, cfg.ema)
    if nets.d is not None:
        _d_step(nets, sr, gt, losses, prec)
    return losses


def train(cfg: TrainConfig, progress: bool = True) -> dict:
    """Run (or resume) training; returns a summary (iterations done, last losses, iterations/s)."""
    from .data import ClipSampler, TrainClips, find_sources

    cfg.validate()
    dev, rank, world, _ = setup_distributed(cfg.device)
    main = rank == 0
    prec = resolve_train_precision(cfg.precision, dev)
    _set_threads(cfg, dev, world)
    out = Path(cfg.out)
    lr_g = cfg.lr if cfg.lr is not None else STAGE_LR[cfg.stage]
    lr_d = cfg.lr_d if cfg.lr_d is not None else STAGE_LR[2]
    torch.manual_seed(cfg.seed + rank)
    sampler = ClipSampler(find_sources(cfg.data, cfg.frames), cfg.frames, cfg.patch, tuple(cfg.intervals))
    dataset = TrainClips(sampler, cfg.stage, seed=cfg.seed)
    nets = _build_nets(cfg, dev, lr_g, lr_d)
    start, history = _resume_or_start(cfg, nets, out, main, lr_g, lr_d)
    if start >= cfg.iters:
        if main:
            log.info(f"train-vsr: already at iteration {start} >= {cfg.iters}; nothing to do")
        return {"iter": start, "history": history[-1:] if history else [], "its_per_s": 0.0}
    s2 = _stage2_parts(cfg, dev, main)
    nets.g_train = wrap_ddp(nets.g, dev, world)
    nets.d_train = wrap_ddp(nets.d, dev, world) if nets.d is not None else None
    loader = _loader(dataset, cfg, start, rank, world, dev)

    bar = progress_bar(cfg.iters, start, f"train-vsr stage {cfg.stage}", progress and main)
    losses_log = LossLog(out / "losses.jsonl", main)
    t0 = time.perf_counter()
    it = start
    running: dict[str, list[float]] = {}
    last: dict[str, float] = {}
    for batch in loader:
        lr, gt = _lr_gt(batch, cfg, dev, rank, it, s2)
        losses = _train_step(cfg, nets, s2, lr, gt, prec)
        it += 1
        for k, v in losses.items():
            running.setdefault(k, []).append(float(v.detach()))
        bar.update(1)
        if it % cfg.log_every == 0 or it == cfg.iters:
            last = {k: float(np.mean(v)) for k, v in running.items()}
            running.clear()
            if main:
                rec = {"iter": it, "time": time.time(), **last}
                history.append(rec)
                losses_log.write(rec)
                bar.set_postfix({k: f"{v:.4f}" for k, v in last.items()})
        if main and (it % cfg.sample_every == 0 or it == cfg.iters):
            with torch.no_grad():
                _save_strip(lr, nets.ema(lr), gt, out / "samples" / f"iter_{it:07d}.png")
        if main and (it % cfg.save_every == 0 or it == cfg.iters):
            ck = out / "checkpoints"
            every = [ck / f"iter_{it:07d}.pt"] if it % cfg.save_every == 0 else []
            save_checkpoint(nets.state(cfg, it, history, s2.percep_kind), ck / "latest.pt", *every)
            _plot_losses(history, out / "losses.png")
    bar.close()
    elapsed = time.perf_counter() - t0
    if world > 1:
        finish_distributed()
    return {"iter": it, "last": last, "its_per_s": (it - start) / elapsed if elapsed > 0 else 0.0,
            "history": history, "perceptual": s2.percep_kind, "rank": rank}


# ----------------------------------------------------------------------------------------- export
def _run_label(run: str | os.PathLike) -> str:
    """The run's folder name (and checkpoint file), never the absolute path: model files get shared,
    and the trainer's directory layout (home folder, user name) has no business travelling with them."""
    p = Path(run).resolve()
    return f"{p.parent.name}/{p.name}" if p.is_file() else p.name


def export_run(run: str | os.PathLike, out: str | os.PathLike, name: str | None = None) -> Path:
    """Write a run's EMA generator as safetensors that ``build_network`` / ``Upscale`` load.

    Metadata: name, variant, origin (run, stage, iteration), license (the user's own training).
    """
    from ..weights.descriptors import build_network, describe
    from ..weights.loading import save_state_dict

    state = load_run_checkpoint(run)
    ema = state.get("params_ema") if isinstance(state, dict) else None
    if not isinstance(ema, dict) or not ema or not all(isinstance(v, torch.Tensor) for v in ema.values()):
        raise WeightsError(f"{run}: the checkpoint holds no EMA weights (params_ema), which every "
                           "vqdsr train-vsr checkpoint has; accepted: a run folder or run .pt written by "
                           "vqdsr train-vsr (a plain weights file needs no export: Upscale loads it)")
    sd = {k: v.float().contiguous() for k, v in ema.items()}
    desc = describe(sd)
    build_network(sd)  # raises if the weights do not fit
    outp = Path(out)
    meta = {"name": name or outp.stem, "kind": "vsr", "variant": desc.variant,
            "origin": f"trained with vqdsr train-vsr (stage {state.get('stage', '?')}, "
                      f"iteration {state.get('iter', '?')}, EMA weights) from run {_run_label(run)}",
            "license": "as the user's training data and initial weights permit",
            "perceptual": str(state.get("perceptual", "")), "stage": str(state.get("stage", "")),
            "iteration": str(state.get("iter", ""))}
    save_state_dict(sd, outp, meta)
    return outp
