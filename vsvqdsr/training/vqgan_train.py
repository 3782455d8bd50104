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
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.distributed as dist
from torch import Tensor

from ..log import get_logger, progress_enabled
from ..nets.vqgan import CONFIGS, MultiScaleVQGAN, TopVQGAN, VQGANConfig
from ..weights.degrader import load_degrader_state, save_degrader
from ..weights.loading import atomic_torch_save, atomic_write_bytes
from .loop import setup_distributed
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
        ck = torch.load(str(p), map_location="cpu", weights_only=True)
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

    groups = list_frames(opt.data, out / "frames", opt.video_step)
    frames = (filter_near_duplicates(groups, opt.dedup_threshold) if opt.dedup_threshold > 0
              else [f for g in groups for f in g])
    n_all = sum(len(g) for g in groups)
    if rank == 0:
        log.info(f"train-degrader: {len(frames)} frames kept of {n_all} from {len(groups)} sources")
    ds = LQFrameDataset(frames, opt.crop, length=max(len(frames), opt.batch * 50), seed=opt.seed + 1000 * rank)
    loader = torch.utils.data.DataLoader(ds, batch_size=opt.batch, shuffle=False, num_workers=opt.workers,
                                         drop_last=True, persistent_workers=opt.workers > 0)

    model: TopVQGAN = (MultiScaleVQGAN(cfg) if opt.stage == 2 else TopVQGAN(cfg)).to(device)
    ndf = opt.disc_ndf or (16 if opt.config == "lite" else 64)
    disc = NLayerDiscriminator(ndf).to(device)
    perc, perc_kind = build_perceptual(opt.perceptual, VQGAN_KINDS,
                                       PerceptualWeights(opt.vgg_weights, opt.lpips_weights))
    if perc is not None:
        perc = perc.to(device)
    base = opt.base_lr if opt.base_lr is not None else (4.5e-6 if opt.stage == 1 else 2e-6)
    lr = opt.lr if opt.lr is not None else base * opt.batch * world
    if opt.stage == 2:
        top = [p for n, p in model.named_parameters() if n.startswith("top.")]
        rest = [p for n, p in model.named_parameters() if not n.startswith("top.")]
        groups_ae = [{"params": top, "lr": lr * opt.top_lr_weight}, {"params": rest, "lr": lr}]
    else:
        groups_ae = [{"params": list(model.parameters()), "lr": lr}]
    opt_ae = torch.optim.Adam(groups_ae, lr=lr, betas=(0.5, 0.9))
    opt_d = torch.optim.Adam(disc.parameters(), lr=lr, betas=(0.5, 0.9))

    step, history = 0, []
    ckpt_path = out / "last.pt"
    if ckpt_path.is_file():
        ck = torch.load(str(ckpt_path), map_location="cpu", weights_only=True)
        if int(ck["stage"]) != opt.stage or ck["config"] != cfg.to_dict():
            raise ValueError(f"{ckpt_path} is a stage-{ck['stage']} run with another config; use a new --out")
        model.load_state_dict(ck["model"])
        disc.load_state_dict(ck["disc"])
        opt_ae.load_state_dict(ck["opt_ae"])
        opt_d.load_state_dict(ck["opt_d"])
        step = int(ck["step"])
        history = json.loads(ck.get("history", "[]"))
        if rank == 0:
            log.info(f"train-degrader: resumed {ckpt_path} at step {step}")
    elif opt.init:  # stage 2: the stage-1 run; stage 1: a degrader's top branch (fine-tuning it)
        n = _init_from_stage1(model, disc, opt.init)  # type: ignore[arg-type]
        if rank == 0:
            log.info(f"train-degrader: stage {opt.stage} initialised from {opt.init} ({n} tensors)")
    elif opt.stage == 2 and rank == 0:
        log.warning("train-degrader: stage 2 without --init starts from random weights")

    # The autoencoder is wrapped in DDP (one forward, one backward per step). The discriminator is
    # called several times per step (real and fake separately, as BatchNorm statistics are per call),
    # which DDP's reducer does not allow, so its gradients are averaged by hand instead.
    net = model
    if world > 1:
        net = torch.nn.parallel.DistributedDataParallel(model, device_ids=[device.index] if device.type == "cuda" else None)
    disc_net = disc

    def _average_disc_grads() -> None:
        if world > 1:
            for p in disc.parameters():
                if p.grad is not None:
                    dist.all_reduce(p.grad)
                    p.grad.div_(world)

    def save() -> None:
        if rank != 0:
            return
        atomic_torch_save({"stage": opt.stage, "config": cfg.to_dict(), "step": step,
                            "model": model.state_dict(), "disc": disc.state_dict(),
                            "opt_ae": opt_ae.state_dict(), "opt_d": opt_d.state_dict(),
                            "history": json.dumps(history), "options": json.dumps(asdict(opt), default=str)},
                           ckpt_path)
        save_degrader(model, out / "degrader.safetensors", half=True,
                      extra={"steps": str(step), "perceptual": perc_kind})

    from tqdm import tqdm
    t0 = time.time()
    model.train()
    disc.train()
    bar = tqdm(total=opt.steps, initial=step, desc=f"VQGAN stage {opt.stage}",
               disable=rank != 0 or not progress_enabled(), file=sys.stderr, dynamic_ncols=True)
    epoch = step // max(1, len(loader))
    log_f = (out / "log.jsonl").open("a") if rank == 0 else None
    stop = False
    while step < opt.steps and not stop:
        ds.epoch = epoch
        for x in loader:
            x = x.to(device, non_blocking=True)
            # ---- autoencoder pass ----
            with autocast(prec, device):  # forward passes and losses; backward outside
                xr, q_loss = net(x)
                rec = (x - xr).abs()
                p_loss = torch.zeros((), device=device)
                if perc_kind == "lpips":
                    p_loss = perc(x, xr).mean()
                nll = rec.mean() + opt.perceptual_weight * p_loss
                gan_on = step >= opt.disc_start
                need_d = gan_on or perc_kind == "dfm"
                disc.requires_grad_(False)  # the autoencoder pass only needs gradients w.r.t. the image
                if need_d:
                    logits_fake, f_fake = disc_net(xr, features=True)
                    if perc_kind == "dfm":
                        with torch.no_grad():
                            _, f_real = disc_net(x, features=True)
                        p_loss = sum((a - b.detach()).abs().mean() for a, b in zip(f_fake, f_real)) / len(f_fake)
                        nll = rec.mean() + opt.perceptual_weight * p_loss
                g_loss = torch.zeros((), device=device)
                d_w = torch.zeros((), device=device)
                if gan_on:
                    g_loss = -logits_fake.mean()
                    try:
                        d_w = adaptive_weight(nll, g_loss, model.conv_out.weight, opt.disc_weight)
                    except RuntimeError:
                        d_w = torch.zeros((), device=device)
                loss = nll + d_w * g_loss + opt.codebook_weight * q_loss
            opt_ae.zero_grad(set_to_none=True)
            loss.backward()
            opt_ae.step()
            # ---- discriminator pass ----
            d_loss = torch.zeros((), device=device)
            disc.requires_grad_(True)
            if need_d:
                with autocast(prec, device):
                    d_loss = hinge_d_loss(disc_net(x.detach()), disc_net(xr.detach()))
                opt_d.zero_grad(set_to_none=True)
                d_loss.backward()
                _average_disc_grads()
                opt_d.step()
            step += 1
            rec_v = float(rec.detach().mean())
            rec_entry = {"step": step, "loss": float(loss), "l1": rec_v, "perceptual": float(p_loss),
                         "codebook": float(q_loss), "g": float(g_loss), "d": float(d_loss), "d_weight": float(d_w),
                         "time": round(time.time() - t0, 2)}
            history.append({k: rec_entry[k] for k in ("step", "l1", "codebook")})
            if log_f:
                log_f.write(json.dumps(rec_entry) + "\n")
                log_f.flush()
            bar.update(1)
            bar.set_postfix(l1=f"{rec_v:.4f}", q=f"{float(q_loss):.4f}", p=f"{float(p_loss):.3f}")
            if rank == 0 and opt.sample_every and step % opt.sample_every == 0:
                _save_samples(x.detach(), xr.detach(), out / "samples" / f"step_{step:07d}.png")
            if opt.save_every and step % opt.save_every == 0:
                save()
            if opt.max_minutes is not None and time.time() - t0 > 60 * opt.max_minutes:
                stop = True
            if step >= opt.steps or stop:
                break
        epoch += 1
    bar.close()
    save()
    if log_f:
        log_f.close()
    if dist.is_initialized():
        dist.barrier()
    first = history[: max(1, min(20, len(history) // 5))]
    last = history[-max(1, min(20, len(history) // 5)):]
    summary = {"stage": opt.stage, "config": cfg.to_dict(), "steps": step, "frames": len(frames),
               "perceptual": perc_kind, "lr": lr, "batch": opt.batch, "world": world, "crop": opt.crop,
               "seconds": round(time.time() - t0, 1), "disc_ndf": ndf,
               "l1_first": float(np.mean([h["l1"] for h in first])) if history else math.nan,
               "l1_last": float(np.mean([h["l1"] for h in last])) if history else math.nan,
               "codebook_last": float(np.mean([h["codebook"] for h in last])) if history else math.nan,
               "files": {"checkpoint": str(ckpt_path), "degrader": str(out / "degrader.safetensors")}}
    if rank == 0:
        atomic_write_bytes(out / "summary.json", json.dumps(summary, indent=2).encode())
    return summary
