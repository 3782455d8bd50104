"""Run any exported image graph (the degrader, the SISR models) on every backend.

A :class:`GraphDef` names a torch module and its inputs; :func:`open_graph` returns a small engine
object with ``run(feeds) -> [outputs]`` on host numpy arrays (``NCHW`` float32 images, int64 rank
inputs) and ``describe()``. Per backend:

* ``cpu``: option ``engine`` (``openvino`` / ``ort`` / ``torch`` / ``torch_nchw``, default the
  fastest installed, as for the VSR step), ``threads`` and ``precision``;
* ``ort``, ``openvino``: those engines directly (``threads``, ``precision``);
* ``cuda``: torch eager on one GPU (``RunnerSpec.fp16``, ``channels_last`` option);
* ``trt``: a TensorRT engine built from the ONNX export, cached exactly like the VSR step's
  (:class:`~.engine_cache.EngineCache`: key, lock, atomic write, checksum); options ``engine_dir``,
  ``workspace_mb``, ``opt_level``, ``verbose``;
* ``torch_trt``: ``torch_tensorrt.compile`` of the module, cached the same way (``engine_dir``).

``precision`` (``"auto"`` / ``"f32"`` / ``"bf16"``) follows the VSR step's one rule
(:func:`~.precision.resolve`: auto is bf16 on AMX-BF16 CPUs, else f32); onnxruntime's CPU provider
has no bf16 convolutions, so ``ort`` runs f32 (auto) and refuses an explicit bf16. A graph's
``keep_f32_ops`` (the degrader's TopK) stay f32 under bf16 with what feeds them from the last
convolution and what they feed up to the next one: the top-k codebook lookup picks the same entries
as f32 for the features it is given. Each engine's ``precision`` attribute and ``describe()`` say
what really ran. No CPU graph engine is cached on disk, so no cache key carries it.

The torch engines run the module itself; every other engine runs its ONNX export
(:func:`~.onnx_export.export_graph_bytes`), so one graph serves them all. The torch CPU engine
takes ``threads`` like the others; torch's thread count is process-wide, so it is set when the
engine is created (by the backend, never by a filter).
"""
from __future__ import annotations

import copy
import hashlib
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch import nn

from .base import BackendUnavailable, RunnerSpec
from ..log import get_logger

log = get_logger(__name__)

__all__ = ["GraphDef", "GraphEngine", "TorchGraph", "open_graph", "GRAPH_OPTIONS", "graph_onnx"]

#: Options each backend accepts for graphs (``open_graph`` checks them).
GRAPH_OPTIONS: dict[str, tuple[str, ...]] = {
    "cpu": ("engine", "threads", "precision"),
    "ort": ("threads", "precision"),
    "openvino": ("threads", "precision"),
    "cuda": ("channels_last",),
    "trt": ("engine_dir", "workspace_mb", "opt_level", "verbose"),
    "torch_trt": ("engine_dir",),
}


@dataclass(frozen=True)
class GraphDef:
    """One image graph.

    Attributes:
        name: short name for logs and engine files (``"degrader"``, ``"sisr"``).
        module: ``forward(*inputs) -> Tensor`` in the order of ``inputs``.
        inputs: input names; ``int_inputs`` of them are int64 ``(1,)`` tensors, the others images.
        output: the output name.
        image_dynamic: the image inputs' dynamic axes (ONNX names), e.g. ``{2: "h", 3: "w"}``.
        output_dynamic: the output's dynamic axes.
        int_inputs: names of the integer inputs.
        shape_of: ``(image h, w) -> {input name: shape}`` for engines that need concrete shapes.
        keep_f32_ops: ONNX/OpenVINO op types kept in f32, with their region, under a bf16 precision.
    """

    name: str
    module: nn.Module
    inputs: tuple[str, ...]
    output: str
    image_dynamic: Mapping[int, str]
    output_dynamic: Mapping[int, str]
    shape_of: Callable[[int, int], dict[str, tuple[int, ...]]]
    int_inputs: frozenset[str] = field(default_factory=frozenset)
    keep_f32_ops: frozenset[str] = field(default_factory=frozenset)

    def example(self, h: int, w: int, device: Any = "cpu", dtype: torch.dtype = torch.float32) -> tuple:
        shapes = self.shape_of(h, w)
        return tuple(torch.ones(shapes[n], dtype=torch.int64, device=device) if n in self.int_inputs
                     else torch.rand(shapes[n], dtype=dtype, device=device) for n in self.inputs)


