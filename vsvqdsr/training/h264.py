"""A real H.264 round trip of a whole clip through ffmpeg/libx264 subprocess pipes (as both reference
training datasets do).

Raw RGB24 frames go into one ffmpeg that encodes a raw ``h264`` stream (libx264, float CRF,
profile, yuv420p, 25 fps, x264 default preset); the stream goes into a second ffmpeg that decodes
back to RGB24. Both run as subprocesses; nothing touches the disk.
"""
from __future__ import annotations

import shutil
import subprocess

import numpy as np

__all__ = ["H264Error", "h264_roundtrip", "ffmpeg_path"]


class H264Error(RuntimeError):
    """ffmpeg failed or returned the wrong number of frames."""


def ffmpeg_path() -> str:
    """The ffmpeg executable, or :class:`H264Error` when none is on ``PATH``."""
    exe = shutil.which("ffmpeg")
    if exe is None:
        raise H264Error("h264_roundtrip: ffmpeg is not on PATH (install ffmpeg with libx264)")
    return exe


def h264_roundtrip(frames: np.ndarray, crf: float, profile: str, timeout: float = 120.0) -> np.ndarray:
    """Encode ``frames`` with libx264 and decode them again.

    Args:
        frames: uint8 array ``T,H,W,3`` (RGB); H and W must be even (yuv420p).
        crf: constant rate factor, a float (the reference datasets draw it from U(18, 35)).
        profile: ``"baseline"``, ``"main"`` or ``"high"``.
        timeout: seconds allowed per ffmpeg process.

    Returns:
        uint8 array of the same shape.

    Raises:
        H264Error: on any ffmpeg failure or a frame-count mismatch.
    """
    if frames.dtype != np.uint8 or frames.ndim != 4 or frames.shape[-1] != 3:
        raise ValueError(f"h264_roundtrip: expected uint8 T,H,W,3 frames, got {frames.dtype} {frames.shape}")
    t, h, w, _ = frames.shape
    if h % 2 or w % 2:
        raise ValueError(f"h264_roundtrip: yuv420p needs even sizes, got {w}x{h}")
    if profile not in ("baseline", "main", "high"):
        raise ValueError(f"h264_roundtrip: profile must be baseline, main or high, got {profile!r}")
    exe = ffmpeg_path()
    enc_cmd = [exe, "-nostdin", "-hide_banner", "-loglevel", "error",
               "-f", "rawvideo", "-pix_fmt", "rgb24", "-s", f"{w}x{h}", "-r", "25", "-i", "pipe:0",
               "-vf", "fps=25:round=up", "-c:v", "libx264", "-crf", f"{float(crf):.6f}",
               "-profile:v", profile, "-pix_fmt", "yuv420p", "-threads", "1", "-f", "h264", "pipe:1"]
    dec_cmd = [exe, "-nostdin", "-hide_banner", "-loglevel", "error", "-f", "h264", "-i", "pipe:0",
               "-f", "rawvideo", "-pix_fmt", "rgb24", "-threads", "1", "pipe:1"]
    try:
        enc = subprocess.run(enc_cmd, input=np.ascontiguousarray(frames).tobytes(), capture_output=True,
                             timeout=timeout)
        if enc.returncode != 0 or not enc.stdout:
            raise H264Error(f"h264_roundtrip: encoder failed: {enc.stderr.decode(errors='replace')[-500:]}")
        dec = subprocess.run(dec_cmd, input=enc.stdout, capture_output=True, timeout=timeout)
    except subprocess.TimeoutExpired as e:
        raise H264Error(f"h264_roundtrip: ffmpeg timed out after {timeout} s") from e
    if dec.returncode != 0:
        raise H264Error(f"h264_roundtrip: decoder failed: {dec.stderr.decode(errors='replace')[-500:]}")
    frame_bytes = h * w * 3
    if len(dec.stdout) != t * frame_bytes:
        raise H264Error(f"h264_roundtrip: expected {t} frames back, got {len(dec.stdout) / frame_bytes:g}")
    return np.frombuffer(dec.stdout, dtype=np.uint8).reshape(t, h, w, 3).copy()
