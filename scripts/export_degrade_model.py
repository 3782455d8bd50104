#!/usr/bin/env python3
"""Export a trained stage-2 degrader run as a shipped model: fp16 safetensors + a JSON model card.

Usage: PYTHONPATH=. python scripts/export_degrade_model.py --s1 runs/lite-s1 --s2 runs/lite-s2 \
           --name degrade-lite --data data/degrade/lq [--note TEXT]
Also measures the reconstruction quality (k = 1 everywhere) on fixed 128x128 crops of the LQ frames.
"""
from __future__ import annotations

import argparse
import json
import math
from pathlib import Path

import numpy as np
import torch


def _wall_seconds(run: Path) -> float:
    """Training wall time summed over resumed sessions (the log's clock restarts at each resume)."""
    total, last = 0.0, 0.0
    for line in (run / "log.jsonl").read_text().splitlines():
        t = float(json.loads(line)["time"])
        if t < last:
            total += last
        last = t
    return round(total + last, 1)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--s1", required=True)
    ap.add_argument("--s2", required=True)
    ap.add_argument("--name", default="degrade-lite")
    ap.add_argument("--data", required=True)
    ap.add_argument("--out-dir", default=str(Path(__file__).resolve().parent.parent / "vsvqdsr" / "models"))
    ap.add_argument("--note", default="")
    a = ap.parse_args()
    import cv2
    from vsvqdsr.weights.degrader import build_degrader, load_degrader, save_degrader

    torch.set_num_threads(1)
    ck = torch.load(str(Path(a.s2) / "last.pt"), map_location="cpu", weights_only=True)
    net, desc = build_degrader(ck["model"], ck["config"]["norm_groups"], stage=2)
    s1 = json.loads((Path(a.s1) / "summary.json").read_text())
    s2 = json.loads((Path(a.s2) / "summary.json").read_text())
    out = Path(a.out_dir) / f"{a.name}.safetensors"
    save_degrader(net, out, half=True, extra={"name": a.name, "steps_stage1": str(s1["steps"]),
                                              "steps_stage2": str(s2["steps"])})
    net = load_degrader(out)
    # reconstruction quality on fixed crops (every 25th LQ frame, centre 128x128)
    frames = sorted(Path(a.data).rglob("*.png"))[::25]
    psnrs, l1s = [], []
    for f in frames:
        img = cv2.cvtColor(cv2.imread(str(f)), cv2.COLOR_BGR2RGB)
        h, w = img.shape[:2]
        c = img[h // 2 - 64:h // 2 + 64, w // 2 - 64:w // 2 + 64]
        x = torch.from_numpy(c).permute(2, 0, 1)[None].float() / 255
        one = torch.ones(1, dtype=torch.int64)
        y = net.degrade(x, one, one, one)
        mse = float(((y - x) ** 2).mean())
        psnrs.append(10 * math.log10(1 / max(mse, 1e-10)))
        l1s.append(float((y - x).abs().mean()))
    card = {
        "name": a.name, "kind": "degrader", "license": "MIT",
        "origin": "trained by vsvqdsr on synthetic real-codec low-quality cel frames (scripts/make_degrade_data.sh)",
        "architecture": "VQD-SR multi-scale VQGAN (stage 2), lite config",
        "config": ck["config"], "params": desc.num_params, "storage": "fp16 safetensors",
        "data": {"source": "synfig-examples (GPL-2+) renders: prologue_kid.sif animation, pans over pirates/"
                           "macwolfen/backdrop.sif; 4 ffmpeg lossy chains (interlaced MPEG-2 + yadif, MPEG-4 q12, "
                           "2x H.264 CRF 36/30, analogue 352-wide + 4:1:1 + MPEG-2)",
                 "frames_used": s1["frames"], "dedup_mad": 1.0},
        "recipe": {"crop": s1["crop"], "batch": s1["batch"], "lr": s1["lr"], "stage2_top_lr": s2["lr"] * 0.25,
                   "perceptual": s1["perceptual"], "disc_ndf": s1.get("disc_ndf"),
                   "stage1": {"steps": s1["steps"], "seconds": _wall_seconds(Path(a.s1)), "disc_start": "never (100000)"},
                   "stage2": {"steps": s2["steps"], "seconds": _wall_seconds(Path(a.s2)), "disc_start": 80},
                   "hardware": "shared 2-core CPU, 1 torch thread"},
        "losses": {"stage1_l1_first": round(s1["l1_first"], 4), "stage1_l1_last": round(s1["l1_last"], 4),
                   "stage2_l1_first": round(s2["l1_first"], 4), "stage2_l1_last": round(s2["l1_last"], 4),
                   "stage2_codebook_last": round(s2["codebook_last"], 4),
                   "note": "L1 on [-1,1] images, mean of the first/last fifth (max 20) of the steps"},
        "reconstruction_k1": {"crops": len(frames), "psnr_db": round(float(np.mean(psnrs)), 2),
                              "l1_01": round(float(np.mean(l1s)), 4)},
        "quality": a.note,
    }
    out.with_suffix(".json").write_text(json.dumps(card, indent=2) + "\n")
    print(json.dumps({"file": str(out), "bytes": out.stat().st_size, "reconstruction_k1": card["reconstruction_k1"],
                      "losses": card["losses"]}, indent=2))


if __name__ == "__main__":
    main()
