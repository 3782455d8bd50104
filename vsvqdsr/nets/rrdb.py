"""RRDBNet x4 (ESRGAN / Real-ESRGAN generator): residual-in-residual dense blocks (pure torch).

``conv_first`` -> ``num_block`` RRDBs -> ``conv_body`` (+ the ``conv_first`` output) ->
2 x (nearest x2, conv, LeakyReLU 0.2) -> ``conv_hr`` + LeakyReLU -> ``conv_last``.
An RRDB is three residual dense blocks (5 convs, growth ``num_grow``, LeakyReLU 0.2 after the first
four, dense concatenation, output scaled by 0.2 and added), itself scaled by 0.2 and added.
``num_block = 23`` is RealESRGAN_x4plus (the paper's "Real-ESRGAN (L)"); 6 is the anime 6B model.
Images RGB float in [0, 1]; no clamp inside.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

__all__ = ["RRDBNet"]


class _DenseBlock(nn.Module):
    def __init__(self, num_feat: int, num_grow: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(num_feat, num_grow, 3, 1, 1)
        self.conv2 = nn.Conv2d(num_feat + num_grow, num_grow, 3, 1, 1)
        self.conv3 = nn.Conv2d(num_feat + 2 * num_grow, num_grow, 3, 1, 1)
        self.conv4 = nn.Conv2d(num_feat + 3 * num_grow, num_grow, 3, 1, 1)
        self.conv5 = nn.Conv2d(num_feat + 4 * num_grow, num_feat, 3, 1, 1)

    def forward(self, x: Tensor) -> Tensor:
        feats = [x]
        for conv in (self.conv1, self.conv2, self.conv3, self.conv4):
            feats.append(F.leaky_relu(conv(torch.cat(feats, 1)), 0.2))
        return x + 0.2 * self.conv5(torch.cat(feats, 1))


class _RRDB(nn.Module):
    def __init__(self, num_feat: int, num_grow: int) -> None:
        super().__init__()
        self.rdb1 = _DenseBlock(num_feat, num_grow)
        self.rdb2 = _DenseBlock(num_feat, num_grow)
        self.rdb3 = _DenseBlock(num_feat, num_grow)

    def forward(self, x: Tensor) -> Tensor:
        return x + 0.2 * self.rdb3(self.rdb2(self.rdb1(x)))


class RRDBNet(nn.Module):
    """x4 RRDBNet; ``scale`` attribute is 4."""

    def __init__(self, in_ch: int = 3, out_ch: int = 3, num_feat: int = 64, num_block: int = 23,
                 num_grow: int = 32) -> None:
        super().__init__()
        self.scale = 4
        self.conv_first = nn.Conv2d(in_ch, num_feat, 3, 1, 1)
        self.body = nn.Sequential(*(_RRDB(num_feat, num_grow) for _ in range(num_block)))
        self.conv_body = nn.Conv2d(num_feat, num_feat, 3, 1, 1)
        self.conv_up1 = nn.Conv2d(num_feat, num_feat, 3, 1, 1)
        self.conv_up2 = nn.Conv2d(num_feat, num_feat, 3, 1, 1)
        self.conv_hr = nn.Conv2d(num_feat, num_feat, 3, 1, 1)
        self.conv_last = nn.Conv2d(num_feat, out_ch, 3, 1, 1)

    def forward(self, x: Tensor) -> Tensor:
        feat = self.conv_first(x)
        feat = feat + self.conv_body(self.body(feat))
        feat = F.leaky_relu(self.conv_up1(F.interpolate(feat, scale_factor=2, mode="nearest")), 0.2)
        feat = F.leaky_relu(self.conv_up2(F.interpolate(feat, scale_factor=2, mode="nearest")), 0.2)
        return self.conv_last(F.leaky_relu(self.conv_hr(feat), 0.2))
