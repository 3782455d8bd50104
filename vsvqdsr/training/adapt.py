"""Adapting the upscaler to one show's damage (``vqdsr adapt``): the VQD-SR recipe run for a user.

The paper's idea (Tuo et al., ICCV 2023, sections 3.2-3.3): learn the degradation from the
low-quality footage itself with the multi-scale VQGAN, then train the VSR network on clean clips
degraded by it. :func:`adapt` strings the project's trainers together, in a work folder, stage by
stage (each stage writes ``WORK/stages/<stage>.json`` atomically when it is done; a resumed run skips
finished stages and the trainers resume from their own checkpoints):

1. ``frames``: the LQ videos decoded at their own size (the size ``Upscale`` will see), scene-aware
   near-duplicate removal on a 1/4-size grey copy: a frame is kept when it differs from the last kept
   frame by at least :data:`DEDUP_MAD` (0-255 mean abs difference), and always at a scene cut (a jump
   of at least :data:`SCENE_MAD` from the previous frame), so every shot is represented.
2. ``degrader1`` / ``degrader2``: ``train_vqgan`` stage 1 (top branch) then stage 2 (all branches),
   lite config; when the shipped ``degrade-lite`` has the lite config, stage 1 starts from it and
   stage 2 from stage 1's top branch with its middle and bottom branches.
3. ``floor``: the new degrader's k = 1 reconstruction PSNR on the user's frames (its own error, the
   floor of what it can imitate), against the damage (PSNR of the LQ frames against a clean reference
   when ``reference`` videos are given), printed on stderr before the upscaler is trained.
4. ``vsr``: ``vsr_train.train`` stage 2 from ``base`` on clean clips degraded by the new degrader
   (basic operators, VQ step with the released stochastic top-k: k = 1 on top, random on the
   bottom branch; H.264; L1 + perceptual + LSGAN at the paper's stage-2 LR 5e-5).
5. ``export``: the EMA weights to ``model_dir()/NAME.safetensors`` and a card ``NAME.json``.

The time budget (:func:`split_budget`) gives each stage a fixed share; the degrader stages stop on
wall time (``max_minutes``), the VSR stage measures its own step time over a short first leg and
sets its iteration count from it (:func:`vsr_iterations`).
"""
from __future__ import annotations

import hashlib
import json
import math
import os
import shutil
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from ..log import get_logger, progress_enabled

__all__ = ["BUDGET_SHARES", "DEDUP_MAD", "SCENE_MAD", "AdaptOptions", "AdaptError", "split_budget",
           "vsr_iterations", "select_frames", "adapt", "STAGES"]

#: Share of ``--minutes`` per stage (sums to 1). Frames and export take little; the floor
#: measurement is a few forward passes; the rest goes to the two trainers, the upscaler most.
BUDGET_SHARES: dict[str, float] = {"frames": 0.05, "degrader1": 0.20, "degrader2": 0.20, "floor": 0.02,
                                   "vsr": 0.50, "export": 0.03}
#: Near-duplicate threshold (mean abs difference, 0-255, 1/4-size grey): held cels and still shots.
DEDUP_MAD = 1.0
#: A frame-to-frame jump at least this large is a scene cut (its first frame is always kept).
SCENE_MAD = 30.0
#: Iterations of the VSR stage's first leg, whose measured speed sets the rest.
PROBE_ITERS = 5
STAGES = ("frames", "degrader1", "degrader2", "floor", "vsr", "export")


class AdaptError(Exception):
    """A user-facing refusal (bad input or a state the run cannot continue from)."""


log = get_logger(__name__)


def split_budget(minutes: float) -> dict[str, float]:
    """Minutes per stage for a total of ``minutes`` (:data:`BUDGET_SHARES`); raises ValueError if
    ``minutes`` is not a positive finite number."""
    if not isinstance(minutes, (int, float)) or not math.isfinite(minutes) or minutes <= 0:
        raise ValueError(f"minutes must be a positive number, got {minutes!r}")
    return {k: minutes * v for k, v in BUDGET_SHARES.items()}


