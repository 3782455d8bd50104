"""LR training inputs for VSR training: basic operators (stage 1), VQ degradation (stage 2), USM.

Everything follows the VQD-SR paper and its reference code (the released training datasets):

* Stage 1 (AnimeSR's ``FFMPEGAnimeDataset``, which the VQD-SR release uses unchanged), numpy/OpenCV
  on the CPU, per clip:
  blur (one 21x21 kernel per clip) -> Gaussian noise (sigma, gray flag and noise drawn per frame)
  -> x1/4 resize (one OpenCV mode per clip) -> truncating uint8 cast -> a real H.264 round trip of
  the whole clip through ffmpeg/libx264 (one CRF and profile per clip).
* Stage 2 (the VQD-SR release's ``TopkVQGANDataset``), torch, batched on the training device: blur
  -> noise -> x1/4 resize
  (``F.interpolate``, no antialias) -> VQ degradation model with stochastic top-k (one k per clip)
  -> clamp, truncating uint8 cast -> H.264 round trip per clip (ffmpeg subprocesses in threads).
* USM sharpening of stage-1 targets (the release's stage-1 options).
* Stage-2 extras, not in the paper and off by default (docs/training.md section 4): clean clips
  (``clean_prob``), antialiased downscales (``antialias_prob``), a colour-keeping VQ step
  (``vq_colour_sigma``) and zoomed GT clips (:func:`zoom_clips`).
* "Old footage" damage, not in the paper (:func:`old_footage_clip`): the families of the benchmark's
  old-film and old-analogue severities (optical blur and film grain before the downscale, chroma
  bleed, two or three lossy generations with different codecs; analogue tape luma ringing, chroma
  loss, line jitter and noise), every parameter and the codec order drawn per clip; in stage 2 a
  share of clips can take their LR from it (:func:`old_footage_lr`).

All randomness comes from a caller-provided ``numpy.random.Generator`` so that the sampling semantics
(what is drawn per clip and what per frame) can be tested on fixed seeds. The samplers return the
drawn values in records for that purpose.

Deliberate differences from the reference code (quirks of the release):

* ffmpeg receives true RGB (the reference passes BGR bytes declared as rgb24).
* On ffmpeg failure the clip is re-encoded with freshly drawn settings (up to ``retries`` times);
  if that keeps failing the uncompressed frames are returned, properly scaled to [0, 1]
  (the reference returns 0-255 values: a bug).
* In stage 2 the gray-noise field is drawn independently per frame, like stage 1 (the reference's
  torch helper broadcasts one gray field over all frames of a batch).
"""
from __future__ import annotations

import math
import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Protocol

import cv2
import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from ..damage import ArrayStep
from ..log import get_logger
from .h264 import H264Error, ffmpeg_path, h264_roundtrip

__all__ = [
    "KERNEL_SIZE", "BlurParams", "ClipParams", "sample_blur", "gaussian_kernel", "sample_clip_params",
    "basic_ops", "basic_degrade_clip", "compress_clip", "sample_h264", "TopK", "sample_topk", "VQDegrader",
    "Stage2Record", "Stage2Options", "stage2_degrade", "usm_sharp", "truncate_uint8", "zoom_clips",
    "OLD_FOOTAGE_FAMILIES", "CodecPass", "OldFootageRecord", "sample_old_footage", "codec_roundtrip",
    "old_footage_clip", "old_footage_lr",
]

KERNEL_SIZE = 21
#: Stage-1 OpenCV resize modes and probabilities (``FFMPEGAnimeDataset``'s x1/4 resize).
RESIZE_MODES_CV = (("area", cv2.INTER_AREA, 0.3), ("linear", cv2.INTER_LINEAR, 0.3), ("cubic", cv2.INTER_CUBIC, 0.4))
#: Stage-2 torch resize modes, uniform (``TopkVQGANDataset``'s x1/4 resize).
RESIZE_MODES_TORCH = ("area", "bilinear", "bicubic")
PROFILES = (("baseline", 0.1), ("main", 0.2), ("high", 0.7))
CRF_RANGE = (18.0, 35.0)
NOISE_SIGMA_RANGE = (0.0, 10.0)  # on the 0-255 scale


log = get_logger(__name__)


# --------------------------------------------------------------------------------------- blur
@dataclass(frozen=True)
class BlurParams:
    """One blur kernel's parameters. ``sigma_x``/``sigma_y`` in pixels, ``theta`` in radians."""

    kind: str  # "iso" or "aniso"
    sigma_x: float
    sigma_y: float
    theta: float


def sample_blur(rng: np.random.Generator) -> BlurParams:
    """Draw a blur kernel's parameters (``FFMPEGAnimeDataset``'s blur).

    iso (p = 0.7): sigma ~ U(0.2, 4). aniso (p = 0.3): sigma_x ~ U(0.2, 4) (the release's quirk: the
    option named ``iso_blur_range`` feeds sigma_x), sigma_y ~ U(0.8, 3), theta ~ U(-pi, pi).
    """
    if rng.random() < 0.7:
        s = float(rng.uniform(0.2, 4.0))
        return BlurParams("iso", s, s, 0.0)
    sx = float(rng.uniform(0.2, 4.0))
    sy = float(rng.uniform(0.8, 3.0))
    theta = float(rng.uniform(-math.pi, math.pi))
    return BlurParams("aniso", sx, sy, theta)


