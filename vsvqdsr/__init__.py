"""vsvqdsr: VQD-SR animation video super-resolution for VapourSynth.

Usage in a ``.vpy`` script::

    import vsvqdsr as vqdsr
    clip = vqdsr.Upscale(clip)            # 4x, recurrent, order-independent
"""
from __future__ import annotations

from ._version import __version__

__all__ = ["__version__", "Upscale", "models"]


def models() -> dict:
    """Installed models by name (``ModelInfo``: path, licence, origin)."""
    from .weights import installed_models

    return installed_models()


def __getattr__(name: str):
    # Filters import VapourSynth; keep `import vsvqdsr` light for the CLI and training.
    if name == "Upscale":
        from .filters.upscale import Upscale

        return Upscale
    raise AttributeError(f"module 'vsvqdsr' has no attribute {name!r}")
