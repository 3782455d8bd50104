"""``vqdsr precision-gate``: a CPU precision against f32 on a whole recurrent scene and, with
``--bench``, on the benchmark set (see :mod:`vsvqdsr.evaluation.precision_gate`).

Exit status 0 when every measured gate passes, 1 when one fails, 2 on bad arguments.
"""
from __future__ import annotations

import argparse
import json

from ..log import get_logger
from .main import CLIError, check_output_file

log = get_logger(__name__)


def _run(args: argparse.Namespace) -> int:
    from ..backends import precision as prec
    from ..evaluation import precision_gate as pg
    from ..weights import WeightsError, load_state_dict, resolve_model
    from ..weights.descriptors import build_network

    try:
        prec.check(args.precision, "--precision")
    except ValueError as e:
        raise CLIError(str(e)) from None
    if args.json:
        check_output_file(args.json, args.force, "--json")
    caps = prec.capabilities()
    chosen = prec.resolve(args.precision, "openvino" if args.engine == "openvino" else "torch", caps)
    if chosen == "f32":
        raise CLIError(f"--precision {args.precision} is f32 on this CPU ({prec.summary(caps)}): nothing to compare; "
                       "force one with --precision bf16")
    emulate = {"on": True, "off": False, "auto": not prec.has_native_bf16(caps)}[args.emulate]
    if not emulate and not prec.has_native_bf16(caps):
        raise CLIError("--emulate off: this CPU has no bf16 arithmetic, so the engine would run f32 against f32; "
                       "use --emulate auto or on")
    if args.threads is not None and args.threads < 1:
        raise CLIError("--threads must be >= 1")
    try:
        name, path = resolve_model(args.model)
        net, desc = build_network(load_state_dict(path))
    except WeightsError as e:
        raise CLIError(f"--model: {e}") from None
    print(f"model {name}; CPU capabilities: {prec.summary(caps)}; native bf16: "
          f"{'yes' if prec.has_native_bf16(caps) else 'no'}; tested: {chosen}"
          f"{' (emulated)' if emulate else ''}")
    report: dict = {"model": name, "capabilities": sorted(caps), "precision": chosen, "emulated": emulate}
    ok = True
    try:
        frames = pg.load_scene(args.clip, args.first, args.frames)
    except (OSError, ValueError) as e:
        raise CLIError(f"--clip: {e}") from None
    scene = pg.scene_gate(net, desc, frames, chosen, args.engine, emulate, args.threads)
    print("\n".join(scene.lines()), flush=True)
    report["scene"] = pg.as_dict(scene)
    ok &= scene.passed
    if args.bench:
        try:
            bench = pg.benchmark_gate(net, desc, args.bench, chosen, args.engine, emulate, args.threads)
        except (OSError, ValueError) as e:
            raise CLIError(f"--bench: {e}") from None
        print("\n".join(bench.lines()))
        report["benchmark"] = pg.as_dict(bench)
        ok &= bench.passed
    if args.json:
        with open(args.json, "w") as f:
            json.dump(report, f, indent=1, default=str)
        log.info(f"precision-gate: wrote {args.json}")
    return 0 if ok else 1


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("precision-gate", help="a CPU precision against f32: PSNR over a whole scene (and the benchmark)",
                       description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--precision", default="auto", help="auto (this CPU's choice), f32 or bf16; default auto")
    p.add_argument("--engine", default="openvino", choices=("openvino", "torch"),
                   help="CPU engine of both runs; default openvino")
    p.add_argument("--emulate", default="auto", choices=("auto", "on", "off"),
                   help="bf16 emulated in f32 torch (auto: where the CPU has no bf16 arithmetic)")
    p.add_argument("--clip", default="examples/sample/sample.mkv", help="video of the scene (default: the sample)")
    p.add_argument("--first", type=int, default=0, help="first frame of the scene; default 0")
    p.add_argument("--frames", type=int, default=84, help="frames of the scene; default 84 (the sample's first scene)")
    p.add_argument("--bench", default=None, metavar="DIR", help="also score a benchmark set (scripts/make_eval_set.py)")
    p.add_argument("--model", default=None, help="installed model name or weights file (default model if omitted)")
    p.add_argument("--threads", type=int, default=None, help="CPU threads (default: all)")
    p.add_argument("--json", default=None, metavar="PATH", help="also write the results as JSON")
    p.add_argument("--force", action="store_true", help="overwrite an existing --json file")
    p.set_defaults(func=_run)
