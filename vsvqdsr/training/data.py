"""HR training clips: sources (folders of frames, video files) and the reference code's clip sampling.

A *source* is one clip: a folder holding its frames as images (sorted by name), or a video file
decoded with an ffmpeg subprocess. :func:`find_sources` accepts folders of clip folders, clip folders,
video files and folders of video files.

Sampling one training clip (as the VQD-SR and AnimeSR training datasets do), all drawn from one
``numpy.random.Generator``:

* a key frame uniform over all frames of all sources; a stride ``interval`` uniform in {1, 2, 3};
* ``T`` frames centred on the key at ``(j - T//2) * interval``; if the window leaves the source, the
  centre is redrawn uniformly among the valid centres (a smaller stride is used only if the source
  is too short for the drawn one);
* reversal of the frame order with p = 0.5;
* one random ``patch x patch`` crop shared by every frame, then horizontal flip, vertical flip and
  transpose, each with p = 0.5 and shared by every frame.
"""
from __future__ import annotations

import json
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import torch
from torch.utils.data import Dataset

from .degradations import basic_degrade_clip

__all__ = ["IMAGE_EXTS", "VIDEO_EXTS", "ClipSource", "FrameFolder", "VideoFile", "find_sources",
           "ClipWindow", "sample_window", "augment_clip", "ClipSampler", "TrainClips"]

IMAGE_EXTS = {".png", ".jpg", ".jpeg", ".bmp", ".webp", ".tif", ".tiff"}
VIDEO_EXTS = {".mp4", ".mkv", ".mov", ".avi", ".webm", ".m4v", ".y4m", ".ts", ".mpg", ".mpeg", ".flv", ".wmv"}


def _read_image(path: Path) -> np.ndarray:
    img = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    if img is None:
        raise ValueError(f"cannot read image {path}")
    if img.ndim == 2:
        img = np.repeat(img[..., None], 3, axis=2)
    scale = 65535.0 if img.dtype == np.uint16 else 255.0
    if img.shape[2] == 4:  # flatten alpha onto black
        a = img[..., 3:4].astype(np.float32) / scale
        rgb = img[..., :3].astype(np.float32) / scale * a
    else:
        rgb = img[..., :3].astype(np.float32) / scale
    return np.ascontiguousarray(rgb[..., ::-1])


class ClipSource:
    """One HR clip: ``num_frames``, ``width``, ``height`` and :meth:`read` of a crop of some frames."""

    name: str
    num_frames: int
    width: int
    height: int

    def read(self, indices: list[int], top: int, left: int, size: int) -> np.ndarray:
        """Frames ``indices`` cropped to ``size x size`` at (top, left): float32 ``T,size,size,3`` in [0, 1]."""
        raise NotImplementedError


class FrameFolder(ClipSource):
    """A folder of image frames (sorted by file name)."""

    def __init__(self, folder: Path) -> None:
        self.folder = Path(folder)
        self.files = sorted(p for p in self.folder.iterdir() if p.suffix.lower() in IMAGE_EXTS)
        if not self.files:
            raise ValueError(f"{folder}: no image frames ({', '.join(sorted(IMAGE_EXTS))})")
        first = _read_image(self.files[0])
        self.name = self.folder.name
        self.num_frames = len(self.files)
        self.height, self.width = first.shape[:2]

    def read(self, indices: list[int], top: int, left: int, size: int) -> np.ndarray:
        out = []
        for i in indices:
            img = _read_image(self.files[i])
            if img.shape[:2] != (self.height, self.width):
                raise ValueError(f"{self.files[i]}: size {img.shape[1]}x{img.shape[0]} differs from the clip's "
                                 f"{self.width}x{self.height}")
            out.append(img[top:top + size, left:left + size])
        return np.stack(out)


