"""What ``max_chain`` restarts cost: quality against the unbounded chain, and steps per random seek.

Upscales the first scene of the bundled sample (frames 0..83; ``--frames`` takes fewer) once with
one chain per scene (the reference) and once per ``max_chain`` N and ``warmup`` W, then prints per
(N, W): PSNR (RGB, clamped to [0, 1], peak 1) of the frames after the first restart against the
reference (mean and worst frame), the network steps of the whole linear render, and the steps a
random seek to a frame of the scene costs from an empty store (max and mean), with the seconds that
is at the measured median step time of this machine.

    python scripts/max_chain_cost.py                              # N in 8,16,32; W in 0,4,8,16
    python scripts/max_chain_cost.py --frames 48 --chains 8,16 --warmups 0,4,8
"""
from __future__ import annotations

import argparse
import re
import statistics
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def cpu_name() -> str:
    try:
        return re.search(r"model name\s*:\s*(.*)", Path("/proc/cpuinfo").read_text()).group(1).strip()
    except (OSError, AttributeError):
        return "unknown CPU"


def render(clip) -> tuple[np.ndarray, list[float], set[int]]:
    """Frames as ``(t, 3, h, w)`` float32 in order, the wall time of each request, and the chain starts."""
    out, times, starts = [], [], set()
    for n in range(clip.num_frames):
        t0 = time.perf_counter()
        f = clip.get_frame(n)
        times.append(time.perf_counter() - t0)
        out.append(np.stack([np.asarray(f[p], dtype=np.float32) for p in range(3)]))
        starts.add(int(f.props["VQDSR_ChainStart"]))
    return np.stack(out), times, starts


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = float(np.mean((np.clip(a, 0, 1) - np.clip(b, 0, 1)) ** 2))
    return float("inf") if mse == 0 else 10 * np.log10(1.0 / mse)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--src", default=str(ROOT / "examples" / "sample" / "sample.mkv"))
    p.add_argument("--frames", type=int, default=84, help="frames of the first scene used (it is 84 long)")
    p.add_argument("--chains", default="8,16,32")
    p.add_argument("--warmups", default="0,4,8,16")
    p.add_argument("--backend", default="cpu")
    p.add_argument("--threads", type=int, default=2)
    args = p.parse_args()

    import vapoursynth as vs

    import vsvqdsr as vqdsr
    from vsvqdsr.filters.chain import ChainPlan

    core = vs.core
    core.num_threads = args.threads
    src = core.bs.VideoSource(args.src)[:args.frames]
    print(f"CPU: {cpu_name()}; backend={args.backend}; threads={args.threads}; "
          f"{src.width}x{src.height}, frames 0..{src.num_frames - 1} (one scene)", flush=True)
    st: dict = {}
    ref, times, starts = render(vqdsr.Upscale(src, backend=args.backend, stats=st))
    if starts != {0}:
        raise SystemExit("max_chain_cost: the frames are not one scene; use --frames to stay in the first")
    step_s = statistics.median(times[1:])  # a linear render runs one step per frame
    print(f"output range of the unbounded chain: {ref.min():.3f} .. {ref.max():.3f} (RGBS)")
    print(f"unbounded chain: {st['steps']} steps; median step {step_s * 1000:.0f} ms; "
          f"a seek to frame n costs n + 1 steps (max {src.num_frames}, {src.num_frames * step_s:.1f} s)")
    print(f"{'N':>4} {'W':>4} {'PSNR mean':>10} {'PSNR worst':>10} {'steps':>6} {'seek max':>9} "
          f"{'seek mean':>9} {'seek max s':>10}")
    for n_chain in (int(x) for x in args.chains.split(",")):
        for warm in (int(x) for x in args.warmups.split(",")):
            if warm >= n_chain or n_chain >= src.num_frames:
                continue
            st = {}
            out, _, _ = render(vqdsr.Upscale(src, backend=args.backend, max_chain=n_chain, warmup=warm, stats=st))
            after = range(n_chain, src.num_frames)
            values = [psnr(out[i], ref[i]) for i in after]
            plan = ChainPlan(n_chain, warm)
            seeks = [i - plan.primary(i, 0) + 1 for i in range(src.num_frames)]
            print(f"{n_chain:>4} {warm:>4} {statistics.mean(values):>10.2f} {min(values):>10.2f} {st['steps']:>6} "
                  f"{max(seeks):>9} {statistics.mean(seeks):>9.1f} {max(seeks) * step_s:>10.1f}", flush=True)


if __name__ == "__main__":
    main()
