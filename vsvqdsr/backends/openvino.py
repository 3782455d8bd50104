"""OpenVINO backend (``backend="openvino"``): the exported step graph compiled for the CPU at the
runner's fixed (padded) size.

The inference precision is set explicitly from the ``precision`` option (:mod:`.precision`:
``"auto"`` = bf16 on AMX-BF16 CPUs, else f32), never left to OpenVINO's own default (which picks
bf16 on any CPU reporting it, including AVX-512 BF16 CPUs where bf16 was measured slower). The
precision reported by :meth:`describe` is the one the compiled model says it runs: a bf16 request
on a CPU without bf16 compiles to f32, and the runner says so on stderr.
"""
from __future__ import annotations

import os
import queue
import tempfile
import threading
from pathlib import Path

import numpy as np

from .base import BackendUnavailable, RunnerSpec
from .host import HostRunner
from .onnx_export import export_step_bytes, input_names
from .precision import resolve
from ..log import get_logger

log = get_logger(__name__)

__all__ = ["OPTIONS", "OpenVINORunner", "OpenVINOGraph", "available", "compiled_precision", "create",
           "compile_config", "keep_f32", "read_onnx"]


def available() -> bool:
    try:
        import openvino  # noqa: F401
    except ImportError:
        return False
    return True


def compile_config(threads: int | None, precision: str = "f32") -> dict:
    """The CPU compile configuration of every graph (VSR step, degrader, SISR): the one place a
    precision or performance hint is set. ``precision`` is a concrete ``"f32"`` or ``"bf16"``
    (:func:`.precision.resolve` turns ``"auto"`` into one)."""
    if precision not in ("f32", "bf16"):
        raise ValueError(f"compile_config: precision must be 'f32' or 'bf16', got {precision!r}")
    return {"INFERENCE_PRECISION_HINT": precision, "PERFORMANCE_HINT": "LATENCY",
            "INFERENCE_NUM_THREADS": int(threads or os.cpu_count() or 1)}


def read_onnx(core, model_bytes: bytes):
    """An ``ov.Model`` from serialized ONNX."""
    with tempfile.TemporaryDirectory(prefix="vsvqdsr-ov-") as tmp:
        path = Path(tmp) / "graph.onnx"
        path.write_bytes(model_bytes)
        return core.read_model(str(path))


