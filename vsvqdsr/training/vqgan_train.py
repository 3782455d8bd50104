"""The VQGAN degradation-model training loop (the released taming-transformers recipe), CPU or one/many
GPUs (torchrun + DDP).

Per batch: one autoencoder update (L1 + perceptual + codebook + adaptive-weight hinge GAN after
``disc_start``), then one discriminator update on the same batch (hinge, reusing the detached
reconstruction of the autoencoder pass instead of a second forward). Stage 2 starts from a stage-1
run (matching names, strict=False, discriminator included) and trains the ``top.*`` group at
``top_lr_weight`` (0.25) times the rate of the rest.

Run folder: ``last.pt`` (resumable, atomic), ``log.jsonl`` (losses), ``samples/`` (input over
reconstruction PNGs), ``degrader.safetensors`` (fp16 export with config metadata).
"""
from __future__ import annotations

import json
import math
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.distributed as dist
from torch import Tensor, nn

from ..log import get_logger
from ..nets.vqgan import CONFIGS, MultiScaleVQGAN, TopVQGAN, VQGANConfig
from ..weights.degrader import load_degrader_state, save_degrader
from ..weights.loading import atomic_write_bytes
from .loop import (LossLog, finish_distributed, load_checkpoint, progress_bar, save_checkpoint, setup_distributed,
                   wrap_ddp)
from .perceptual import VQGAN_KINDS, PerceptualWeights, build_perceptual
from .precision import autocast, resolve_train_precision
from .vqgan_data import LQFrameDataset, filter_near_duplicates, list_frames
from .vqgan_losses import NLayerDiscriminator, adaptive_weight, hinge_d_loss

__all__ = ["TrainOptions", "train_vqgan"]


@dataclass
class TrainOptions:
    """Options of :func:`train_vqgan` (defaults: the paper's stage-1 recipe, scaled by batch)."""

    data: list[str]
    out: str
    stage: int = 1
    config: str | dict = "lite"
    init: str | None = None                 # stage 2: stage-1 run folder / file; stage 1: a degrader to fine-tune
    crop: int = 256
    batch: int = 4
    steps: int = 1000
    max_minutes: float | None = None        # stop (and save) after this wall time
    base_lr: float | None = None            # per-sample base LR; default 4.5e-6 (stage 1) / 2e-6 (stage 2)
    lr: float | None = None                 # overrides base_lr * batch * world
    top_lr_weight: float = 0.25
    disc_start: int = 10000
    disc_weight: float = 0.8
    disc_ndf: int | None = None             # discriminator width; default 64 (paper), 16 for "lite"
    codebook_weight: float = 1.0
    perceptual: str = "auto"                # auto | lpips | dfm | none
    perceptual_weight: float = 1.0
    vgg_weights: str | None = None
    lpips_weights: str | None = None
    dedup_threshold: float = 0.0            # mean abs diff (0-255) below which a frame is dropped
    video_step: int = 1
    workers: int = 0
    seed: int = 23
    save_every: int = 200
    sample_every: int = 200
    threads: int | None = None
    precision: str = "auto"                 # auto | fp32 | bf16 (autocast of the forward passes)
    extra: dict = field(default_factory=dict)


log = get_logger(__name__)


def _save_samples(x: Tensor, y: Tensor, path: Path) -> None:
    import cv2
    n = min(4, x.shape[0])
    top = torch.cat(list(x[:n]), dim=2)
    bot = torch.cat(list(y[:n]), dim=2)
    img = ((torch.cat([top, bot], dim=1).clamp(-1, 1) + 1) * 127.5).round().byte().permute(1, 2, 0).cpu().numpy()
    ok, enc = cv2.imencode(".png", cv2.cvtColor(img, cv2.COLOR_RGB2BGR))
    if ok:
        atomic_write_bytes(path, enc.tobytes())


def _init_from_stage1(model: MultiScaleVQGAN, disc: NLayerDiscriminator, init: str) -> int:
    p = Path(init)
    if p.is_dir():
        p = p / "last.pt" if (p / "last.pt").is_file() else p / "degrader.safetensors"
    if p.suffix == ".pt":
        ck = load_checkpoint(p)
        sd, dsd = ck["model"], ck.get("disc")
    else:
        sd, _ = load_degrader_state(p)
        dsd = None
    own = model.state_dict()
    matched = {k: v.float() for k, v in sd.items() if k in own and own[k].shape == v.shape}
    missing = model.load_state_dict(matched, strict=False).missing_keys
    if any(not k.startswith(("mid.", "bot.")) for k in missing):
        raise ValueError(f"stage-1 weights {p} do not fit this config (missing {missing[:3]})")
    if dsd:
        disc.load_state_dict(dsd)
    return len(matched)


