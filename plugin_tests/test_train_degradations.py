"""Stage-1/stage-2 degradation operators: sampling semantics on fixed seeds, H.264, USM."""
from __future__ import annotations

import math

import cv2
import numpy as np
import pytest
import torch

from vsvqdsr.training import degradations as D
from vsvqdsr.training.h264 import H264Error, h264_roundtrip


def test_blur_sampling_ranges_and_quirk():
    rng = np.random.default_rng(0)
    draws = [D.sample_blur(rng) for _ in range(3000)]
    iso = [p for p in draws if p.kind == "iso"]
    aniso = [p for p in draws if p.kind == "aniso"]
    assert 0.66 < len(iso) / len(draws) < 0.74
    assert all(p.sigma_x == p.sigma_y and 0.2 <= p.sigma_x <= 4 and p.theta == 0 for p in iso)
    # aniso: sigma_x from the *iso* range [0.2, 4] (the spec's positional quirk), sigma_y from [0.8, 3]
    assert all(0.2 <= p.sigma_x <= 4 and 0.8 <= p.sigma_y <= 3 and -math.pi <= p.theta <= math.pi for p in aniso)
    assert min(p.sigma_x for p in aniso) < 0.8 and max(p.sigma_x for p in aniso) > 3


def test_gaussian_kernel_properties():
    k = D.gaussian_kernel(D.BlurParams("iso", 2.0, 2.0, 0.0))
    assert k.shape == (21, 21) and abs(k.sum() - 1) < 1e-12
    g = np.exp(-(np.arange(-10, 11) ** 2) / (2 * 4.0))
    np.testing.assert_allclose(k, np.outer(g, g) / np.outer(g, g).sum(), atol=1e-12)
    a = D.gaussian_kernel(D.BlurParams("aniso", 3.0, 0.8, math.pi / 2))
    # rotated by 90 degrees: the long axis (sigma 3) lies along y (rows)
    assert a[:, 10].var() > 0 and a[0:10, 10].sum() > a[10, 0:10].sum()
    np.testing.assert_allclose(a, a[::-1, ::-1], atol=1e-15)  # point-symmetric: correlation == convolution


def test_clip_params_per_clip_and_per_frame():
    rng = np.random.default_rng(3)
    p = D.sample_clip_params(rng, 15)
    assert isinstance(p.blur, D.BlurParams) and p.resize in ("area", "linear", "cubic")
    assert len(p.noise_sigma) == 15 and len(p.noise_gray) == 15
    assert len(set(p.noise_sigma)) == 15 and all(0 <= s <= 10 for s in p.noise_sigma)
    assert isinstance(p.crf, float) and 18 <= p.crf < 35 and p.crf != round(p.crf)
    # the same seed gives the same draws
    assert D.sample_clip_params(np.random.default_rng(3), 15) == p
    many = [D.sample_clip_params(rng, 2) for _ in range(3000)]
    prof = {k: sum(m.profile == k for m in many) / len(many) for k in ("baseline", "main", "high")}
    assert abs(prof["baseline"] - 0.1) < 0.03 and abs(prof["main"] - 0.2) < 0.03 and abs(prof["high"] - 0.7) < 0.04
    res = {k: sum(m.resize == k for m in many) / len(many) for k in ("area", "linear", "cubic")}
    assert abs(res["area"] - 0.3) < 0.04 and abs(res["linear"] - 0.3) < 0.04 and abs(res["cubic"] - 0.4) < 0.04
    assert 0.45 < np.mean([g for m in many for g in m.noise_gray]) < 0.55


def test_basic_ops_one_kernel_and_resize_per_clip_noise_per_frame():
    frame = np.random.default_rng(1).random((32, 48, 3)).astype(np.float32)
    clip = np.stack([frame] * 4)
    base = D.sample_clip_params(np.random.default_rng(5), 4)
    quiet = D.ClipParams(base.blur, (0.0,) * 4, (False,) * 4, base.resize, base.crf, base.profile)
    lr = D.basic_ops(clip, quiet, np.random.default_rng(0))
    assert lr.shape == (4, 8, 12, 3)
    for i in range(1, 4):  # identical frames + no noise -> identical outputs: one kernel, one resize
        np.testing.assert_array_equal(lr[i], lr[0])
    noisy = D.ClipParams(base.blur, (5.0, 5.0, 0.0, 0.0), (True, False, False, False), "area", 20.0, "high")
    flat = np.full((4, 64, 64, 3), 0.5, np.float32)
    hr_noise = D.basic_ops(flat, D.ClipParams(noisy.blur, noisy.noise_sigma, noisy.noise_gray, "area", 20.0, "high"),
                           np.random.default_rng(2), scale=1) - 0.5
    # scale=1 keeps the noise field: per-frame sigma and gray flag
    assert abs(hr_noise[0].std() - 5 / 255) < 0.15 * 5 / 255 and abs(hr_noise[1].std() - 5 / 255) < 0.15 * 5 / 255
    np.testing.assert_allclose(hr_noise[0][..., 0], hr_noise[0][..., 2], atol=1e-7)  # gray: same on channels
    assert np.abs(hr_noise[1][..., 0] - hr_noise[1][..., 2]).max() > 1e-3  # colour: independent channels
    assert np.abs(hr_noise[0] - hr_noise[1]).max() > 1e-3  # independent noise per frame
    assert np.abs(hr_noise[2:]).max() < 1e-6


