"""The unidirectional recurrent x4 VSR network of AnimeSR and VQD-SR (pure torch, no I/O).

Two variants share one backbone (the released ``MSRSWVSR_WO_SR`` and AnimeSR's ``MSRSWVSR``):

* ``feedback=False`` -- VQD-SR's ``MSRSWVSR_WO_SR``: the cell sees the three LR frames and the
  hidden state (9 + 64 = 73 input channels); 1,467,728 parameters with the default sizes.
* ``feedback=True`` -- AnimeSR's ``MSRSWVSR``: the previous SR output, pixel-unshuffled to LR,
  is fed back as well (9 + 48 + 64 = 121 input channels); 1,495,376 parameters.

Images are RGB float in [0, 1] (nothing is clamped inside), layout ``B,C,H,W``; H and W must be
multiples of 4. The parameter names match the published checkpoints (``recurrent_cell.*``).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

__all__ = ["ResidualBlockNoBN", "MultiScaleCell", "RecurrentVSR", "StepModule"]


class ResidualBlockNoBN(nn.Module):
    """``x + conv(relu(conv(x)))`` with biases, no normalisation, residual scale 1."""

    def __init__(self, num_feat: int = 64) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(num_feat, num_feat, 3, 1, 1, bias=True)
        self.conv2 = nn.Conv2d(num_feat, num_feat, 3, 1, 1, bias=True)
        for conv in (self.conv1, self.conv2):
            nn.init.kaiming_normal_(conv.weight)
            conv.weight.data.mul_(0.1)
            nn.init.zeros_(conv.bias)

    def forward(self, x: Tensor) -> Tensor:
        return x + self.conv2(F.relu(self.conv1(x)))


def _lrelu_conv(cin: int, cout: int, stride: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, 3, stride, 1, bias=True), nn.LeakyReLU(0.1, inplace=True))


def _up(x: Tensor, factor: int) -> Tensor:
    return F.interpolate(x, scale_factor=factor, mode="bilinear", align_corners=False)


class MultiScaleCell(nn.Module):
    """Right-aligned multi-scale residual blocks at 1, 1/2 and 1/4 resolution (the released cell:
    blocks (n1, n2, n4) = (5, 3, 2)).

    The three chains end together: the 1/2 chain starts ``n1 - n2`` iterations late and the 1/4
    chain ``n1 - n4`` late. Coarser scales are added (upsampled) into finer ones inside the loop and
    concatenated only in the final fusion.
    """

    def __init__(self, num_in_ch: int, num_state_ch: int, num_out_ch: int,
                 num_block: tuple[int, int, int] = (5, 3, 2)) -> None:
        super().__init__()
        n1, n2, n4 = num_block
        if not n1 >= n2 >= n4 >= 0:
            raise ValueError(f"num_block must be non-increasing, got {num_block}")
        self.num_block = (n1, n2, n4)
        self.conv_s1_first = _lrelu_conv(num_in_ch, num_state_ch, 1)
        self.conv_s2_first = _lrelu_conv(num_state_ch, num_state_ch, 2)
        self.conv_s4_first = _lrelu_conv(num_state_ch, num_state_ch, 2)
        self.body_s1_first = nn.ModuleList(ResidualBlockNoBN(num_state_ch) for _ in range(n1))
        self.body_s2_first = nn.ModuleList(ResidualBlockNoBN(num_state_ch) for _ in range(n2))
        self.body_s4_first = nn.ModuleList(ResidualBlockNoBN(num_state_ch) for _ in range(n4))
        self.fusion = nn.Sequential(
            nn.Conv2d(3 * num_state_ch, 2 * num_out_ch, 3, 1, 1, bias=True),
            nn.LeakyReLU(0.1, inplace=True),
            nn.Conv2d(2 * num_out_ch, num_out_ch, 3, 1, 1, bias=True),
        )

    def forward(self, x: Tensor) -> Tensor:
        n1, n2, n4 = self.num_block
        s1 = self.conv_s1_first(x)
        s2 = self.conv_s2_first(s1)
        s4 = self.conv_s4_first(s2)
        s2_live = s4_live = False
        for i in range(n1):
            acc = s1
            if s2_live:
                acc = acc + _up(s2, 2)
            if s4_live:
                acc = acc + _up(s4, 4)
            s1 = self.body_s1_first[i](acc)
            if i >= n1 - n2:
                s2_in = s2 + _up(s4, 2) if s4_live else s2
                s2 = self.body_s2_first[i - (n1 - n2)](s2_in)
                s2_live = True
            if i >= n1 - n4:
                s4 = self.body_s4_first[i - (n1 - n4)](s4)
                s4_live = True
        return self.fusion(torch.cat((s1, _up(s2, 2), _up(s4, 4)), dim=1))


class RecurrentVSR(nn.Module):
    """Unidirectional recurrent VSR network with a per-frame :meth:`step`.

    Args:
        num_feat: hidden-state channels F (64 in both papers).
        num_block: residual blocks per scale (n1, n2, n4).
        scale: upscaling factor s (4).
        feedback: feed the previous SR frame back (AnimeSR) or not (VQD-SR).
    """

    def __init__(self, num_feat: int = 64, num_block: tuple[int, int, int] = (5, 3, 2), scale: int = 4,
                 feedback: bool = False) -> None:
        super().__init__()
        self.num_feat = num_feat
        self.scale = scale
        self.feedback = feedback
        img_ch = 3 * scale * scale
        in_ch = 9 + num_feat + (img_ch if feedback else 0)
        self.recurrent_cell = MultiScaleCell(in_ch, num_feat, num_feat + img_ch, tuple(num_block))
        self.pixel_shuffle = nn.PixelShuffle(scale)

    def initial_state(self, lr: Tensor) -> tuple[Tensor, Tensor | None]:
        """Zero hidden state (and zero previous output for the feedback variant) for an LR frame."""
        b, _, h, w = lr.shape
        state = lr.new_zeros(b, self.num_feat, h, w)
        prev_out = lr.new_zeros(b, 3, h * self.scale, w * self.scale) if self.feedback else None
        return state, prev_out

    def step(self, prev: Tensor, cur: Tensor, nxt: Tensor, state: Tensor,
             prev_out: Tensor | None = None) -> tuple[Tensor, Tensor]:
        """One recurrent step: ``(x[t-1], x[t], x[t+1], h[t-1][, y[t-1]]) -> (y[t], h[t])``."""
        parts = [prev, cur, nxt]
        if self.feedback:
            if prev_out is None:
                raise ValueError("the feedback variant needs prev_out (use initial_state for the first frame)")
            parts.append(F.pixel_unshuffle(prev_out, self.scale))
        parts.append(state)
        out = self.recurrent_cell(torch.cat(parts, dim=1))
        k = 3 * self.scale * self.scale
        img = self.pixel_shuffle(out[:, :k]) + _up(cur, self.scale)
        return img, F.leaky_relu(out[:, k:], 0.1)

    def forward(self, clip: Tensor) -> Tensor:
        """Run a whole clip ``B,T,3,H,W`` -> ``B,T,3,sH,sW``; the ends reuse the edge frame."""
        if clip.dim() != 5:
            raise ValueError(f"expected B,T,C,H,W, got shape {tuple(clip.shape)}")
        t = clip.shape[1]
        state, prev_out = self.initial_state(clip[:, 0])
        outs = []
        for i in range(t):
            prev = clip[:, max(i - 1, 0)]
            nxt = clip[:, min(i + 1, t - 1)]
            out, state = self.step(prev, clip[:, i], nxt, state, prev_out)
            prev_out = out if self.feedback else None
            outs.append(out)
        return torch.stack(outs, dim=1)


class StepModule(nn.Module):
    """Wraps :meth:`RecurrentVSR.step` as ``forward`` for export (ONNX / TensorRT / tracing)."""

    def __init__(self, net: RecurrentVSR) -> None:
        super().__init__()
        self.net = net

    def forward(self, prev: Tensor, cur: Tensor, nxt: Tensor, state: Tensor,
                prev_out: Tensor | None = None) -> tuple[Tensor, Tensor]:
        return self.net.step(prev, cur, nxt, state, prev_out)
