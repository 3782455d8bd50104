#!/usr/bin/env python3
"""Wall time and frames/s of ``vqdsr render`` with 1, 2, ... local Ray workers (needs vsvqdsr[farm]).

    PYTHONPATH=$PWD .venv/bin/python scripts/bench_render.py [--workers 1 2] [--input examples/sample/sample.mkv]
        [--min-chunk 24] [--max-chain 32] [-- extra vqdsr render options]

Each run renders into a fresh temporary directory (no resumed chunks); wall time is the whole
command (Ray start, probing, chunks, join and mux). Prints one line per worker count.
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--input", default=str(ROOT / "examples" / "sample" / "sample.mkv"))
    ap.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--min-chunk", type=int, default=24)
    ap.add_argument("--max-chain", type=int, default=32)
    ap.add_argument("extra", nargs="*", help="more vqdsr render options (after --)")
    a = ap.parse_args()
    print(f"input {a.input}, --min-chunk {a.min_chunk} --max-chain {a.max_chain} {' '.join(a.extra)}")
    print(f"{'workers':>7} {'wall s':>8} {'frames':>6} {'fps':>6}  per worker (frames/s while busy)")
    for w in a.workers:
        with tempfile.TemporaryDirectory(prefix="vqdsr-bench-") as out:
            cmd = [sys.executable, "-c", "import sys; from vsvqdsr.cli.main import main; sys.exit(main())", "render", a.input, "-o", out, "--workers", str(w),
                   "--min-chunk", str(a.min_chunk), "--max-chain", str(a.max_chain), "--no-progress", *a.extra]
            t0 = time.monotonic()
            subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
            wall = time.monotonic() - t0
            rep = json.loads((Path(out) / "render-report.json").read_text())
            frames = rep["rendered_frames"]
            per = ", ".join(f"{v['fps']:.2f} ({v['chunks']} chunks)" for v in rep["per_worker"].values())
            print(f"{w:>7} {wall:>8.1f} {frames:>6} {frames / wall:>6.2f}  {per}; retries {rep['retries']}",
                  flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
