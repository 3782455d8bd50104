"""VQGAN degradation model: sizes, token grids, top-k semantics, official-key loading, degrade()."""
from __future__ import annotations

import sys
import types

import pytest
import torch

from vsvqdsr.nets.vqgan import (LITE_CONFIG, PAPER_CONFIG, MultiScaleVQGAN, TopVQGAN, VectorQuantizer,
                                VQGANConfig, sample_k)
from vsvqdsr.weights.degrader import (describe_degrader, load_degrader, map_official_keys, save_degrader)
from vsvqdsr.weights.loading import WeightsError

TINY = VQGANConfig(ch=8, ch_mult=(1, 1, 2, 2, 4), num_res_blocks=1, embed_dim=16, n_embed=64, norm_groups=4)


def _count(m: torch.nn.Module) -> int:
    return sum(p.numel() for p in m.parameters())


def test_parameter_counts_match_the_paper_model():
    with torch.device("meta"):
        assert _count(TopVQGAN(PAPER_CONFIG)) == 56_868_099
        assert _count(MultiScaleVQGAN(PAPER_CONFIG)) == 121_208_451
        assert _count(MultiScaleVQGAN(LITE_CONFIG)) == 2_029_363


@pytest.mark.parametrize("size,grids", [(256, (32, 64, 128)), (64, (8, 16, 32))])
def test_token_grids_of_the_paper_model(size, grids):
    with torch.device("meta"):
        net = MultiScaleVQGAN(PAPER_CONFIG)
        zt, zm, zb = net.encode(torch.empty(1, 3, size, size))
    assert [z.shape[-1] for z in (zt, zm, zb)] == list(grids)
    assert [z.shape[-2] for z in (zt, zm, zb)] == list(grids)
    assert zt.shape[1] == zm.shape[1] == zb.shape[1] == 256


def test_decoder_output_matches_input_size_and_branches_share_one_codebook():
    net = MultiScaleVQGAN(TINY).eval()
    y, loss = net(torch.rand(2, 3, 48, 40) * 2 - 1)
    assert y.shape == (2, 3, 48, 40) and loss.ndim == 0
    codebooks = [n for n, _ in net.named_parameters() if "embedding" in n]
    assert codebooks == ["top.quantize.embedding.weight"]
    assert not MultiScaleVQGAN.swish_out and TopVQGAN.swish_out


def _ranks(vq: VectorQuantizer, z: torch.Tensor, idx: torch.Tensor) -> torch.Tensor:
    zf = z.permute(0, 2, 3, 1).reshape(-1, z.shape[1])
    d = ((zf[:, None, :] - vq.embedding.weight[None]) ** 2).sum(-1)  # explicit, not the expanded form
    chosen = d.gather(1, idx.reshape(-1, 1))
    return (d < chosen).sum(1) + 1


def test_topk_rank_semantics():
    g = torch.Generator().manual_seed(1)
    vq = VectorQuantizer(128, 8)
    with torch.no_grad():
        vq.embedding.weight.copy_(torch.randn(128, 8, generator=g))
    z = torch.randn(3, 8, 5, 6, generator=g)
    zf = z.permute(0, 2, 3, 1).reshape(-1, 8)
    argmin = ((zf[:, None] - vq.embedding.weight[None]) ** 2).sum(-1).argmin(1).reshape(3, 5, 6)
    assert torch.equal(vq.lookup(z), argmin)
    assert torch.equal(vq.lookup(z, torch.ones(3, dtype=torch.int64)), argmin)
    for k in (2, 7, 50):
        idx = vq.lookup(z, torch.full((3,), k, dtype=torch.int64))
        assert torch.all(_ranks(vq, z, idx) == k)
    ks = torch.tensor([50, 1, 13])
    batched = vq.lookup(z, ks)
    for b in range(3):
        ref = vq.lookup(z[b:b + 1], ks[b:b + 1])
        assert torch.equal(batched[b:b + 1], ref)
        assert torch.all(_ranks(vq, z[b:b + 1], ref) == ks[b])
    with pytest.raises(ValueError, match="1..128"):
        vq.lookup(z, torch.tensor([0, 1, 1]))


def test_quantizer_loss_weights_and_straight_through():
    vq = VectorQuantizer(16, 4, beta=0.25)
    z = torch.randn(1, 4, 3, 3, requires_grad=True)
    zq, loss, idx = vq(z)
    e = vq.embedding.weight[idx].permute(0, 3, 1, 2)
    mse = ((e - z) ** 2).mean()
    assert torch.allclose(loss, 1.25 * mse)
    zq.sum().backward()
    assert torch.allclose(z.grad, torch.ones_like(z))  # straight-through
    # commitment (weight 1) reaches z, the codebook term (beta) reaches the codebook
    z2 = z.detach().clone().requires_grad_(True)
    vq.zero_grad()
    _, loss2, _ = vq(z2)
    loss2.backward()
    assert torch.allclose(z2.grad, 2 * (z2 - e).detach() / z.numel())
    n = e.numel()
    gsum = vq.embedding.weight.grad.sum(0)
    assert torch.allclose(gsum, (0.25 * 2 * (e - z).detach() / n).permute(0, 2, 3, 1).reshape(-1, 4).sum(0), atol=1e-6)


