"""``vqdsr bench``: time every available backend in one run (a benchmark, not a test).

``--what upscale`` (default) times the VSR step of every backend (and, with ``--render N``, a full
``vsvqdsr.Upscale`` render); ``--what degrade`` the degrader against today's torch eager path;
``--what sisr`` a single-image SR model. Every candidate is created and warmed up, then timed in
interleaved rounds (one run of each per round, so a change in machine load hits all alike); the
median is reported with the speed-up against the baseline of the same run, and each CPU row the
precision its engine really ran (the 'ran' column). The harness lives in
:mod:`vsvqdsr.evaluation.speed`; this module parses the options and prints. Progress goes to
stderr, the table to stdout, ``--json PATH`` writes the same rows.
"""
from __future__ import annotations

import argparse
import json
from dataclasses import asdict

from ..log import get_logger
from ..evaluation.speed import ALL_SIZES, Row, cpu_verdicts, macs_per_lr_pixel, render_verdicts  # noqa: F401  (re-exported)
from .main import CLIError

log = get_logger(__name__)


def _parse_sizes(text: str) -> list[tuple[int, int]]:
    if text == "all":
        return list(ALL_SIZES)
    out = []
    for part in text.split(","):
        try:
            h, w = (int(v) for v in part.lower().split("x"))
        except ValueError:
            raise CLIError(f"--sizes: {part!r} is not HEIGHTxWIDTH (e.g. 180x320) or 'all'") from None
        if h < 4 or w < 4:
            raise CLIError(f"--sizes: {part!r} is too small (at least 4x4)")
        out.append((h, w))
    return out


def _verdict_lines(verdicts: list[dict]) -> list[str]:
    lines = []
    for v in verdicts:
        state = ("MET" if v["met"] else
                 f"MISSED by {100 * v['missed_by']:.1f} % (needs <= {v['target'] * v['limit_ms']:.1f} ms)")
        lines.append(f"cpu fp32 target {v['size']}: best {v['best_label']} {v['best_ms']:.1f} ms = "
                     f"{v['ratio']:.2f}x the GEMM-implied limit {v['limit_ms']:.1f} ms "
                     f"(target <= {v['target']:.1f}x): {state}")
    return lines


def _render_verdict_lines(verdicts: list[dict]) -> list[str]:
    return [f"render target {v['size']}: {v['label']} {v['ms']:.1f} ms = {v['ratio']:.2f}x the {v['precision']} "
            f"GEMM-implied limit {v['limit_ms']:.1f} ms (target <= {v['target']:.1f}x): "
            + ("MET" if v["met"] else f"MISSED by {100 * v['missed_by']:.1f} %") for v in verdicts]


def _limit_lines(verdicts: list[dict]) -> list[str]:
    return [f"{v['kind']} limit {v['size']}: best CPU {v['label']} {v['ms']:.1f} ms ran {v['precision']} = "
            f"{v['ratio']:.2f}x the {v['precision']} GEMM-implied limit {v['limit_ms']:.1f} ms (no target set)"
            for v in verdicts]


def _fmt(v, spec):
    width = int(spec.split(".")[0]) if spec[0].isdigit() else 0
    return "-".rjust(width) if v is None else format(v, spec)


def _table(rows: list[Row]) -> str:
    head = f"{'kind':<7} {'size':>9} {'backend':<38} {'ran':>4} {'ms/frame':>9} {'fps':>7} {'vs base':>8} {'% peak':>7}  note"
    lines = [head, "-" * len(head)]
    for r in rows:
        share = None if r.peak_share is None else 100 * r.peak_share
        lines.append(f"{r.kind:<7} {r.size:>9} {r.label:<38} {r.precision or '-':>4} {_fmt(r.ms, '9.1f')} {_fmt(r.fps, '7.2f')} "
                     f"{_fmt(r.speedup, '7.2f') + ('x' if r.speedup else ''):>8} {_fmt(share, '6.1f'):>7}  {r.note}")
    return "\n".join(lines)