def graph_onnx(g: GraphDef, example_hw: tuple[int, int] = (64, 64)) -> bytes:
    """The fp32 ONNX export of a graph (dynamic image height and width)."""
    from .onnx_export import export_graph_bytes

    dyn = {n: dict(g.image_dynamic) for n in g.inputs if n not in g.int_inputs}
    dyn[g.output] = dict(g.output_dynamic)
    module = copy.deepcopy(g.module).float().cpu()
    return export_graph_bytes(module, g.example(*example_hw), list(g.inputs), [g.output], dyn)


class GraphEngine:
    """Interface: ``run(feeds) -> list of host arrays``; ``describe()``; ``name``."""

    name = "graph"

    def run(self, feeds: dict[str, np.ndarray]) -> list[np.ndarray]:
        raise NotImplementedError

    def describe(self) -> str:
        return self.name


class TorchGraph(GraphEngine):
    """The module itself, eager torch (CPU: f32 or bf16, channels_last or NCHW; CUDA: fp16 when asked).

    CPU bf16 is autocast over the f32 module (convolutions in bf16); code that must stay exact turns
    autocast off locally (the degrader's lookup, :meth:`~vsvqdsr.nets.vqgan.DegradeModule.lookup`).
    """

    def __init__(self, g: GraphDef, device: str | torch.device = "cpu", dtype: torch.dtype = torch.float32,
                 channels_last: bool = True, threads: int | None = None, precision: str | None = None) -> None:
        self.g = g
        self.device = torch.device(device)
        self.dtype = dtype
        self.precision = None
        if self.device.type == "cpu":
            from .precision import resolve
            self.precision = resolve("auto" if precision is None else precision, "torch")
        self.memory_format = torch.channels_last if channels_last else torch.contiguous_format
        if threads and self.device.type == "cpu":
            torch.set_num_threads(int(threads))
        self.module = copy.deepcopy(g.module).to(self.device, dtype).eval().requires_grad_(False)
        self.module = self.module.to(memory_format=self.memory_format)
        self.name = "torch" if self.device.type == "cpu" else "cuda"
        self._layout = "channels_last" if channels_last else "NCHW"

    @torch.inference_mode()
    def run(self, feeds: dict[str, np.ndarray]) -> list[np.ndarray]:
        args = []
        for n in self.g.inputs:
            t = torch.from_numpy(np.ascontiguousarray(feeds[n])).to(self.device)
            if n not in self.g.int_inputs:
                t = t.to(self.dtype).contiguous(memory_format=self.memory_format)
            args.append(t)
        with torch.autocast("cpu", torch.bfloat16, enabled=self.precision == "bf16"):
            y = self.module(*args)
        return [y.to("cpu", torch.float32).contiguous().numpy()]

    def describe(self) -> str:
        prec = "fp16" if self.dtype == torch.float16 else "fp32"
        if self.device.type == "cpu":
            return (f"torch (torch {torch.__version__}, {self._layout}, {self.precision}, "
                    f"{torch.get_num_threads()} threads)")
        return f"cuda (torch {torch.__version__}, {torch.cuda.get_device_name(self.device)}, {prec})"


def _profile_for(g: GraphDef, max_hw: tuple[int, int], multiple: int) -> dict[str, tuple[tuple, tuple, tuple]]:
    """TensorRT optimisation profile: image inputs from one ``multiple`` up to ``max_hw`` (opt = max)."""
    lo, hi = g.shape_of(multiple, multiple), g.shape_of(*max_hw)
    return {n: (lo[n], hi[n], hi[n]) for n in g.inputs}


