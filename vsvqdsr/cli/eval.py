"""``vqdsr eval``: the quality benchmark (methods side by side on a benchmark set), and its verbs.

* ``vqdsr eval EVAL_SET --out DIR`` writes ``DIR/results.md``, ``DIR/results.json``,
  ``DIR/charts/<metric>.png`` and ``DIR/crops.png`` (all atomically); SR frames and per-clip metrics
  are cached under ``DIR/cache``;
* ``vqdsr eval build --out EVAL_SET`` renders and degrades the benchmark set;
* ``vqdsr eval verdict RESULTS METHOD`` prints WIN/LOSS per metric and severity against the best
  baseline (exit 0 only when every cell is a win, 1 otherwise);
* ``vqdsr eval card RESULTS METHOD CARD --command ...`` writes the figures into a model card and
  sets or removes its ``benchmark_rank`` (the default-model marker).

A benchmark set folder literally named ``build``, ``verdict`` or ``card`` is passed as ``./build``.
Bad input: one line on stderr, exit status 2. See docs/benchmark.md.
"""
from __future__ import annotations

import argparse
import json

from ..log import get_logger
from .main import CLIError, check_output_dir, check_output_file

log = get_logger(__name__)


def _crop(s: str) -> list[int] | None:
    if s in ("0", "none", "full"):
        return None
    try:
        h, w = (int(v) for v in s.lower().split("x"))
    except ValueError as e:
        raise argparse.ArgumentTypeError(f"expected HxW (e.g. 272x480) or 'full', got {s!r}") from e
    return [h, w]


def _run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from ..evaluation.dataset import load_set
    from ..evaluation.methods import available_methods, resolve_methods
    from ..evaluation.metrics import METRICS
    from ..evaluation.report import write_reports
    from ..evaluation.options import DEFAULT_OPTIONS
    from ..evaluation.runner import evaluate, sr_folder

    if args.list_methods:
        for name, kind in available_methods().items():
            print(f"{name:<24} {kind}")
        return 0
    if args.eval_set is None or args.out is None:
        raise CLIError("EVAL_SET and --out are required (build a set with `vqdsr eval build --out EVAL_SET`)")
    try:
        bset = load_set(args.eval_set, verify=args.verify)
    except (FileNotFoundError, ValueError) as e:
        raise CLIError(str(e)) from e
    try:
        methods = resolve_methods(args.methods, args.checkpoint or (), backend=args.backend)
    except ValueError as e:
        raise CLIError(str(e)) from e
    if not methods:
        raise CLIError("no methods to run")
    metrics = args.metrics or list(DEFAULT_OPTIONS["metrics"])  # type: ignore[arg-type]
    bad = [m for m in metrics if m not in METRICS]
    if bad:
        raise CLIError(f"unknown metrics {bad}; known: {', '.join(METRICS)}")
    if args.crop_clip and args.crop_clip not in bset.clip_names:
        raise CLIError(f"--crop-clip {args.crop_clip!r} is not a clip of the set ({', '.join(bset.clip_names)})")
    options = {"metrics": metrics, "niqe_step": args.niqe_step, "cvvdp_display": args.cvvdp_display,
               "cvvdp_frames": args.cvvdp_frames, "cvvdp_crop": args.cvvdp_crop}
    out = Path(args.out)
    try:
        res = evaluate(bset, methods, out, options, threads=args.threads, progress=not args.quiet)
    except (ValueError, RuntimeError, OSError) as e:
        raise CLIError(str(e)) from e
    crop_clip = args.crop_clip or bset.clip_names[0]
    clip_objs = {c.severity: c for c in bset.clips if c.name == crop_clip}
    folders = {m.name: {s: sr_folder(out, m, bset, c) for s, c in clip_objs.items()} for m in methods}
    paths = write_reports(res, bset, folders, out, crop_clip)
    log.info(f"eval: {len(methods)} methods, {res['run']['wall_seconds']:.1f} s; wrote {paths['markdown']}, "
             f"{paths['json']}, {out / 'charts'}/, {paths['crops']}")
    if args.print:
        print((out / "results.md").read_text(encoding="utf-8"))
    return 0