def test_h264_roundtrip_real_codec():
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[0:32, 0:48]
    base = np.stack([(xx * 5) % 256, (yy * 7) % 256, ((xx + yy) * 3) % 256], -1).astype(np.uint8)
    frames = np.stack([np.roll(base, t, axis=1) for t in range(5)])
    lo = h264_roundtrip(frames, 18.0, "high")
    hi = h264_roundtrip(frames, 34.5, "baseline")
    assert lo.shape == frames.shape and lo.dtype == np.uint8
    err_lo = np.abs(lo.astype(int) - frames).mean()
    err_hi = np.abs(hi.astype(int) - frames).mean()
    assert 0 < err_lo < err_hi < 40  # lossy, and more so at a higher CRF
    out, crf, profile, ok = D.compress_clip(frames, rng, 25.3, "main")
    assert ok and (crf, profile) == (25.3, "main")
    assert out.shape == frames.shape and out.dtype == np.float32 and 0 <= out.min() and out.max() <= 1
    with pytest.raises(ValueError):
        h264_roundtrip(frames[:, :31], 20, "high")


def test_compress_clip_failure_resamples_then_returns_scaled(monkeypatch):
    calls = []

    def broken(frames, crf, profile, timeout=120.0):
        calls.append((crf, profile))
        raise H264Error("simulated ffmpeg failure")

    monkeypatch.setattr(D, "h264_roundtrip", broken)
    frames = np.full((3, 8, 8, 3), 200, np.uint8)
    out, crf, profile, ok = D.compress_clip(frames, np.random.default_rng(0), 20.0, "high", retries=2)
    assert not ok and len(calls) == 3 and calls[0] == (20.0, "high") and calls[1] != calls[0]
    np.testing.assert_allclose(out, 200 / 255, atol=1e-7)  # properly scaled, not 0-255


def test_basic_degrade_clip_end_to_end():
    hr = np.random.default_rng(0).random((5, 64, 64, 3)).astype(np.float32)
    lr, p = D.basic_degrade_clip(hr, np.random.default_rng(11))
    assert lr.shape == (5, 16, 16, 3) and lr.dtype == np.float32 and 0 <= lr.min() and lr.max() <= 1
    lr2, p2 = D.basic_degrade_clip(hr, np.random.default_rng(11))
    assert p2 == p and np.array_equal(lr, lr2)  # fully determined by the seed


def test_truncating_uint8_cast():
    x = np.array([0.0, 0.999 / 255, 1.999 / 255, 254.9 / 255, 1.2, -0.1], np.float32)
    assert D.truncate_uint8(x).tolist() == [0, 0, 1, 254, 255, 0]


def test_topk_modes():
    rng = np.random.default_rng(0)
    rel = [D.sample_topk(rng, "released") for _ in range(4000)]
    assert all(k.top == 1 and 1 <= k.mid <= 10 and 1 <= k.bottom <= 50 for k in rel)
    tiers = np.array([0 if k.bottom <= 15 else 1 if k.bottom <= 30 else 2 for k in rel])
    assert abs((tiers == 0).mean() - 0.3) < 0.03 and abs((tiers == 1).mean() - 0.4) < 0.03
    pap = [D.sample_topk(rng, "paper") for _ in range(200)]
    assert all(k.top == 1 and k.mid == 1 for k in pap) and max(k.bottom for k in pap) > 40
    assert D.sample_topk(rng, "nearest") == D.TopK(1, 1, 1)


