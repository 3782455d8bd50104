"""vsvqdsr: VQD-SR animation video super-resolution for VapourSynth."""
from ._version import __version__

__all__ = ["__version__"]
