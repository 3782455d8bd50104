"""Discriminator sizes, perceptual and GAN losses."""
from __future__ import annotations

import pytest
import torch

from vsvqdsr.nets.discriminators import MultiScaleDiscriminator
from vsvqdsr.nets.srvgg import SRVGGCompact, srvgg_param_count
from vsvqdsr.training import losses as L
from vsvqdsr.training.perceptual import VQGAN_KINDS, VSR_KINDS, build_perceptual


def test_discriminator_parameter_counts_and_maps():
    d = MultiScaleDiscriminator()
    assert sum(p.numel() for p in d.parameters()) == 8_294_211
    assert all(sum(p.numel() for p in x.parameters()) == 2_764_737 for x in d.discs)
    convs = [m for m in d.modules() if isinstance(m, torch.nn.Conv2d)]
    assert len(convs) == 15 and all(hasattr(m, "parametrizations") for m in convs)  # spectral norm on all
    with torch.no_grad():
        outs = d(torch.rand(1, 3, 256, 256))
    assert [tuple(o.shape[-2:]) for o in outs] == [(30, 30), (14, 14), (6, 6)]
    with pytest.raises(ValueError, match="96"):
        d(torch.rand(1, 3, 64, 64))


def test_lsgan():
    preds = [torch.ones(2, 1, 4, 4), torch.zeros(2, 1, 2, 2)]
    assert float(L.lsgan_loss(preds, True)) == pytest.approx(0.5)
    assert float(L.lsgan_loss(preds, False)) == pytest.approx(0.5)



def test_gradient_l1_charges_soft_edges_not_offsets():
    gt = torch.zeros(1, 2, 3, 16, 16)
    gt[..., 8:] = 1.0  # a hard vertical edge
    soft = gt.clone()
    soft[..., 7], soft[..., 8] = 0.25, 0.75  # the same edge, softened
    assert float(L.gradient_l1_loss(gt, gt)) == 0.0
    assert float(L.gradient_l1_loss(gt + 0.1, gt)) < 1e-7  # a flat offset has the same slopes
    # per unit of pixel L1, the softened edge costs more slope error than a flat offset of equal L1
    assert float(L.gradient_l1_loss(soft, gt)) / float(L.l1_loss(soft, gt)) > 0.5
    # and the loss is symmetric in x and y
    assert torch.isclose(L.gradient_l1_loss(soft, gt), L.gradient_l1_loss(soft.transpose(-1, -2), gt.transpose(-1, -2)))


def test_halo_loss_charges_ringing_not_softness():
    gt = torch.full((1, 1, 3, 8, 16), 0.2)
    gt[..., 8:] = 0.8  # a hard edge from 0.2 to 0.8
    soft = gt.clone()
    soft[..., 7], soft[..., 8] = 0.4, 0.6  # softened: still inside the local range
    ring = gt.clone()
    ring[..., 7], ring[..., 8] = 0.1, 0.9  # dark and bright rims beyond both sides
    assert float(L.halo_loss(gt, gt)) == 0.0
    assert float(L.halo_loss(soft, gt)) == 0.0
    assert float(L.halo_loss(ring, gt)) == pytest.approx(2 * 0.1 / 16, rel=1e-5)  # two columns of 0.1 each
    far = gt.clone()
    far[..., 0] = 0.5  # a bump 8 px from the edge leaves the flat area's range too
    assert float(L.halo_loss(far, gt)) > 0

def test_vgg19_taps_and_weights_search(tmp_path, monkeypatch):
    net = L.VGG19Perceptual(pretrained=False)
    layers = list(net.features)
    assert len(layers) == 35
    assert all(isinstance(layers[i], torch.nn.Conv2d) for i in L.VGG_LAYER_WEIGHTS)  # pre-ReLU taps
    assert [layers[i].out_channels for i in L.VGG_LAYER_WEIGHTS] == [64, 128, 256, 512, 512]
    assert list(L.VGG_LAYER_WEIGHTS.values()) == [0.1, 0.1, 1.0, 1.0, 1.0]
    x = torch.rand(1, 3, 32, 32)
    assert float(net(x, x)) == 0.0
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "hub"))
    monkeypatch.delenv("VSVQDSR_VGG19", raising=False)
    assert L.find_vgg19_weights(None) is None
    f = tmp_path / "v.pth"
    torch.save({f"features.{k}": v for k, v in net.features.state_dict().items()}, f)
    assert L.find_vgg19_weights(f) == f
    # a weights file with the torchvision key layout loads (here: our random VGG's own weights)
    loaded = L.VGG19Perceptual(f)
    assert torch.equal(loaded.features[34].weight, net.features[34].weight)


def test_srvgg_perceptual_gradients():
    torch.manual_seed(0)
    loss = L.SRVGGPerceptual(SRVGGCompact(num_conv=12))
    a = torch.rand(2, 3, 24, 24, requires_grad=True)
    b = torch.rand(2, 3, 24, 24)
    assert float(loss(b, b)) == 0.0
    v = loss(a, b)
    v.backward()
    assert float(v.detach()) > 0 and a.grad is not None and float(a.grad.abs().sum()) > 0
    assert all(p.grad is None for p in loss.parameters())


def test_srvgg_size():
    assert srvgg_param_count() == sum(p.numel() for p in SRVGGCompact().parameters()) == 621_424


def test_build_perceptual_choice(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "hub"))
    vgg = L.VGG19Perceptual(pretrained=False)
    f = tmp_path / "vgg19.pth"
    torch.save({f"features.{k}": v for k, v in vgg.features.state_dict().items()}, f)
    monkeypatch.setenv("VSVQDSR_VGG19", str(f))
    mod, kind = build_perceptual("auto", VSR_KINDS)
    assert kind == "vgg19" and isinstance(mod, L.VGG19Perceptual)
    assert build_perceptual("none", VSR_KINDS) == (None, "none")
    monkeypatch.delenv("VSVQDSR_VGG19")
    with pytest.raises(FileNotFoundError):
        build_perceptual("vgg19", VSR_KINDS)
    # without VGG weights: the SRVGG trunk if installed, else no perceptual loss
    mod, kind = build_perceptual("auto", VSR_KINDS)
    assert kind in ("srvgg", "none") and (kind == "none") == (mod is None)
    with pytest.raises(ValueError):
        build_perceptual("lpips", VSR_KINDS)


def test_build_perceptual_vqgan_kinds(tmp_path, monkeypatch):
    from vsvqdsr.training.vqgan_losses import _VGG16, VGGPerceptual

    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "hub"))
    assert build_perceptual("auto", VQGAN_KINDS) == (None, "dfm")  # no VGG16 weights: feature matching
    with pytest.raises(FileNotFoundError, match="vgg16"):
        build_perceptual("lpips", VQGAN_KINDS)
    with pytest.raises(ValueError):
        build_perceptual("vgg19", VQGAN_KINDS)
    f = tmp_path / "hub" / "hub" / "checkpoints" / "vgg16-0.pth"
    f.parent.mkdir(parents=True)
    torch.save({f"features.{k}": v for k, v in L.vgg_features(_VGG16).state_dict().items()}, f)
    mod, kind = build_perceptual("auto", VQGAN_KINDS)
    assert kind == "lpips" and isinstance(mod, VGGPerceptual)