class VideoFile(ClipSource):
    """A video file decoded with ffmpeg (frames counted once with ffprobe)."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self.name = self.path.stem
        exe = shutil.which("ffprobe")
        if exe is None:
            raise ValueError("ffprobe is not on PATH (install ffmpeg)")
        res = subprocess.run([exe, "-v", "error", "-select_streams", "v:0", "-count_frames", "-show_entries",
                              "stream=width,height,nb_read_frames,pix_fmt", "-of", "json", str(self.path)],
                             capture_output=True, text=True)
        try:
            st = json.loads(res.stdout)["streams"][0]
            self.width, self.height, self.num_frames = int(st["width"]), int(st["height"]), int(st["nb_read_frames"])
            pix = str(st.get("pix_fmt", ""))
        except (KeyError, IndexError, ValueError, json.JSONDecodeError) as e:
            raise ValueError(f"{self.path}: not a readable video ({res.stderr.strip()[-300:]})") from e
        #: decode deep sources (10/12/16-bit) as rgb48, 8-bit ones as rgb24 (exact)
        self.deep = any(d in pix for d in ("p10", "p12", "p14", "p16", "48", "64"))

    def read(self, indices: list[int], top: int, left: int, size: int) -> np.ndarray:
        lo, hi = min(indices), max(indices)
        vf = f"select=between(n\\,{lo}\\,{hi}),crop={size}:{size}:{left}:{top}"
        cmd = [shutil.which("ffmpeg") or "ffmpeg", "-nostdin", "-v", "error", "-i", str(self.path), "-vf", vf,
               "-fps_mode", "passthrough", "-f", "rawvideo", "-pix_fmt", "rgb48le" if self.deep else "rgb24", "pipe:1"]
        res = subprocess.run(cmd, capture_output=True)
        n = hi - lo + 1
        bpp = 6 if self.deep else 3
        need = n * size * size * bpp
        if res.returncode != 0 or len(res.stdout) < need:
            raise ValueError(f"{self.path}: decoding frames {lo}..{hi} failed: "
                             f"{res.stderr.decode(errors='replace')[-300:]}")
        frames = np.frombuffer(res.stdout[:need], dtype="<u2" if self.deep else np.uint8).reshape(n, size, size, 3)
        return frames[[i - lo for i in indices]].astype(np.float32) / (65535.0 if self.deep else 255.0)


def find_sources(paths: list[str | Path], min_frames: int = 1) -> list[ClipSource]:
    """Every clip under ``paths`` (clip folders, folders of clip folders, videos, folders of videos).

    Raises ``ValueError`` if a path is inside or contains the evaluation benchmark set
    (``vqdsr eval``'s ``benchmark.json``): the benchmark must never be trained on.
    """
    from ..provenance import check_not_benchmark

    check_not_benchmark(paths, "find_sources")
    return _find_sources(paths, min_frames)


def _find_sources(paths: list[str | Path], min_frames: int = 1) -> list[ClipSource]:
    sources: list[ClipSource] = []
    for raw in paths:
        p = Path(raw).expanduser()
        if p.is_file():
            if p.suffix.lower() not in VIDEO_EXTS:
                raise ValueError(f"{p}: not a video file ({', '.join(sorted(VIDEO_EXTS))})")
            sources.append(VideoFile(p))
        elif p.is_dir():
            entries = sorted(p.iterdir())
            if any(e.is_file() and e.suffix.lower() in IMAGE_EXTS for e in entries):
                sources.append(FrameFolder(p))
            for e in entries:
                if e.is_dir():
                    sources.extend(_find_sources([e], 1))
                elif e.is_file() and e.suffix.lower() in VIDEO_EXTS:
                    sources.append(VideoFile(e))
        else:
            raise ValueError(f"{p}: no such file or folder")
    return [s for s in sources if s.num_frames >= min_frames]


@dataclass(frozen=True)
class ClipWindow:
    """A drawn clip: source index, frame indices (after reversal), crop and flips."""

    source: int
    frames: tuple[int, ...]
    interval: int
    reversed: bool
    top: int
    left: int
    hflip: bool
    vflip: bool
    transpose: bool


def sample_window(rng: np.random.Generator, sizes: list[int], num_frames: int,
                  intervals: tuple[int, ...] = (1, 2, 3)) -> tuple[int, list[int], int, bool]:
    """Draw a key frame over all sources, a stride, the window and a reversal (the reference datasets' sampling).

    Returns ``(source index, frame indices, interval, reversed)``.
    """
    total = sum(sizes)
    key = int(rng.integers(0, total))
    src = 0
    while key >= sizes[src]:
        key -= sizes[src]
        src += 1
    n = sizes[src]
    interval = int(intervals[int(rng.integers(0, len(intervals)))])
    half = num_frames // 2
    # shrink the stride only if the source is too short for it
    while interval > 1 and (num_frames - 1) * interval + 1 > n:
        interval -= 1
    lo_c = half * interval
    hi_c = n - 1 - (num_frames - 1 - half) * interval
    if hi_c < lo_c:
        raise ValueError(f"source {src} has {n} frames; {num_frames} are needed")
    centre = key
    if not lo_c <= centre <= hi_c:
        centre = int(rng.integers(lo_c, hi_c + 1))
    frames = [centre + (j - half) * interval for j in range(num_frames)]
    rev = bool(rng.random() < 0.5)
    if rev:
        frames.reverse()
    return src, frames, interval, rev


def augment_clip(clip: np.ndarray, hflip: bool, vflip: bool, transpose: bool) -> np.ndarray:
    """Apply the shared flips/transpose to ``T,H,W,C`` frames (BasicSR ``augment`` order)."""
    if hflip:
        clip = clip[:, :, ::-1]
    if vflip:
        clip = clip[:, ::-1]
    if transpose:
        clip = clip.transpose(0, 2, 1, 3)
    return np.ascontiguousarray(clip)


class ClipSampler:
    """Draws HR training clips from a list of sources."""

    def __init__(self, sources: list[ClipSource], num_frames: int = 15, patch: int = 256,
                 intervals: tuple[int, ...] = (1, 2, 3)) -> None:
        if not sources:
            raise ValueError("no training clips found")
        short = [s.name for s in sources if s.num_frames < num_frames]
        if short:
            raise ValueError(f"{len(short)} clip(s) have fewer than {num_frames} frames, e.g. {short[0]!r}")
        small = [s.name for s in sources if min(s.width, s.height) < patch]
        if small:
            raise ValueError(f"{len(small)} clip(s) are smaller than the {patch}px patch, e.g. {small[0]!r}")
        self.sources = sources
        self.num_frames = num_frames
        self.patch = patch
        self.intervals = tuple(intervals)

    def draw(self, rng: np.random.Generator) -> ClipWindow:
        src, frames, interval, rev = sample_window(rng, [s.num_frames for s in self.sources], self.num_frames,
                                                   self.intervals)
        s = self.sources[src]
        top = int(rng.integers(0, s.height - self.patch + 1))
        left = int(rng.integers(0, s.width - self.patch + 1))
        hf, vf, tr = (bool(v) for v in rng.random(3) < 0.5)
        return ClipWindow(src, tuple(frames), interval, rev, top, left, hf, vf, tr)

    def load(self, win: ClipWindow) -> np.ndarray:
        """The HR clip of a window: float32 ``T,patch,patch,3`` RGB in [0, 1]."""
        clip = self.sources[win.source].read(list(win.frames), win.top, win.left, self.patch)
        return augment_clip(clip, win.hflip, win.vflip, win.transpose)


class TrainClips(Dataset):
    """Map-style dataset indexed by a global sample number (so runs are reproducible and resumable).

    Item ``i`` uses ``numpy.random.default_rng((seed, i))``. Stage 1 returns ``(lr, gt)`` with the
    basic operators applied on the CPU; stage 2 returns ``gt`` only (degraded later, batched on the
    training device). Tensors are ``T,3,H,W`` float32 in [0, 1].
    """

    def __init__(self, sampler: ClipSampler, stage: int, seed: int = 0, length: int = 2 ** 62,
                 scale: int = 4) -> None:
        self.sampler = sampler
        self.stage = stage
        self.seed = seed
        self.length = length
        self.scale = scale

    def __len__(self) -> int:
        return self.length

    def __getitem__(self, index: int):
        rng = np.random.default_rng((self.seed, int(index)))
        hr = self.sampler.load(self.sampler.draw(rng))
        gt = torch.from_numpy(hr).permute(0, 3, 1, 2).contiguous()
        if self.stage == 1:
            lr, _ = basic_degrade_clip(hr, rng, self.scale)
            return torch.from_numpy(lr).permute(0, 3, 1, 2).contiguous(), gt
        return gt
