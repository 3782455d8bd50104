"""``vqdsr``: the project's command line. Subcommands register themselves in :data:`COMMANDS`.

Each subcommand module exposes ``add_parser(subparsers)`` which sets ``func`` on its parser.
Errors are reported as ``vqdsr <cmd>: message`` on stderr with exit status 2.
"""
from __future__ import annotations

import argparse
import importlib
import sys

#: Subcommand modules (inside ``vsvqdsr.cli``), imported lazily so ``vqdsr --help`` stays fast.
COMMANDS: list[str] = ["models", "train_degrader", "train_vsr", "enhance_hr", "bench", "render", "eval"]


class CLIError(Exception):
    """A user-facing error: printed without a traceback."""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="vqdsr", description="VQD-SR animation super-resolution tools")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name in COMMANDS:
        try:
            mod = importlib.import_module(f"vsvqdsr.cli.{name}")
        except ImportError as e:  # an optional feature's module may need an extra
            print(f"vqdsr: subcommand module {name!r} unavailable: {e}", file=sys.stderr)
            continue
        mod.add_parser(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        rc = args.func(args)
    except CLIError as e:
        print(f"vqdsr {args.command}: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"vqdsr {args.command}: interrupted", file=sys.stderr)
        return 130
    return int(rc or 0)


if __name__ == "__main__":
    # Run the imported module's main so `python -m` and subcommands share one CLIError class.
    from vsvqdsr.cli.main import main as _main

    sys.exit(_main())
