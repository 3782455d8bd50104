"""vsvqdsr: VQD-SR animation video super-resolution for VapourSynth."""
from ._version import __version__
from .filters.degrade import Degrade

__all__ = ["__version__", "Degrade"]
