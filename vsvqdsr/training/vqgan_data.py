"""Training data for the VQ degradation model: real low-quality frames, unpaired (the paper's RAL set).

Sources: folders of images (searched recursively) and video files (decoded once with an ffmpeg
subprocess into a PNG cache). Optional near-duplicate filtering drops a frame whose mean absolute
difference to the previously kept frame of the same source is below a threshold (0-255 scale,
measured on a 1/4-size grey copy). Augmentation follows the release (albumentations 0.4.3 recipe),
implemented with OpenCV and numpy.
"""
from __future__ import annotations

import hashlib
import os
import subprocess
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset

from ..log import get_logger

__all__ = ["IMAGE_EXTS", "VIDEO_EXTS", "list_frames", "decode_video", "filter_near_duplicates",
           "augment", "LQFrameDataset"]

IMAGE_EXTS = {".png", ".jpg", ".jpeg", ".bmp", ".webp", ".tif", ".tiff"}
VIDEO_EXTS = {".mkv", ".mp4", ".avi", ".mov", ".m2ts", ".ts", ".mpg", ".mpeg", ".vob", ".webm", ".wmv",
              ".flv", ".m4v", ".y4m"}


log = get_logger(__name__)


def decode_video(path: Path, cache: Path, step: int = 1) -> list[Path]:
    """Decode every ``step``-th frame of ``path`` to RGB PNGs in a cache folder (reused when complete)."""
    key = hashlib.sha1(f"{path.resolve()}:{path.stat().st_size}:{path.stat().st_mtime_ns}:{step}".encode()).hexdigest()[:12]
    out = cache / f"{path.stem}-{key}"
    done = out / ".done"
    if not done.is_file():
        out.mkdir(parents=True, exist_ok=True)
        vf = f"select=not(mod(n\\,{step}))" if step > 1 else "null"
        cmd = ["ffmpeg", "-hide_banner", "-loglevel", "error", "-y", "-i", str(path), "-vf", vf,
               "-fps_mode", "passthrough", "-pix_fmt", "rgb24", str(out / "%06d.png")]
        log.info(f"decoding {path.name} with ffmpeg")
        r = subprocess.run(cmd, capture_output=True, text=True)
        if r.returncode != 0:
            raise RuntimeError(f"ffmpeg could not decode {path}: {r.stderr.strip()[-400:]}")
        done.touch()
    return sorted(out.glob("*.png"))


def list_frames(sources: Sequence[str | os.PathLike], cache: Path, video_step: int = 1) -> list[list[Path]]:
    """Frames grouped by source (a folder of images or a video), in order.

    Raises ``ValueError`` if a source is inside or contains the evaluation benchmark set
    (``vqdsr eval``'s ``benchmark.json``): the benchmark must never be trained on.
    """
    from ..provenance import check_not_benchmark

    check_not_benchmark(sources, "list_frames")
    groups: list[list[Path]] = []
    for s in sources:
        p = Path(s).expanduser()
        if p.is_file() and p.suffix.lower() in VIDEO_EXTS:
            groups.append(decode_video(p, cache, video_step))
        elif p.is_file() and p.suffix.lower() in IMAGE_EXTS:
            groups.append([p])
        elif p.is_dir():
            by_dir: dict[Path, list[Path]] = {}
            for f in sorted(p.rglob("*")):
                if f.suffix.lower() in IMAGE_EXTS and f.is_file():
                    by_dir.setdefault(f.parent, []).append(f)
                elif f.suffix.lower() in VIDEO_EXTS and f.is_file():
                    groups.append(decode_video(f, cache, video_step))
            groups.extend(by_dir.values())
        else:
            raise FileNotFoundError(f"not an image, video or folder: {p}")
    groups = [g for g in groups if g]
    if not groups:
        raise FileNotFoundError(f"no frames found in {', '.join(map(str, sources))}")
    return groups