def gaussian_kernel(p: BlurParams, size: int = KERNEL_SIZE) -> np.ndarray:
    """Bivariate Gaussian on an integer grid ``-(size//2) .. size//2``, normalised to sum 1.

    Covariance ``R diag(sx^2, sy^2) R^T`` with R the rotation by ``theta``. Returns float64 ``size x size``.
    """
    c, s = math.cos(p.theta), math.sin(p.theta)
    rot = np.array([[c, -s], [s, c]])
    cov = rot @ np.diag([p.sigma_x ** 2, p.sigma_y ** 2]) @ rot.T
    inv = np.linalg.inv(cov)
    r = np.arange(size, dtype=np.float64) - size // 2
    xx, yy = np.meshgrid(r, r)
    grid = np.stack([xx, yy], axis=-1)
    k = np.exp(-0.5 * np.einsum("...i,ij,...j->...", grid, inv, grid))
    return k / k.sum()


# --------------------------------------------------------------------------------------- stage 1
@dataclass(frozen=True)
class ClipParams:
    """Everything drawn for one stage-1 clip (noise fields themselves are drawn while applying).

    ``noise_sigma`` (0-255 scale) and ``noise_gray`` hold one value per frame; the rest one per clip.
    """

    blur: BlurParams
    noise_sigma: tuple[float, ...]
    noise_gray: tuple[bool, ...]
    resize: str
    crf: float
    profile: str


def sample_h264(rng: np.random.Generator) -> tuple[float, str]:
    """CRF ~ U(18, 35) (a float) and profile baseline/main/high with p = 0.1/0.2/0.7."""
    crf = float(rng.uniform(*CRF_RANGE))
    names = [n for n, _ in PROFILES]
    profile = names[int(rng.choice(len(names), p=[p for _, p in PROFILES]))]
    return crf, profile


def sample_clip_params(rng: np.random.Generator, num_frames: int) -> ClipParams:
    """Draw the per-clip and per-frame parameters of the stage-1 pipeline (``FFMPEGAnimeDataset``)."""
    blur = sample_blur(rng)
    sigma = tuple(float(v) for v in rng.uniform(*NOISE_SIGMA_RANGE, size=num_frames))
    gray = tuple(bool(v) for v in rng.random(num_frames) < 0.5)
    modes = [m for m, _, _ in RESIZE_MODES_CV]
    resize = modes[int(rng.choice(len(modes), p=[p for _, _, p in RESIZE_MODES_CV]))]
    crf, profile = sample_h264(rng)
    return ClipParams(blur, sigma, gray, resize, crf, profile)


def truncate_uint8(x: np.ndarray) -> np.ndarray:
    """[0, 1] floats -> uint8 by ``clip(x * 255, 0, 255)`` and a truncating cast (the release's quirk)."""
    return np.clip(x * 255.0, 0, 255).astype(np.uint8)


def compress_clip(frames_u8: np.ndarray, rng: np.random.Generator, crf: float, profile: str,
                  retries: int = 2) -> tuple[np.ndarray, float, str, bool]:
    """H.264 round trip with re-sampling on failure.

    Returns ``(frames in [0, 1] float32, crf used, profile used, ok)``; ``ok`` is False when every
    attempt failed and the uncompressed frames (scaled to [0, 1]) were returned.
    """
    for attempt in range(retries + 1):
        try:
            out = h264_roundtrip(frames_u8, crf, profile)
            return out.astype(np.float32) / 255.0, crf, profile, True
        except H264Error as e:
            log.warning(f"H.264 round trip failed (attempt {attempt + 1}): {e}")
            crf, profile = sample_h264(rng)
    return frames_u8.astype(np.float32) / 255.0, crf, profile, False