def vsr_iterations(stage_minutes: float, seconds_per_iter: float, done: int, cap: int | None = None,
                   spent: float | None = None) -> int:
    """Total VSR iterations that fit ``stage_minutes`` at the measured ``seconds_per_iter``, never
    fewer than the ``done`` ones, at most ``cap`` (when given). ``spent``: seconds the ``done``
    iterations took with start-up; the rest of the stage runs at ``seconds_per_iter`` (None: every
    iteration of the stage at that rate)."""
    if seconds_per_iter <= 0 or not math.isfinite(seconds_per_iter):
        raise ValueError(f"seconds_per_iter must be positive, got {seconds_per_iter!r}")
    if spent is None:
        n = max(done, int(stage_minutes * 60 / seconds_per_iter))
    else:
        n = done + max(0, int((stage_minutes * 60 - spent) / seconds_per_iter))
    return min(n, cap) if cap is not None else n


@dataclass
class AdaptOptions:
    """Options of :func:`adapt`. ``degrader_steps`` / ``vsr_iters`` cap the step counts the budget
    gives (None: the budget alone decides); the sizes default to the project's CPU recipe."""

    videos: list[str]
    name: str
    clean: list[str] = field(default_factory=list)
    reference: list[str] = field(default_factory=list)
    base: str = "vqdsr-ft"
    minutes: float = 60.0
    device: str = "cpu"
    work: str | None = None
    resume: bool = False
    force: bool = False
    degrader_steps: int | None = None
    degrader_crop: int = 256
    degrader_batch: int = 4
    vsr_iters: int | None = None
    batch: int = 2
    frames: int = 5
    patch: int = 128
    percep_weight: float = 1.0
    gan_weight: float = 1.0
    threads: int = 0
    seed: int = 0


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _write_json(path: Path, obj: dict) -> None:
    from ..weights.loading import atomic_write_bytes

    atomic_write_bytes(path, (json.dumps(obj, indent=2) + "\n").encode("utf-8"))


# ------------------------------------------------------------------------------------------ frames
def select_frames(groups: list[list[Path]], dedup: float = DEDUP_MAD, cut: float = SCENE_MAD,
                  progress: bool = False) -> list[Path]:
    """Scene-aware near-duplicate removal (module docstring, stage 1) over per-source frame lists."""
    import numpy as np
    from tqdm import tqdm

    from .vqgan_data import _small_grey

    kept: list[Path] = []
    bar = tqdm(total=sum(len(g) for g in groups), desc="adapt frames", unit="frame", file=sys.stderr,
               disable=not (progress and progress_enabled()), dynamic_ncols=True)
    for g in groups:
        prev = last = None
        for f in g:
            bar.update(1)
            cur = _small_grey(f)
            new_shape = last is None or last.shape != cur.shape
            scene_cut = prev is not None and prev.shape == cur.shape and float(np.abs(cur - prev).mean()) >= cut
            if new_shape or scene_cut or float(np.abs(cur - last).mean()) >= dedup:
                kept.append(f)
                last = cur
            prev = cur
    bar.close()
    return kept


def _stage_frames(opt: AdaptOptions, work: Path, budget: dict, done: dict) -> dict:
    import cv2

    from .vqgan_data import list_frames

    groups = list_frames(opt.videos, work / "decoded")
    kept = select_frames(groups, progress=True)
    out = work / "frames"
    if out.exists():
        shutil.rmtree(out)
    tmp = work / "frames.tmp"
    if tmp.exists():
        shutil.rmtree(tmp)
    tmp.mkdir(parents=True)
    sizes = set()
    for i, f in enumerate(kept):
        shutil.copyfile(f, tmp / f"{i:06d}.png")
        img = cv2.imread(str(f))
        sizes.add((img.shape[1], img.shape[0]))
    os.replace(tmp, out)
    w, h = min(s[0] for s in sizes), min(s[1] for s in sizes)
    n_all = sum(len(g) for g in groups)
    log.info(f"adapt: {len(kept)} frames kept of {n_all} (scene-aware, near-duplicates dropped), {w}x{h} and up")
    return {"frames": len(kept), "decoded": n_all, "min_width": w, "min_height": h,
            "sources": [{"file": Path(v).name, "sha256": _sha256(Path(v))} for v in opt.videos]}