def add_parser(sub: argparse._SubParsersAction) -> None:
    from ..evaluation.options import DEFAULT_OPTIONS as D

    crop = D["cvvdp_crop"]
    crop_s = f"{crop[0]}x{crop[1]}" if crop else "full"  # type: ignore[index]
    p = sub.add_parser("eval", help="quality benchmark: methods side by side on a benchmark set",
                       description="Run methods over a benchmark set (`vqdsr eval build`) and write "
                                   "results.md, results.json, charts/*.png and crops.png to --out. "
                                   "Related verbs: vqdsr eval build | verdict | card (see their --help).")
    p.add_argument("eval_set", nargs="?", metavar="EVAL_SET", help="benchmark set folder (holds benchmark.json)")
    p.add_argument("--out", "-o", help="output folder (also holds the cache)")
    p.add_argument("--methods", nargs="+", metavar="NAME",
                   help="methods to compare (default: bicubic lanczos realesr-animevideov3 and every installed "
                        "VSR model); see --list-methods")
    p.add_argument("--checkpoint", nargs="+", metavar="FILE", action="extend",
                   help="VSR weights files to compare as well (named by file stem)")
    p.add_argument("--metrics", nargs="+", metavar="NAME", help="metrics (default all: psnr_y ssim_y ssimulacra2 "
                   "cvvdp flicker niqe)")
    p.add_argument("--threads", type=int, default=None, help="torch / VapourSynth / backend threads")
    p.add_argument("--backend", default="cpu", help="Upscale backend for VSR models (default cpu)")
    p.add_argument("--niqe-step", type=int, default=D["niqe_step"],
                   help=f"NIQE on every N-th frame (default {D['niqe_step']})")
    p.add_argument("--cvvdp-display", default=D["cvvdp_display"], help="ColorVideoVDP display model "
                   f"(default {D['cvvdp_display']})")
    p.add_argument("--cvvdp-frames", type=int, default=D["cvvdp_frames"],
                   help=f"ColorVideoVDP on the first N frames of each clip (0 = all; default {D['cvvdp_frames']})")
    p.add_argument("--cvvdp-crop", type=_crop, default=crop, metavar="HxW",
                   help=f"ColorVideoVDP on a centred HR crop ('full' = whole frame; default {crop_s})")
    p.add_argument("--crop-clip", help="clip shown in crops.png (default: the first)")
    p.add_argument("--verify", action="store_true", help="check every file's sha256 against the manifest")
    p.add_argument("--print", action="store_true", help="print results.md to stdout")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    p.add_argument("--list-methods", action="store_true", help="list available method names and exit")
    p.set_defaults(func=_run)
    _add_verbs(sub)


def _build(args: argparse.Namespace) -> int:
    from pathlib import Path

    from ..evaluation.sources import EvalSetError, make_eval_set

    out = check_output_dir(args.out, "benchmark set folder (--out)")
    if out.is_dir() and any(out.iterdir()) and not args.force:
        raise CLIError(f"benchmark set folder {out} exists and is not empty; pass --force to replace it")
    try:
        make_eval_set(args.out, args.render_cache, threads=args.threads)
    except (EvalSetError, RuntimeError, ValueError, OSError) as e:  # a failed ffmpeg chain: RuntimeError
        lines = str(e).strip().splitlines()
        raise CLIError(lines[0] if lines else type(e).__name__) from e
    return 0


def _results(path: str) -> dict:
    from ..evaluation.verdict import read_results

    try:
        return read_results(path)
    except (OSError, ValueError) as e:
        raise CLIError(f"cannot read results {path}: {e}") from e


def _key_error(e: KeyError) -> CLIError:
    return CLIError(str(e.args[0]) if e.args else "malformed results file")


def _verdict(args: argparse.Namespace) -> int:
    from ..evaluation.verdict import compare
    from ..weights.loading import atomic_write_bytes

    if args.json:
        check_output_file(args.json, args.force, "rows file (--json)")
    results = _results(args.results)
    try:
        rows = compare(results, args.method, args.against, args.metrics)
    except KeyError as e:
        raise _key_error(e) from e
    for r in rows:
        arrow = "higher" if r["higher_is_better"] else "lower"
        if "clips" in r:  # a clip cell: clips won against each clip's best baseline
            lost = ", ".join(c for c, d in r["clips"].items() if not d["win"]) or "none"
            print(f"{r['metric']:<12} {r['scope']:<8} {args.method} won {r['value']} of {len(r['clips'])} clips, "
                  f"needs {r['baseline_value']} (lost: {lost})  {'WIN' if r['win'] else 'LOSS'}")
            continue
        print(f"{r['metric']:<12} {r['scope']:<8} {args.method} {r['value']:8.3f}  vs  best baseline "
              f"{r['best_baseline']:<22} {r['baseline_value']:8.3f}  ({arrow} is better)  "
              f"{'WIN' if r['win'] else 'LOSS'}")
    wins = sum(r["win"] for r in rows)
    print(f"{wins} of {len(rows)} cells won")
    if args.json:
        atomic_write_bytes(args.json, json.dumps(rows, indent=1).encode("utf-8"))
    return 0 if wins == len(rows) else 1