def basic_ops(hr: np.ndarray, p: ClipParams, rng: np.random.Generator, scale: int = 4) -> np.ndarray:
    """Stage-1 steps 1-3 (blur, noise, resize) of ``T,H,W,3`` float32 frames; float32 LR, unclipped
    after the resize (cubic may overshoot [0, 1] slightly; the uint8 cast clips)."""
    t, h, w, _ = hr.shape
    kernel = gaussian_kernel(p.blur).astype(np.float32)
    interp = {m: flag for m, flag, _ in RESIZE_MODES_CV}[p.resize]
    lr = np.empty((t, h // scale, w // scale, 3), np.float32)
    for i in range(t):
        img = cv2.filter2D(np.ascontiguousarray(hr[i], dtype=np.float32), -1, kernel,
                           borderType=cv2.BORDER_REFLECT_101)
        sigma = p.noise_sigma[i] / 255.0
        if p.noise_gray[i]:
            noise = rng.standard_normal((h, w, 1)).astype(np.float32) * sigma
        else:
            noise = rng.standard_normal((h, w, 3)).astype(np.float32) * sigma
        img = np.clip(img + noise, 0.0, 1.0)
        lr[i] = cv2.resize(img, (w // scale, h // scale), interpolation=interp)
    return lr


def basic_degrade_clip(hr: np.ndarray, rng: np.random.Generator, scale: int = 4,
                       params: ClipParams | None = None) -> tuple[np.ndarray, ClipParams]:
    """Stage-1 basic operators on one HR clip (AnimeSR's basic-operator pipeline, as the release uses it).

    Args:
        hr: float32 ``T,H,W,3`` RGB in [0, 1]; H and W multiples of ``2 * scale``.
        rng: the random source (parameters, then the noise fields).
        scale: downscale factor (4).
        params: pre-drawn parameters (drawn from ``rng`` when None).

    Returns:
        ``(lr, params)``: lr float32 ``T,H/scale,W/scale,3`` in [0, 1] after the H.264 round trip,
        and the parameters actually used (CRF/profile may differ if ffmpeg had to be retried).
    """
    if hr.ndim != 4 or hr.shape[-1] != 3:
        raise ValueError(f"basic_degrade_clip: expected T,H,W,3, got {hr.shape}")
    t, h, w, _ = hr.shape
    if h % (2 * scale) or w % (2 * scale):
        raise ValueError(f"basic_degrade_clip: HR size {w}x{h} must be a multiple of {2 * scale}")
    p = params or sample_clip_params(rng, t)
    lr = basic_ops(hr, p, rng, scale)
    out, crf, profile, _ = compress_clip(truncate_uint8(lr), rng, p.crf, p.profile)
    if (crf, profile) != (p.crf, p.profile):
        p = ClipParams(p.blur, p.noise_sigma, p.noise_gray, p.resize, crf, profile)
    return out, p


# --------------------------------------------------------------------------------------- stage 2
@dataclass(frozen=True)
class TopK:
    """Top-k ranks (1-based) for one clip's VQ degradation: top, middle and bottom branch."""

    top: int
    mid: int
    bottom: int


def sample_topk(rng: np.random.Generator, mode: str = "released") -> TopK:
    """Draw one clip's ranks (the paper: k ~ U[1, 50] on the bottom branch only; the release also
    draws the middle one), the same modes as the Degrade feature's ``sample_k``:

    * ``"released"`` (the released code): k1 = 1, k2 ~ U{1..10},
      k3 ~ 0.3 U{1..15} + 0.4 U{16..30} + 0.3 U{31..50};
    * ``"paper"``: k1 = k2 = 1, k3 ~ U{1..50};
    * ``"nearest"``: all 1 (no stochastic top-k, an ablation).
    """
    if mode == "nearest":
        return TopK(1, 1, 1)
    if mode == "paper":
        return TopK(1, 1, int(rng.integers(1, 51)))
    if mode != "released":
        raise ValueError(f"sample_topk: mode must be 'released', 'paper' or 'nearest', got {mode!r}")
    k2 = int(rng.integers(1, 11))
    u = rng.random()
    lo, hi = (1, 15) if u < 0.3 else (16, 30) if u < 0.7 else (31, 50)
    return TopK(1, k2, int(rng.integers(lo, hi + 1)))


class VQDegrader(Protocol):
    """What stage 2 needs from the VQ degradation model (the Degrade feature's API)."""

    def degrade(self, lr: Tensor, k_top: Tensor, k_mid: Tensor, k_bottom: Tensor) -> Tensor:
        """``lr`` B,3,H,W in [0, 1]; k_* int64 (B,), 1-based; returns B,3,H,W in [0, 1]."""
        ...


@dataclass
class Stage2Record:
    """What was drawn for a stage-2 batch: per-clip lists (length B), per-frame arrays (B, T)."""

    blur: list[BlurParams] = field(default_factory=list)
    noise_sigma: np.ndarray | None = None
    noise_gray: np.ndarray | None = None
    resize: list[str] = field(default_factory=list)
    topk: list[TopK] = field(default_factory=list)
    crf: list[float] = field(default_factory=list)
    profile: list[str] = field(default_factory=list)
    h264_ok: list[bool] = field(default_factory=list)
    clean: list[bool] = field(default_factory=list)  # no blur, no noise (clean_prob)
    antialias: list[bool] = field(default_factory=list)  # antialiased bilinear/bicubic (antialias_prob)


_IDENTITY_KERNEL = np.zeros((KERNEL_SIZE, KERNEL_SIZE), np.float32)
_IDENTITY_KERNEL[KERNEL_SIZE // 2, KERNEL_SIZE // 2] = 1.0


def _blur_batch(x: Tensor, kernels: Tensor) -> Tensor:
    """x: B,T,C,H,W; kernels: B,k,k -> per-clip depthwise blur with reflect padding."""
    b, t, c, h, w = x.shape
    k = kernels.shape[-1]
    pad = k // 2
    mode = "reflect" if h > pad and w > pad else "replicate"
    y = F.pad(x.reshape(1, b * t * c, h, w), (pad, pad, pad, pad), mode=mode)
    weight = kernels.to(x.dtype)[:, None, None].expand(b, t * c, 1, k, k).reshape(b * t * c, 1, k, k)
    return F.conv2d(y, weight, groups=b * t * c).reshape(b, t, c, h, w)


@dataclass(frozen=True)
class Stage2Options:
    """Options of :func:`stage2_degrade`; the defaults are the paper's (with the released top-k draws).

    Attributes:
        scale: downscale factor (4).
        topk_mode: ``"released"``, ``"paper"`` or ``"nearest"`` (see :func:`sample_topk`).
        h264: run the H.264 round trip (step 6).
        workers: parallel ffmpeg round trips (0 = one per clip, at most the CPU count).
        vq_chunk: frames per VQ model call (bounds memory).
        clean_prob: probability per clip of a clean source: no blur and no noise (steps 1 and 2
            skipped); resize, VQ and H.264 as usual. 0 is the paper (every clip blurred and noised).
        antialias_prob: probability per clip that a bilinear/bicubic downscale is antialiased (the
            kernel widened by the scale, as ffmpeg's swscale and the VapourSynth/AviSynth resizers
            do); ``area`` is unaffected. 0 is the paper (no antialias).
            Neither option draws from ``rng`` when it is 0, so the paper's draws stay as they were.
        vq_colour_sigma: if > 0, the VQ step keeps its input's content below a Gaussian of this
            sigma (LR pixels): ``out = vq + blur(in - vq)``, so the degrader adds its detail-scale
            artefacts but cannot shift colour or brightness over larger areas (a guard for a weak
            degrader whose codebook loses saturated colour). 0 is the paper (the raw VQ output).
    """

    scale: int = 4
    topk_mode: str = "released"
    h264: bool = True
    workers: int = 0
    vq_chunk: int = 64
    clean_prob: float = 0.0
    antialias_prob: float = 0.0
    vq_colour_sigma: float = 0.0

    def validate(self) -> None:
        if self.vq_colour_sigma < 0:
            raise ValueError(f"stage2_degrade: vq_colour_sigma must be >= 0, got {self.vq_colour_sigma}")
        for name, prob in (("clean_prob", self.clean_prob), ("antialias_prob", self.antialias_prob)):
            if not 0.0 <= prob <= 1.0:
                raise ValueError(f"stage2_degrade: {name} must be in [0, 1], got {prob}")


def stage2_degrade(hr: Tensor, rng: np.random.Generator, degrader: VQDegrader | None,
                   opt: Stage2Options = Stage2Options()) -> tuple[Tensor, Stage2Record]:
    """Stage-2 LR clips from HR clips, batched on ``hr``'s device (``TopkVQGANDataset``'s order):
    1. blur, 2. noise, 3. resize, 4. VQ degradation, 5. clamp and truncating uint8 cast, 6. H.264.

    Args:
        hr: ``B,T,3,H,W`` float in [0, 1] on the training device; H, W multiples of ``2 * opt.scale``.
        rng: random source for every drawn value and noise field (drawn in the order of the steps).
        degrader: the frozen VQ degradation model (``None`` skips step 4, for ablations only).
        opt: the options (:class:`Stage2Options`).

    Returns:
        ``(lr, record)``: lr ``B,T,3,H/scale,W/scale`` in [0, 1] on ``hr``'s device.
    """
    if hr.dim() != 5 or hr.shape[2] != 3:
        raise ValueError(f"stage2_degrade: expected B,T,3,H,W, got {tuple(hr.shape)}")
    _, _, _, h, w = hr.shape
    if h % (2 * opt.scale) or w % (2 * opt.scale):
        raise ValueError(f"stage2_degrade: HR size {w}x{h} must be a multiple of {2 * opt.scale}")
    opt.validate()
    rec = Stage2Record()
    with torch.no_grad():
        x = _blur_and_noise(hr, rng, opt, rec)
        lr = _resize(x, rng, opt, rec)
        rec.topk = [sample_topk(rng, opt.topk_mode) for _ in range(hr.shape[0])]
        if degrader is not None:
            lr = _vq_step(lr, degrader, opt, rec.topk)
        lr = lr.clamp(0, 1)
        return _h264_step(lr, rng, opt, rec), rec


def _blur_and_noise(hr: Tensor, rng: np.random.Generator, opt: Stage2Options, rec: Stage2Record) -> Tensor:
    """Steps 1 and 2: one blur kernel per clip, noise per frame (none on a clean clip)."""
    b, t, c, h, w = hr.shape
    dev = hr.device
    rec.clean = (rng.random(b) < opt.clean_prob).tolist() if opt.clean_prob > 0 else [False] * b
    # a clean clip keeps its drawn kernel in the record, unused
    rec.blur = [sample_blur(rng) for _ in range(b)]
    kernels = np.stack([_IDENTITY_KERNEL if cl else gaussian_kernel(p) for p, cl in zip(rec.blur, rec.clean)])
    x = _blur_batch(hr.float(), torch.from_numpy(kernels).float().to(dev))
    rec.noise_sigma = rng.uniform(*NOISE_SIGMA_RANGE, size=(b, t))
    rec.noise_sigma[np.asarray(rec.clean, dtype=bool)] = 0.0
    rec.noise_gray = rng.random((b, t)) < 0.5
    # the noise fields are drawn on the device from a generator seeded by ``rng`` (fast on GPUs;
    # reproducible for a given seed and device type)
    gen = torch.Generator(device=dev)
    gen.manual_seed(int(rng.integers(0, 2 ** 63 - 1)))
    color = torch.randn((b, t, c, h, w), generator=gen, device=dev)
    gray = torch.randn((b, t, 1, h, w), generator=gen, device=dev)
    is_gray = torch.from_numpy(rec.noise_gray).to(dev)[:, :, None, None, None]
    sigma = torch.from_numpy(rec.noise_sigma / 255.0).float().to(dev)[:, :, None, None, None]
    return (x + torch.where(is_gray, gray.expand_as(color), color) * sigma).clamp_(0, 1)


def _resize(x: Tensor, rng: np.random.Generator, opt: Stage2Options, rec: Stage2Record) -> Tensor:
    """Step 3: x1/scale, one mode per clip, no antialias (unless ``antialias_prob`` draws it)."""
    b, t, c, h, w = x.shape
    s = opt.scale
    rec.resize = [RESIZE_MODES_TORCH[int(rng.integers(0, 3))] for _ in range(b)]
    aa = (rng.random(b) < opt.antialias_prob).tolist() if opt.antialias_prob > 0 else [False] * b
    rec.antialias = [a and m != "area" for a, m in zip(aa, rec.resize)]
    lr = x.new_empty(b, t, c, h // s, w // s)
    for mode, anti in set(zip(rec.resize, rec.antialias)):
        idx = [i for i, key in enumerate(zip(rec.resize, rec.antialias)) if key == (mode, anti)]
        sel = x[idx].reshape(len(idx) * t, c, h, w)
        kw = {} if mode == "area" else {"align_corners": False, "antialias": anti}
        lr[idx] = F.interpolate(sel, size=(h // s, w // s), mode=mode, **kw).reshape(len(idx), t, c, h // s, w // s)
    return lr


def _vq_step(lr: Tensor, degrader: VQDegrader, opt: Stage2Options, topk: list[TopK]) -> Tensor:
    """Step 4: the VQ degradation with one ``(k1, k2, k3)`` per clip, ``opt.vq_chunk`` frames a call."""
    b, t, c, h, w = lr.shape
    dev = lr.device
    flat = lr.reshape(b * t, c, h, w)
    ks = {name: torch.tensor([getattr(k, name) for k in topk for _ in range(t)], dtype=torch.int64, device=dev)
          for name in ("top", "mid", "bottom")}
    sig = opt.vq_colour_sigma
    g = torch.from_numpy(_usm_kernel(2 * math.ceil(3 * sig), sig)).to(flat.dtype).to(dev) if sig > 0 else None
    outs = []
    for s in range(0, b * t, opt.vq_chunk):
        e = min(s + opt.vq_chunk, b * t)
        out = degrader.degrade(flat[s:e], ks["top"][s:e], ks["mid"][s:e], ks["bottom"][s:e])
        if g is not None:  # keep the input's content below the Gaussian's scale
            out = out + _sep_blur(flat[s:e] - out, g)
        outs.append(out)
    return torch.cat(outs).reshape(b, t, c, h, w)


def _h264_step(lr: Tensor, rng: np.random.Generator, opt: Stage2Options, rec: Stage2Record) -> Tensor:
    """Steps 5 and 6: the truncating uint8 cast, then H.264 per clip (when ``opt.h264``); retries draw
    from per-clip child generators so the threads stay deterministic."""
    b = lr.shape[0]
    settings = [sample_h264(rng) for _ in range(b)]
    rec.crf = [s[0] for s in settings]
    rec.profile = [s[1] for s in settings]
    if not opt.h264:
        rec.h264_ok = [False] * b
        return (lr * 255.0).floor_().div_(255.0)
    u8 = (lr * 255.0).to(torch.uint8).permute(0, 1, 3, 4, 2).cpu().numpy()
    seeds = rng.integers(0, 2 ** 63 - 1, size=b)

    def run(i: int) -> tuple[np.ndarray, float, str, bool]:
        return compress_clip(u8[i], np.random.default_rng(int(seeds[i])), rec.crf[i], rec.profile[i])

    n_workers = opt.workers if opt.workers > 0 else min(b, os.cpu_count() or 1)
    if n_workers > 1 and b > 1:
        with ThreadPoolExecutor(max_workers=n_workers) as pool:
            results = list(pool.map(run, range(b)))
    else:
        results = [run(i) for i in range(b)]
    rec.crf = [r[1] for r in results]
    rec.profile = [r[2] for r in results]
    rec.h264_ok = [r[3] for r in results]
    return torch.from_numpy(np.stack([r[0] for r in results])).to(lr.device).permute(0, 1, 4, 2, 3).contiguous()


def zoom_clips(hr: Tensor, rng: np.random.Generator, prob: float, max_zoom: float = 1.5) -> tuple[Tensor, list[float]]:
    """A camera zoom past the artwork's resolution, per clip: with probability ``prob`` a window of
    ``1 / z`` of the crop (``z ~ U(1, max_zoom)``, random position, the same for every frame) is
    upscaled back to the crop size (bicubic, clamped to [0, 1]). The result is the clip's new GT, so
    the network also learns soft GT edges (digitally zoomed backgrounds, feathered art), not only the
    crisp ones of renders at or above their native size. Not in the paper (stage 2 extra).

    Args:
        hr: ``B,T,C,H,W`` in [0, 1]. prob: share of zoomed clips in [0, 1]. max_zoom: >= 1.

    Returns:
        ``(clips, zooms)``: the clips (``hr`` itself when nothing was zoomed) and each clip's ``z``
        (1.0 = untouched). Nothing is drawn from ``rng`` when ``prob`` is 0.
    """
    if not 0.0 <= prob <= 1.0 or max_zoom < 1.0:
        raise ValueError(f"zoom_clips: prob must be in [0, 1] and max_zoom >= 1, got {prob}, {max_zoom}")
    b, t, c, h, w = hr.shape
    if prob == 0:
        return hr, [1.0] * b
    zooms = [float(rng.uniform(1.0, max_zoom)) if rng.random() < prob else 1.0 for _ in range(b)]
    if all(z == 1.0 for z in zooms):
        return hr, zooms
    out = hr.clone()
    for i, z in enumerate(zooms):
        if z == 1.0:
            continue
        ch, cw = max(2, round(h / z)), max(2, round(w / z))
        top, left = int(rng.integers(0, h - ch + 1)), int(rng.integers(0, w - cw + 1))
        win = hr[i, :, :, top:top + ch, left:left + cw].float()
        out[i] = F.interpolate(win, size=(h, w), mode="bicubic", align_corners=False).clamp_(0, 1).to(hr.dtype)
    return out, zooms


# --------------------------------------------------------------------------------------- USM
def _usm_kernel(radius: int = 50, sigma: float = 0.0) -> np.ndarray:
    """OpenCV-style 1-D Gaussian: size ``radius + 1`` if even radius (odd size), auto sigma."""
    size = radius + 1 if radius % 2 == 0 else radius
    if sigma <= 0:
        sigma = 0.3 * ((size - 1) * 0.5 - 1) + 0.8
    r = np.arange(size, dtype=np.float64) - (size - 1) / 2
    g = np.exp(-(r ** 2) / (2 * sigma ** 2))
    return g / g.sum()


def _sep_blur(x: Tensor, g: Tensor) -> Tensor:
    n, c, h, w = x.shape
    pad = g.numel() // 2
    mode = "reflect" if h > pad and w > pad else "replicate"
    y = F.pad(x.reshape(n * c, 1, h, w), (pad, pad, pad, pad), mode=mode)
    y = F.conv2d(y, g.view(1, 1, 1, -1))
    y = F.conv2d(y, g.view(1, 1, -1, 1))
    return y.reshape(n, c, h, w)


def usm_sharp(img: Tensor, weight: float = 0.3, radius: int = 50, threshold: float = 10.0) -> Tensor:
    """Unsharp masking of the stage-1 targets (the release's stage-1 options).

    ``blur`` = 51x51 Gaussian (OpenCV auto sigma = 8.0) with reflect padding;
    ``sharp = clip(I + weight (I - blur), 0, 1)``; mask ``|I - blur| * 255 > threshold`` blurred with
    the same kernel; ``out = mask * sharp + (1 - mask) * I``.

    Args:
        img: ``...,3,H,W`` float in [0, 1] (any leading dims).
    """
    shape = img.shape
    x = img.reshape(-1, *shape[-3:])
    g = torch.from_numpy(_usm_kernel(radius)).to(x.dtype).to(x.device)
    blur = _sep_blur(x, g)
    residual = x - blur
    mask = (residual.abs() * 255 > threshold).to(x.dtype)
    soft = _sep_blur(mask, g)
    sharp = (x + weight * residual).clamp(0, 1)
    return (soft * sharp + (1 - soft) * x).reshape(shape)


# --------------------------------------------------------------------------------------- old footage
#: The "old footage" damage families: ``film`` (optical blur and grain on the HR frames, downscale,
#: codec generations with chroma bleed between them) and ``analogue`` (downscale, tape luma ringing,
#: chroma loss, line jitter, tape noise, then MPEG-2 and x264).
OLD_FOOTAGE_FAMILIES = ("film", "analogue")
#: Codec -> (ffmpeg -q:v / -crf range, container): MPEG-4 part 2, MPEG-2, x264.
_CODECS = {"mpeg4": ((3.0, 12.0), "avi"), "mpeg2video": ((4.0, 14.0), "mpg"), "libx264": ((20.0, 34.0), "mkv")}


@dataclass(frozen=True)
class CodecPass:
    """One lossy generation: ``codec`` (``mpeg4``, ``mpeg2video`` or ``libx264``) at ``quality``
    (``-q:v`` for the MPEG codecs, rounded to an integer; CRF for x264)."""

    codec: str
    quality: float


@dataclass(frozen=True)
class OldFootageRecord:
    """What :func:`old_footage_clip` drew for one clip: the family, the downscale, every step in order
    (:class:`~vsvqdsr.damage.ArrayStep` or :class:`CodecPass`) and whether every codec pass ran
    (False: a failed pass was skipped)."""

    family: str
    resize: str
    steps: tuple[ArrayStep | CodecPass, ...]
    ok: bool = True


def sample_old_footage(rng: np.random.Generator, family: str | None = None) -> OldFootageRecord:
    """Draw one clip's old-footage chain (``family`` None: uniform over :data:`OLD_FOOTAGE_FAMILIES`).

    film: optical blur sigma U(0.8, 2.2) HR px; grain strength U(3, 12), size U(0.8, 1.6), chroma
    U(0, 0.35); resize area/linear/cubic; 2 or 3 generations of distinct codecs in random order with
    chroma bleed (sigma U(1, 3), shift 0-2 px) after the first. analogue: area resize; tape luma sigma
    U(0.6, 1.2), ringing U(0.3, 1.0); tape chroma sigma U(1.5, 3.5), shift 0-2; line jitter U(0.1, 0.5)
    px over U(3, 10) lines; tape noise U(2, 8) with streaks U(1.5, 4) px; MPEG-2 then x264.
    """
    if family is None:
        family = OLD_FOOTAGE_FAMILIES[int(rng.integers(len(OLD_FOOTAGE_FAMILIES)))]
    if family not in OLD_FOOTAGE_FAMILIES:
        raise ValueError(f"sample_old_footage: family must be one of {', '.join(OLD_FOOTAGE_FAMILIES)}; got {family!r}")
    u = lambda lo, hi: round(float(rng.uniform(lo, hi)), 3)  # noqa: E731

    def gen(codec: str) -> CodecPass:
        lo, hi = _CODECS[codec][0]
        return CodecPass(codec, u(lo, hi))

    if family == "film":
        resize = ("area", "linear", "cubic")[int(rng.integers(3))]
        pre = (ArrayStep("optical_blur", (("sigma", u(0.8, 2.2)),)),
               ArrayStep("film_grain", (("strength", u(3.0, 12.0)), ("size", u(0.8, 1.6)), ("chroma", u(0.0, 0.35)))))
        order = [str(c) for c in rng.permutation(list(_CODECS))][: int(rng.integers(2, 4))]
        bleed = ArrayStep("chroma_bleed", (("sigma", u(1.0, 3.0)), ("shift", float(rng.integers(0, 3)))))
        steps: tuple = (*pre, gen(order[0]), bleed, *(gen(c) for c in order[1:]))
        return OldFootageRecord(family, resize, steps)
    steps = (ArrayStep("tape_luma", (("sigma", u(0.6, 1.2)), ("ringing", u(0.3, 1.0)))),
             ArrayStep("tape_chroma", (("sigma", u(1.5, 3.5)), ("shift", float(rng.integers(0, 3))))),
             ArrayStep("line_jitter", (("amplitude", u(0.1, 0.5)), ("smooth", u(3.0, 10.0)))),
             ArrayStep("tape_noise", (("strength", u(2.0, 8.0)), ("streak", u(1.5, 4.0)))),
             gen("mpeg2video"), gen("libx264"))
    return OldFootageRecord(family, "area", steps)


def codec_roundtrip(frames: np.ndarray, p: CodecPass, timeout: float = 120.0) -> np.ndarray:
    """Encode ``T,H,W,3`` uint8 RGB (even H, W) with ``p`` (4:2:0, GOP 12, single-threaded) through a
    temporary file and decode it back to RGB. Raises :class:`~.h264.H264Error` on failure."""
    import subprocess
    import tempfile

    t, h, w, _ = frames.shape
    if h % 2 or w % 2:
        raise ValueError(f"codec_roundtrip: 4:2:0 needs even sizes, got {w}x{h}")
    if p.codec not in _CODECS:
        raise ValueError(f"codec_roundtrip: codec must be one of {', '.join(_CODECS)}; got {p.codec!r}")
    exe = ffmpeg_path()
    q = (["-crf", f"{p.quality:g}", "-preset", "veryfast"] if p.codec == "libx264"
         else ["-q:v", str(int(round(p.quality))), "-bf", "2"])
    with tempfile.TemporaryDirectory(prefix="vqdsr-old-") as tmp:
        out = f"{tmp}/clip.{_CODECS[p.codec][1]}"
        enc = [exe, "-nostdin", "-hide_banner", "-loglevel", "error", "-y", "-threads", "1",
               "-f", "rawvideo", "-pix_fmt", "rgb24", "-s", f"{w}x{h}", "-framerate", "24", "-i", "pipe:0",
               "-vf", "format=yuv420p", "-c:v", p.codec, *q, "-g", "12", "-an", out]
        dec = [exe, "-nostdin", "-hide_banner", "-loglevel", "error", "-threads", "1", "-i", out,
               "-f", "rawvideo", "-pix_fmt", "rgb24", "pipe:1"]
        try:
            r = subprocess.run(enc, input=np.ascontiguousarray(frames).tobytes(), capture_output=True, timeout=timeout)
            if r.returncode != 0:
                raise H264Error(f"codec_roundtrip: {p.codec} encoder failed: {r.stderr.decode(errors='replace')[-300:]}")
            r = subprocess.run(dec, capture_output=True, timeout=timeout)
        except subprocess.TimeoutExpired as e:
            raise H264Error(f"codec_roundtrip: ffmpeg timed out after {timeout} s") from e
    if r.returncode != 0 or len(r.stdout) != t * h * w * 3:
        raise H264Error(f"codec_roundtrip: {p.codec} decode gave {len(r.stdout)} bytes for {t} frames of {w}x{h}: "
                        f"{r.stderr.decode(errors='replace')[-300:]}")
    return np.frombuffer(r.stdout, np.uint8).reshape(t, h, w, 3).copy()


def old_footage_clip(hr: np.ndarray, rng: np.random.Generator, family: str | None = None, scale: int = 4,
                     record: OldFootageRecord | None = None) -> tuple[np.ndarray, OldFootageRecord]:
    """Old-footage damage on one HR training clip (a drop-in for :func:`basic_degrade_clip`).

    Args:
        hr: float32 ``T,H,W,3`` RGB in [0, 1]; H and W multiples of ``2 * scale``.
        rng: the random source (the chain via :func:`sample_old_footage`, then the damage fields).
        family: ``film``, ``analogue`` or None (drawn).
        scale: downscale factor (4).
        record: a pre-drawn chain (drawn from ``rng`` when None).

    Returns:
        ``(lr, record)``: float32 ``T,H/scale,W/scale,3`` in [0, 1], and the chain that ran (``ok``
        False when a codec pass failed and was skipped).
    """
    if hr.ndim != 4 or hr.shape[-1] != 3:
        raise ValueError(f"old_footage_clip: expected T,H,W,3, got {hr.shape}")
    t, h, w, _ = hr.shape
    if h % (2 * scale) or w % (2 * scale):
        raise ValueError(f"old_footage_clip: HR size {w}x{h} must be a multiple of {2 * scale}")
    rec = record or sample_old_footage(rng, family)
    x = np.clip(np.rint(np.asarray(hr, np.float32) * 255.0), 0, 255).astype(np.uint8)
    interp = {"area": cv2.INTER_AREA, "linear": cv2.INTER_LINEAR, "cubic": cv2.INTER_CUBIC}[rec.resize]
    ok = True
    for step in rec.steps:
        if isinstance(step, CodecPass) and x.shape[1] == h:  # the first codec pass works at LR size
            x = np.stack([cv2.resize(f, (w // scale, h // scale), interpolation=interp) for f in x])
        if rec.family == "analogue" and x.shape[1] == h:  # tape damage happens at the footage's size
            x = np.stack([cv2.resize(f, (w // scale, h // scale), interpolation=interp) for f in x])
        if isinstance(step, ArrayStep):
            x = step.apply(x, rng)
        else:
            try:
                x = codec_roundtrip(x, step)
            except H264Error as e:
                log.warning(f"old footage: {e}; pass skipped")
                ok = False
    return x.astype(np.float32) / 255.0, (rec if ok else OldFootageRecord(rec.family, rec.resize, rec.steps, False))


def old_footage_lr(hr: Tensor, lr: Tensor, rng: np.random.Generator, prob: float,
                   scale: int = 4) -> tuple[Tensor, list[OldFootageRecord | None]]:
    """Stage-2 extra (not in the paper): with probability ``prob`` per clip, replace that clip's LR
    (from :func:`stage2_degrade`) by :func:`old_footage_clip` of its GT, the family drawn per clip.

    Args:
        hr: ``B,T,3,H,W`` GT in [0, 1] on the training device. lr: ``B,T,3,H/scale,W/scale``, its
        stage-2 LR. rng: the random source (the draws, then each chain). prob: in [0, 1].

    Returns:
        ``(lr, records)``: ``lr`` itself when no clip was drawn, else a copy with those clips
        replaced; per clip the chain that ran or None. Nothing is drawn from ``rng`` when ``prob`` is 0.
    """
    if not 0.0 <= prob <= 1.0:
        raise ValueError(f"old_footage_lr: prob must be in [0, 1], got {prob}")
    b = hr.shape[0]
    if prob == 0:
        return lr, [None] * b
    picked = (rng.random(b) < prob).tolist()
    records: list[OldFootageRecord | None] = [None] * b
    if not any(picked):
        return lr, records
    out = lr.clone()
    for i, take in enumerate(picked):
        if not take:
            continue
        clip = hr[i].detach().float().permute(0, 2, 3, 1).cpu().numpy()
        old, records[i] = old_footage_clip(clip, rng, scale=scale)
        out[i] = torch.from_numpy(old).permute(0, 3, 1, 2).to(out.device, out.dtype)
    return out, records
