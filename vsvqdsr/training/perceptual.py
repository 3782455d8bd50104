"""The perceptual term of both trainers, chosen by name: one builder for every kind.

Kinds: ``vgg19`` (the paper's VSR loss, :class:`~vsvqdsr.training.losses.VGG19Perceptual`),
``srvgg`` (the VSR alternative needing no ImageNet weights, :class:`~vsvqdsr.training.losses.SRVGGPerceptual`),
``lpips`` (the VQGAN's LPIPS-form VGG16 distance, :class:`~vsvqdsr.training.vqgan_losses.VGGPerceptual`)
and ``dfm`` (discriminator feature matching: no module, the VQGAN trainer computes it). Each trainer
accepts ``auto``, ``none`` and its own kinds (:data:`VSR_KINDS`, :data:`VQGAN_KINDS`); ``auto`` takes
the first of them whose weights are found, in that order, and ``none`` when none is.
"""
from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from torch import nn

from ..log import get_logger

__all__ = ["VSR_KINDS", "VQGAN_KINDS", "PerceptualWeights", "build_perceptual"]

log = get_logger(__name__)

#: The kinds ``auto`` tries, in order, for VSR training and for VQGAN training.
VSR_KINDS: tuple[str, ...] = ("vgg19", "srvgg")
VQGAN_KINDS: tuple[str, ...] = ("lpips", "dfm")


@dataclass(frozen=True)
class PerceptualWeights:
    """Where the pretrained parts come from (``None``: search the usual places)."""

    vgg: str | None = None  # vgg19-*.pth (vgg19) or vgg16-*.pth (lpips)
    lpips: str | None = None  # the LPIPS linear heads (lpips)
    srvgg_model: str = "realesr-animevideov3"  # registry name or file (srvgg)


#: What a builder returns under ``auto`` when its weights are not installed.
_MISSING = object()


def _vgg19(w: PerceptualWeights, auto: bool):
    from .losses import VGG19Perceptual, find_vgg19_weights

    if auto and find_vgg19_weights(w.vgg) is None:
        return _MISSING
    return VGG19Perceptual(w.vgg)  # raises FileNotFoundError naming where it looked


def _srvgg(w: PerceptualWeights, auto: bool):
    from ..weights.loading import WeightsError
    from .enhance import load_sisr
    from .losses import SRVGGPerceptual

    try:
        return SRVGGPerceptual(load_sisr(w.srvgg_model))
    except WeightsError:
        if auto:
            return _MISSING
        raise


def _lpips(w: PerceptualWeights, auto: bool):
    from pathlib import Path

    from .vqgan_losses import VGGPerceptual, find_vgg16_weights

    found = find_vgg16_weights(w.vgg)
    if found is not None:
        return VGGPerceptual(found, Path(w.lpips) if w.lpips else None)
    if auto:
        return _MISSING
    raise FileNotFoundError("perceptual 'lpips' needs VGG16 ImageNet weights (vgg16-*.pth): pass "
                            "--vgg-weights or place them in the torch hub cache")


_BUILDERS: dict[str, Callable[[PerceptualWeights, bool], object]] = {
    "vgg19": _vgg19, "srvgg": _srvgg, "lpips": _lpips, "dfm": lambda w, auto: None}


def build_perceptual(kind: str, kinds: Sequence[str], weights: PerceptualWeights | None = None,
                     ) -> tuple[nn.Module | None, str]:
    """The perceptual module for ``kind`` (``auto``, ``none`` or one of ``kinds``) and the kind used.

    An explicit kind whose weights are missing raises (``FileNotFoundError`` or the weights layer's
    ``WeightsError``); ``auto`` takes the first of ``kinds`` that builds, else ``(None, "none")`` with
    a warning. A kind outside ``kinds`` raises ``ValueError``.
    """
    if kind not in ("auto", "none", *kinds):
        raise ValueError(f"build_perceptual: kind must be auto, {', '.join(kinds)} or none, got {kind!r}")
    if kind == "none":
        return None, "none"
    w = weights or PerceptualWeights()
    for k in kinds if kind == "auto" else (kind,):
        module = _BUILDERS[k](w, kind == "auto")
        if module is not _MISSING:
            return module, k  # type: ignore[return-value]
    log.warning("no pretrained weights for %s found; training without a perceptual loss", " or ".join(kinds))
    return None, "none"