# ---------------------------------------------------------------------------------------- degrader
def _degrader_crop(opt: AdaptOptions, frames: dict) -> int:
    side = min(opt.degrader_crop, frames["min_width"], frames["min_height"]) // 8 * 8
    if side < 32:
        raise AdaptError(f"the LQ frames are {frames['min_width']}x{frames['min_height']}; accepted: at least 32x32")
    return side


def _shipped_degrader_fits() -> str | None:
    """Path of the shipped ``degrade-lite`` when its config is the lite config, else None."""
    from ..nets.vqgan import CONFIGS
    from ..weights.degrader import load_degrader_state
    from ..weights.registry import installed_models

    info = installed_models("degrader").get("degrade-lite")
    if info is None:
        return None
    try:
        _, meta = load_degrader_state(info.path)
        cfg = json.loads(meta.get("vqgan_config", "{}"))
    except Exception:  # an unreadable file: train from scratch rather than fail
        return None
    return str(info.path) if cfg == CONFIGS["lite"].to_dict() else None


def _stage2_start(work: Path, shipped: str) -> Path:
    """The stage-2 start when the shipped degrader fits: its middle and bottom branches with the top
    branch of this run's stage 1 (stage 1 alone would leave those two branches random), fp32."""
    import torch

    from ..nets.vqgan import CONFIGS, MultiScaleVQGAN
    from ..weights.degrader import load_degrader_state, save_degrader

    net = MultiScaleVQGAN(CONFIGS["lite"])
    sd, _ = load_degrader_state(shipped)
    own = net.state_dict()
    net.load_state_dict({k: v.float() for k, v in sd.items() if k in own and own[k].shape == v.shape}, strict=False)
    top = torch.load(str(work / "degrader1" / "last.pt"), map_location="cpu", weights_only=True)["model"]
    missing = net.load_state_dict({k: v.float() for k, v in top.items()}, strict=False).missing_keys
    if any(not k.startswith(("mid.", "bot.")) for k in missing):
        raise AdaptError(f"the stage-1 degrader run {work / 'degrader1'} does not fit the lite config")
    out = work / "degrader2-start.safetensors"
    save_degrader(net, out, half=False)
    return out


def _train_degrader(opt: AdaptOptions, work: Path, budget: dict, stage: int, done: dict) -> dict:
    from .vqgan_train import TrainOptions, train_vqgan

    shipped = _shipped_degrader_fits()
    init = shipped if stage == 1 else str(work / "degrader1")
    start_floors: dict[str, float] = {}
    if stage == 2 and shipped and not (work / "degrader2" / "last.pt").is_file():
        init, start_floors = _choose_stage2_start(work, shipped, opt.threads)
    steps = opt.degrader_steps if opt.degrader_steps is not None else 1_000_000
    t = TrainOptions(data=[str(work / "frames")], out=str(work / f"degrader{stage}"), stage=stage, config="lite",
                     init=init, crop=_degrader_crop(opt, done["frames"]), batch=opt.degrader_batch, steps=steps,
                     max_minutes=budget[f"degrader{stage}"], seed=opt.seed + stage, save_every=50,
                     sample_every=0, threads=opt.threads or None, perceptual="auto",
                     disc_start=100_000 if stage == 1 else 80)  # the shipped degrade-lite's recipe
    s = train_vqgan(t)
    note = ""
    if stage == 2 and init and init.endswith("degrader2-start.safetensors"):
        note = "top branch from stage 1, middle and bottom from degrade-lite"
    elif stage == 2 and init == shipped:
        note = "degrade-lite as a whole: its k = 1 floor on these frames was above the stage-1 splice's"
    out = {"steps": s["steps"], "seconds": s["seconds"], "init": Path(init).name if init else "random",
           "init_note": note, "l1_first": s["l1_first"], "l1_last": s["l1_last"], "crop": s["crop"]}
    if start_floors:
        out["start_floors_db"] = start_floors
    return out


