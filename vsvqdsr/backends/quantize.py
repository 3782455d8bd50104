"""Static int8 (QDQ) post-training quantization of the exported step, calibrated on real frames.

The int8 model is made once per (weights, calibration set) with ``onnxruntime.quantization``
(``QuantFormat.QDQ``, per-channel int8 weights, uint8 activations: the U8S8 scheme that x86 VNNI
instructions execute) and cached by :class:`~.engine_cache.EngineCache` (runtime ``"ort-int8"``).
Calibration runs the fp32 network recurrently over a real clip so the hidden-state input sees the
value ranges it has in use, not zeros.

Calibration source (``calibration=`` option of the cpu/ort/openvino backends):

* a path to a video file (decoded with ffmpeg, scaled to ``calibration_size``),
* a folder of PNG/JPEG frames (sorted by name, a sequence),
* a float32 array ``(T, 3, H, W)`` in [0, 1],
* ``None``: ``$VSVQDSR_CALIBRATION``, else the project's sample clip ``examples/sample/sample.mkv``
  when running from a source checkout; otherwise an error says what to pass.
"""
from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

from .engine_cache import EngineCache, EngineKey
from .onnx_export import input_names, onnx_checksum

__all__ = ["load_calibration_frames", "calibration_inputs", "quantize_qdq", "quantized_model",
           "default_calibration_source"]

#: LR size calibration frames are scaled to (height, width); ``None`` keeps the source's size.
#: Keep the content at the scale it will be upscaled at: activation ranges depend on it (measured:
#: calibrating the 320x180 sample at 256x144 cost 0.34 dB PSNR-Y against ground truth).
DEFAULT_CALIBRATION_SIZE: tuple[int, int] | None = None
DEFAULT_CALIBRATION_FRAMES = 12


def default_calibration_source() -> Path | None:
    env = os.environ.get("VSVQDSR_CALIBRATION")
    if env:
        return Path(env).expanduser()
    sample = Path(__file__).resolve().parents[2] / "examples" / "sample" / "sample.mkv"
    return sample if sample.exists() else None


