"""Shipping a trained degrader: a stage-2 ``vqdsr train-degrader`` run -> fp16 safetensors + model card.

:func:`export_degrader` writes ``OUT_DIR/<name>.safetensors`` (the stage-2 model, fp16, with the step
counts in its metadata) and ``OUT_DIR/<name>.json`` (the model card: configuration, parameter count,
training recipe and wall time, loss summary, data provenance), both atomically, and measures the
reconstruction quality of the written file with every branch at k = 1 on fixed crops: the centre
128x128 of every 25th PNG frame (sorted) under ``data``. ``vqdsr export degrader`` runs it.
"""
from __future__ import annotations

import json
import math
import os
from pathlib import Path

import numpy as np
import torch

from ..weights.loading import atomic_write_bytes

__all__ = ["default_out_dir", "training_seconds", "reconstruction_k1", "export_degrader"]

#: Crop side and frame stride of the reconstruction measurement.
CROP = 128
FRAME_STEP = 25


def default_out_dir() -> Path:
    """The package's own model folder (``vsvqdsr/models``), where the shipped degrader lives."""
    return Path(__file__).resolve().parent.parent / "models"


def training_seconds(run: str | os.PathLike) -> float:
    """Training wall time of a run, summed over resumed sessions (``log.jsonl``'s clock restarts at
    each resume), rounded to 0.1 s."""
    total, last = 0.0, 0.0
    for line in (Path(run) / "log.jsonl").read_text().splitlines():
        t = float(json.loads(line)["time"])
        if t < last:
            total += last
        last = t
    return round(total + last, 1)


