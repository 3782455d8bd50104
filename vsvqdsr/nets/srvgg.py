"""Compact VGG-style single-image SR network (Real-ESRGAN's "SRVGGNetCompact" architecture).

``conv3x3(in -> F), PReLU, num_conv x (conv3x3(F -> F), PReLU), conv3x3(F -> out * s^2)``, then
PixelShuffle(s), plus the input upsampled by nearest neighbour (the residual). With F = 64,
num_conv = 16, s = 4 this is realesr-animevideov3 (621,424 parameters, see
:func:`srvgg_param_count`). Images RGB float, nominally [0, 1]; no clamp inside.
"""
from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor, nn

__all__ = ["SRVGGCompact", "srvgg_param_count"]


def srvgg_param_count(in_ch: int = 3, out_ch: int = 3, num_feat: int = 64, num_conv: int = 16, scale: int = 4) -> int:
    """Parameter count of :class:`SRVGGCompact` (convs with bias, PReLU with one slope per channel)."""
    first = 9 * in_ch * num_feat + num_feat + num_feat
    body = num_conv * (9 * num_feat * num_feat + num_feat + num_feat)
    last = 9 * num_feat * out_ch * scale * scale + out_ch * scale * scale
    return first + body + last


class SRVGGCompact(nn.Module):
    """``body`` alternates conv and PReLU modules (``body.0`` conv, ``body.1`` PReLU, ...), last a conv."""

    def __init__(self, in_ch: int = 3, out_ch: int = 3, num_feat: int = 64, num_conv: int = 16,
                 scale: int = 4) -> None:
        super().__init__()
        self.scale = scale
        layers: list[nn.Module] = [nn.Conv2d(in_ch, num_feat, 3, 1, 1), nn.PReLU(num_feat)]
        for _ in range(num_conv):
            layers += [nn.Conv2d(num_feat, num_feat, 3, 1, 1), nn.PReLU(num_feat)]
        layers.append(nn.Conv2d(num_feat, out_ch * scale * scale, 3, 1, 1))
        self.body = nn.Sequential(*layers)
        self.upsampler = nn.PixelShuffle(scale)

    def features(self, x: Tensor, taps: tuple[int, ...]) -> list[Tensor]:
        """Activations after the PReLUs numbered ``taps`` (0 = after the first conv)."""
        outs = []
        last = max(taps)
        for i, layer in enumerate(self.body):
            x = layer(x)
            if isinstance(layer, nn.PReLU):
                n = i // 2
                if n in taps:
                    outs.append(x)
                if n >= last:
                    break
        return outs

    def forward(self, x: Tensor) -> Tensor:
        out = self.upsampler(self.body(x))
        return out + F.interpolate(x, scale_factor=self.scale, mode="nearest")
