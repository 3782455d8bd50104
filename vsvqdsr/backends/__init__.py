"""Runtimes: one small module per backend, all behind :class:`~.base.StepRunner`.

``create(name, net, desc, spec)`` builds a runner; ``"auto"`` picks TensorRT, else CUDA, else CPU
and says which on stderr once.
"""
from __future__ import annotations

import importlib
import sys

from .base import BackendUnavailable, RunnerSpec, StepRunner

__all__ = ["BACKENDS", "BackendUnavailable", "RunnerSpec", "StepRunner", "create", "resolve_auto"]

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

    Options a backend does not take raise ``ValueError`` naming the accepted ones; with ``"auto"``
    they are dropped with a note on stderr (they may be meant for another backend of the order).
    """
    auto = name == "auto"
    if auto:
        name = resolve_auto()
        if name not in _announced:
            _announced.add(name)
            print(f"vsvqdsr: backend=auto chose {name!r}", file=sys.stderr, flush=True)
    if name not in BACKENDS:
        raise BackendUnavailable(f"unknown backend {name!r}; accepted: auto, {', '.join(sorted(BACKENDS))}")
    mod = importlib.import_module(f".{BACKENDS[name]}", __name__)
    accepted = getattr(mod, "OPTIONS", None)
    if accepted is not None:
        unknown = sorted(set(options) - set(accepted))
        if unknown and auto:
            # options meant for another backend of the auto order (e.g. engine_dir for trt)
            print(f"vsvqdsr: backend=auto chose {name!r}, which ignores {', '.join(unknown)}",
                  file=sys.stderr, flush=True)
            options = {k: v for k, v in options.items() if k in accepted}
        elif unknown:
            raise ValueError(f"backend {name!r} does not take option(s) {', '.join(unknown)}; "
                             f"accepted: {', '.join(accepted) or 'none'}")
    return mod.create(net, desc, spec, **options)
