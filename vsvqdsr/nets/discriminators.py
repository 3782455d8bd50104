"""VSR-stage-2 discriminator: three spectral-norm PatchGANs at 1, 1/2 and 1/4 scale (the
released VQD-SR / AnimeSR stage-2 recipe).

Each PatchGAN: conv4x4 s2 (3->64), s2 (64->128), s2 (128->256), s1 (256->512), s1 (512->1), padding 1,
bias on every conv, spectral norm on every conv, LeakyReLU 0.2 between them, no normalisation, no
sigmoid. 2,764,737 parameters per scale, 8,294,211 in total. Scale i sees the input bilinearly
resized (``align_corners=True``) to half the size of scale i-1. A 256x256 input gives 30x30, 14x14
and 6x6 logit maps. Works on frames ``N,3,H,W``; the smallest usable input is 96x96.
"""
from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor, nn
from torch.nn.utils.parametrizations import spectral_norm

__all__ = ["PatchDiscriminator", "MultiScaleDiscriminator", "MIN_INPUT"]

#: The 1/4-scale PatchGAN needs at least 24 pixels to give a 1x1 map, so the input must be >= 96.
MIN_INPUT = 96


class PatchDiscriminator(nn.Module):
    """One PatchGAN with spectral norm (``num_layers`` stride-2 convs, then two stride-1 convs)."""

    def __init__(self, in_ch: int = 3, ndf: int = 64, num_layers: int = 3, max_mult: int = 8) -> None:
        super().__init__()
        layers: list[nn.Module] = [spectral_norm(nn.Conv2d(in_ch, ndf, 4, 2, 1)), nn.LeakyReLU(0.2, True)]
        mult = 1
        for _ in range(1, num_layers):
            prev, mult = mult, min(mult * 2, max_mult)
            layers += [spectral_norm(nn.Conv2d(ndf * prev, ndf * mult, 4, 2, 1)), nn.LeakyReLU(0.2, True)]
        prev, mult = mult, min(mult * 2, max_mult)
        layers += [spectral_norm(nn.Conv2d(ndf * prev, ndf * mult, 4, 1, 1)), nn.LeakyReLU(0.2, True)]
        layers += [spectral_norm(nn.Conv2d(ndf * mult, 1, 4, 1, 1))]
        self.body = nn.Sequential(*layers)

    def forward(self, x: Tensor) -> Tensor:
        return self.body(x)


class MultiScaleDiscriminator(nn.Module):
    """``num_scales`` PatchGANs on progressively halved inputs; returns a list of logit maps."""

    def __init__(self, in_ch: int = 3, ndf: int = 64, num_layers: int = 3, num_scales: int = 3) -> None:
        super().__init__()
        self.discs = nn.ModuleList(PatchDiscriminator(in_ch, ndf, num_layers) for _ in range(num_scales))

    def forward(self, x: Tensor) -> list[Tensor]:
        if x.dim() != 4 or min(x.shape[-2:]) < MIN_INPUT:
            raise ValueError(f"MultiScaleDiscriminator: expected N,C,H,W with H, W >= {MIN_INPUT}, "
                             f"got {tuple(x.shape)}")
        outs = []
        for i, d in enumerate(self.discs):
            if i:
                h, w = x.shape[-2:]
                x = F.interpolate(x, size=(h // 2, w // 2), mode="bilinear", align_corners=True)
            outs.append(d(x))
        return outs