def _choose_stage2_start(work: Path, shipped: str, threads: int) -> tuple[str, dict[str, float]]:
    """Stage 2's start when the shipped degrader fits: of (a) this run's stage-1 top branch with the
    shipped middle and bottom branches and (b) the shipped degrader as a whole, the one with the
    higher k = 1 floor on the user's frames (a short stage 1 can leave the top branch worse than the
    shipped one: then stage 2 starts from the shipped degrader and only fine-tunes it)."""
    import torch

    from ..weights.degrader import load_degrader
    from .export_degrader import reconstruction_k1

    if threads:
        torch.set_num_threads(threads)
    splice = str(_stage2_start(work, shipped))
    floors = {name: reconstruction_k1(load_degrader(path), work / "frames")["psnr_db"]
              for name, path in (("stage-1 splice", splice), ("degrade-lite", shipped))}
    best = splice if floors["stage-1 splice"] >= floors["degrade-lite"] else shipped
    log.info(f"adapt: stage-2 start: k = 1 floor {floors['stage-1 splice']} dB with stage 1's top branch, "
             f"{floors['degrade-lite']} dB with degrade-lite as a whole: starting from "
             f"{'the splice' if best == splice else 'degrade-lite'}")
    return best, floors


def _stage_degrader1(opt, work, budget, done):
    return _train_degrader(opt, work, budget, 1, done)


def _stage_degrader2(opt, work, budget, done):
    return _train_degrader(opt, work, budget, 2, done)


# ------------------------------------------------------------------------------------------- floor
def _damage_psnr(opt: AdaptOptions, work: Path) -> float | None:
    """PSNR (dB) of the LQ frames against the reference videos' frames (same index, reference scaled
    to the LQ size with area averaging), over up to 32 evenly spaced frame pairs; None without one."""
    if not opt.reference:
        return None
    import cv2
    import numpy as np

    from .vqgan_data import list_frames

    lq = [f for g in list_frames(opt.videos, work / "decoded") for f in g]
    ref = [f for g in list_frames(opt.reference, work / "decoded_ref") for f in g]
    n = min(len(lq), len(ref))
    if n == 0:
        raise AdaptError("the reference videos hold no frames")
    mses = []
    for i in np.linspace(0, n - 1, min(32, n)).round().astype(int):
        a = cv2.imread(str(lq[i])).astype(np.float64)
        b = cv2.imread(str(ref[i]))
        b = cv2.resize(b, (a.shape[1], a.shape[0]), interpolation=cv2.INTER_AREA).astype(np.float64)
        mses.append(float((((a - b) / 255) ** 2).mean()))
    return round(10 * math.log10(1 / max(float(np.mean(mses)), 1e-10)), 2)


def _stage_floor(opt, work, budget, done):
    import torch

    from ..weights.degrader import load_degrader
    from .export_degrader import reconstruction_k1

    if opt.threads:
        torch.set_num_threads(opt.threads)
    net = load_degrader(work / "degrader2" / "degrader.safetensors")
    floor = reconstruction_k1(net, work / "frames")
    damage = _damage_psnr(opt, work)
    log.info(f"adapt: degrader floor on your frames (k = 1 reconstruction): {floor['psnr_db']} dB PSNR "
         f"over {floor['crops']} centre crops")
    if damage is None:
        log.info("adapt: the damage it imitates is not measured (no clean reference given: --reference); "
             "compare the floor with what you know of the source")
    else:
        log.info(f"adapt: damage of the LQ frames against the reference: {damage} dB PSNR")
        if floor["psnr_db"] < damage:
            log.warning(f"adapt: the degrader's own error ({floor['psnr_db']} dB) is larger than the damage it "
                 f"imitates ({damage} dB): it will add its own artefacts; a longer --minutes trains it further")
    return {"reconstruction_k1": floor, "damage_psnr_db": damage}


