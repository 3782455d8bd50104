"""Losses of VQGAN training: L1 + perceptual + codebook (the paper's Eq. 4) + hinge GAN with adaptive weight.

Perceptual term:
* ``"lpips"`` / ``"vgg"``: VGG16 features (relu1_2, relu2_2, relu3_3, relu4_3, relu5_3), each
  unit-normalised over channels, squared difference, spatial mean, summed over layers (LPIPS form).
  Needs ImageNet VGG16 weights (torchvision naming, ``vgg16-397923af.pth``) from a given path or
  the torch hub cache; the LPIPS linear heads (``vgg.pth`` of the lpips package) are used when a
  path is given, else every channel weighs the same.
* ``"dfm"`` (fallback needing no pretrained weights): discriminator feature matching, the mean L1
  distance between the discriminator's intermediate activations of the real and reconstructed
  image (real features detached), averaged over its four hidden layers. The discriminator is then
  trained from step 0 so its features mean something; its adversarial term on the generator still
  waits for ``disc_start``.
"""
from __future__ import annotations

import os
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .losses import vgg_features

__all__ = ["NLayerDiscriminator", "hinge_d_loss", "adaptive_weight", "VGGPerceptual", "find_vgg16_weights"]


class NLayerDiscriminator(nn.Module):
    """PatchGAN: ndf 64, 3 layers, BatchNorm, LeakyReLU 0.2 (2,765,633 parameters at ndf 64)."""

    def __init__(self, ndf: int = 64, n_layers: int = 3) -> None:
        super().__init__()
        layers: list[nn.Module] = [nn.Conv2d(3, ndf, 4, 2, 1), nn.LeakyReLU(0.2, True)]
        c = ndf
        for i in range(1, n_layers + 1):
            co = ndf * min(2 ** i, 8)
            layers += [nn.Conv2d(c, co, 4, 2 if i < n_layers else 1, 1, bias=False), nn.BatchNorm2d(co),
                       nn.LeakyReLU(0.2, True)]
            c = co
        layers.append(nn.Conv2d(c, 1, 4, 1, 1))
        self.main = nn.Sequential(*layers)
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.normal_(m.weight, 0.0, 0.02)
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.normal_(m.weight, 1.0, 0.02)
                nn.init.zeros_(m.bias)

    def forward(self, x: Tensor, features: bool = False) -> Tensor | tuple[Tensor, list[Tensor]]:
        feats: list[Tensor] = []
        for m in self.main:
            x = m(x)
            if isinstance(m, nn.LeakyReLU):
                feats.append(x)
        return (x, feats) if features else x


def hinge_d_loss(real: Tensor, fake: Tensor) -> Tensor:
    return 0.5 * (F.relu(1.0 - real).mean() + F.relu(1.0 + fake).mean())


def adaptive_weight(nll: Tensor, g_loss: Tensor, last: Tensor, disc_weight: float = 0.8) -> Tensor:
    """``clamp(|grad nll| / (|grad g| + 1e-4), 0, 1e4) * disc_weight`` on the last layer's weight, detached."""
    gn = torch.autograd.grad(nll, last, retain_graph=True)[0]
    gg = torch.autograd.grad(g_loss, last, retain_graph=True)[0]
    w = torch.norm(gn) / (torch.norm(gg) + 1e-4)
    return torch.clamp(w, 0.0, 1e4).detach() * disc_weight


_VGG16 = [64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512]
_TAPS = (3, 8, 15, 22, 29)  # indices of relu1_2 .. relu5_3 in torchvision's vgg16.features


def find_vgg16_weights(path: str | os.PathLike | None = None) -> Path | None:
    """A VGG16 ImageNet weights file: ``path`` if given, else the torch hub cache, else None."""
    if path:
        p = Path(path).expanduser()
        return p if p.is_file() else None
    hub = Path(os.environ.get("TORCH_HOME", Path.home() / ".cache" / "torch")) / "hub" / "checkpoints"
    cands = sorted(hub.glob("vgg16-*.pth")) if hub.is_dir() else []
    return cands[0] if cands else None


class VGGPerceptual(nn.Module):
    """LPIPS-form distance on frozen VGG16 features; inputs in [-1, 1]. Returns per-image values ``B,1,1,1``."""

    shift = (-0.030, -0.088, -0.188)
    scale = (0.458, 0.448, 0.450)

    def __init__(self, vgg_path: Path, lpips_path: Path | None = None) -> None:
        super().__init__()
        self.features = vgg_features(_VGG16)
        sd = torch.load(str(vgg_path), map_location="cpu", weights_only=True)
        feats = {k[len("features."):]: v for k, v in sd.items() if k.startswith("features.")}
        self.features.load_state_dict(feats, strict=True)
        self.lins: list[Tensor] | None = None
        if lpips_path is not None:
            lp = torch.load(str(lpips_path), map_location="cpu", weights_only=True)
            self.lins = [lp[f"lin{i}.model.1.weight"].float() for i in range(5)]
        self.register_buffer("sh", torch.tensor(self.shift).view(1, 3, 1, 1))
        self.register_buffer("sc", torch.tensor(self.scale).view(1, 3, 1, 1))
        self.requires_grad_(False).eval()

    def _taps(self, x: Tensor) -> list[Tensor]:
        out = []
        x = (x - self.sh) / self.sc
        for i, m in enumerate(self.features):
            x = m(x)
            if i in _TAPS:
                out.append(x / (x.pow(2).sum(1, keepdim=True).sqrt() + 1e-10))
            if i >= _TAPS[-1]:
                break
        return out

    def forward(self, x: Tensor, y: Tensor) -> Tensor:
        total = 0
        for i, (a, b) in enumerate(zip(self._taps(x), self._taps(y))):
            d = (a - b).pow(2)
            d = F.conv2d(d, self.lins[i].to(d)) if self.lins is not None else d.mean(1, keepdim=True)
            total = total + d.mean((2, 3), keepdim=True)
        return total  # type: ignore[return-value]

    def train(self, mode: bool = True) -> "VGGPerceptual":
        return super().train(False)