@dataclass
class _Run:
    """The models, optimisers and perceptual term of a run. ``net`` is the autoencoder the step calls
    (DDP-wrapped under torchrun). The discriminator is called several times per step (real and fake
    separately, as BatchNorm statistics are per call), which DDP's reducer does not allow, so its
    gradients are averaged by hand (:meth:`average_disc_grads`)."""

    model: TopVQGAN
    disc: NLayerDiscriminator
    opt_ae: torch.optim.Optimizer
    opt_d: torch.optim.Optimizer
    perc: nn.Module | None
    perc_kind: str
    world: int = 1
    net: nn.Module | None = None

    def state(self, opt: TrainOptions, cfg: VQGANConfig, step: int, history: list[dict]) -> dict:
        return {"stage": opt.stage, "config": cfg.to_dict(), "step": step,
                "model": self.model.state_dict(), "disc": self.disc.state_dict(),
                "opt_ae": self.opt_ae.state_dict(), "opt_d": self.opt_d.state_dict(),
                "history": json.dumps(history), "options": json.dumps(asdict(opt), default=str)}

    def load(self, ck: dict) -> None:
        self.model.load_state_dict(ck["model"])
        self.disc.load_state_dict(ck["disc"])
        self.opt_ae.load_state_dict(ck["opt_ae"])
        self.opt_d.load_state_dict(ck["opt_d"])

    def average_disc_grads(self) -> None:
        if self.world > 1:
            for p in self.disc.parameters():
                if p.grad is not None:
                    dist.all_reduce(p.grad)
                    p.grad.div_(self.world)


def _frames(opt: TrainOptions, out: Path, rank: int) -> list[Path]:
    """The training frames: images and decoded videos, near-duplicates dropped (``dedup_threshold``)."""
    groups = list_frames(opt.data, out / "frames", opt.video_step)
    frames = (filter_near_duplicates(groups, opt.dedup_threshold) if opt.dedup_threshold > 0
              else [f for g in groups for f in g])
    if rank == 0:
        log.info(f"train-degrader: {len(frames)} frames kept of {sum(len(g) for g in groups)} "
                 f"from {len(groups)} sources")
    return frames


def _learning_rate(opt: TrainOptions, world: int) -> float:
    """``lr``, else the per-sample base rate (4.5e-6 stage 1, 2e-6 stage 2) times batch times processes."""
    base = opt.base_lr if opt.base_lr is not None else (4.5e-6 if opt.stage == 1 else 2e-6)
    return opt.lr if opt.lr is not None else base * opt.batch * world


def _build_run(opt: TrainOptions, cfg: VQGANConfig, device: torch.device, lr: float, world: int) -> _Run:
    """Models, perceptual term and Adam (0.5, 0.9) optimisers; stage 2 trains ``top.*`` at
    ``top_lr_weight`` times the rate of the rest."""
    model: TopVQGAN = (MultiScaleVQGAN(cfg) if opt.stage == 2 else TopVQGAN(cfg)).to(device)
    disc = NLayerDiscriminator(_disc_ndf(opt)).to(device)
    perc, perc_kind = build_perceptual(opt.perceptual, VQGAN_KINDS,
                                       PerceptualWeights(opt.vgg_weights, opt.lpips_weights))
    if perc is not None:
        perc = perc.to(device)
    if opt.stage == 2:
        top = [p for n, p in model.named_parameters() if n.startswith("top.")]
        rest = [p for n, p in model.named_parameters() if not n.startswith("top.")]
        groups_ae = [{"params": top, "lr": lr * opt.top_lr_weight}, {"params": rest, "lr": lr}]
    else:
        groups_ae = [{"params": list(model.parameters()), "lr": lr}]
    opt_ae = torch.optim.Adam(groups_ae, lr=lr, betas=(0.5, 0.9))
    opt_d = torch.optim.Adam(disc.parameters(), lr=lr, betas=(0.5, 0.9))
    return _Run(model, disc, opt_ae, opt_d, perc, perc_kind, world)