# --------------------------------------------------------------------------------------------- vsr
def _clean_data(opt: AdaptOptions, work: Path) -> list[str]:
    if opt.clean:
        return list(opt.clean)
    from .synthetic import write_clip_folders

    d = work / "clean"
    if not (d / ".done").is_file():
        log.info("adapt: no --clean given: training on synthetic cel clips made by the package "
             "(the project's training set, scripts/make_degrade_data.sh, gives better results)")
        write_clip_folders(d, clips=8, num_frames=max(8, opt.frames + 3), size=max(2 * opt.patch, 128))
        (d / ".done").touch()
    return [str(d)]


def _stage_vsr(opt, work, budget, done):
    from .vsr_train import TrainConfig, train

    run = work / "vsr"
    cfg = TrainConfig(stage=2, data=_clean_data(opt, work), out=str(run), init=opt.base,
                      degrader=str(work / "degrader2" / "degrader.safetensors"), iters=PROBE_ITERS,
                      batch=opt.batch, frames=opt.frames, patch=opt.patch, percep_weight=opt.percep_weight,
                      gan_weight=opt.gan_weight, topk_mode="released", workers=0, seed=opt.seed,
                      save_every=10 ** 9, sample_every=10 ** 9, log_every=10, device=opt.device,
                      threads=opt.threads)
    cap = opt.vsr_iters
    t0 = time.perf_counter()
    probe_file = run / "probe.json"
    if probe_file.is_file():  # resumed: the first leg ran before the interruption
        probe = json.loads(probe_file.read_text(encoding="utf-8"))
    else:
        cfg.iters = min(PROBE_ITERS, cap) if cap is not None else PROBE_ITERS
        s = train(cfg)
        probe = {"iter": s["iter"], "sec": (time.perf_counter() - t0) / max(1, s["iter"]),
                 "its_per_s": float(s.get("its_per_s", 0.0))}
        _write_json(probe_file, probe)
    sec = probe["sec"]
    # the steady step time (the first leg's start-up, model loading, counts once, as time spent)
    step = 1.0 / probe["its_per_s"] if probe.get("its_per_s", 0) > 0 else sec
    total = vsr_iterations(budget["vsr"], step, probe["iter"], cap, spent=sec * probe["iter"])
    log.info(f"adapt: VSR step {step:.2f} s ({probe['iter']} iterations took {sec * probe['iter']:.1f} s with "
             f"start-up): {total} iterations")
    cfg.iters = total
    s = train(cfg)  # resumes from the latest checkpoint (a no-op leg when the first one reached total)
    return {"iterations": s["iter"], "seconds_per_iter_probe": round(sec, 3), "seconds": round(time.perf_counter() - t0, 1),
            "base": opt.base, "last": {k: round(float(v), 5) for k, v in s.get("last", {}).items()}}


# ------------------------------------------------------------------------------------------ export
def _stage_export(opt, work, budget, done):
    from ..weights.registry import model_dir
    from .vsr_train import export_run

    dest = model_dir() / f"{opt.name}.safetensors"
    card = {
        "name": opt.name, "kind": "vsr", "license": "as the user's footage and the base model's licence permit",
        "origin": f"vqdsr adapt: {opt.base} fine-tuned on clean clips degraded by a VQ degrader trained on the "
                  "user's footage (VQD-SR, Tuo et al., ICCV 2023)",
        "sources": done["frames"]["sources"], "frames": done["frames"]["frames"],
        "clean_data": [Path(c).name for c in opt.clean] or "synthetic cel clips (vsvqdsr.training.synthetic)",
        "degrader": {"stage1": done["degrader1"], "stage2": done["degrader2"],
                     "file": str(work / "degrader2" / "degrader.safetensors")},
        "reconstruction_k1_on_user_frames": done["floor"]["reconstruction_k1"],
        "damage_psnr_db": done["floor"]["damage_psnr_db"],
        "vsr": done["vsr"], "budget_minutes": opt.minutes, "budget_split": BUDGET_SHARES,
        "seconds": round(sum(float(d.get("wall_s", 0)) for d in done.values()), 1),
        "quality": "not benchmarked: adapt does not measure whether the adapted model beats its base",
    }
    # the card first: a card without its weights lists nothing; weights without their card would
    # be listed with no provenance
    _write_json(dest.with_suffix(".json"), card)
    export_run(work / "vsr", dest, opt.name)
    return {"file": str(dest)}


