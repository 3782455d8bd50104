#!/usr/bin/env python3
"""Benchmark the VQGAN degrader on CPU: seconds per frame at a given size (prints figures to stdout).

Usage: PYTHONPATH=. python scripts/bench_degrade.py [--model degrade-lite|PATH|config:lite|config:paper]
           [--size 480x640] [--threads 2] [--repeats 3]
"""
from __future__ import annotations

import argparse
import statistics
import time

import torch


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="degrade-lite")
    ap.add_argument("--size", default="480x640", help="HxW")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--repeats", type=int, default=3)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    from vsvqdsr.nets.vqgan import CONFIGS, MultiScaleVQGAN, sample_k
    from vsvqdsr.weights.degrader import load_degrader
    if a.model.startswith("config:"):
        net = MultiScaleVQGAN(CONFIGS[a.model.split(":", 1)[1]]).eval().requires_grad_(False)
    else:
        net = load_degrader(a.model)
    h, w = (int(v) for v in a.size.lower().split("x"))
    g = torch.Generator().manual_seed(0)
    x = torch.rand(1, 3, h, w, generator=g)
    ks = sample_k("released", 1, g)
    net.degrade(x[..., :64, :64], *ks)  # warm-up
    times = []
    for _ in range(a.repeats):
        t = time.perf_counter()
        net.degrade(x, *ks)
        times.append(time.perf_counter() - t)
    n = sum(p.numel() for p in net.parameters())
    print(f"model={a.model} params={n:,} size={h}x{w} threads={a.threads} "
          f"median={statistics.median(times):.2f}s/frame min={min(times):.2f}s runs={[round(t, 2) for t in times]}")


if __name__ == "__main__":
    main()
