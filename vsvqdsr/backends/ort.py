"""ONNX Runtime backend (``backend="ort"``): the exported step graph on the CPU execution provider.

The fp32 graph; matches torch to ~1e-6. onnxruntime's CPU provider has no bf16 convolution, so
``precision`` is f32 only (``"auto"`` is f32 here on any CPU).
"""
from __future__ import annotations

import os

import numpy as np

from .base import BackendUnavailable, RunnerSpec
from .host import HostRunner
from .onnx_export import export_step_bytes, input_names
from .precision import resolve

__all__ = ["OPTIONS", "ORTRunner", "ORTGraph", "available", "create", "session_options"]


def available() -> bool:
    try:
        import onnxruntime  # noqa: F401
    except ImportError:
        return False
    return True


def session_options(threads: int | None):
    """Session options of every graph (VSR step, degrader, SISR) on the CPU execution provider."""
    import onnxruntime as ort

    so = ort.SessionOptions()
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    so.intra_op_num_threads = int(threads or os.cpu_count() or 1)
    so.log_severity_level = 3
    return so


class ORTRunner(HostRunner):
    name = "ort"

    def __init__(self, net, desc, spec: RunnerSpec, threads: int | None = None,
                 onnx_model: bytes | None = None, precision: str = "auto") -> None:
        super().__init__(net, desc, spec)
        self.precision = resolve(precision, "ort", offers=("f32",))
        try:
            import onnxruntime as ort
        except ImportError as e:
            raise BackendUnavailable("ort: onnxruntime is not installed: pip install onnxruntime") from e
        model = onnx_model if onnx_model is not None else export_step_bytes(net)
        so = session_options(threads)
        self.session = ort.InferenceSession(model, so, providers=["CPUExecutionProvider"])
        self.threads = so.intra_op_num_threads
        self._names = input_names(self.feedback)
        self._version = ort.__version__

    def _run(self, inputs: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
        out, state = self.session.run(None, dict(zip(self._names, inputs)))  # thread-safe
        return out, state

    def describe(self) -> str:
        return f"ort (onnxruntime {self._version}, CPU, {self.precision}, {self.threads} threads)"


class ORTGraph:
    """Any exported graph (dynamic shapes) on ONNX Runtime's CPU execution provider, in f32 (its CPU
    provider has no bf16 convolution kernels: ``precision="auto"`` is f32, ``"bf16"`` is refused)."""

    name = "ort"

    def __init__(self, onnx_model: bytes, threads: int | None = None, precision: str = "auto") -> None:
        self.precision = resolve(precision, "ort", offers=("f32",))  # no bf16 convolutions in the CPU provider
        try:
            import onnxruntime as ort
        except ImportError as e:
            raise BackendUnavailable("ort: onnxruntime is not installed: pip install onnxruntime") from e
        so = session_options(threads)
        self.session = ort.InferenceSession(onnx_model, so, providers=["CPUExecutionProvider"])
        self.threads = so.intra_op_num_threads
        self._version = ort.__version__

    def run(self, feeds: dict[str, np.ndarray]) -> list[np.ndarray]:
        return self.session.run(None, feeds)  # thread-safe

    def describe(self) -> str:
        return f"ort (onnxruntime {self._version}, CPU, {self.precision}, {self.threads} threads)"


#: Options ``create`` accepts (``backends.create`` checks them).
OPTIONS: tuple[str, ...] = ("threads", "onnx_model", "precision")


def create(net, desc, spec: RunnerSpec, **options) -> ORTRunner:
    return ORTRunner(net, desc, spec, **options)
