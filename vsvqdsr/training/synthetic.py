"""Small synthetic cel-style clips (flat colours, dark outlines, motion) as training input.

For smoke tests and throughput measurements of the trainers, where real footage would only add
set-up: the frames are deterministic for a given seed, and written as ``clip_k/%04d.png`` folders,
the layout ``vqdsr train-vsr --data`` reads.
"""
from __future__ import annotations

import os
from pathlib import Path

import cv2
import numpy as np

__all__ = ["make_clip_frames", "write_clip_folders"]


def make_clip_frames(num_frames: int = 8, size: int = 64, seed: int = 0) -> np.ndarray:
    """uint8 ``T,size,size,3`` RGB: a moving disc and rectangle with black outlines on a gradient."""
    rng = np.random.default_rng(seed)
    frames = []
    bg = np.array(rng.integers(60, 200, 3), np.float32)
    cx, cy = rng.uniform(0.3, 0.7, 2) * size
    vx, vy = rng.uniform(-2, 2, 2)
    col1 = tuple(int(c) for c in rng.integers(0, 255, 3))
    col2 = tuple(int(c) for c in rng.integers(0, 255, 3))
    yy = np.linspace(0, 1, size, dtype=np.float32)[:, None, None]
    for t in range(num_frames):
        img = np.clip(bg * (0.7 + 0.3 * yy) + np.zeros((size, size, 3), np.float32), 0, 255).astype(np.uint8)
        c = (int(cx + vx * t), int(cy + vy * t))
        cv2.circle(img, c, size // 6, col1, -1, lineType=cv2.LINE_AA)
        cv2.circle(img, c, size // 6, (10, 10, 10), 2, lineType=cv2.LINE_AA)
        x0 = int(size * 0.1 + t)
        cv2.rectangle(img, (x0, size // 2), (x0 + size // 4, size // 2 + size // 5), col2, -1)
        cv2.rectangle(img, (x0, size // 2), (x0 + size // 4, size // 2 + size // 5), (0, 0, 0), 1)
        frames.append(img)
    return np.stack(frames)


def write_clip_folders(root: str | os.PathLike, clips: int = 2, num_frames: int = 8, size: int = 64) -> Path:
    """``root/clip_k/%04d.png`` folders of synthetic frames; returns ``root``."""
    root = Path(root)
    for k in range(clips):
        d = root / f"clip_{k}"
        d.mkdir(parents=True, exist_ok=True)
        for i, f in enumerate(make_clip_frames(num_frames, size, seed=k)):
            cv2.imwrite(str(d / f"{i:04d}.png"), f[..., ::-1])
    return root
