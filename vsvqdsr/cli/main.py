"""``vqdsr``: the project's command line. Subcommands register themselves in :data:`COMMANDS`.

Each subcommand module exposes ``add_parser(subparsers)`` which sets ``func`` on its parser.
A two-word verb (``vqdsr eval build``) is a subparser named with the space in it: :func:`main`
joins the first two arguments when they name one, so ``vqdsr eval EVAL_SET`` keeps its meaning.
Errors are reported as ``vqdsr <cmd>: message`` on stderr with exit status 2. Everything else the
package says goes through its logger (:mod:`vsvqdsr.log`) to stderr; the global ``-v`` / ``-q``
(before the command) make it say more or less. Stdout carries only a command's result.
"""
from __future__ import annotations

import argparse
import importlib
import os
import sys
from pathlib import Path

from ..log import get_logger, set_verbosity

log = get_logger(__name__)

#: Subcommand modules (inside ``vsvqdsr.cli``), imported lazily so ``vqdsr --help`` stays fast.
COMMANDS: list[str] = ["models", "train_degrader", "train_vsr", "enhance_hr", "bench", "render", "eval",
                       "export_degrader", "adapt", "precision_gate"]


class CLIError(Exception):
    """A user-facing error: printed without a traceback."""


def _existing_ancestor(path: Path) -> Path:
    p = path.absolute()
    while not p.exists() and p != p.parent:
        p = p.parent
    return p


def _refuse_file_above(p: Path, what: str) -> None:
    """Refuse ``p`` when it, or a folder it would need, is an existing file or not writable."""
    base = _existing_ancestor(p)
    if not base.is_dir():
        where = "is" if base == p.absolute() else f"lies under {base}, which is"
        raise CLIError(f"{what} {p} {where} an existing file; accepted: a path in a writable folder")
    if not os.access(base, os.W_OK | os.X_OK):
        raise CLIError(f"{what} {p}: {base} is not writable")


def check_output_dir(path: str | os.PathLike, what: str = "output folder") -> Path:
    """Refuse, before any work, an output folder that cannot be created or written: the path (or a
    folder above it) is an existing file, or the nearest existing folder is not writable."""
    p = Path(path)
    _refuse_file_above(p, what)
    return p


def check_output_file(path: str | os.PathLike, force: bool, what: str = "output file") -> Path:
    """Refuse, before any work, an output file that is a folder, lies under a file, or exists
    (unless ``force``)."""
    p = Path(path)
    if p.is_dir():
        raise CLIError(f"{what} {p} is a folder; accepted: a file path")
    if p.exists() and not force:
        raise CLIError(f"{what} {p} exists; pass --force to overwrite it")
    if not p.exists():
        _refuse_file_above(p, what)
    elif not os.access(p.parent, os.W_OK | os.X_OK):
        raise CLIError(f"{what} {p}: {p.parent} is not writable")
    return p


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="vqdsr", description="VQD-SR animation super-resolution tools")
    parser.add_argument("-v", "--verbose", dest="log_verbose", action="count", default=0,
                        help="say more on stderr (debug messages)")
    parser.add_argument("-q", "--quiet", dest="log_quiet", action="count", default=0,
                        help="say less on stderr: warnings and errors only, no progress bars (-qq: errors only)")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name in COMMANDS:
        try:
            mod = importlib.import_module(f"vsvqdsr.cli.{name}")
        except ImportError as e:  # an optional feature's module may need an extra
            log.warning(f"subcommand module {name!r} unavailable: {e}")
            continue
        mod.add_parser(sub)
    return parser


def _verbs(parser: argparse.ArgumentParser) -> set[str]:
    return {name for a in parser._actions if isinstance(a, argparse._SubParsersAction) for name in a.choices}


def join_verb(argv: list[str], verbs: set[str]) -> list[str]:
    """``["eval", "build", ...]`` -> ``["eval build", ...]`` when ``"eval build"`` is a verb (after the
    global flags, which take no value)."""
    i = 0
    while i < len(argv) and argv[i].startswith("-"):
        i += 1
    if len(argv) >= i + 2 and f"{argv[i]} {argv[i + 1]}" in verbs:
        return [*argv[:i], f"{argv[i]} {argv[i + 1]}", *argv[i + 2:]]
    return argv


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(join_verb(list(sys.argv[1:] if argv is None else argv), _verbs(parser)))
    set_verbosity(args.log_verbose, args.log_quiet)
    try:
        rc = args.func(args)
    except CLIError as e:
        print(f"vqdsr {args.command}: {e}", file=sys.stderr)
        return 2
    except OSError as e:  # a file system refusal the command did not foresee: one line, no traceback
        where = f" ({e.filename})" if getattr(e, "filename", None) and str(e.filename) not in str(e) else ""
        print(f"vqdsr {args.command}: {e}{where}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"vqdsr {args.command}: interrupted", file=sys.stderr)
        return 130
    return int(rc or 0)


if __name__ == "__main__":
    # Run the imported module's main so `python -m` and subcommands share one CLIError class.
    from vsvqdsr.cli.main import main as _main

    sys.exit(_main())
