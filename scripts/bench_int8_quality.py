#!/usr/bin/env python3
"""Quality of the opt-in int8 CPU path against fp32 on real frames (a measurement, not a test).

Calibrates on the default source (first frames of examples/sample/sample.mkv, scene 1), then runs
fp32 (ONNX Runtime) and int8 (ONNX Runtime and OpenVINO) recurrently over

* scene 2 of the sample clip (frames 84.., not used for calibration): PSNR-Y of int8 output
  against the fp32 output;
* optionally ``--gt-dir``: HR PNG frames (4x the LR size, e.g. synfig renders); LR is their area
  downscale; PSNR-Y of fp32 and of int8 against the HR ground truth (the loss is the difference).

Prints one line per configuration to stdout; progress to stderr.
Usage: scripts/bench_int8_quality.py [--frames 24] [--gt-dir DIR] [--model animesr-v1]
"""
from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from vsvqdsr.backends import RunnerSpec, cpu  # noqa: E402
from vsvqdsr.backends.quantize import _read_video  # noqa: E402
from vsvqdsr.weights import load_state_dict, resolve_model  # noqa: E402
from vsvqdsr.weights.descriptors import build_network  # noqa: E402


def y_channel(x: np.ndarray) -> np.ndarray:
    """BT.601 luma in [16/255, 235/255] of RGB [0,1] (the VSR papers' PSNR-Y convention)."""
    x = np.clip(x, 0, 1)
    return (16 + 65.481 * x[0] + 128.553 * x[1] + 24.966 * x[2]) / 255


def psnr_y(a: np.ndarray, b: np.ndarray) -> float:
    mse = float(np.mean((y_channel(a) - y_channel(b)) ** 2))
    return float("inf") if mse == 0 else 10 * np.log10(1 / mse)


def run_chain(runner, frames: np.ndarray, feedback: bool) -> list[np.ndarray]:
    ups = [runner.upload(f) for f in frames]
    state, prev_out = runner.initial_state()
    outs = []
    for i in range(len(ups)):
        out, state = runner.step(ups[max(i - 1, 0)], ups[i], ups[min(i + 1, len(ups) - 1)], state, prev_out)
        prev_out = out if feedback else None
        outs.append(runner.download(out))
        print(f"  frame {i + 1}/{len(ups)}", file=sys.stderr, end="\r")
    print(file=sys.stderr)
    return outs


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--frames", type=int, default=24)
    ap.add_argument("--gt-dir", type=Path, default=None)
    ap.add_argument("--model", default="animesr-v1")
    args = ap.parse_args()
    net, desc = build_network(load_state_dict(resolve_model(args.model)[1]))
    sample = ROOT / "examples" / "sample" / "sample.mkv"
    clips = {"sample scene 2 (84..)": (_read_video(sample, (180, 320), 84 + args.frames)[84:], None)}
    if args.gt_dir:
        from PIL import Image

        files = sorted(args.gt_dir.glob("*.png"))[-args.frames:]
        hr = np.stack([np.asarray(Image.open(f).convert("RGB"), np.float32).transpose(2, 0, 1) / 255 for f in files])
        h, w = hr.shape[-2] // 4, hr.shape[-1] // 4
        lr = torch.nn.functional.interpolate(torch.from_numpy(hr), size=(h, w), mode="area").numpy()
        clips[f"{args.gt_dir.name} ({len(files)} frames, HR GT)"] = (lr, hr)
    engine_dir = tempfile.mkdtemp(prefix="vsvqdsr-int8-")
    configs = [("ort", "fp32"), ("ort", "int8"), ("openvino", "int8")]
    for name, (lr, hr) in clips.items():
        spec = RunnerSpec(lr.shape[-2], lr.shape[-1])
        outs = {}
        for engine, prec in configs:
            print(f"{name}: {engine} {prec}", file=sys.stderr)
            opts = {"engine_dir": engine_dir} if prec == "int8" else {}
            r = cpu.create(net, desc, spec, engine=engine, precision=prec, **opts)
            outs[(engine, prec)] = run_chain(r, lr, desc.feedback)
        ref = outs[("ort", "fp32")]
        for (engine, prec), o in outs.items():
            line = f"{name}: {engine:<8} {prec}: PSNR-Y vs fp32 output {np.mean([psnr_y(a, b) for a, b in zip(o, ref)]):.2f} dB"
            if hr is not None:
                gt = np.mean([psnr_y(a, b) for a, b in zip(o, hr)])
                base = np.mean([psnr_y(a, b) for a, b in zip(ref, hr)])
                line += f"; vs HR GT {gt:.3f} dB (loss vs fp32 {base - gt:+.3f} dB)"
            print(line, flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
