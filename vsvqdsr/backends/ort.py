"""ONNX Runtime backend (``backend="ort"``): the exported step graph on the CPU execution provider.

Precision ``"fp32"`` runs the float graph (matches torch to ~1e-6); ``"int8"`` runs a static QDQ
model quantized on real frames (see :mod:`.quantize`), which uses the CPU's VNNI instructions.
"""
from __future__ import annotations

import os

import numpy as np

from .base import BackendUnavailable, RunnerSpec
from .host import HostRunner
from .onnx_export import export_step_bytes, input_names

__all__ = ["OPTIONS", "ORTRunner", "available", "create"]


def available() -> bool:
    try:
        import onnxruntime  # noqa: F401
    except ImportError:
        return False
    return True


class ORTRunner(HostRunner):
    name = "ort"

    def __init__(self, net, desc, spec: RunnerSpec, precision: str = "fp32", threads: int | None = None,
                 onnx_model: bytes | None = None, **quant_options) -> None:
        super().__init__(net, desc, spec)
        try:
            import onnxruntime as ort
        except ImportError as e:
            raise BackendUnavailable("ort: onnxruntime is not installed: pip install onnxruntime") from e
        if precision not in ("fp32", "int8"):
            raise ValueError(f"ort: precision must be 'fp32' or 'int8', got {precision!r}")
        self.precision = precision
        model = onnx_model if onnx_model is not None else export_step_bytes(net)
        if precision == "int8":
            from .quantize import quantized_model
            model = quantized_model(net, model, **quant_options)
        so = ort.SessionOptions()
        so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        so.intra_op_num_threads = int(threads or os.cpu_count() or 1)
        so.log_severity_level = 3
        self.session = ort.InferenceSession(model, so, providers=["CPUExecutionProvider"])
        self.threads = so.intra_op_num_threads
        self._names = input_names(self.feedback)
        self._version = ort.__version__

    def _run(self, inputs: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
        out, state = self.session.run(None, dict(zip(self._names, inputs)))  # thread-safe
        return out, state

    def describe(self) -> str:
        return f"ort (onnxruntime {self._version}, CPU, {self.precision}, {self.threads} threads)"


#: Options ``create`` accepts (``backends.create`` checks them).
OPTIONS: tuple[str, ...] = ("precision", "threads", "onnx_model", "calibration", "calibration_size", "calibration_frames", "calibration_method", "engine_dir")


def create(net, desc, spec: RunnerSpec, **options) -> ORTRunner:
    return ORTRunner(net, desc, spec, **options)