class TRTGraph(GraphEngine):
    """A TensorRT engine of the graph's ONNX export (fp16: the ONNX converted to fp16 first)."""

    name = "trt"

    def __init__(self, g: GraphDef, spec: RunnerSpec, max_hw: tuple[int, int], multiple: int,
                 engine_dir: Any = None, workspace_mb: int | None = None, opt_level: int | None = None,
                 verbose: bool = False) -> None:
        from .cuda_streams import cuda_device
        from .engine_cache import EngineCache, EngineKey, slug
        from .onnx_export import convert_to_fp16, onnx_checksum
        from .trt import _make_logger, build_engine, deserialize_engine, gpu_identity, import_tensorrt

        trt = import_tensorrt()
        self.inputs, self.output = g.inputs, g.output
        self.device = cuda_device(spec.device_id, "trt")
        onnx_model = graph_onnx(g)
        precision = "fp32"
        if spec.fp16:
            onnx_model, precision = convert_to_fp16(onnx_model), "fp16-onnx"
        self.profile = _profile_for(g, max_hw, multiple)
        gpu_name, cc = gpu_identity(self.device)
        key = EngineKey(runtime=f"trt-{g.name}", onnx_sha256=onnx_checksum(onnx_model),
                        min_shape=(multiple, multiple), opt_shape=tuple(max_hw), max_shape=tuple(max_hw),
                        precision=precision, trt_version=str(trt.__version__), gpu_name=gpu_name,
                        compute_capability=cc,
                        extra=(("opt_level", str(opt_level)), ("workspace_mb", str(workspace_mb))))
        cache = EngineCache(engine_dir)
        timing = cache.directory / f"timing_trt{trt.__version__}_{slug(gpu_name)}_sm{cc[0]}{cc[1]}.cache"
        runtime = trt.Runtime(_make_logger(trt, verbose))

        def build() -> bytes:
            with torch.cuda.device(self.device):
                return build_engine(onnx_model, None, feedback=False, num_feat=0, scale=1, workspace_mb=workspace_mb,
                                    opt_level=opt_level, timing_cache=timing, verbose=verbose,
                                    input_shapes=self.profile)

        def load(payload: bytes):
            return deserialize_engine(runtime, payload, self.device)

        self.engine = cache.get_or_build(key, build, load)
        self.engine_path = cache.path(key)
        self._runtime = runtime
        self._lock = threading.Lock()
        with torch.cuda.device(self.device):
            self.context = self.engine.create_execution_context()
            self.stream = torch.cuda.Stream(self.device)
        self.precision = precision
        self._version = str(trt.__version__)

    def _dtype(self, name: str) -> torch.dtype:
        return {"FLOAT": torch.float32, "HALF": torch.float16, "INT32": torch.int32,
                "INT64": torch.int64}.get(self.engine.get_tensor_dtype(name).name, torch.float32)

    def run(self, feeds: dict[str, np.ndarray]) -> list[np.ndarray]:
        with self._lock, torch.cuda.device(self.device), torch.cuda.stream(self.stream):
            ctx = self.context
            keep = []
            for n in self.inputs:
                t = torch.from_numpy(np.ascontiguousarray(feeds[n])).to(self.device, self._dtype(n)).contiguous()
                keep.append(t)
                ctx.set_input_shape(n, tuple(t.shape))
                ctx.set_tensor_address(n, t.data_ptr())
            out = torch.empty(tuple(ctx.get_tensor_shape(self.output)), device=self.device,
                              dtype=self._dtype(self.output))
            ctx.set_tensor_address(self.output, out.data_ptr())
            if not ctx.execute_async_v3(self.stream.cuda_stream):
                raise RuntimeError("trt: execute_async_v3 failed (see the TensorRT log)")
            host = out.to("cpu", torch.float32)
            self.stream.synchronize()
        return [host.numpy()]

    def describe(self) -> str:
        return f"trt (TensorRT {self._version}, {torch.cuda.get_device_name(self.device)}, {self.precision})"


class TorchTRTGraph(GraphEngine):
    """``torch_tensorrt.compile`` (dynamo) of the module at the runner's maximum size, cached."""

    name = "torch_trt"

    def __init__(self, g: GraphDef, spec: RunnerSpec, max_hw: tuple[int, int], multiple: int,
                 engine_dir: Any = None) -> None:
        from .cuda_streams import cuda_device
        from .engine_cache import EngineCache, EngineKey
        from .torch_trt import import_torch_tensorrt, load_program, program_bytes
        from .trt import gpu_identity, import_tensorrt, stdout_to_stderr

        trt, ttrt = import_tensorrt(), import_torch_tensorrt()
        self.g = g
        self.device = cuda_device(spec.device_id, "torch_trt")
        self.dtype = torch.float16 if spec.fp16 else torch.float32
        module = copy.deepcopy(g.module).to(self.device, self.dtype).eval().requires_grad_(False)
        h = hashlib.sha256(g.name.encode())
        for k, v in sorted(module.state_dict().items()):
            h.update(k.encode())
            h.update(v.detach().to("cpu", torch.float32).contiguous().numpy().tobytes())
        lo, hi = g.shape_of(multiple, multiple), g.shape_of(*max_hw)
        inputs = [ttrt.Input(min_shape=lo[n], opt_shape=hi[n], max_shape=hi[n],
                             dtype=torch.int64 if n in g.int_inputs else self.dtype) for n in g.inputs]
        example = g.example(*max_hw, device=self.device, dtype=self.dtype)
        gpu_name, cc = gpu_identity(self.device)
        key = EngineKey(runtime=f"torch_trt-{g.name}", onnx_sha256=h.hexdigest(), min_shape=(multiple, multiple),
                        opt_shape=tuple(max_hw), max_shape=tuple(max_hw),
                        precision="fp16" if spec.fp16 else "fp32", trt_version=str(trt.__version__),
                        torch_trt_version=str(ttrt.__version__), gpu_name=gpu_name, compute_capability=cc)

        def build() -> bytes:
            with stdout_to_stderr(), torch.cuda.device(self.device), torch.no_grad():
                compiled = ttrt.compile(module, ir="dynamo", inputs=inputs, enabled_precisions={self.dtype})
                return program_bytes(ttrt, compiled, example)

        def load(payload: bytes):
            return load_program(ttrt, payload, self.device)

        self.module = EngineCache(engine_dir).get_or_build(key, build, load)
        self._lock = threading.Lock()
        self._versions = f"torch-tensorrt {ttrt.__version__}, TensorRT {trt.__version__}"

    def run(self, feeds: dict[str, np.ndarray]) -> list[np.ndarray]:
        args = []
        for n in self.g.inputs:
            t = torch.from_numpy(np.ascontiguousarray(feeds[n])).to(self.device)
            args.append(t if n in self.g.int_inputs else t.to(self.dtype).contiguous())
        with self._lock, torch.no_grad():
            y = self.module(*args)
        return [y.to("cpu", torch.float32).numpy()]

    def describe(self) -> str:
        return f"torch_trt ({self._versions}, {'fp16' if self.dtype == torch.float16 else 'fp32'})"