_RUNNERS = {"frames": _stage_frames, "degrader1": _stage_degrader1, "degrader2": _stage_degrader2,
            "floor": _stage_floor, "vsr": _stage_vsr, "export": _stage_export}


# -------------------------------------------------------------------------------------------- main
def default_work_dir(name: str) -> Path:
    from ..weights.registry import model_dir

    return model_dir().parent / "adapt" / name


def _check(opt: AdaptOptions) -> Path:
    from ..provenance import check_not_benchmark
    from ..weights.registry import model_dir

    if not opt.name or Path(opt.name).name != opt.name or opt.name.startswith(".") or opt.name.endswith(".safetensors"):
        raise AdaptError(f"--out {opt.name!r}: accepted: a plain model name (no folder, no extension)")
    if not opt.videos:
        raise AdaptError("no LQ video given")
    for v in [*opt.videos, *opt.reference]:
        if not Path(v).is_file():
            raise AdaptError(f"{v}: no such video file")
    for c in opt.clean:
        if not Path(c).exists():
            raise AdaptError(f"--clean {c}: no such file or folder")
    if opt.reference and len(opt.reference) != len(opt.videos):
        raise AdaptError(f"--reference: {len(opt.reference)} videos for {len(opt.videos)} LQ videos; accepted: one per LQ video")
    try:
        check_not_benchmark([*opt.videos, *opt.clean, *opt.reference], "adapt")
    except ValueError as e:
        raise AdaptError(str(e)) from e
    split_budget(opt.minutes)
    if opt.device not in ("cpu", "cuda") and not opt.device.startswith("cuda:"):
        raise AdaptError(f"--device {opt.device!r}: accepted: cpu, cuda, cuda:N")
    dest = model_dir() / f"{opt.name}.safetensors"
    work = Path(opt.work) if opt.work else default_work_dir(opt.name)
    ours = opt.resume and (work / "stages" / "export.json").is_file()  # written by this very run
    if dest.exists() and not (opt.force or ours):
        raise AdaptError(f"model {opt.name!r} exists ({dest}); pass --force to replace it")
    if opt.resume and (work / "options.json").is_file():
        before = json.loads((work / "options.json").read_text(encoding="utf-8"))
        if [before.get("videos"), before.get("name")] != [opt.videos, opt.name]:
            raise AdaptError(f"--resume: work folder {work} is a run on {before.get('videos')} for "
                             f"{before.get('name')!r}; accepted: the same LQ videos and --out, or --force to start over")
    if work.exists() and any(work.iterdir()) and not opt.resume:
        if not opt.force:
            raise AdaptError(f"work folder {work} holds an earlier run; pass --resume to continue it or --force to start over")
        shutil.rmtree(work)
    return work


def adapt(opt: AdaptOptions) -> dict:
    """Run (or resume) every stage; returns ``{"model", "file", "stages": {stage: result}}``.

    Raises :class:`AdaptError` on bad input (the CLI prints it as one line), ValueError /
    FileNotFoundError / RuntimeError from the trainers on data they refuse.
    """
    work = _check(opt)
    (work / "stages").mkdir(parents=True, exist_ok=True)
    _write_json(work / "options.json", asdict(opt))
    budget = split_budget(opt.minutes)
    log.info("adapt: budget " + ", ".join(f"{k} {v:.1f} min" for k, v in budget.items()))
    done: dict[str, dict] = {}
    for stage in STAGES:
        marker = work / "stages" / f"{stage}.json"
        if opt.resume and marker.is_file():
            done[stage] = json.loads(marker.read_text(encoding="utf-8"))
            log.info(f"adapt: {stage}: done earlier, skipped")
            continue
        log.info(f"adapt: {stage} ...")
        t0 = time.perf_counter()
        result = _RUNNERS[stage](opt, work, budget, done)
        result["wall_s"] = round(time.perf_counter() - t0, 1)
        _write_json(marker, result)
        done[stage] = result
    return {"model": opt.name, "file": done["export"]["file"], "work": str(work), "stages": done}