def _resize(frame: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """``(3,H,W)`` float -> ``(3,h,w)`` with area averaging (torch, antialiased)."""
    t = torch.from_numpy(frame)[None]
    t = torch.nn.functional.interpolate(t, size=size, mode="bilinear", antialias=True, align_corners=False)
    return t[0].clamp_(0, 1).numpy()


def _probe_size(path: Path) -> tuple[int, int]:
    cmd = ["ffprobe", "-v", "error", "-select_streams", "v:0", "-show_entries", "stream=width,height",
           "-of", "csv=p=0", str(path)]
    try:
        w, h = (int(v) for v in subprocess.run(cmd, check=True, capture_output=True, text=True).stdout.split(",")[:2])
    except (FileNotFoundError, subprocess.CalledProcessError, ValueError) as e:
        raise RuntimeError(f"int8 calibration: ffprobe could not read the size of {path}: {e}") from e
    return h, w


def _read_video(path: Path, size: tuple[int, int] | None, count: int) -> np.ndarray:
    h, w = size if size is not None else _probe_size(path)
    cmd = ["ffmpeg", "-v", "error", "-nostdin", "-i", str(path), "-frames:v", str(count),
           "-vf", f"scale={w}:{h}:flags=area", "-f", "rawvideo", "-pix_fmt", "rgb24", "-"]
    try:
        raw = subprocess.run(cmd, check=True, capture_output=True).stdout
    except FileNotFoundError as e:
        raise RuntimeError("int8 calibration: ffmpeg is needed to decode a calibration video") from e
    except subprocess.CalledProcessError as e:
        raise RuntimeError(f"int8 calibration: ffmpeg could not decode {path}: {e.stderr.decode(errors='replace')[-400:]}") from e
    n = len(raw) // (h * w * 3)
    if n == 0:
        raise RuntimeError(f"int8 calibration: no frames decoded from {path}")
    arr = np.frombuffer(raw[: n * h * w * 3], np.uint8).reshape(n, h, w, 3)
    return np.ascontiguousarray(arr.transpose(0, 3, 1, 2), dtype=np.float32) / 255.0


def load_calibration_frames(source: str | os.PathLike | np.ndarray | None = None,
                            size: tuple[int, int] | None = DEFAULT_CALIBRATION_SIZE,
                            count: int = DEFAULT_CALIBRATION_FRAMES) -> np.ndarray:
    """Return ``(T, 3, h, w)`` float32 RGB frames in [0, 1] for calibration (see module docstring)."""
    if source is None:
        source = default_calibration_source()
        if source is None:
            raise RuntimeError("int8 calibration: no calibration frames; pass calibration=<video file, "
                               "folder of PNG frames or (T,3,H,W) array> or set $VSVQDSR_CALIBRATION")
    if isinstance(source, np.ndarray):
        if source.ndim != 4 or source.shape[1] != 3:
            raise ValueError(f"int8 calibration: expected a (T, 3, H, W) array, got shape {source.shape}")
        return np.ascontiguousarray(source[:count], dtype=np.float32)
    path = Path(source).expanduser()
    if path.is_dir():
        try:
            from PIL import Image
        except ImportError as e:
            raise RuntimeError("int8 calibration: reading a folder of frames needs pillow "
                               "(pip install pillow); or pass a video file") from e

        files = sorted(p for p in path.iterdir() if p.suffix.lower() in (".png", ".jpg", ".jpeg"))[:count]
        if not files:
            raise RuntimeError(f"int8 calibration: no PNG/JPEG frames in {path}")
        frames = []
        for f in files:
            img = np.asarray(Image.open(f).convert("RGB"), np.float32).transpose(2, 0, 1) / 255.0
            frames.append(_resize(np.ascontiguousarray(img), size) if size is not None else img)
        return np.stack(frames)
    if path.is_file():
        return _read_video(path, size, count)
    raise FileNotFoundError(f"int8 calibration: {path} does not exist")


@torch.inference_mode()
def calibration_inputs(net, frames: np.ndarray) -> list[dict[str, np.ndarray]]:
    """Run the fp32 network over ``frames`` recurrently; return each step's graph inputs."""
    net = net.float().eval()
    x = torch.from_numpy(np.ascontiguousarray(frames, dtype=np.float32))
    t = x.shape[0]
    state, prev_out = net.initial_state(x[:1])
    names = input_names(net.feedback)
    feeds = []
    for i in range(t):
        args = [x[max(i - 1, 0)][None], x[i][None], x[min(i + 1, t - 1)][None], state]
        if net.feedback:
            args.append(prev_out)
        feeds.append({n: a.numpy().copy() for n, a in zip(names, args)})
        out, state = net.step(*args[:4], prev_out if net.feedback else None)
        prev_out = out
    return feeds


def quantize_qdq(onnx_model: bytes, feeds: Sequence[dict[str, np.ndarray]], method: str = "minmax") -> bytes:
    """Quantize an fp32 step graph to a static QDQ int8 model calibrated on ``feeds``."""
    from onnxruntime.quantization import (CalibrationDataReader, CalibrationMethod, QuantFormat, QuantType,
                                          quantize_static)
    from onnxruntime.quantization.shape_inference import quant_pre_process

    class Reader(CalibrationDataReader):
        def __init__(self) -> None:
            self.it = iter(feeds)

        def get_next(self):
            return next(self.it, None)

    methods = {"minmax": CalibrationMethod.MinMax, "percentile": CalibrationMethod.Percentile,
               "entropy": CalibrationMethod.Entropy}
    if method not in methods:
        raise ValueError(f"quantize_qdq: method must be one of {', '.join(methods)}, got {method!r}")
    with tempfile.TemporaryDirectory(prefix="vsvqdsr-q-") as tmp:
        src, pre, dst = (Path(tmp) / n for n in ("fp32.onnx", "pre.onnx", "int8.onnx"))
        src.write_bytes(onnx_model)
        try:
            quant_pre_process(str(src), str(pre), skip_symbolic_shape=True)
        except Exception as e:  # pre-processing is an optimisation, not a requirement
            print(f"vsvqdsr: int8 pre-processing skipped ({e})", file=sys.stderr)
            pre = src
        quantize_static(str(pre), str(dst), Reader(), quant_format=QuantFormat.QDQ, per_channel=True,
                        activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8,
                        calibrate_method=methods[method],
                        extra_options={"CalibTensorRangeSymmetric": False})
        return dst.read_bytes()


def quantized_model(net, onnx_model: bytes, calibration=None, calibration_size=DEFAULT_CALIBRATION_SIZE,
                    calibration_frames: int = DEFAULT_CALIBRATION_FRAMES, calibration_method: str = "minmax",
                    engine_dir=None) -> bytes:
    """The cached int8 QDQ model for ``onnx_model`` (built on first use; see module docstring)."""
    size = tuple(calibration_size) if calibration_size is not None else None
    frames = load_calibration_frames(calibration, size, int(calibration_frames))
    digest = hashlib.sha256(frames.tobytes()).hexdigest()[:16]
    key = EngineKey(runtime="ort-int8", onnx_sha256=onnx_checksum(onnx_model), min_shape=(0, 0),
                    opt_shape=tuple(frames.shape[-2:]), max_shape=(0, 0), precision="int8-qdq-u8s8",
                    extra=(("calibration", digest), ("frames", str(len(frames))), ("method", calibration_method)))

    def build() -> bytes:
        print(f"vsvqdsr: calibrating int8 on {len(frames)} frames ({calibration_method})", file=sys.stderr, flush=True)
        return quantize_qdq(onnx_model, calibration_inputs(net, frames), calibration_method)

    return EngineCache(engine_dir).get_or_build(key, build, lambda b: b)