class OpenVINORunner(HostRunner):
    name = "openvino"

    def __init__(self, net, desc, spec: RunnerSpec, threads: int | None = None,
                 onnx_model: bytes | None = None, precision: str = "auto") -> None:
        super().__init__(net, desc, spec)
        self.requested = resolve(precision, "openvino")
        try:
            import openvino as ov
        except ImportError as e:
            raise BackendUnavailable("openvino: OpenVINO is not installed: pip install openvino") from e
        model_bytes = onnx_model if onnx_model is not None else export_step_bytes(net)
        core = ov.Core()
        model = read_onnx(core, model_bytes)
        hp, wp = self.padded
        s = self.scale
        names = input_names(self.feedback)
        shapes = {"prev": [1, 3, hp, wp], "cur": [1, 3, hp, wp], "nxt": [1, 3, hp, wp],
                  "state": [1, self.num_feat, hp, wp], "prev_out": [1, 3, s * hp, s * wp]}
        model.reshape({n: ov.PartialShape(shapes[n]) for n in names})
        config = compile_config(threads, self.requested)
        self.threads = config["INFERENCE_NUM_THREADS"]
        self.compiled = core.compile_model(model, "CPU", config)
        self.precision = compiled_precision(self.compiled)
        if self.precision != self.requested:
            log.info(f"openvino: precision {self.requested!r} requested, the compiled model runs "
                     f"{self.precision!r} (the CPU offers {', '.join(core.get_property('CPU', 'OPTIMIZATION_CAPABILITIES'))})")
        self._names = names
        self._requests: queue.SimpleQueue = queue.SimpleQueue()
        self._version = ov.get_version()

    def _request(self):
        try:
            return self._requests.get_nowait()
        except queue.Empty:
            return self.compiled.create_infer_request()

    def _run(self, inputs: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
        req = self._request()  # one infer request per concurrent caller
        try:
            res = req.infer(dict(zip(self._names, inputs)))
            out = np.array(res[self.compiled.output(0)], copy=True)
            state = np.array(res[self.compiled.output(1)], copy=True)
        finally:
            self._requests.put(req)
        return out, state

    def describe(self) -> str:
        asked = "" if self.precision == self.requested else f" ({self.requested} requested)"
        return f"openvino ({self._version}, CPU, {self.precision}{asked}, {self.threads} threads)"


def compiled_precision(compiled) -> str:
    """The inference precision a compiled CPU model runs (``"f32"``, ``"bf16"``, ``"f16"``)."""
    return compiled.get_property("INFERENCE_PRECISION_HINT").get_type_name()


#: Node types where the region around them is kept f32 stops: the convolutions (the bf16 work)
#: and the graph's inputs and outputs.
_REGION_STOPS = frozenset({"Convolution", "GroupConvolution", "ConvolutionBackpropData", "Parameter", "Result"})


def keep_f32(core, model, op_types: frozenset[str] | set[str]):
    """``model`` with every node of a type in ``op_types`` kept in f32 under a bf16 (or f16)
    inference precision, together with what feeds it back to the nearest convolution and what
    it feeds up to the next one (the degrader's distance MatMul, TopK and codebook Gathers).

    The nodes get OpenVINO's "precise" runtime attribute (``ov::disable_fp16_compression``, the
    attribute the CPU plugin reads to keep a node's original precision when it enforces the
    inference precision). Python cannot build that attribute object, so it is written by name and
    the model goes through IR once (``save_model`` / ``read_model``), which turns the name into the
    real attribute (``DisablePrecisionConversion``). Returns ``(model, number of nodes kept)``.
    """
    import openvino as ov

    def producers(n):
        return [i.get_source_output().get_node() for i in n.inputs()]

    def consumers(n):
        return [t.get_node() for o in n.outputs() for t in o.get_target_inputs()]

    kept: dict[str, object] = {}
    for root in (n for n in model.get_ordered_ops() if n.get_type_name() in op_types):
        for step in (producers, consumers):
            todo = [root] if step is producers else consumers(root)
            while todo:
                n = todo.pop()
                name = n.get_friendly_name()
                if name in kept or n.get_type_name() in _REGION_STOPS:
                    continue
                kept[name] = n
                todo += step(n)
    if not kept:
        return model, 0
    for n in kept.values():
        n.get_rt_info()["precise_0"] = ""
    with tempfile.TemporaryDirectory(prefix="vsvqdsr-ov-") as tmp:
        path = Path(tmp) / "graph.xml"
        ov.save_model(model, str(path), compress_to_fp16=False)
        return core.read_model(str(path)), len(kept)


class OpenVINOGraph:
    """Any exported graph on the OpenVINO CPU plugin, compiled once per distinct input shape (static
    shapes run fastest; a runner sees one frame size plus at most a few tile sizes).

    ``precision`` as for the VSR step (:func:`.precision.resolve`); under bf16 the nodes of the types
    in ``keep_f32_ops`` and their regions stay f32 (:func:`keep_f32`). ``precision`` afterwards is what
    the compiled model runs (f32 on a CPU without bf16, whatever was asked).
    """

    name = "openvino"

    def __init__(self, onnx_model: bytes, threads: int | None = None, precision: str = "auto",
                 keep_f32_ops: frozenset[str] = frozenset()) -> None:
        self.requested = resolve(precision, "openvino")
        try:
            import openvino as ov
        except ImportError as e:
            raise BackendUnavailable("openvino: OpenVINO is not installed: pip install openvino") from e
        self._ov = ov
        self._core = ov.Core()
        self._model = read_onnx(self._core, onnx_model)
        self.kept_f32 = 0
        if self.requested != "f32" and keep_f32_ops:
            self._model, self.kept_f32 = keep_f32(self._core, self._model, keep_f32_ops)
        self._names = [p.get_any_name() for p in self._model.inputs]
        self.config = compile_config(threads, self.requested)
        self.threads = self.config["INFERENCE_NUM_THREADS"]
        offered = set(self._core.get_property("CPU", "OPTIMIZATION_CAPABILITIES"))
        # what a compile will run (checked against each compiled model in _for): a bf16 request on a
        # CPU without bf16 compiles to f32
        self.precision = self.requested if self.requested == "f32" or "BF16" in offered else "f32"
        if self.precision != self.requested:
            log.info(f"openvino: precision {self.requested!r} requested, the graph runs {self.precision!r} "
                     f"(the CPU offers {', '.join(sorted(offered))})")
        self._compiled: dict[tuple, object] = {}
        self._requests: dict[tuple, queue.SimpleQueue] = {}
        self._lock = threading.Lock()
        self._version = ov.get_version()

    def _for(self, feeds: dict[str, np.ndarray]):
        key = tuple(tuple(feeds[n].shape) for n in self._names)
        with self._lock:
            compiled = self._compiled.get(key)
            if compiled is None:
                model = self._model.clone()
                model.reshape({n: self._ov.PartialShape(list(s)) for n, s in zip(self._names, key)})
                compiled = self._core.compile_model(model, "CPU", self.config)
                self.precision = compiled_precision(compiled)  # the truth, once compiled
                self._compiled[key] = compiled
                self._requests[key] = queue.SimpleQueue()
        return compiled, self._requests[key]

    def run(self, feeds: dict[str, np.ndarray]) -> list[np.ndarray]:
        compiled, pool = self._for(feeds)
        try:
            req = pool.get_nowait()
        except queue.Empty:
            req = compiled.create_infer_request()
        try:
            res = req.infer(feeds)
            return [np.array(res[o], copy=True) for o in compiled.outputs]
        finally:
            pool.put(req)

    def describe(self) -> str:
        asked = "" if self.precision == self.requested else f" ({self.requested} requested)"
        kept = f", {self.kept_f32} lookup nodes f32" if self.kept_f32 and self.precision != "f32" else ""
        return f"openvino ({self._version}, CPU, {self.precision}{asked}{kept}, {self.threads} threads)"


#: Options ``create`` accepts (``backends.create`` checks them).
OPTIONS: tuple[str, ...] = ("threads", "onnx_model", "precision")


def create(net, desc, spec: RunnerSpec, **options) -> OpenVINORunner:
    return OpenVINORunner(net, desc, spec, **options)