def _disc_ndf(opt: TrainOptions) -> int:
    return opt.disc_ndf or (16 if opt.config == "lite" else 64)


def _resume_or_init(opt: TrainOptions, cfg: VQGANConfig, run: _Run, ckpt_path: Path,
                    rank: int) -> tuple[int, list[dict]]:
    """Resume from ``last.pt``, else start from ``opt.init`` (stage 2: the stage-1 run; stage 1: a
    degrader's top branch, to fine-tune it) or from random weights; returns ``(step, history)``."""
    if ckpt_path.is_file():
        ck = load_checkpoint(ckpt_path)
        if int(ck["stage"]) != opt.stage or ck["config"] != cfg.to_dict():
            raise ValueError(f"{ckpt_path} is a stage-{ck['stage']} run with another config; use a new --out")
        run.load(ck)
        step = int(ck["step"])
        if rank == 0:
            log.info(f"train-degrader: resumed {ckpt_path} at step {step}")
        return step, json.loads(ck.get("history", "[]"))
    if opt.init:
        n = _init_from_stage1(run.model, run.disc, opt.init)  # type: ignore[arg-type]
        if rank == 0:
            log.info(f"train-degrader: stage {opt.stage} initialised from {opt.init} ({n} tensors)")
    elif opt.stage == 2 and rank == 0:
        log.warning("train-degrader: stage 2 without --init starts from random weights")
    return 0, []


def _train_step(run: _Run, opt: TrainOptions, x: Tensor, step: int, prec: str) -> dict[str, Tensor]:
    """One autoencoder update (L1 + perceptual + codebook + adaptive-weight hinge GAN from
    ``disc_start``), then one discriminator update on the same batch, reusing the detached
    reconstruction. Forward passes and losses run under ``prec``'s autocast (:mod:`.precision`),
    backward outside it. Returns the terms (and ``xr``, the reconstruction)."""
    assert run.net is not None
    with autocast(prec, x.device):
        xr, q_loss = run.net(x)
        rec = (x - xr).abs()
        p_loss = torch.zeros((), device=x.device)
        if run.perc_kind == "lpips":
            p_loss = run.perc(x, xr).mean()  # type: ignore[misc]
        nll = rec.mean() + opt.perceptual_weight * p_loss
        gan_on = step >= opt.disc_start
        need_d = gan_on or run.perc_kind == "dfm"
        run.disc.requires_grad_(False)  # the autoencoder pass only needs gradients w.r.t. the image
        if need_d:
            logits_fake, f_fake = run.disc(xr, features=True)
            if run.perc_kind == "dfm":
                with torch.no_grad():
                    _, f_real = run.disc(x, features=True)
                p_loss = sum((a - b.detach()).abs().mean() for a, b in zip(f_fake, f_real)) / len(f_fake)
                nll = rec.mean() + opt.perceptual_weight * p_loss
        g_loss = torch.zeros((), device=x.device)
        d_w = torch.zeros((), device=x.device)
        if gan_on:
            g_loss = -logits_fake.mean()
            try:
                d_w = adaptive_weight(nll, g_loss, run.model.conv_out.weight, opt.disc_weight)
            except RuntimeError:
                d_w = torch.zeros((), device=x.device)
        loss = nll + d_w * g_loss + opt.codebook_weight * q_loss
    run.opt_ae.zero_grad(set_to_none=True)
    loss.backward()
    run.opt_ae.step()
    d_loss = torch.zeros((), device=x.device)
    run.disc.requires_grad_(True)
    if need_d:
        with autocast(prec, x.device):
            d_loss = hinge_d_loss(run.disc(x.detach()), run.disc(xr.detach()))
        run.opt_d.zero_grad(set_to_none=True)
        d_loss.backward()
        run.average_disc_grads()
        run.opt_d.step()
    return {"loss": loss, "l1": rec.detach().mean(), "perceptual": p_loss, "codebook": q_loss, "g": g_loss,
            "d": d_loss, "d_weight": d_w, "xr": xr}


