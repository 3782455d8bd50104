"""HR-SR enhancement: MATLAB bicubic, ncnn conversion (layout and ncnn's own output), enhance_dir."""
from __future__ import annotations

import struct
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from vsvqdsr.nets.srvgg import SRVGGCompact
from vsvqdsr.training.enhance import cubic, enhance_dir, load_sisr, matlab_imresize, resize_weights, sr_image
from vsvqdsr.weights.loading import WeightsError, save_state_dict
from vsvqdsr.weights.ncnn import FP16_TAG, convert_srvgg

DATA = Path(__file__).parent / "data"


def test_cubic_kernel_values():
    # Keys a = -0.5: k(0) = 1, k(1) = k(2) = 0, k(0.5) = 0.5625, k(1.5) = -0.0625
    np.testing.assert_allclose(cubic(np.array([0, 0.5, 1, 1.5, 2, 2.5])), [1, 0.5625, 0, -0.0625, 0, 0])


def test_matlab_bicubic_half_by_hand():
    # x1/2 antialiased: output i samples u = 2i - 0.5 with taps s*cubic(s*d), s = 1/2, 8 taps per output.
    # Interior row: distances +-0.5, +-1.5, +-2.5, +-3.5 -> 0.5*cubic(0.25|0.75|1.25|1.75)
    inner = [0.5 * cubic(np.array(d)) for d in (1.75, 1.25, 0.75, 0.25, 0.25, 0.75, 1.25, 1.75)]
    hand = np.array([-0.01171875, -0.03515625, 0.11328125, 0.43359375, 0.43359375, 0.11328125, -0.03515625,
                     -0.01171875])
    np.testing.assert_allclose(np.array(inner, float).ravel(), hand, atol=1e-12)
    w = resize_weights(8, 4)
    np.testing.assert_allclose(w[1], [-0.046875, 0.11328125, 0.43359375, 0.43359375, 0.11328125, -0.03515625,
                                      -0.01171875, 0.0], atol=1e-12)  # first tap mirrored onto pixel 1
    x = torch.arange(8, dtype=torch.float64).view(1, 1, 1, 8)
    y = matlab_imresize(x, (1, 4))
    expect = np.array([w[i] @ np.arange(8) for i in range(4)])
    np.testing.assert_allclose(y.view(-1).numpy(), expect, atol=1e-12)
    assert expect[1] == pytest.approx(-0.046875 * 0 + 0.11328125 + 2 * 0.43359375 + 3 * 0.43359375 + 4 * 0.11328125
                                      - 5 * 0.03515625 - 6 * 0.01171875)


def test_matlab_bicubic_identity_constant_and_size():
    np.testing.assert_allclose(resize_weights(9, 9), np.eye(9), atol=1e-15)
    x = torch.full((1, 3, 37, 51), 0.25, dtype=torch.float64)
    y = matlab_imresize(x, (10, 13))
    assert y.shape == (1, 3, 10, 13) and torch.allclose(y, torch.full_like(y, 0.25))
    # x4 up then back down: close to the original on a smooth image
    img = torch.from_numpy(np.outer(np.sin(np.linspace(0, 3, 20)), np.cos(np.linspace(0, 2, 24))))[None, None]
    back = matlab_imresize(matlab_imresize(img, (80, 96)), (20, 24))
    assert float((back - img).abs().max()) < 0.02


def _tiny_ncnn(tmp: Path) -> tuple[str, bytes, dict]:
    """A tiny SRVGG (3->4 feats, 1 body conv, x2) as ncnn .param/.bin written from the documented layout."""
    rng = np.random.default_rng(0)
    conv = [(4, 3), (4, 4), (12, 4)]
    lines = ["7767517", "10 12", "Input in 0 1 data", "Split sp 1 2 data a b"]
    blob = b""
    ref = {}
    prev, idx = "a", 0
    for i, (co, ci) in enumerate(conv):
        w = rng.standard_normal((co, ci, 3, 3)).astype(np.float16)
        b = rng.standard_normal(co).astype(np.float32)
        blob += struct.pack("<I", FP16_TAG) + w.tobytes() + b.tobytes()
        ref[f"body.{idx}.weight"], ref[f"body.{idx}.bias"] = w.astype(np.float32), b
        lines.append(f"Convolution c{i} 1 1 {prev} c{i}o 0={co} 1=3 4=1 5=1 6={co * ci * 9}")
        prev, idx = f"c{i}o", idx + 1
        if i < 2:
            s = rng.standard_normal(co).astype(np.float32)
            blob += s.tobytes()
            ref[f"body.{idx}.weight"] = s
            lines.append(f"PReLU p{i} 1 1 {prev} p{i}o 0={co}")
            prev, idx = f"p{i}o", idx + 1
    lines += [f"PixelShuffle ps 1 1 {prev} pso 0=2", "Interp up 1 1 b upo 0=1 1=2.000000e+00 2=2.000000e+00",
              "BinaryOp add 2 1 pso upo out"]
    return "\n".join(lines) + "\n", blob, ref


def test_ncnn_conversion_layout(tmp_path):
    param, blob, ref = _tiny_ncnn(tmp_path)
    sd, cfg = convert_srvgg(param, blob)
    assert cfg == {"in_ch": 3, "out_ch": 3, "num_feat": 4, "num_conv": 1, "scale": 2}
    assert sd.keys() == ref.keys()
    for k in ref:
        np.testing.assert_array_equal(sd[k].numpy(), ref[k])
    net = SRVGGCompact(**cfg)
    net.load_state_dict(sd)
    with pytest.raises(WeightsError, match="left over"):
        convert_srvgg(param, blob + b"\0\0\0\0")
    with pytest.raises(WeightsError, match="truncated"):
        convert_srvgg(param, blob[:-4])
    with pytest.raises(WeightsError, match="nearest"):
        convert_srvgg(param.replace("0=1 1=2.0", "0=2 1=2.0"), blob)