def _check_options(name: str, options: Mapping[str, Any], auto: bool) -> dict[str, Any]:
    accepted = GRAPH_OPTIONS[name]
    unknown = sorted(set(options) - set(accepted))
    anywhere = {o for opts in GRAPH_OPTIONS.values() for o in opts}
    if auto and set(unknown) - anywhere:  # not meant for any backend of the auto order: a typo
        raise ValueError(f"no backend takes option(s) {', '.join(sorted(set(unknown) - anywhere))}; "
                         f"accepted: {', '.join(sorted(anywhere))}")
    if unknown and auto:
        log.info(f"backend=auto chose {name!r}, which ignores {', '.join(unknown)}")
        return {k: v for k, v in options.items() if k in accepted}
    if unknown:
        raise ValueError(f"backend {name!r} does not take option(s) {', '.join(unknown)}; "
                         f"accepted: {', '.join(accepted) or 'none'}")
    return dict(options)


def open_graph(backend: str, g: GraphDef, spec: RunnerSpec, max_hw: tuple[int, int], multiple: int = 1,
               **options) -> GraphEngine:
    """An engine for graph ``g`` on ``backend`` (``"auto"``: TensorRT, else CUDA, else CPU).

    ``max_hw`` is the largest image the engine will see (the padded frame, or the tile size) and
    ``multiple`` the size multiple of every image (TensorRT's profile runs from one multiple to
    ``max_hw``). Raises :class:`BackendUnavailable` or ``ValueError`` with a short message.
    """
    from . import BACKENDS, resolve_auto

    auto = backend == "auto"
    name = resolve_auto() if auto else backend
    if name not in BACKENDS:
        raise BackendUnavailable(f"unknown backend {backend!r}; accepted: auto, {', '.join(sorted(BACKENDS))}")
    options = _check_options(name, options, auto)
    threads = options.get("threads")
    if threads is not None and (isinstance(threads, bool) or not isinstance(threads, int) or threads < 1):
        raise ValueError(f"threads must be an int >= 1, got {threads!r}")
    precision = options.get("precision", "auto")
    if "precision" in options:
        from .precision import check

        check(precision)  # before any engine is built: one message naming the accepted values
    if name == "cpu":
        from .cpu import ENGINES, default_engine

        engine = options.get("engine") or default_engine()
        if engine not in ENGINES:
            raise ValueError(f"cpu: engine must be one of {', '.join(ENGINES)}, got {engine!r}")
        if engine in ("torch", "torch_nchw"):
            return TorchGraph(g, "cpu", channels_last=(engine == "torch"), threads=threads, precision=precision)
        name = engine
    if name == "ort":
        from .ort import ORTGraph

        return ORTGraph(graph_onnx(g), threads, precision)
    if name == "openvino":
        from .openvino import OpenVINOGraph

        return OpenVINOGraph(graph_onnx(g), threads, precision, g.keep_f32_ops)
    if name == "cuda":
        from .cuda_streams import cuda_device

        dev = cuda_device(spec.device_id, "cuda")
        return TorchGraph(g, dev, torch.float16 if spec.fp16 else torch.float32,
                          channels_last=bool(options.get("channels_last", True)))
    if name == "trt":
        return TRTGraph(g, spec, max_hw, multiple, **options)
    return TorchTRTGraph(g, spec, max_hw, multiple, **options)
