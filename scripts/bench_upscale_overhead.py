"""Filter overhead of vqdsr.Upscale: a linear vspipe render against the bare network step, one run.

Prints median ms/frame of (a) the bare CPU step (upload + step + download, what the filter must do
anyway) and (b) a real `vspipe` render of the same frames through vqdsr.Upscale (per-frame time from
the steady part of the render), their ratio, and the filter's step counter (exactly-once check).

Usage: .venv/bin/python scripts/bench_upscale_overhead.py [--height 180 --width 320 --frames 24]
"""
from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent

VPY = textwrap.dedent("""
    import json, sys, threading, time
    import numpy as np
    import vapoursynth as vs
    import vsvqdsr as vqdsr
    core = vs.core
    rng = np.random.default_rng(0)
    T, H, W = {frames}, {height}, {width}
    base = core.std.BlankClip(format=vs.RGBS, width=W, height=H, length=T, keep=True)
    data = rng.random((T, 3, H, W), dtype=np.float32)
    def fill(n, f):
        out = f.copy()
        for p in range(3):
            np.copyto(np.asarray(out[p]), data[n, p])
        return out
    src = core.std.ModifyFrame(base, base, fill)
    stats = {{}}
    up = vqdsr.Upscale(src, model={model!r}, backend="cpu", scene_detect=False, stats=stats)
    lock = threading.Lock()
    stamps = {{}}
    def mark(n, f):
        with lock:
            stamps[n] = time.perf_counter()
            with open({out!r}, "w") as fh:
                json.dump({{"stats": stats, "stamps": stamps}}, fh)
        return f
    core.std.ModifyFrame(up, up, mark).set_output()
""")


def bare_step_ms(model: str, h: int, w: int, frames: int) -> list[float]:
    from vsvqdsr import backends
    from vsvqdsr.weights import load_state_dict, resolve_model
    from vsvqdsr.weights.descriptors import build_network

    net, desc = build_network(load_state_dict(resolve_model(model)[1]))
    runner = backends.create("cpu", net, desc, backends.RunnerSpec(height=h, width=w))
    rng = np.random.default_rng(0)
    data = rng.random((frames, 3, h, w), dtype=np.float32)
    state, prev_out = runner.initial_state()
    times = []
    for i in range(frames):
        t0 = time.perf_counter()
        cur = runner.upload(data[i])
        prev = runner.upload(data[max(i - 1, 0)])
        nxt = runner.upload(data[min(i + 1, frames - 1)])
        out, state = runner.step(prev, cur, nxt, state, prev_out)
        prev_out = out if desc.feedback else None
        runner.download(out)
        times.append((time.perf_counter() - t0) * 1000)
    return times


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--height", type=int, default=180)
    ap.add_argument("--width", type=int, default=320)
    ap.add_argument("--frames", type=int, default=24)
    ap.add_argument("--model", default="animesr-v1")
    args = ap.parse_args()
    warm = 4
    bare = bare_step_ms(args.model, args.height, args.width, args.frames)[warm:]
    with tempfile.TemporaryDirectory() as tmp:
        vpy, out = Path(tmp) / "bench.vpy", Path(tmp) / "stamps.json"
        vpy.write_text(VPY.format(frames=args.frames, height=args.height, width=args.width, model=args.model,
                                  out=str(out)))
        vspipe = str(Path(sys.executable).parent / "vspipe")
        subprocess.run([vspipe, str(vpy), "--"], check=True, stdout=subprocess.DEVNULL)
        rec = json.loads(out.read_text())
    stamps = sorted(rec["stamps"].values())
    per_frame = [(b - a) * 1000 for a, b in zip(stamps[warm:], stamps[warm + 1:])]
    b, f = statistics.median(bare), statistics.median(per_frame)
    print(f"LR {args.height}x{args.width}, {args.frames} frames, model {args.model}, cpu backend")
    print(f"bare step (upload+step+download): median {b:8.1f} ms/frame")
    print(f"vspipe linear render via Upscale: median {f:8.1f} ms/frame")
    print(f"filter overhead: {100 * (f / b - 1):+.1f} %  (ratio {f / b:.3f})")
    print(f"step counter: {rec['stats']['steps']} steps for {args.frames} frames "
          f"(served {rec['stats']['served']}, fallback {rec['stats']['fallback_steps']})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
