"""Losses of VSR training (the paper's stage-2 objective): L1, perceptual, multi-scale LSGAN.

Perceptual loss. The paper's loss is VGG19 (ImageNet) features *before* ReLU at conv1_2, conv2_2,
conv3_4, conv4_4, conv5_4 with weights 0.1, 0.1, 1, 1, 1, L1 per layer, inputs normalised with the
ImageNet mean/std. ImageNet weights cannot be downloaded here, so :func:`find_vgg19_weights` looks
for torchvision's ``vgg19-dcbb9e9d.pth`` (or any file with ``features.N.weight`` keys) at a user
path, ``$VSVQDSR_VGG19``, or the torch hub cache. When none is found the documented alternative is
:class:`SRVGGPerceptual`: L1 between features of the frozen pretrained realesr-animevideov3 trunk
(an anime-trained SR network converted at set-up, no ImageNet weights needed), taken after the
PReLUs of body convs 1, 3, 7 and 11 with weights 0.1, 0.1, 1, 1, on inputs in [0, 1].
That network was trained to recognise anime edges and textures, which is what the perceptual term
is meant to preserve; it is not the paper's loss, so results are not directly comparable.
"""
from __future__ import annotations

import os
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor, nn

__all__ = ["l1_loss", "gradient_l1_loss", "halo_loss", "VGG19Perceptual", "SRVGGPerceptual", "find_vgg19_weights",
           "lsgan_loss", "VGG_LAYER_WEIGHTS"]

#: torchvision ``features`` indices of the pre-ReLU outputs conv1_2, conv2_2, conv3_4, conv4_4, conv5_4.
VGG_LAYER_WEIGHTS = {2: 0.1, 7: 0.1, 16: 1.0, 25: 1.0, 34: 1.0}
_VGG19_CFG = [64, 64, "M", 128, 128, "M", 256, 256, 256, 256, "M", 512, 512, 512, 512, "M", 512, 512, 512, 512, "M"]
_VGG_FILE = "vgg19-dcbb9e9d.pth"


def l1_loss(pred: Tensor, target: Tensor) -> Tensor:
    """Mean absolute error."""
    return F.l1_loss(pred, target)


def gradient_l1_loss(pred: Tensor, target: Tensor) -> Tensor:
    """Mean absolute error of the horizontal and vertical pixel differences (``...,H,W``, any leading
    dims), the mean of the two. A pixel L1 barely charges a softened edge (few pixels, small errors);
    this charges the lost slope at every one of them, so it keeps edges crisp (not in the paper)."""
    dx = F.l1_loss(pred[..., :, 1:] - pred[..., :, :-1], target[..., :, 1:] - target[..., :, :-1])
    dy = F.l1_loss(pred[..., 1:, :] - pred[..., :-1, :], target[..., 1:, :] - target[..., :-1, :])
    return 0.5 * (dx + dy)


