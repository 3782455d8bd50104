"""Training throughput on this machine: iterations/s of ``vqdsr train-vsr`` for small configurations.

Renders synthetic cel-style clips, builds an untrained lite VQGAN degrader for stage 2, runs each
stage for ``--iters`` iterations (after ``--warmup``) and prints iterations/s and clips/s.

    PYTHONPATH=$PWD python scripts/bench_train_vsr.py --frames 5 --patch 64 --patch2 96 --threads 2
"""
from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--iters", type=int, default=10)
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--batch", type=int, default=1)
    ap.add_argument("--frames", type=int, default=5)
    ap.add_argument("--patch", type=int, default=64, help="stage-1 HR patch")
    ap.add_argument("--patch2", type=int, default=96, help="stage-2 HR patch")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--workers", type=int, default=1)
    ap.add_argument("--device", default="auto")
    ap.add_argument("--stages", default="1,2")
    args = ap.parse_args()

    import torch

    from vsvqdsr.training.synthetic import write_clip_folders
    from vsvqdsr.nets.vqgan import LITE_CONFIG, MultiScaleVQGAN
    from vsvqdsr.training.vsr_train import TrainConfig, train
    from vsvqdsr.weights.degrader import save_degrader

    with tempfile.TemporaryDirectory(prefix="vqdsr-bench-") as tmp:
        root = Path(tmp)
        size = max(args.patch, args.patch2) + 16
        write_clip_folders(root / "data", clips=2, num_frames=max(8, args.frames + 2), size=size)
        torch.manual_seed(0)
        save_degrader(MultiScaleVQGAN(LITE_CONFIG), root / "lite.safetensors", half=False)
        for stage in (int(s) for s in args.stages.split(",")):
            patch = args.patch if stage == 1 else args.patch2
            cfg = TrainConfig(stage=stage, data=[str(root / "data")], out=str(root / f"run{stage}"),
                              degrader=str(root / "lite.safetensors") if stage == 2 else None,
                              iters=args.warmup, batch=args.batch, frames=args.frames, patch=patch,
                              workers=args.workers, threads=args.threads, device=args.device,
                              save_every=10 ** 9, sample_every=10 ** 9, log_every=10 ** 9)
            train(cfg, progress=False)  # warm-up run; the timed run resumes from it
            cfg.iters = args.warmup + args.iters
            t0 = time.perf_counter()
            s = train(cfg, progress=False)
            wall = time.perf_counter() - t0
            print(f"stage {stage}: batch {args.batch} x {args.frames} frames, HR patch {patch}, "
                  f"threads {args.threads}, workers {args.workers}, device {args.device}: "
                  f"{s['its_per_s']:.3f} it/s ({args.iters / wall:.3f} it/s incl. start-up), "
                  f"{s['its_per_s'] * args.batch:.3f} clips/s; load average {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
