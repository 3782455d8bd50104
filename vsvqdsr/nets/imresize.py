"""MATLAB ``imresize`` bicubic resizing in torch (shared by HR-SR enhancement and evaluation).

Keys' cubic kernel with a = -0.5, antialiased when shrinking (the kernel widened by 1/scale and
scaled by scale), borders mirrored symmetrically.
"""
from __future__ import annotations

import math

import numpy as np
import torch
from torch import Tensor

__all__ = ["cubic", "resize_weights", "matlab_imresize"]


def cubic(x: np.ndarray, a: float = -0.5) -> np.ndarray:
    """Keys' cubic convolution kernel with parameter ``a`` (MATLAB uses -0.5)."""
    ax = np.abs(x)
    ax2, ax3 = ax ** 2, ax ** 3
    return np.where(ax <= 1, (a + 2) * ax3 - (a + 3) * ax2 + 1,
                    np.where(ax <= 2, a * ax3 - 5 * a * ax2 + 8 * a * ax - 4 * a, 0.0))


def resize_weights(in_len: int, out_len: int, antialias: bool = True) -> np.ndarray:
    """Dense ``out_len x in_len`` matrix of MATLAB ``imresize`` bicubic weights along one axis.

    Output pixel ``i`` (1-based) maps to ``u = i / s + 0.5 (1 - 1/s)`` with ``s = out_len / in_len``;
    when shrinking with antialiasing the kernel is ``s * cubic(s x)`` over a width of ``4 / s``.
    Rows are normalised to sum 1; taps outside the image mirror symmetrically (``1 2 3 | 3 2 1``).
    """
    s = out_len / in_len
    width = 4.0 / s if (antialias and s < 1) else 4.0
    i = np.arange(1, out_len + 1, dtype=np.float64)
    u = i / s + 0.5 * (1 - 1 / s)
    left = np.floor(u - width / 2)
    taps = int(math.ceil(width)) + 2
    idx = left[:, None] + np.arange(taps)[None, :]  # 1-based
    dist = u[:, None] - idx
    w = s * cubic(s * dist) if (antialias and s < 1) else cubic(dist)
    w = w / w.sum(axis=1, keepdims=True)
    mirror = np.concatenate([np.arange(in_len), np.arange(in_len - 1, -1, -1)])
    cols = mirror[np.mod(idx.astype(np.int64) - 1, 2 * in_len)]
    mat = np.zeros((out_len, in_len))
    np.add.at(mat, (np.repeat(np.arange(out_len), taps), cols.ravel()), w.ravel())
    return mat


def matlab_imresize(x: Tensor, size: tuple[int, int], antialias: bool = True) -> Tensor:
    """Resize ``...,H,W`` to ``size = (out_h, out_w)`` like MATLAB ``imresize(..., 'bicubic')``.

    Float in, float out (no clamping or rounding); separable, computed in float64 weights cast to
    ``x``'s dtype.
    """
    h, w = x.shape[-2:]
    oh, ow = size
    wh = torch.from_numpy(resize_weights(h, oh, antialias)).to(x.device, x.dtype)
    ww = torch.from_numpy(resize_weights(w, ow, antialias)).to(x.device, x.dtype)
    return torch.matmul(torch.matmul(wh, x), ww.T)
