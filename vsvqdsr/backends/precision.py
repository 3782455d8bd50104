"""Inference precision of the CPU engines: what the CPU offers, and what ``precision="auto"`` picks.

Capabilities are plain strings so a test can fake any CPU:

* CPU flags as ``/proc/cpuinfo`` spells them (``amx_bf16``, ``amx_int8``, ``avx512_bf16``,
  ``avx512_vnni``, ``avx_vnni``, ``avx2``, ...);
* OpenVINO's ``OPTIMIZATION_CAPABILITIES`` of the CPU device, prefixed ``ov:`` (``ov:FP32``,
  ``ov:BF16``, ``ov:INT8``, ...).

:func:`choose` is the pure rule: ``"auto"`` is bf16 where the CPU has AMX-BF16 (its tile matrix
units make bf16 convolutions several times faster than fp32), f32 everywhere else -- including
CPUs with only AVX-512 BF16, where bf16 convolutions were measured slower than fp32 -- and an
explicit request is kept as it is. :func:`resolve` applies it to this machine and says on stderr,
once per outcome, what ``auto`` chose and why.
"""
from __future__ import annotations

import functools
from collections.abc import Iterable
from ..log import get_logger

log = get_logger(__name__)

__all__ = ["PRECISIONS", "capabilities", "check", "choose", "cpu_flags", "has_native_bf16", "openvino_capabilities",
           "resolve", "summary"]

#: Values the ``precision`` option accepts.
PRECISIONS: tuple[str, ...] = ("auto", "f32", "bf16")

#: Capabilities meaning the CPU computes bf16 dot products in hardware.
_BF16_NATIVE = frozenset({"amx_bf16", "avx512_bf16", "ov:BF16"})
#: Flags worth naming when saying why ``auto`` chose what it chose.
_NOTABLE = ("amx_bf16", "amx_int8", "amx_tile", "avx512_bf16", "avx512_vnni", "avx_vnni", "avx512f", "avx2", "fma")

_announced: set[tuple[str, str]] = set()  # (chosen, reason) pairs already said


def cpu_flags(cpuinfo: str = "/proc/cpuinfo") -> frozenset[str]:
    """The ``flags`` of the first processor in ``cpuinfo`` (empty where the file is missing)."""
    try:
        with open(cpuinfo) as f:
            for line in f:
                if line.startswith("flags"):
                    return frozenset(line.split(":", 1)[1].split())
    except OSError:
        pass
    return frozenset()


def openvino_capabilities() -> frozenset[str]:
    """OpenVINO's CPU ``OPTIMIZATION_CAPABILITIES`` as ``ov:NAME`` (empty without OpenVINO)."""
    try:
        import openvino as ov
    except ImportError:
        return frozenset()
    try:
        return frozenset(f"ov:{c}" for c in ov.Core().get_property("CPU", "OPTIMIZATION_CAPABILITIES"))
    except Exception:  # a CPU plugin that cannot load says nothing about the CPU
        return frozenset()


@functools.lru_cache(maxsize=1)
def capabilities() -> frozenset[str]:
    """This machine's capabilities: CPU flags plus OpenVINO's (read once per process)."""
    return cpu_flags() | openvino_capabilities()


def has_native_bf16(caps: Iterable[str]) -> bool:
    """Whether the CPU computes bf16 in hardware (AMX-BF16, AVX-512 BF16, or OpenVINO reports BF16)."""
    return not _BF16_NATIVE.isdisjoint(caps)


def check(precision: object, who: str = "precision") -> str:
    """``precision`` if it is an accepted value, else ``ValueError`` naming the accepted ones."""
    if precision not in PRECISIONS:
        hint = " (int8 was measured and is not offered; see docs/runtimes.md, 'CPU precision')" if precision == "int8" else ""
        raise ValueError(f"{who} must be one of {', '.join(repr(p) for p in PRECISIONS)}, got {precision!r}{hint}")
    return str(precision)


def choose(precision: str, caps: Iterable[str]) -> str:
    """The concrete precision (``"f32"`` or ``"bf16"``) for ``precision`` on a CPU with ``caps``."""
    precision = check(precision)
    if precision != "auto":
        return precision
    return "bf16" if "amx_bf16" in set(caps) else "f32"


def summary(caps: Iterable[str]) -> str:
    """The capabilities that matter for the choice, for messages (``"avx2 fma; OpenVINO FP32 INT8"``)."""
    caps = set(caps)
    flags = " ".join(f for f in _NOTABLE if f in caps) or "no notable flags"
    ov = " ".join(sorted(c[3:] for c in caps if c.startswith("ov:")))
    return flags + (f"; OpenVINO {ov}" if ov else "")


def resolve(precision: str, who: str = "cpu", caps: Iterable[str] | None = None,
            offers: tuple[str, ...] = ("f32", "bf16")) -> str:
    """:func:`choose` on this machine (or on ``caps``) for an engine that ``offers`` these precisions.

    ``"auto"`` falls back to f32 where the engine lacks the CPU's best, and says on stderr once what
    it chose; an explicit request the engine lacks raises ``ValueError``.
    """
    check(precision)
    caps = capabilities() if caps is None else frozenset(caps)
    chosen = choose(precision, caps)
    why = "the CPU has AMX-BF16" if chosen == "bf16" else "no AMX-BF16 on this CPU"
    if chosen not in offers:
        if precision != "auto":
            raise ValueError(f"precision {precision!r} is not offered by {who}; accepted here: "
                             f"{', '.join(repr(p) for p in ('auto',) + offers)}")
        chosen, why = "f32", f"{who} has no {chosen} kernels"
    if precision == "auto" and (chosen, why) not in _announced:
        _announced.add((chosen, why))
        log.info(f"{who}: precision=auto chose {chosen!r} ({why}: {summary(caps)})")
    return chosen