def _installed_animevideov3() -> Path:
    from vsvqdsr.weights.fetch import sisr_dir

    p = sisr_dir() / "realesr-animevideov3.safetensors"
    if not p.is_file():
        pytest.skip("realesr-animevideov3 not converted yet (run `vqdsr fetch-weights`)")
    return p


def test_converted_animevideov3_matches_ncnn():
    net = load_sisr(_installed_animevideov3())
    sd = net.state_dict()
    # the documented .bin layout: per conv tag + fp16 weights + fp32 bias, per PReLU fp32 slopes
    nbytes = sum(4 + 2 * v.numel() if k.endswith("weight") and v.dim() == 4 else 4 * v.numel() for k, v in sd.items())
    assert nbytes == 1_247_368
    assert [tuple(sd[f"body.{i}.weight"].shape) for i in (0, 2, 34)] == [(64, 3, 3, 3), (64, 64, 3, 3), (48, 64, 3, 3)]
    inp = np.load(DATA / "realesr_animevideov3_in.npy")
    ref = np.load(DATA / "realesr_animevideov3_ncnn_out.npy").astype(np.float32)
    x = torch.from_numpy(inp).permute(2, 0, 1)[None].float() / 255
    y = sr_image(net, x, tile=0)[0].permute(1, 2, 0).numpy() * 255
    diff = np.abs(np.clip(y, 0, 255) - ref)
    assert diff.max() <= 0.6 and diff.mean() < 0.3  # ncnn rounds to uint8


def test_enhance_dir_keeps_size(tmp_path):
    torch.manual_seed(0)
    net = SRVGGCompact(num_feat=8, num_conv=2)
    f = tmp_path / "tiny.safetensors"
    meta = {"arch": "srvgg", "in_ch": "3", "out_ch": "3", "num_feat": "8", "num_conv": "2", "scale": "4"}
    save_state_dict(net.state_dict(), f, meta)
    src = tmp_path / "in" / "clip"
    src.mkdir(parents=True)
    img = (np.random.default_rng(0).random((21, 30, 3)) * 255).astype(np.uint8)
    cv2.imwrite(str(src / "0001.png"), img)
    cv2.imwrite(str(src / "0002.jpg"), img)
    n = enhance_dir(tmp_path / "in", tmp_path / "out", f, tile=16)
    assert n == 2
    for name in ("0001.png", "0002.png"):
        out = cv2.imread(str(tmp_path / "out" / "clip" / name))
        assert out.shape == img.shape
    assert enhance_dir(tmp_path / "in", tmp_path / "out", f) == 0  # resumes: nothing left to do
    with pytest.raises(WeightsError):
        load_sisr(tmp_path / "in" / "clip" / "0001.png")


def test_enhance_hr_cli(tmp_path, capsys):
    from vsvqdsr.cli.main import main

    torch.manual_seed(0)
    f = tmp_path / "tiny.safetensors"
    meta = {"arch": "srvgg", "in_ch": "3", "out_ch": "3", "num_feat": "8", "num_conv": "1", "scale": "4"}
    save_state_dict(SRVGGCompact(num_feat=8, num_conv=1).state_dict(), f, meta)
    (tmp_path / "in").mkdir()
    img = (np.random.default_rng(1).random((10, 14, 3)) * 255).astype(np.uint8)
    cv2.imwrite(str(tmp_path / "in" / "a.png"), img)
    assert main(["enhance-hr", str(tmp_path / "in"), str(tmp_path / "out"), "--model", str(f), "--device", "cpu"]) == 0
    assert cv2.imread(str(tmp_path / "out" / "a.png")).shape == (10, 14, 3)
    assert "1 frame(s) written" in capsys.readouterr().out
    assert main(["enhance-hr", str(tmp_path / "nope"), str(tmp_path / "out")]) == 2
    assert main(["enhance-hr", str(tmp_path / "in"), str(tmp_path / "o2"), "--model", "no-such-model"]) == 2
    assert "unknown sisr model" in capsys.readouterr().err


def test_converted_x4plus_anime_matches_ncnn():
    from vsvqdsr.nets.rrdb import RRDBNet
    from vsvqdsr.weights.fetch import sisr_dir

    p = sisr_dir() / "realesrgan-x4plus-anime.safetensors"
    if not p.is_file():
        pytest.skip("realesrgan-x4plus-anime not converted yet (run `vqdsr fetch-weights`)")
    net = load_sisr(p)
    assert isinstance(net, RRDBNet) and len(net.body) == 6
    assert sum(v.numel() for v in net.parameters()) == 4_467_779
    inp = np.load(DATA / "realesrgan_x4plus_anime_in.npy")
    ref = np.load(DATA / "realesrgan_x4plus_anime_ncnn_out.npy").astype(np.float32)
    x = torch.from_numpy(inp).permute(2, 0, 1)[None].float() / 255
    y = sr_image(net, x, tile=0)[0].permute(1, 2, 0).numpy() * 255
    diff = np.abs(np.clip(y, 0, 255) - ref)
    assert diff.max() <= 0.6 and diff.mean() < 0.3


def test_rrdb_size():
    from vsvqdsr.nets.rrdb import RRDBNet

    assert sum(p.numel() for p in RRDBNet().parameters()) == 16_697_987  # RealESRGAN_x4plus