def _speed_lines(verdicts: list[dict]) -> list[str]:
    return [f"{v['kind']} cpu target {v['size']}: best {v['best_label']} {v['best_ms']:.0f} ms = "
            f"{v['speedup']:.2f}x the torch eager path (target >= {v['target']:.0f}x): "
            f"{'MET' if v['met'] else 'MISSED'}" for v in verdicts]


def run(args: argparse.Namespace) -> int:
    from ..evaluation.speed import BenchError, run_bench

    sizes = _parse_sizes(args.sizes)
    whats = [w.strip() for w in args.what.split(",") if w.strip()]
    try:
        res = run_bench(args, sizes, whats)
    except BenchError as e:
        raise CLIError(str(e)) from e
    info = res.info
    if "model" in info:
        peaks = info["peak_gflops"]
        print(f"model: {info['model']}; {info['macs_per_lr_pixel'] / 1e6:.3f} M MACs per LR pixel; peak fp32 GEMM "
              f"{peaks['cpu-fp32']:.0f} GFLOP/s (CPU, {info['threads']} threads)"
              + "".join(f"; {k} {v:.0f} GFLOP/s" for k, v in peaks.items() if k.startswith("gpu")))
    print(f"CPU capabilities: {info['cpu_capabilities']}; precision=auto here: {info['precision_auto']}")
    print(f"median of {args.frames} timed runs after {args.warmup} warm-up run(s); candidates interleaved per round; "
          f"torch {info['torch']}, {info['threads']} torch threads, {info['cpu']}")
    print(_table(res.rows))
    for line in (_verdict_lines(res.cpu_targets) + _render_verdict_lines(res.render_targets)
                 + _speed_lines(res.speed_targets) + _limit_lines(res.graph_limits)):
        print(line)
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"info": info, "rows": [asdict(r) for r in res.rows], "cpu_targets": res.cpu_targets,
                       "speed_targets": res.speed_targets, "render_targets": res.render_targets, "graph_limits": res.graph_limits}, f, indent=1)
        log.info(f"bench: wrote {args.json}")
    return 0


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("bench", help="time every available backend (VSR step and render, degrader, SISR)",
                       description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--what", default="upscale",
                   help="comma-separated: upscale (VSR step), degrade (the degrader), sisr (single-image SR); "
                        "default upscale")
    p.add_argument("--sizes", default="180x320",
                   help="comma-separated LR sizes HEIGHTxWIDTH, or 'all' (180x320,270x480,480x720,540x960,"
                        "1080x1920); default 180x320")
    p.add_argument("--frames", type=int, default=6, help="timed steps per candidate (median reported); default 6")
    p.add_argument("--warmup", type=int, default=1, help="untimed warm-up steps per candidate; default 1")
    p.add_argument("--render", type=int, default=0,
                   help="also time a full vsvqdsr.Upscale render of N frames per backend (0: off)")
    p.add_argument("--model", default="default", help="installed model name or file, 'default' or 'random'")
    p.add_argument("--degrader", default="default", help="degrader for --what degrade: name, file or 'default'")
    p.add_argument("--sisr", default="default", help="SISR model for --what sisr: name, file or 'default'")
    p.add_argument("--tile", type=int, default=256, help="SISR tile edge in LR pixels (0: whole frame); default 256")
    p.add_argument("--only", default=None, help="comma-separated substrings of backend labels to keep (baseline always runs)")
    p.add_argument("--max-seconds", type=float, default=8.0,
                   help="skip a candidate at a size when its extrapolated step time exceeds this; default 8")
    p.add_argument("--threads", type=int, default=None,
                   help="torch CPU threads, and the CPU engines' threads for degrade/sisr (default: all)")
    p.add_argument("--device-id", type=int, default=0, help="GPU index for GPU backends")
    p.add_argument("--json", default=None, metavar="PATH", help="also write the results as JSON")
    p.add_argument("--vsmlrt", action="store_true",
                   help="time vs-mlrt's OpenVINO plugin (core.ov) on the same network beside Upscale")
    p.add_argument("--vsmlrt-ov", default=None, metavar="LIBVSOV",
                   help="load vs-mlrt's libvsov.so from this path first (implies --vsmlrt)")
    p.set_defaults(func=run)