def test_sample_k_modes():
    g = torch.Generator().manual_seed(0)
    t, m, b = sample_k("paper", 4000, g)
    assert torch.all(t == 1) and torch.all(m == 1) and b.min() == 1 and b.max() == 50
    t, m, b = sample_k("released", 4000, g)
    assert torch.all(t == 1) and m.min() == 1 and m.max() == 10 and b.min() == 1 and b.max() == 50
    frac = [float(((b >= lo) & (b <= hi)).float().mean()) for lo, hi in ((1, 15), (16, 30), (31, 50))]
    assert abs(frac[0] - 0.3) < 0.04 and abs(frac[1] - 0.4) < 0.04 and abs(frac[2] - 0.3) < 0.04
    assert all(x.dtype == torch.int64 and x.shape == (4000,) for x in (t, m, b))
    with pytest.raises(ValueError, match="sample_k"):
        sample_k("bogus", 1, g)


def _fake_module(name: str) -> type:
    parts = name.split(".")
    for i in range(1, len(parts)):
        sys.modules.setdefault(".".join(parts[:i]), types.ModuleType(".".join(parts[:i])))
    mod = types.ModuleType(".".join(parts[:-1]))
    cls = type(parts[-1], (), {})
    cls.__module__ = mod.__name__
    setattr(mod, parts[-1], cls)
    sys.modules[mod.__name__] = mod
    return cls


def _drop_modules(prefix: str) -> None:
    for k in [k for k in sys.modules if k == prefix or k.startswith(prefix + ".")]:
        del sys.modules[k]


def test_official_lightning_checkpoint_loads_by_name(tmp_path):
    cfg = VQGANConfig(ch=32, ch_mult=(1, 1, 2, 2, 4), num_res_blocks=1, embed_dim=32, n_embed=64)
    ref = MultiScaleVQGAN(cfg).eval()
    sd = {"endecoder." + k: v for k, v in ref.state_dict().items()}
    # the release also builds (unused) per-branch codebooks, and stores loss/discriminator weights
    sd["endecoder.mid.quantize.embedding.weight"] = torch.zeros(64, 32)
    sd["endecoder.bot.quantize.embedding.weight"] = torch.zeros(64, 32)
    sd["loss.discriminator.main.0.weight"] = torch.zeros(64, 3, 4, 4)
    cb = _fake_module("pytorch_lightning.callbacks.model_checkpoint.ModelCheckpoint")
    try:
        ck = {"epoch": 4, "global_step": 1580, "pytorch-lightning_version": "1.0.8", "state_dict": sd,
              "callbacks": {cb: {"best_model_score": torch.tensor(0.5)}}}
        path = tmp_path / "pretrain_mul_vqgan.ckpt"
        torch.save(ck, path)
    finally:
        _drop_modules("pytorch_lightning")
    net = load_degrader(path)
    assert not any(p.requires_grad for p in net.parameters()) and not net.training
    x = torch.rand(1, 3, 32, 32)
    ks = [torch.tensor([1]), torch.tensor([3]), torch.tensor([20])]
    assert torch.equal(net.degrade(x, *ks), ref.degrade(x, *ks))
    desc = describe_degrader(map_official_keys(sd))
    assert desc.stage == 2 and desc.config == cfg


def test_checkpoint_pickling_foreign_code_is_refused(tmp_path):
    cls = _fake_module("evilpkg.payload.Runner")
    try:
        torch.save({"state_dict": {"endecoder.conv_in.weight": torch.zeros(1)}, "x": cls()}, tmp_path / "bad.ckpt")
    finally:
        _drop_modules("evilpkg")
    with pytest.raises(WeightsError, match="cannot be loaded safely"):
        load_degrader(tmp_path / "bad.ckpt")


def test_stage1_file_is_refused_and_our_safetensors_round_trip(tmp_path):
    save_degrader(TopVQGAN(TINY), tmp_path / "s1.safetensors")
    with pytest.raises(WeightsError, match="stage-1"):
        load_degrader(tmp_path / "s1.safetensors")
    net = MultiScaleVQGAN(TINY).eval()
    save_degrader(net, tmp_path / "s2.safetensors", half=True)
    back = load_degrader(tmp_path / "s2.safetensors")
    assert back.config == TINY
    for (k, a), (_, b) in zip(net.state_dict().items(), back.state_dict().items()):
        assert torch.allclose(a.half().float(), b), k


def test_degrade_pads_crops_clamps_and_tiles():
    net = MultiScaleVQGAN(TINY).eval()
    g = torch.Generator().manual_seed(0)
    x = torch.rand(2, 3, 29, 37, generator=g)
    ks = sample_k("released", 2, g)
    y = net.degrade(x, *ks)
    assert y.shape == x.shape and y.min() >= 0 and y.max() <= 1
    # padding: the result equals the padded forward cropped back
    xp = torch.nn.functional.pad(x * 2 - 1, (0, 3, 0, 3), mode="reflect")
    with torch.no_grad():
        ref = ((net(xp, *ks)[0][..., :29, :37] + 1) / 2).clamp(0, 1)
    assert torch.allclose(y, ref, atol=1e-6)
    # per-sample k: sample b of a batch equals sample b alone
    y1 = net.degrade(x[1:], *(k[1:] for k in ks))
    assert torch.allclose(y[1:], y1, atol=1e-5)
    # big frames go through tiles; same size, valid range
    big = torch.rand(1, 3, 90, 100, generator=g)
    yt = net.degrade(big, *(k[:1] for k in ks), max_pixels=64 * 64, tile=64, overlap=8)
    assert yt.shape == big.shape and 0 <= float(yt.min()) and float(yt.max()) <= 1
    with pytest.raises(ValueError, match="k_mid"):
        net.degrade(x, ks[0], ks[1][:1], ks[2])
