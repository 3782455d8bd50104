#!/usr/bin/env python3
"""Print RSS and live runners over repeated ``vqdsr.Upscale`` creation in one process.

Each round builds ``Upscale(BlankClip RGBS WxH, backend=...)``, gets frame 0, drops the clip and
runs ``gc.collect()`` -- what a script previewer or ``vqdsr eval`` does many times. A leak-free
package keeps RSS flat after the first round and reports 0 runners alive.

    python scripts/upscale_leak_check.py [--rounds 7] [--width 320] [--height 180] [--backend cpu]
"""
from __future__ import annotations

import argparse
import gc
import statistics
import sys
import weakref


def rss_mb() -> float:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=7)
    ap.add_argument("--width", type=int, default=320)
    ap.add_argument("--height", type=int, default=180)
    ap.add_argument("--backend", default="cpu")
    ap.add_argument("--model", default=None)
    args = ap.parse_args()

    import vapoursynth as vs

    import vsvqdsr as vqdsr
    from vsvqdsr import backends

    refs: list[weakref.ref] = []
    real = backends.create

    def spy(*a, **k):
        runner = real(*a, **k)
        refs.append(weakref.ref(runner))
        return runner

    backends.create = spy
    src = vs.core.std.BlankClip(format=vs.RGBS, width=args.width, height=args.height, length=3)
    rss = []
    for i in range(args.rounds):
        o = vqdsr.Upscale(src, model=args.model, backend=args.backend)
        o.get_frame(0)
        del o
        gc.collect()
        rss.append(rss_mb())
        alive = sum(r() is not None for r in refs)
        print(f"round {i}: RSS {rss[-1]:.0f} MB, runners alive {alive}/{len(refs)}")
    growth = [b - a for a, b in zip(rss, rss[1:])]
    print(f"growth after round 0: {rss[-1] - rss[0]:.0f} MB over {args.rounds - 1} rounds "
          f"(median per round {statistics.median(growth):.1f} MB); runners alive at the end: "
          f"{sum(r() is not None for r in refs)} of {len(refs)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
