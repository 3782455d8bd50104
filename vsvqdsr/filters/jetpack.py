"""``Upscale`` as a vs-jetpack scaler: ``VQDSRScaler().scale(clip, width, height, shift=(top, left))``.

Optional: importing this module needs ``vsjetpack`` (``pip install 'vsvqdsr[jetpack]'``); nothing in
the package imports it. :class:`VQDSRScaler` is a :class:`vskernels.Scaler`, so it goes wherever
vs-jetpack takes a scaler (``scaler=VQDSRScaler(model="vqdsr-ft")`` in vsscale/vsaa/vsdeinterlace
helpers, ``Rescale(..., upscaler=...)``)::

    from vsvqdsr.filters.jetpack import VQDSRScaler

    up = VQDSRScaler(max_chain=64).scale(clip, 1920, 1080)       # the input's format, 1920x1080

``scale`` runs ``Upscale`` (4x, recurrent, order-independent), then one ``resize`` with the chosen
kernel to ``width`` x ``height`` in the input's format (or ``format``), the colour props taken from
each input frame as ``Upscale``'s ``format="same"`` does. ``shift`` is vskernels' ``(top, left)``
offset in *input* pixels; it is applied in that final resize (4x the offset in the super-resolved
frame, whose pixel grid is centre-aligned with the input's).
"""
from __future__ import annotations

from typing import Any

import vapoursynth as vs
from vskernels import Scaler

from .output import check_output_args, finish
from .upscale import Upscale

__all__ = ["VQDSRScaler"]


class VQDSRScaler(Scaler):
    """A vskernels ``Scaler`` that super-resolves with :func:`~vsvqdsr.filters.upscale.Upscale`.

    Args:
        kernel: ``resize`` kernel of the final resize (``Upscale``'s ``kernel`` names: point,
            bilinear, bicubic, lanczos, spline16, spline36, spline64).
        linear: final resize in linear light.
        format: output format; ``"same"`` (default) = the input clip's, None = float RGB.
        clamp: clamp float output to [0, 1].
        upscale_args: every other ``Upscale`` argument (``model``, ``backend``, ``max_chain``,
            ``scene_detect``, ``tiles``, backend options, ...), passed as they are.

    ``Upscale`` validates everything and raises ``vs.Error("Upscale: ...")``; ``width``/``height``
    that do not fit the output format's subsampling are refused the same way.
    """

    #: Radius of the default final kernel (bicubic). vskernels asks every scaler for one; the network
    #: itself has no kernel (one step reaches 28 input pixels).
    _static_kernel_radius = 2

    _OWN = frozenset({"width", "height", "shift"})

    def __init__(self, kernel: str = "bicubic", linear: bool = False, format: Any = "same",  # noqa: A002
                 clamp: bool = False, **upscale_args: Any) -> None:
        bad = sorted(self._OWN & set(upscale_args))
        if bad:
            raise vs.Error(f"Upscale: VQDSRScaler takes {', '.join(bad)} in scale(), not in the constructor")
        super().__init__()
        self.kernel = kernel
        self.linear = linear
        self.format = format
        self.clamp = clamp
        self.upscale_args = dict(upscale_args)

    def __hash__(self) -> int:
        return hash((type(self).__name__, self.kernel, self.linear, str(self.format), self.clamp,
                     tuple(sorted((k, repr(v)) for k, v in self.upscale_args.items()))))

    def scale(self, clip: vs.VideoNode, width: int | None = None, height: int | None = None,
              shift: tuple[float, float] = (0, 0), **kwargs: Any) -> vs.VideoNode:
        """``clip`` super-resolved by ``Upscale`` and resized to ``width`` x ``height`` (default: the
        clip's own size, vskernels' convention) with ``shift = (top, left)`` in input pixels;
        ``kwargs`` override the constructor's ``Upscale`` arguments for this call."""
        width, height = self._wh_norm(clip, width, height)
        if not (isinstance(shift, (tuple, list)) and len(shift) == 2
                and all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in shift)):
            raise vs.Error(f"Upscale: shift must be (top, left) in input pixels, got {shift!r}")
        args = {**self.upscale_args, **kwargs}
        if tuple(shift) == (0, 0):
            return Upscale(clip, width=width, height=height, kernel=self.kernel, linear=self.linear,
                           format=self.format, clamp=self.clamp, **args)
        # A shift goes into the one final resize: validate as Upscale would, then finish its 4x output.
        w, h, fmt = check_output_args(clip, 4, width, height, self.kernel, self.linear, self.format, self.clamp,
                                      "Upscale")
        up = Upscale(clip, **args)
        return finish(up, clip, w, h, self.kernel, self.linear, fmt, self.clamp,
                      shift=(4 * float(shift[0]), 4 * float(shift[1])))
