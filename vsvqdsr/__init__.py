"""vsvqdsr: VQD-SR animation video super-resolution for VapourSynth.

Usage in a ``.vpy`` script::

    import vsvqdsr as vqdsr
    clip = vqdsr.Upscale(clip)            # 4x, recurrent, order-independent
    lq = vqdsr.Degrade(clean)             # learned real-world degradation (VQGAN, stochastic top-k)
"""
from __future__ import annotations

from ._version import __version__

__all__ = ["__version__", "Upscale", "Degrade", "models"]


def models() -> dict:
    """Installed models by name (``ModelInfo``: path, licence, origin)."""
    from .weights import installed_models

    return installed_models()


def __getattr__(name: str):
    # Filters import VapourSynth; keep `import vsvqdsr` light for the CLI and training.
    if name == "Upscale":
        from .filters.upscale import Upscale

        return Upscale
    if name == "Degrade":
        from .filters.degrade import Degrade

        return Degrade
    raise AttributeError(f"module 'vsvqdsr' has no attribute {name!r}")