class _Recording:
    """Delegates to a real (untrained, tiny) VQGAN and records the ranks it receives."""

    def __init__(self, net):
        self.net, self.calls = net, []

    def degrade(self, lr, k_top, k_mid, k_bottom):
        self.calls.append((lr.shape, k_top.clone(), k_mid.clone(), k_bottom.clone()))
        return self.net.degrade(lr, k_top, k_mid, k_bottom)


def test_stage2_pipeline_per_clip_topk_and_h264():
    from vsvqdsr.nets.vqgan import LITE_CONFIG, MultiScaleVQGAN

    torch.set_num_threads(1)  # tiny tensors: threads only add overhead on a shared CPU
    torch.manual_seed(0)
    deg = _Recording(MultiScaleVQGAN(LITE_CONFIG).eval())
    hr = torch.rand(2, 3, 3, 64, 64)
    lr, rec = D.stage2_degrade(hr, np.random.default_rng(4), deg, D.Stage2Options(workers=2))
    assert lr.shape == (2, 3, 3, 16, 16) and lr.dtype == torch.float32
    assert 0 <= float(lr.min()) and float(lr.max()) <= 1
    assert len(rec.blur) == 2 and len(rec.resize) == 2 and len(rec.crf) == 2 and rec.h264_ok == [True, True]
    assert rec.noise_sigma.shape == (2, 3) and rec.noise_gray.shape == (2, 3)
    (shape, kt, km, kb), = deg.calls
    assert tuple(shape) == (6, 3, 16, 16)
    for i, tk in enumerate(rec.topk):  # one (k1, k2, k3) per clip, repeated over its frames
        assert kt[3 * i:3 * i + 3].tolist() == [1] * 3
        assert km[3 * i:3 * i + 3].tolist() == [tk.mid] * 3 and kb[3 * i:3 * i + 3].tolist() == [tk.bottom] * 3
    # uint8-exact after the codec
    assert torch.allclose(lr * 255, (lr * 255).round(), atol=1e-4)
    lr2, rec2 = D.stage2_degrade(hr, np.random.default_rng(4), deg, D.Stage2Options(workers=1))
    assert torch.equal(lr, lr2) and rec2.topk == rec.topk



def test_stage2_clean_and_antialias_options():
    """clean_prob / antialias_prob (seed 5 draws all three resize modes): off draws nothing (paper
    draws unchanged); on, the LR is exactly the plain resize of the HR (clean: no blur, no noise),
    with or without antialias."""
    import torch.nn.functional as F

    torch.manual_seed(0)
    hr = torch.rand(3, 2, 3, 32, 32)
    paper, rec_p = D.stage2_degrade(hr, np.random.default_rng(5), None, D.Stage2Options(h264=False))
    same, rec_s = D.stage2_degrade(hr, np.random.default_rng(5), None,
                                   D.Stage2Options(h264=False, clean_prob=0.0, antialias_prob=0.0))
    assert torch.equal(paper, same) and rec_s.clean == [False] * 3 and rec_s.antialias == [False] * 3
    assert rec_p.blur == rec_s.blur and rec_p.resize == rec_s.resize
    for anti in (False, True):
        lr, rec = D.stage2_degrade(hr, np.random.default_rng(5), None, D.Stage2Options(
            h264=False, clean_prob=1.0, antialias_prob=1.0 if anti else 0.0))
        assert rec.clean == [True] * 3 and float(np.abs(rec.noise_sigma).max()) == 0.0
        for i, mode in enumerate(rec.resize):
            assert rec.antialias[i] == (anti and mode != "area")
            kw = {} if mode == "area" else {"align_corners": False, "antialias": rec.antialias[i]}
            ref = F.interpolate(hr[i], size=(8, 8), mode=mode, **kw).clamp(0, 1)
            assert torch.equal(lr[i], (ref * 255).floor() / 255), (mode, anti)
    # antialiasing really changes a bicubic downscale of fine detail
    lr_plain, _ = D.stage2_degrade(hr, np.random.default_rng(5), None, D.Stage2Options(h264=False, clean_prob=1.0))
    lr_aa, rec = D.stage2_degrade(hr, np.random.default_rng(5), None,
                                 D.Stage2Options(h264=False, clean_prob=1.0, antialias_prob=1.0))
    for i, mode in enumerate(rec.resize):  # white noise in: the antialiased LR has less variance
        assert (float(lr_aa[i].std()) < 0.8 * float(lr_plain[i].std())) == (mode != "area"), mode
    with pytest.raises(ValueError, match="clean_prob"):
        D.stage2_degrade(hr, np.random.default_rng(0), None, D.Stage2Options(h264=False, clean_prob=1.5))


