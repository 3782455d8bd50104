"""Peak RSS and step count of a real linear ``vspipe`` render of ``vqdsr.Upscale``.

For each input size, runs ``/usr/bin/time -v vspipe`` on a script that reads the bundled sample,
resizes it to that size, upscales it with ``core.num_threads`` threads and converts the result to
YUV420P10 (what an encode gets), and prints one line per run: size, threads, frames, steps run,
store size at the end, peak RSS and wall time. Every step runs once when ``steps == frames``.

    python scripts/upscale_memory.py --sizes 720x480,1280x720 --threads 16 --frames 4
    python scripts/upscale_memory.py --sizes 720x480 --cache-steps 36   # the old default store
    python scripts/upscale_memory.py --sizes 1280x720 --tiles 1          # untiled

Figures depend on the CPU: the header names it and its vector flags.
"""
from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SAMPLE = ROOT / "examples" / "sample" / "sample.mkv"

SCRIPT = '''
import sys
import vapoursynth as vs
import vsvqdsr as vqdsr
core = vs.core
g = globals()
core.num_threads = int(g["threads"])
opts = {k: int(g[k]) for k in ("cache_mb", "cache_steps") if k in g}
if "tiles" in g:
    t = [int(v) for v in g["tiles"].split("x")]
    opts["tiles"] = t[0] if len(t) == 1 else tuple(t)
src = core.bs.VideoSource(g["src"])[:int(g["frames"])]
src = core.resize.Bicubic(src, int(g["w"]), int(g["h"]))
st = {}
up = vqdsr.Upscale(src, backend=g["backend"], stats=st, **opts)
out = core.resize.Bicubic(up, format=vs.YUV420P10, matrix_s="709")
last = out.num_frames - 1
def report(n, f):
    if n == last:
        print("STATS steps=%d stored=%d stored_mb=%.1f fallback=%d" % (st["steps"], st["stored"],
              st["stored_mb"], st["fallback_steps"]), file=sys.stderr, flush=True)
        print("RUNNER " + st.get("runner", "?"), file=sys.stderr, flush=True)
    return f
out.std.ModifyFrame(out, report).set_output()
'''


def cpu_line() -> str:
    model, flags = "unknown CPU", set()
    try:
        text = Path("/proc/cpuinfo").read_text()
        model = re.search(r"model name\s*:\s*(.*)", text).group(1).strip()
        flags = set(re.search(r"flags\s*:\s*(.*)", text).group(1).split())
    except (OSError, AttributeError):
        pass
    wanted = ["avx2", "fma", "avx512f", "avx512_bf16", "avx512_vnni", "avx_vnni", "amx_tile"]
    return f"{model}; {os.cpu_count()} cores; " + " ".join(f"{f}={'yes' if f in flags else 'no'}" for f in wanted)


def run_one(vpy: Path, w: int, h: int, args) -> dict:
    cmd = ["/usr/bin/time", "-v", "vspipe", "-a", f"src={args.src}", "-a", f"w={w}", "-a", f"h={h}",
           "-a", f"frames={args.frames}", "-a", f"threads={args.threads}", "-a", f"backend={args.backend}"]
    if args.cache_mb is not None:
        cmd += ["-a", f"cache_mb={args.cache_mb}"]
    if args.cache_steps is not None:
        cmd += ["-a", f"cache_steps={args.cache_steps}"]
    if args.tiles is not None:
        cmd += ["-a", f"tiles={args.tiles}"]
    cmd += [str(vpy), "/dev/null"]
    env = dict(os.environ, PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    res = subprocess.run(cmd, capture_output=True, text=True, env=env)
    err = res.stderr
    if res.returncode != 0:
        raise SystemExit(f"upscale_memory: vspipe failed for {w}x{h}: {err.strip().splitlines()[-1:]}")
    stats = dict(re.findall(r"(\w+)=([\d.]+)", re.search(r"STATS (.*)", err).group(1)))
    rss_kb = int(re.search(r"Maximum resident set size \(kbytes\): (\d+)", err).group(1))
    wall = re.search(r"Elapsed \(wall clock\) time \(h:mm:ss or m:ss\): ([\d:.]+)", err).group(1)
    runner = re.search(r"RUNNER (.*)", err)
    return {"rss_mb": rss_kb / 1024, "wall": wall, "runner": runner.group(1) if runner else "?", **stats}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--sizes", default="720x480,1280x720", help="input sizes WxH, comma separated")
    p.add_argument("--threads", type=int, default=16)
    p.add_argument("--frames", type=int, default=4)
    p.add_argument("--backend", default="cpu")
    p.add_argument("--cache-mb", type=int, default=None)
    p.add_argument("--cache-steps", type=int, default=None)
    p.add_argument("--tiles", default=None, help="Upscale's tiles: N or AxD (default: Upscale's default)")
    p.add_argument("--src", default=str(SAMPLE))
    args = p.parse_args()
    sizes = []
    for s in args.sizes.split(","):
        m = re.fullmatch(r"(\d+)x(\d+)", s.strip())
        if not m:
            p.error(f"--sizes: {s!r} is not WxH")
        sizes.append((int(m.group(1)), int(m.group(2))))
    print(f"CPU: {cpu_line()}")
    store = (f"cache_steps={args.cache_steps}" if args.cache_steps is not None
             else f"cache_mb={args.cache_mb if args.cache_mb is not None else 'default'}")
    print(f"backend={args.backend} threads={args.threads} frames={args.frames} {store}")
    with tempfile.TemporaryDirectory(prefix="vsvqdsr-mem-") as tmp:
        vpy = Path(tmp) / "mem.vpy"
        vpy.write_text(SCRIPT)
        for w, h in sizes:
            r = run_one(vpy, w, h, args)
            once = "every step once" if int(r["steps"]) == args.frames and int(r["fallback"]) == 0 else "EXTRA STEPS"
            print(f"{w}x{h}: peak RSS {r['rss_mb']:.0f} MiB, steps {r['steps']} for {args.frames} frames ({once}), "
                  f"store {r['stored']} steps / {r['stored_mb']} MiB at the end, wall {r['wall']}; {r['runner']}", flush=True)
    sys.exit(0)


if __name__ == "__main__":
    main()