def _card(args: argparse.Namespace) -> int:
    from pathlib import Path

    from ..evaluation.verdict import update_card, write_card

    results = _results(args.results)
    path = Path(args.card)
    if path.is_dir():
        raise CLIError(f"model card {path} is a folder; accepted: a .json model card file")
    try:
        card = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        raise CLIError(f"cannot read model card {path}: {e}") from e
    if not isinstance(card, dict):
        raise CLIError(f"model card {path} is not a JSON object")
    try:
        card = update_card(card, results, args.method, args.eval_command)
    except KeyError as e:
        raise _key_error(e) from e
    write_card(path, card)
    b = card["benchmark"]
    rank = "benchmark_rank 1 (default model)" if "benchmark_rank" in card else "no benchmark_rank (not the default)"
    log.info(f"eval card: {path}: goal cells won {b['goal_cells_won']}; {rank}")
    return 0


def _add_verbs(sub: argparse._SubParsersAction) -> None:
    from ..evaluation.verdict import BASELINES, GOAL_METRICS

    p = sub.add_parser("eval build", help="render and degrade the quality benchmark set",
                       description="Render six clean clips (synfig-examples, openclipart-svg) and "
                                   "degrade them through real ffmpeg chains (and seeded numpy damage for the "
                                   "old-footage severities) into a benchmark set. Needs synfig, rsvg-convert and "
                                   "ffmpeg. See docs/benchmark.md.")
    p.add_argument("--out", "-o", required=True, metavar="EVAL_SET", help="set folder (replaced as a whole)")
    p.add_argument("--render-cache", metavar="DIR",
                   help="folder for the synfig/rsvg renders (default ~/.cache/vsvqdsr/eval-render)")
    p.add_argument("--threads", type=int, default=2, help="synfig render threads (default 2)")
    p.add_argument("--force", action="store_true", help="replace an existing, non-empty --out folder")
    p.set_defaults(func=_build)

    p = sub.add_parser("eval verdict", help="WIN/LOSS of a method against the best baseline, per metric and severity",
                       description="Compare a method with the best baseline in every (metric, severity) cell of a "
                                   "`vqdsr eval` results.json, and per severity clip by clip (a clip cell is won on "
                                   "at least 5 of 6 clips). Exit 0 when every cell is a win, 1 otherwise, "
                                   "2 for bad input.")
    p.add_argument("results", help="results.json written by `vqdsr eval`")
    p.add_argument("method", help="method name in the results (a checkpoint's file stem)")
    p.add_argument("--against", nargs="+", default=list(BASELINES), metavar="NAME",
                   help=f"baselines (default {' '.join(BASELINES)})")
    p.add_argument("--metrics", nargs="+", default=list(GOAL_METRICS), metavar="NAME",
                   help=f"metrics (default {' '.join(GOAL_METRICS)})")
    p.add_argument("--json", metavar="FILE", help="also write the rows here")
    p.add_argument("--force", action="store_true", help="overwrite an existing --json file")
    p.set_defaults(func=_verdict)

    p = sub.add_parser("eval card", help="write a model's benchmark figures and default-model rank into its card",
                       description="Fill a model card's benchmark section from a `vqdsr eval` results.json and set "
                                   "benchmark_rank = 1 (the default model) only when every goal cell "
                                   f"({', '.join(GOAL_METRICS)}, overall, per severity and on 5 of 6 clips per "
                                   f"severity) beats every baseline "
                                   f"({', '.join(BASELINES)}); remove it otherwise. The card is rewritten atomically.")
    p.add_argument("results", help="results.json written by `vqdsr eval`")
    p.add_argument("method", help="the model's method name in the results")
    p.add_argument("card", help="the model card (.json) to update")
    p.add_argument("--command", dest="eval_command", required=True, metavar="TEXT",
                   help="the vqdsr eval command that produced the results")
    p.set_defaults(func=_card)