class _ShiftAndSpeckle:
    """A stand-in degrader: a flat colour shift (what a weak codebook does) plus fine speckle."""

    def degrade(self, lr, k_top, k_mid, k_bottom):
        speckle = torch.zeros_like(lr)
        speckle[..., ::2, ::2] = 0.1
        return (lr * 0.6 + 0.2 + speckle).clamp(0, 1)


def test_stage2_vq_colour_sigma_keeps_colour_not_detail():
    hr = torch.full((2, 2, 3, 64, 64), 0.5)
    hr[:, :, 0] = 0.9  # saturated red-ish field
    kw = {"h264": False, "clean_prob": 1.0}
    raw, _ = D.stage2_degrade(hr, np.random.default_rng(1), _ShiftAndSpeckle(), D.Stage2Options(**kw))
    kept, _ = D.stage2_degrade(hr, np.random.default_rng(1), _ShiftAndSpeckle(),
                                D.Stage2Options(vq_colour_sigma=1.5, **kw))
    lr = D.stage2_degrade(hr, np.random.default_rng(1), None, D.Stage2Options(**kw))[0]
    mean = lambda x: x.mean(dim=(-1, -2))  # noqa: E731
    assert float((mean(raw) - mean(lr)).abs().max()) > 0.1  # the raw VQ output shifted the colour
    assert float((mean(kept) - mean(lr)).abs().max()) < 0.01  # kept: the input's colour
    speck = lambda x: float((x[..., ::2, ::2] - x[..., 1::2, 1::2]).mean())  # noqa: E731
    assert speck(kept) > 0.05  # the degrader's fine-scale artefact survives
    with pytest.raises(ValueError, match="vq_colour_sigma"):
        D.stage2_degrade(hr, np.random.default_rng(1), None, D.Stage2Options(vq_colour_sigma=-1.0, **kw))


def test_zoom_clips_upscales_a_window_per_clip():
    import torch.nn.functional as F

    hr = torch.rand(4, 3, 3, 32, 32)
    same, z0 = D.zoom_clips(hr, np.random.default_rng(0), 0.0)
    assert same is hr and z0 == [1.0] * 4
    out, zooms = D.zoom_clips(hr, np.random.default_rng(0), 1.0, 1.6)
    assert out.shape == hr.shape and all(1.0 <= z <= 1.6 for z in zooms)
    assert 0 <= float(out.min()) and float(out.max()) <= 1
    for i, z in enumerate(zooms):
        # every frame of a clip shares the window: the zoomed frames match an upscale of one window
        side = round(32 / z)
        best = min(float((F.interpolate(hr[i, :, :, y:y + side, x:x + side], size=(32, 32), mode="bicubic",
                                        align_corners=False).clamp(0, 1) - out[i]).abs().max())
                   for y in range(33 - side) for x in range(33 - side))
        assert best < 1e-6, (i, z)
    # an upscaled window is smoother than the noise it came from
    assert float(out[:, :, :, :, 1:].sub(out[:, :, :, :, :-1]).abs().mean()) < float(
        hr[:, :, :, :, 1:].sub(hr[:, :, :, :, :-1]).abs().mean())
    with pytest.raises(ValueError, match="max_zoom"):
        D.zoom_clips(hr, np.random.default_rng(0), 0.5, 0.9)

def test_usm_matches_opencv_reference():
    rng = np.random.default_rng(0)
    img = np.zeros((64, 80, 3), np.float32)
    img[:, 40:] = 0.8
    img += rng.random(img.shape).astype(np.float32) * 0.05
    blur = cv2.GaussianBlur(img, (51, 51), 0)
    residual = img - blur
    mask = (np.abs(residual) * 255 > 10).astype(np.float32)
    soft = cv2.GaussianBlur(mask, (51, 51), 0)
    ref = soft * np.clip(img + 0.3 * residual, 0, 1) + (1 - soft) * img
    out = D.usm_sharp(torch.from_numpy(img).permute(2, 0, 1)[None].double())[0].permute(1, 2, 0).numpy()
    np.testing.assert_allclose(out, ref, atol=1e-5)
    # the edge gets more contrast, a flat image stays as it is
    assert out[:, 42].mean() > img[:, 42].mean() and out[:, 37].mean() < img[:, 37].mean()
    flat = torch.full((1, 2, 3, 32, 32), 0.3)
    assert torch.allclose(D.usm_sharp(flat), flat)
