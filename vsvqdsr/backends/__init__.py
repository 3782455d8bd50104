"""Runtimes: one small module per backend, all behind :class:`~.base.StepRunner`.

``create(name, net, desc, spec)`` builds a runner; ``"auto"`` picks TensorRT, else CUDA, else CPU
and says which on stderr once. ``check_options(name, options)`` refuses options no candidate backend
takes (:class:`UnknownOptions`), before anything is built.
"""
from __future__ import annotations

import importlib

from .base import BackendUnavailable, RunnerSpec, StepRunner
from ..log import get_logger

log = get_logger(__name__)

__all__ = ["BACKENDS", "AUTO_ORDER", "BackendUnavailable", "RunnerSpec", "StepRunner", "UnknownOptions",
           "accepted_options", "check_options", "create", "resolve_auto"]

#: Backend name -> module (inside this package) exposing ``create(net, desc, spec, **options)``.
BACKENDS: dict[str, str] = {
    "trt": "trt",
    "torch_trt": "torch_trt",
    "cuda": "cuda",
    "cpu": "cpu",
    "ort": "ort",
    "openvino": "openvino",
}

#: Order tried by ``backend="auto"``.
AUTO_ORDER: tuple[str, ...] = ("trt", "cuda", "cpu")

_announced: set[str] = set()


class UnknownOptions(ValueError):
    """Options that no backend ``name`` may end up using takes (a typo, or an argument the filter
    does not have). ``names``: the offending options; ``accepted``: what would have been taken."""

    def __init__(self, name: str, names: list[str], accepted: list[str]) -> None:
        self.backend = name
        self.names = names
        self.accepted = accepted
        where = ("no backend of the auto order (" + ", ".join(AUTO_ORDER) + ") takes"
                 if name == "auto" else f"backend {name!r} does not take")
        super().__init__(f"{where} option(s) {', '.join(names)}; accepted: {', '.join(accepted) or 'none'}")


def accepted_options(name: str) -> tuple[str, ...] | None:
    """Options backend ``name`` takes (the union over the auto order for ``"auto"``); None = any."""
    if name == "auto":
        union: list[str] = []
        for cand in AUTO_ORDER:
            opts = accepted_options(cand)
            if opts is None:
                return None
            union += [o for o in opts if o not in union]
        return tuple(union)
    if name not in BACKENDS:
        raise BackendUnavailable(f"unknown backend {name!r}; accepted: auto, {', '.join(sorted(BACKENDS))}")
    mod = importlib.import_module(f".{BACKENDS[name]}", __name__)
    return getattr(mod, "OPTIONS", None)


def check_options(name: str, options) -> None:
    """Raise :class:`UnknownOptions` for options that backend ``name`` could never use: under
    ``"auto"`` an option is only acceptable if some backend of the auto order takes it."""
    accepted = accepted_options(name)
    if accepted is None:
        return
    unknown = sorted(set(options) - set(accepted))
    if unknown:
        raise UnknownOptions(name, unknown, list(accepted))


def _available(name: str) -> bool:
    mod = importlib.import_module(f".{BACKENDS[name]}", __name__)
    check = getattr(mod, "available", None)
    return True if check is None else bool(check())


def resolve_auto() -> str:
    for name in AUTO_ORDER:
        if name in BACKENDS and _available(name):
            return name
    return "cpu"


def create(name: str, net, desc, spec: RunnerSpec, **options) -> StepRunner:
    """Build a runner for backend ``name`` (``"auto"`` allowed).

    Options no candidate backend takes raise :class:`UnknownOptions` (a ``ValueError``) naming the
    accepted ones, in every mode. With ``"auto"``, options meant for another backend of the auto order
    (e.g. ``engine_dir`` when CPU is chosen) are dropped with a note on stderr.
    """
    auto = name == "auto"
    check_options(name, options)
    if auto:
        name = resolve_auto()
        if name not in _announced:
            _announced.add(name)
            log.info(f"backend=auto chose {name!r}")
    if name not in BACKENDS:
        raise BackendUnavailable(f"unknown backend {name!r}; accepted: auto, {', '.join(sorted(BACKENDS))}")
    mod = importlib.import_module(f".{BACKENDS[name]}", __name__)
    accepted = getattr(mod, "OPTIONS", None)
    if accepted is not None:
        unknown = sorted(set(options) - set(accepted))
        if unknown and auto:
            # options meant for another backend of the auto order (e.g. engine_dir for trt)
            log.info(f"backend=auto chose {name!r}, which ignores {', '.join(unknown)}")
            options = {k: v for k, v in options.items() if k in accepted}
        elif unknown:
            raise UnknownOptions(name, unknown, list(accepted))
    return mod.create(net, desc, spec, **options)
