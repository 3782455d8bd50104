"""``vqdsr export degrader``: ship a trained stage-2 degrader run as fp16 safetensors + model card.

Writes ``OUT_DIR/NAME.safetensors`` and ``OUT_DIR/NAME.json`` (default: the package's model folder;
an existing model of that name only with ``--force``) and prints a JSON summary (file, size, reconstruction at k = 1, loss summary) on stdout. Bad input:
one line on stderr, exit status 2.
"""
from __future__ import annotations

import argparse
import json

from .main import CLIError, check_output_dir, check_output_file


def _degrader(args: argparse.Namespace) -> int:
    from pathlib import Path

    from ..training.export_degrader import default_out_dir, export_degrader
    from ..weights.loading import WeightsError

    if not args.name or Path(args.name).name != args.name:
        raise CLIError(f"--name must be a plain file stem, got {args.name!r}")
    out_dir = check_output_dir(args.out_dir if args.out_dir is not None else default_out_dir(), "output folder")
    for suffix in (".safetensors", ".json"):
        check_output_file(out_dir / f"{args.name}{suffix}", args.force)
    try:
        summary = export_degrader(args.s1, args.s2, args.data, name=args.name, out_dir=args.out_dir,
                                  note=args.note)
    except KeyError as e:
        raise CLIError(f"a run's summary.json or last.pt lacks the key {e.args[0]!r}") from e
    except (OSError, ValueError, WeightsError, RuntimeError) as e:
        raise CLIError(str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__) from e
    print(json.dumps(summary, indent=2))
    return 0


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("export degrader", help="ship a trained stage-2 degrader run (fp16 safetensors + model card)",
                       description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--s1", required=True, metavar="RUN", help="the stage-1 `vqdsr train-degrader` run folder")
    p.add_argument("--s2", required=True, metavar="RUN", help="the stage-2 run folder (its last.pt is exported)")
    p.add_argument("--data", required=True, metavar="DIR",
                   help="low-quality PNG frames; reconstruction is measured on every 25th one's centre 128x128")
    p.add_argument("--name", default="degrade-lite", help="model name (default degrade-lite)")
    p.add_argument("--out-dir", metavar="DIR", help="where to write (default: the package's vsvqdsr/models folder)")
    p.add_argument("--note", default="", help="the card's free-text quality note")
    p.add_argument("--force", action="store_true", help="overwrite an existing model of that name")
    p.set_defaults(func=_degrader)
