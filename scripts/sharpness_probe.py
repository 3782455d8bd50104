#!/usr/bin/env python3
"""Is a method too sharp or too soft for ColorVideoVDP? Score its cached SR frames blurred a little.

    python scripts/sharpness_probe.py out/eval vqdsr-ft [--sigmas 0.4 0.6 0.8] [--severities light]

For each clip of the chosen severities, the method's SR frames from a ``vqdsr eval`` run (its cache
under OUT, as listed in OUT/results.json) are scored with ColorVideoVDP against the GT, with the
run's own options (display, frames, crop), as they are and after a Gaussian blur of each sigma (HR
pixels). A score that *rises* with a small blur says the method draws more edge contrast than the GT
has (ringing, rims, over-sharpening); one that falls says it is softer than the GT. It found where
vqdsr-ft lost ColorVideoVDP to realesr-animevideov3 (docs/training.md, section 7).

Prints one row per clip (and the mean per severity) to stdout; ``--json FILE`` also writes them.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import cv2
import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from vsvqdsr.evaluation.build import read_png  # noqa: E402
from vsvqdsr.evaluation.dataset import load_set  # noqa: E402
from vsvqdsr.evaluation.metrics import cvvdp  # noqa: E402


def blur(frames: np.ndarray, sigma: float) -> np.ndarray:
    """``T,H,W,3`` uint8 blurred by a Gaussian of ``sigma`` pixels (reflect border), rounded to uint8."""
    if sigma <= 0:
        return frames
    return np.stack([cv2.GaussianBlur(f, (0, 0), sigma, borderType=cv2.BORDER_REFLECT_101) for f in frames])


def probe(out: Path, method: str, sigmas: list[float], severities: list[str] | None = None) -> list[dict]:
    """Rows ``{"severity", "clip", "scores": {sigma: JOD}}`` (sigma 0 = the frames as they are)."""
    res_path = out / "results.json"
    if not res_path.is_file():
        raise SystemExit(f"sharpness_probe: {res_path} not found (run vqdsr eval first)")
    res = json.loads(res_path.read_text())
    entry = next((m for m in res["methods"] if m["name"] == method), None)
    if entry is None:
        names = ", ".join(m["name"] for m in res["methods"])
        raise SystemExit(f"sharpness_probe: no method {method!r} in {res_path} (it has: {names})")
    opts = res["options"]
    bset = load_set(res["benchmark"]["path"])
    sevs = severities or bset.severities
    unknown = [s for s in sevs if s not in bset.severities]
    if unknown:
        raise SystemExit(f"sharpness_probe: unknown severities {unknown}; the set has {bset.severities}")
    crop = tuple(opts["cvvdp_crop"]) if opts.get("cvvdp_crop") else None
    rows = []
    for clip in bset.clips:
        if clip.severity not in sevs:
            continue
        folder = out / entry["cache"] / "sr" / clip.severity / clip.name
        files = sorted(folder.glob("*.png"))
        if len(files) != len(clip.gt):
            raise SystemExit(f"sharpness_probe: {folder} holds {len(files)} frames, expected {len(clip.gt)}")
        sr, gt = np.stack([read_png(f) for f in files]), clip.load_gt()
        scores = {s: cvvdp(blur(sr, s), gt, clip.fps, str(opts["cvvdp_display"]), int(opts["cvvdp_frames"]), crop)
                  for s in [0.0, *sigmas]}
        rows.append({"severity": clip.severity, "clip": clip.name, "scores": scores})
        print(f"sharpness_probe: {clip.severity}/{clip.name} done", file=sys.stderr, flush=True)
    return rows


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("out", type=Path, help="the vqdsr eval output folder (holds results.json and cache/)")
    ap.add_argument("method", help="method name as in results.json")
    ap.add_argument("--sigmas", type=float, nargs="+", default=[0.4, 0.6, 0.8], help="blur sigmas, HR pixels")
    ap.add_argument("--severities", nargs="+", default=None, help="default: every severity of the set")
    ap.add_argument("--json", type=Path, default=None, help="also write the rows here")
    a = ap.parse_args(argv)
    if any(s <= 0 for s in a.sigmas):
        ap.error("--sigmas must be > 0")
    rows = probe(a.out, a.method, a.sigmas, a.severities)
    sig = [0.0, *a.sigmas]
    print(f"ColorVideoVDP (JOD) of {a.method}, as is and blurred (sigma in HR px)")
    print("| clip | " + " | ".join("as is" if s == 0 else f"blur {s:g}" for s in sig) + " |")
    print("|---|" + "---:|" * len(sig))
    for r in rows:
        print(f"| {r['severity']}/{r['clip']} | " + " | ".join(f"{r['scores'][s]:.4f}" for s in sig) + " |")
    for sev in dict.fromkeys(r["severity"] for r in rows):
        sel = [r for r in rows if r["severity"] == sev]
        print(f"| **{sev} mean** | " + " | ".join(f"{np.mean([r['scores'][s] for r in sel]):.4f}" for s in sig) + " |")
    if a.json:
        from vsvqdsr.weights.loading import atomic_write_bytes  # noqa: PLC0415

        atomic_write_bytes(a.json, json.dumps(rows, indent=1).encode())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