def _small_grey(path: Path) -> np.ndarray:
    import cv2
    img = cv2.imread(str(path), cv2.IMREAD_GRAYSCALE)
    if img is None:
        raise OSError(f"cannot read image {path}")
    return cv2.resize(img, (max(1, img.shape[1] // 4), max(1, img.shape[0] // 4)),
                      interpolation=cv2.INTER_AREA).astype(np.float32)


def filter_near_duplicates(groups: Sequence[Sequence[Path]], threshold: float) -> list[Path]:
    """Keep a frame only if its mean abs difference to the last kept frame of its source >= threshold."""
    kept: list[Path] = []
    for g in groups:
        last = None
        for f in g:
            cur = _small_grey(f)
            if last is None or last.shape != cur.shape or float(np.abs(cur - last).mean()) >= threshold:
                kept.append(f)
                last = cur
    return kept


def augment(img: np.ndarray, crop: int, rng: np.random.Generator) -> np.ndarray:
    """The release's augmentation on a uint8 RGB ``H,W,3`` image; returns a ``crop x crop`` uint8 image.

    1 interpolation ~ {nearest, linear, cubic, area, lanczos4}; 2 RandomScale p=0.3 with factor
    U(0.8, 2.0) when 0.8*H and 0.8*W exceed the crop, else U(1.0, 2.0); 3 random crop (images
    smaller than the crop are first enlarged to fit); 4/5 h/v flips p=0.5; 6 channel shuffle p=0.3;
    7 RGB shift +-20 per channel p=0.3.
    """
    import cv2
    interp = [cv2.INTER_NEAREST, cv2.INTER_LINEAR, cv2.INTER_CUBIC, cv2.INTER_AREA,
              cv2.INTER_LANCZOS4][int(rng.integers(5))]
    h, w = img.shape[:2]
    if rng.random() < 0.3:
        lo = 0.8 if (0.8 * h > crop and 0.8 * w > crop) else 1.0
        f = float(rng.uniform(lo, 2.0))
        img = cv2.resize(img, (max(1, round(w * f)), max(1, round(h * f))), interpolation=interp)
        h, w = img.shape[:2]
    if h < crop or w < crop:
        f = crop / min(h, w)
        img = cv2.resize(img, (max(crop, round(w * f)), max(crop, round(h * f))), interpolation=interp)
        h, w = img.shape[:2]
    y, x = int(rng.integers(h - crop + 1)), int(rng.integers(w - crop + 1))
    img = img[y:y + crop, x:x + crop]
    if rng.random() < 0.5:
        img = img[:, ::-1]
    if rng.random() < 0.5:
        img = img[::-1]
    if rng.random() < 0.3:
        img = img[..., rng.permutation(3)]
    if rng.random() < 0.3:
        shift = rng.uniform(-20, 20, size=3).astype(np.float32)
        img = np.clip(img.astype(np.float32) + shift, 0, 255).astype(np.uint8)
    return np.ascontiguousarray(img)


class LQFrameDataset(Dataset):
    """Augmented ``3 x crop x crop`` crops of LQ frames in [-1, 1] (float32).

    ``length`` virtual items (the sampler draws frames uniformly); item ``i`` of epoch ``e`` is
    seeded by ``(seed, e, i)``, so runs are reproducible and resumable.
    """

    def __init__(self, frames: Sequence[Path], crop: int = 256, length: int | None = None, seed: int = 23) -> None:
        if not frames:
            raise ValueError("LQFrameDataset: no frames")
        self.frames = list(frames)
        self.crop, self.seed, self.epoch = crop, seed, 0
        self.length = length or len(self.frames)

    def __len__(self) -> int:
        return self.length

    def __getitem__(self, i: int) -> torch.Tensor:
        import cv2
        rng = np.random.default_rng([self.seed, self.epoch, i])
        path = self.frames[int(rng.integers(len(self.frames)))]
        bgr = cv2.imread(str(path), cv2.IMREAD_COLOR)
        if bgr is None:
            raise OSError(f"cannot read image {path}")
        img = augment(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB), self.crop, rng)
        return torch.from_numpy(img).permute(2, 0, 1).float().div_(127.5).sub_(1.0)