def halo_loss(pred: Tensor, target: Tensor, window: int = 5) -> Tensor:
    """Mean of how far ``pred`` leaves the range of ``target`` in a ``window`` x ``window``
    neighbourhood (``...,C,H,W``, any leading dims): overshoot above the local maximum plus
    undershoot below the local minimum. A restored edge may be soft or misplaced, but values beyond
    both sides of it are ringing: the bright and dark rims a USM-trained prior draws (not in the paper).
    """
    shape = target.shape
    t = target.reshape(-1, *shape[-3:])
    p = pred.reshape(-1, *shape[-3:])
    hi = F.max_pool2d(t, window, 1, window // 2)
    lo = -F.max_pool2d(-t, window, 1, window // 2)
    return (F.relu(p - hi) + F.relu(lo - p)).mean()


def vgg_features(cfg) -> nn.Sequential:
    """A torchvision-style VGG ``features`` trunk (same module indices, so its state dict keys load).

    ``cfg`` lists output channels of each 3x3 conv (+ ReLU) and ``"M"`` for a 2x2 max-pool.
    """
    layers: list[nn.Module] = []
    cin = 3
    for v in cfg:
        if v == "M":
            layers.append(nn.MaxPool2d(2, 2))
        else:
            layers += [nn.Conv2d(cin, int(v), 3, 1, 1), nn.ReLU(inplace=False)]
            cin = int(v)
    return nn.Sequential(*layers)


def _vgg19_features() -> nn.Sequential:
    return vgg_features(_VGG19_CFG)


def find_vgg19_weights(path: str | os.PathLike | None = None) -> Path | None:
    """The first VGG19 ImageNet weights file found: ``path``, ``$VSVQDSR_VGG19``, the torch hub cache."""
    cands: list[Path] = []
    if path:
        cands.append(Path(path).expanduser())
    if os.environ.get("VSVQDSR_VGG19"):
        cands.append(Path(os.environ["VSVQDSR_VGG19"]).expanduser())
    try:
        hub = Path(torch.hub.get_dir())
    except Exception:  # pragma: no cover - torch always has a hub dir
        hub = Path.home() / ".cache" / "torch" / "hub"
    cands.append(hub / "checkpoints" / _VGG_FILE)
    for c in cands:
        if c.is_file():
            return c
    return None


class VGG19Perceptual(nn.Module):
    """The paper's perceptual loss (frozen VGG19, pre-ReLU features, weights 0.1/0.1/1/1/1, L1)."""

    def __init__(self, weights: str | os.PathLike | None = None, pretrained: bool = True) -> None:
        super().__init__()
        last = max(VGG_LAYER_WEIGHTS)
        feats = _vgg19_features()
        if pretrained:
            from ..weights.loading import load_state_dict

            p = find_vgg19_weights(weights)
            if p is None:
                raise FileNotFoundError("VGG19 ImageNet weights not found (give a path, set $VSVQDSR_VGG19, or "
                                        f"place {_VGG_FILE} in the torch hub cache)")
            sd = load_state_dict(p)
            sd = {k[len("features."):]: v for k, v in sd.items() if k.startswith("features.")}
            feats.load_state_dict(sd, strict=True)
        self.features = nn.Sequential(*list(feats.children())[:last + 1]).eval().requires_grad_(False)
        self.register_buffer("mean", torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1))
        self.register_buffer("std", torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1))

    def _feats(self, x: Tensor) -> list[Tensor]:
        x = (x - self.mean) / self.std
        out = []
        for i, layer in enumerate(self.features):
            x = layer(x)
            if i in VGG_LAYER_WEIGHTS:
                out.append(x)
        return out

    def forward(self, pred: Tensor, target: Tensor) -> Tensor:
        """``pred``/``target`` ``N,3,H,W`` in [0, 1]; returns the weighted sum of per-layer L1."""
        fp = self._feats(pred)
        with torch.no_grad():
            ft = self._feats(target)
        return sum(w * F.l1_loss(a, b) for w, a, b in zip(VGG_LAYER_WEIGHTS.values(), fp, ft))


class SRVGGPerceptual(nn.Module):
    """Feature loss on a frozen SRVGG trunk (the no-ImageNet alternative; see the module docstring)."""

    TAPS = {1: 0.1, 3: 0.1, 7: 1.0, 11: 1.0}

    def __init__(self, net: nn.Module) -> None:
        super().__init__()
        self.net = net.eval().requires_grad_(False)

    def forward(self, pred: Tensor, target: Tensor) -> Tensor:
        taps = tuple(self.TAPS)
        fp = self.net.features(pred, taps)
        with torch.no_grad():
            ft = self.net.features(target, taps)
        return sum(w * F.l1_loss(a, b) for w, a, b in zip(self.TAPS.values(), fp, ft))


def lsgan_loss(preds: list[Tensor], target_is_real: bool) -> Tensor:
    """LSGAN (MSE against 1 for real, 0 for fake), averaged over the discriminator scales."""
    losses = [F.mse_loss(p, torch.full_like(p, 1.0 if target_is_real else 0.0)) for p in preds]
    return sum(losses) / len(losses)