def reconstruction_k1(net: torch.nn.Module, data: str | os.PathLike) -> dict:
    """PSNR (dB) and L1 (0..1 scale) of ``net.degrade`` with k = 1 on every branch, mean over the
    centre crops of every :data:`FRAME_STEP`-th PNG under ``data``."""
    import cv2

    frames = sorted(Path(data).rglob("*.png"))[::FRAME_STEP]
    if not frames:
        raise FileNotFoundError(f"no PNG frames under {data}")
    psnrs, l1s = [], []
    half = CROP // 2
    for f in frames:
        img = cv2.imread(str(f))
        if img is None:
            raise ValueError(f"cannot read {f}")
        img = cv2.cvtColor(img, cv2.COLOR_BGR2RGB)
        h, w = img.shape[:2]
        if h < CROP or w < CROP:
            raise ValueError(f"{f} is {w}x{h}; frames must be at least {CROP}x{CROP}")
        c = img[h // 2 - half:h // 2 + half, w // 2 - half:w // 2 + half]
        x = torch.from_numpy(c).permute(2, 0, 1)[None].float() / 255
        one = torch.ones(1, dtype=torch.int64)
        with torch.no_grad():
            y = net.degrade(x, one, one, one)
        mse = float(((y - x) ** 2).mean())
        psnrs.append(10 * math.log10(1 / max(mse, 1e-10)))
        l1s.append(float((y - x).abs().mean()))
    return {"crops": len(frames), "psnr_db": round(float(np.mean(psnrs)), 2), "l1_01": round(float(np.mean(l1s)), 4)}


def _card(name: str, ck: dict, params: int, s1: dict, s2: dict, s1_run: Path, s2_run: Path,
          note: str) -> dict:
    """The model card; ``reconstruction_k1`` is filled in once the written file has been measured."""
    return {
        "name": name, "kind": "degrader", "license": "MIT",
        "origin": "trained by vsvqdsr on synthetic real-codec low-quality cel frames (scripts/make_degrade_data.sh)",
        "architecture": "VQD-SR multi-scale VQGAN (stage 2), lite config",
        "config": ck["config"], "params": params, "storage": "fp16 safetensors",
        "data": {"source": "synfig-examples (GPL-2+) renders: prologue_kid.sif animation, pans over pirates/"
                           "macwolfen/backdrop.sif; 4 ffmpeg lossy chains (interlaced MPEG-2 + yadif, MPEG-4 q12, "
                           "2x H.264 CRF 36/30, analogue 352-wide + 4:1:1 + MPEG-2)",
                 "frames_used": s1["frames"], "dedup_mad": 1.0},
        "recipe": {"crop": s1["crop"], "batch": s1["batch"], "lr": s1["lr"], "stage2_top_lr": s2["lr"] * 0.25,
                   "perceptual": s1["perceptual"], "disc_ndf": s1.get("disc_ndf"),
                   "stage1": {"steps": s1["steps"], "seconds": training_seconds(s1_run),
                              "disc_start": "never (100000)"},
                   "stage2": {"steps": s2["steps"], "seconds": training_seconds(s2_run), "disc_start": 80},
                   "hardware": "shared 2-core CPU, 1 torch thread"},
        "losses": {"stage1_l1_first": round(s1["l1_first"], 4), "stage1_l1_last": round(s1["l1_last"], 4),
                   "stage2_l1_first": round(s2["l1_first"], 4), "stage2_l1_last": round(s2["l1_last"], 4),
                   "stage2_codebook_last": round(s2["codebook_last"], 4),
                   "note": "L1 on [-1,1] images, mean of the first/last fifth (max 20) of the steps"},
        "reconstruction_k1": None,
        "quality": note,
    }


def export_degrader(s1_run: str | os.PathLike, s2_run: str | os.PathLike, data: str | os.PathLike,
                    name: str = "degrade-lite", out_dir: str | os.PathLike | None = None,
                    note: str = "") -> dict:
    """Export the stage-2 run ``s2_run`` (trained from ``s1_run``) as ``out_dir/<name>.safetensors``
    plus its model card ``<name>.json``.

    Args:
        s1_run: the stage-1 run folder (``summary.json``, ``log.jsonl``).
        s2_run: the stage-2 run folder (``last.pt``, ``summary.json``, ``log.jsonl``).
        data: the low-quality frames (PNG, searched recursively) the reconstruction is measured on.
        name: model name (file stem and the card's ``name``).
        out_dir: default :func:`default_out_dir`.
        note: the card's free-text ``quality`` field.

    Returns:
        ``{"file", "bytes", "reconstruction_k1", "losses"}``.

    Raises:
        FileNotFoundError, KeyError, ValueError, WeightsError: a run folder, summary key or frame
        that is missing or unreadable (the weights are written only once both runs have been read).
    """
    from ..weights.degrader import build_degrader, load_degrader, save_degrader

    s1_run, s2_run = Path(s1_run), Path(s2_run)
    if not name or Path(name).name != name:
        raise ValueError(f"name must be a plain file stem, got {name!r}")
    for run in (s1_run, s2_run):
        for f in ("summary.json", "log.jsonl"):
            if not (run / f).is_file():
                raise FileNotFoundError(f"{run / f} does not exist (not a train-degrader run folder)")
    if not (s2_run / "last.pt").is_file():
        raise FileNotFoundError(f"{s2_run / 'last.pt'} does not exist (not a train-degrader run folder)")
    if not Path(data).is_dir() or next(Path(data).rglob("*.png"), None) is None:
        raise FileNotFoundError(f"no PNG frames under {data}")
    torch.set_num_threads(1)
    ck = torch.load(str(s2_run / "last.pt"), map_location="cpu", weights_only=True)
    net, desc = build_degrader(ck["model"], ck["config"]["norm_groups"], stage=2)
    s1 = json.loads((s1_run / "summary.json").read_text())
    s2 = json.loads((s2_run / "summary.json").read_text())
    card = _card(name, ck, desc.num_params, s1, s2, s1_run, s2_run, note)
    out = Path(out_dir if out_dir is not None else default_out_dir()) / f"{name}.safetensors"
    save_degrader(net, out, half=True, extra={"name": name, "steps_stage1": str(s1["steps"]),
                                              "steps_stage2": str(s2["steps"])})
    recon = card["reconstruction_k1"] = reconstruction_k1(load_degrader(out), data)
    atomic_write_bytes(out.with_suffix(".json"), (json.dumps(card, indent=2) + "\n").encode("utf-8"))
    return {"file": str(out), "bytes": out.stat().st_size, "reconstruction_k1": recon, "losses": card["losses"]}