def _summary(opt: TrainOptions, cfg: VQGANConfig, run: _Run, step: int, history: list[dict], n_frames: int,
             lr: float, seconds: float, out: Path) -> dict:
    first = history[: max(1, min(20, len(history) // 5))]
    last = history[-max(1, min(20, len(history) // 5)):]
    return {"stage": opt.stage, "config": cfg.to_dict(), "steps": step, "frames": n_frames,
            "perceptual": run.perc_kind, "lr": lr, "batch": opt.batch, "world": run.world, "crop": opt.crop,
            "seconds": round(seconds, 1), "disc_ndf": _disc_ndf(opt),
            "l1_first": float(np.mean([h["l1"] for h in first])) if history else math.nan,
            "l1_last": float(np.mean([h["l1"] for h in last])) if history else math.nan,
            "codebook_last": float(np.mean([h["codebook"] for h in last])) if history else math.nan,
            "files": {"checkpoint": str(out / "last.pt"), "degrader": str(out / "degrader.safetensors")}}


def train_vqgan(opt: TrainOptions) -> dict:
    """Train (or resume) a VQGAN run; returns a summary dict (steps, losses, timings, files)."""
    device, rank, world, _ = setup_distributed()
    prec = resolve_train_precision(opt.precision, device)
    if opt.threads:
        torch.set_num_threads(opt.threads)
    torch.manual_seed(opt.seed + rank)
    out = Path(opt.out)
    if rank == 0:
        (out / "samples").mkdir(parents=True, exist_ok=True)
    cfg = CONFIGS[opt.config] if isinstance(opt.config, str) else VQGANConfig.from_dict(opt.config)
    if opt.stage not in (1, 2):
        raise ValueError(f"stage must be 1 or 2, got {opt.stage}")

    frames = _frames(opt, out, rank)
    ds = LQFrameDataset(frames, opt.crop, length=max(len(frames), opt.batch * 50), seed=opt.seed + 1000 * rank)
    loader = torch.utils.data.DataLoader(ds, batch_size=opt.batch, shuffle=False, num_workers=opt.workers,
                                         drop_last=True, persistent_workers=opt.workers > 0)
    lr = _learning_rate(opt, world)
    run = _build_run(opt, cfg, device, lr, world)
    ckpt_path = out / "last.pt"
    step, history = _resume_or_init(opt, cfg, run, ckpt_path, rank)
    run.net = wrap_ddp(run.model, device, world)

    def save() -> None:
        if rank == 0:
            save_checkpoint(run.state(opt, cfg, step, history), ckpt_path)
            save_degrader(run.model, out / "degrader.safetensors", half=True,
                          extra={"steps": str(step), "perceptual": run.perc_kind})

    t0 = time.time()
    run.model.train()
    run.disc.train()
    bar = progress_bar(opt.steps, step, f"VQGAN stage {opt.stage}", rank == 0)
    losses_log = LossLog(out / "log.jsonl", rank == 0)
    epoch = step // max(1, len(loader))
    stop = False
    while step < opt.steps and not stop:
        ds.epoch = epoch
        for x in loader:
            x = x.to(device, non_blocking=True)
            terms = _train_step(run, opt, x, step, prec)
            step += 1
            val = {k: float(terms[k].detach()) if torch.is_tensor(terms[k]) else float(terms[k])
                   for k in ("loss", "l1", "perceptual", "codebook", "g", "d", "d_weight")}
            entry = {"step": step, **val, "time": round(time.time() - t0, 2)}
            history.append({k: entry[k] for k in ("step", "l1", "codebook")})
            losses_log.write(entry)
            bar.update(1)
            bar.set_postfix(l1=f"{entry['l1']:.4f}", q=f"{entry['codebook']:.4f}", p=f"{entry['perceptual']:.3f}")
            if rank == 0 and opt.sample_every and step % opt.sample_every == 0:
                _save_samples(x.detach(), terms["xr"].detach(), out / "samples" / f"step_{step:07d}.png")
            if opt.save_every and step % opt.save_every == 0:
                save()
            if opt.max_minutes is not None and time.time() - t0 > 60 * opt.max_minutes:
                stop = True
            if step >= opt.steps or stop:
                break
        epoch += 1
    bar.close()
    save()
    finish_distributed()
    summary = _summary(opt, cfg, run, step, history, len(frames), lr, time.time() - t0, out)
    if rank == 0:
        atomic_write_bytes(out / "summary.json", json.dumps(summary, indent=2).encode())
    return summary
