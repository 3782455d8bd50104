"""TensorRT backend (``backend="trt"``): engines built from the exported ONNX step.

Build (documented TensorRT Python API): ONNX parser -> network, one optimisation profile
(min/opt/max; by default all equal to the runner's padded size, which gives the fastest engine),
a timing cache kept next to the engines, build log and progress on stderr (a custom logger; the
process's stdout file descriptor is pointed at stderr while the builder runs, because vspipe writes
video to stdout). fp16: TensorRT >= 11 has no builder fp16 flag, so the ONNX is converted to fp16
first (:func:`~.onnx_export.convert_to_fp16`); with TensorRT 10 the builder flag is used
(``fp16_mode="flag"``, default there) or the same fp16 ONNX (``fp16_mode="onnx"``).

Engines are cached by :class:`~.engine_cache.EngineCache` (``engine_dir`` option); the key holds the
ONNX checksum, the profile, the precision, the TensorRT version, the GPU name and compute capability.

Run: ``execute_async_v3`` on the runner's own CUDA streams, one execution context per stream
(``num_streams`` chains at once), pinned host staging for uploads/downloads (:mod:`.cuda_streams`).
"""
from __future__ import annotations

import contextlib
import os
import sys
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from .base import BackendUnavailable, RunnerSpec
from .cuda_streams import GPURunnerBase, SlotPool, cuda_device
from .engine_cache import EngineCache, EngineKey, slug
from .onnx_export import atomic_write_bytes, convert_to_fp16, export_step_bytes, input_names, onnx_checksum
from ..log import get_logger

log = get_logger(__name__)

__all__ = ["OPTIONS", "INSTALL_HINT", "TRTRunner", "available", "create", "import_tensorrt", "build_engine",
           "engine_key", "stdout_to_stderr"]

INSTALL_HINT = "pip install 'vsvqdsr[trt]'"


def import_tensorrt():
    """Import ``tensorrt`` or raise :class:`BackendUnavailable` saying how to install it."""
    try:
        import tensorrt
    except ImportError as e:
        raise BackendUnavailable(f"trt: TensorRT is not installed ({e}); install it with {INSTALL_HINT} "
                                 f"(needs an NVIDIA GPU and driver), or use backend='cuda' or 'cpu'") from e
    return tensorrt


def available() -> bool:
    try:
        import tensorrt  # noqa: F401
    except ImportError:
        return False
    return bool(torch.cuda.is_available())


def trt_major(version: str) -> int:
    try:
        return int(version.split(".")[0])
    except ValueError:
        return 0


_fd_lock = threading.Lock()


@contextlib.contextmanager
def stdout_to_stderr():
    """Point file descriptor 1 (and ``sys.stdout``) at stderr for the duration (native libraries
    that print would otherwise corrupt ``vspipe ... -`` output)."""
    with _fd_lock:
        sys.stdout.flush() if sys.stdout else None
        saved = os.dup(1)
        try:
            os.dup2(2, 1)
            with contextlib.redirect_stdout(sys.stderr):
                yield
        finally:
            os.dup2(saved, 1)
            os.close(saved)


def _make_logger(trt, verbose: bool):
    class StderrLogger(trt.ILogger):
        def __init__(self) -> None:
            trt.ILogger.__init__(self)

        def log(self, severity, msg) -> None:
            if verbose or int(severity) <= int(trt.ILogger.Severity.WARNING):
                log.info(f"trt [{getattr(severity, 'name', severity)}]: {msg}")

    return StderrLogger()


def _progress_monitor(trt):
    """A tqdm progress monitor on stderr (TensorRT >= 10 has ``IProgressMonitor``)."""
    if not hasattr(trt, "IProgressMonitor"):
        return None
    from tqdm import tqdm

    class Monitor(trt.IProgressMonitor):
        def __init__(self) -> None:
            trt.IProgressMonitor.__init__(self)
            self.bars: dict[str, Any] = {}

        def phase_start(self, phase_name, parent_phase, num_steps) -> None:
            self.bars[phase_name] = tqdm(total=num_steps, desc=f"TensorRT {phase_name}", file=sys.stderr,
                                         leave=parent_phase is None, position=len(self.bars))

        def step_complete(self, phase_name, step) -> bool:
            bar = self.bars.get(phase_name)
            if bar is not None:
                bar.update(step + 1 - bar.n)
            return True  # never cancel

        def phase_finish(self, phase_name) -> None:
            bar = self.bars.pop(phase_name, None)
            if bar is not None:
                bar.close()

    return Monitor()


@dataclass(frozen=True)
class Profile:
    """LR ``(height, width)`` triple of the optimisation profile (multiples of 4)."""

    min: tuple[int, int]
    opt: tuple[int, int]
    max: tuple[int, int]


def _io_shapes(name: str, hw: tuple[int, int], num_feat: int, scale: int) -> tuple[int, ...]:
    h, w = hw
    if name == "state":
        return (1, num_feat, h, w)
    if name == "prev_out":
        return (1, 3, h * scale, w * scale)
    return (1, 3, h, w)


def deserialize_engine(runtime, payload: bytes, device):
    """A serialised TensorRT engine (what the engine cache stores) deserialised on ``device``."""
    with torch.cuda.device(device):
        engine = runtime.deserialize_cuda_engine(payload)
    if engine is None:
        raise RuntimeError("deserialize_cuda_engine returned None")
    return engine


def build_engine(onnx_model: bytes, profile: Profile | None, *, feedback: bool, num_feat: int, scale: int,
                 fp16_flag: bool = False, workspace_mb: int | None = None, opt_level: int | None = None,
                 timing_cache: Path | None = None, verbose: bool = False,
                 input_shapes: dict[str, tuple[tuple, tuple, tuple]] | None = None) -> bytes:
    """Build a serialized TensorRT engine from ONNX bytes (see the module docstring).

    ``input_shapes`` (input name -> min/opt/max shapes) replaces the VSR step's profile for other
    graphs (the degrader, the SISR models); ``profile`` is then ignored.
    """
    trt = import_tensorrt()
    from filelock import FileLock

    logger = _make_logger(trt, verbose)
    with stdout_to_stderr():
        builder = trt.Builder(logger)
        network = builder.create_network(0)  # explicit batch is the only mode in TensorRT >= 10
        parser = trt.OnnxParser(network, logger)
        if not parser.parse(onnx_model):
            errors = "; ".join(str(parser.get_error(i)) for i in range(parser.num_errors))
            raise RuntimeError(f"trt: the ONNX parser rejected the graph: {errors}")
        config = builder.create_builder_config()
        if workspace_mb:
            config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, int(workspace_mb) << 20)
        if opt_level is not None:
            config.builder_optimization_level = int(opt_level)
        if fp16_flag:
            if not hasattr(trt.BuilderFlag, "FP16"):
                raise RuntimeError(f"trt: TensorRT {trt.__version__} has no builder fp16 flag; "
                                   "use fp16_mode='onnx'")
            config.set_flag(trt.BuilderFlag.FP16)
        prof = builder.create_optimization_profile()
        if input_shapes is not None:
            for name, (lo, opt, hi) in input_shapes.items():
                prof.set_shape(name, lo, opt, hi)
        else:
            for name in input_names(feedback):
                prof.set_shape(name, *(_io_shapes(name, hw, num_feat, scale)
                                       for hw in (profile.min, profile.opt, profile.max)))
        config.add_optimization_profile(prof)
        monitor = _progress_monitor(trt)
        if monitor is not None:
            config.progress_monitor = monitor
        cache_lock = None
        cache_data = b""
        if timing_cache is not None:
            cache_lock = FileLock(str(timing_cache) + ".lock")
            with cache_lock:
                if timing_cache.exists():
                    cache_data = timing_cache.read_bytes()
        cache = config.create_timing_cache(cache_data)
        config.set_timing_cache(cache, ignore_mismatch=True)
        log.info(f"trt: building engine (TensorRT {trt.__version__}, profile {input_shapes or profile}, "
                 f"{'fp16 flag' if fp16_flag else 'types from ONNX'}); this takes minutes once per "
                 "model, size and GPU")
        serialized = builder.build_serialized_network(network, config)
        if serialized is None:
            raise RuntimeError("trt: engine build failed (see the TensorRT log above)")
        if timing_cache is not None and cache_lock is not None:
            with cache_lock:
                atomic_write_bytes(timing_cache, bytes(config.get_timing_cache().serialize()))
        return bytes(serialized)


def gpu_identity(device: torch.device) -> tuple[str, tuple[int, int]]:
    props = torch.cuda.get_device_properties(device)
    return props.name, (int(props.major), int(props.minor))


def engine_key(runtime: str, onnx_model: bytes, profile: Profile, precision: str, trt_version: str,
               gpu_name: str, compute_capability: tuple[int, int], torch_trt_version: str = "",
               extra: tuple[tuple[str, str], ...] = ()) -> EngineKey:
    return EngineKey(runtime=runtime, onnx_sha256=onnx_checksum(onnx_model), min_shape=profile.min,
                     opt_shape=profile.opt, max_shape=profile.max, precision=precision,
                     trt_version=trt_version, torch_trt_version=torch_trt_version, gpu_name=gpu_name,
                     compute_capability=compute_capability, extra=extra)


_TRT_TO_TORCH = {"FLOAT": torch.float32, "HALF": torch.float16}


@dataclass
class _Slot:
    stream: Any
    context: Any


class TRTRunner(GPURunnerBase):
    name = "trt"

    def __init__(self, net, desc, spec: RunnerSpec, engine_dir: str | os.PathLike | None = None,
                 fp16_mode: str | None = None, dynamic_shapes: bool = False,
                 max_shape: tuple[int, int] | None = None, workspace_mb: int | None = None,
                 opt_level: int | None = None, verbose: bool = False) -> None:
        trt = import_tensorrt()
        super().__init__(net, desc, spec)
        self.device = cuda_device(spec.device_id, "trt")
        self.trt_version = str(trt.__version__)
        major = trt_major(self.trt_version)
        if fp16_mode is None:
            fp16_mode = "onnx" if major >= 11 else "flag"
        if fp16_mode not in ("onnx", "flag"):
            raise ValueError(f"trt: fp16_mode must be 'onnx' or 'flag', got {fp16_mode!r}")
        if spec.fp16 and fp16_mode == "flag" and major >= 11:
            raise ValueError(f"trt: TensorRT {self.trt_version} has no builder fp16 flag; use fp16_mode='onnx'")
        hp, wp = self.padded
        if dynamic_shapes:
            mx = max_shape or (hp, wp)
            mx = (max(mx[0], hp), max(mx[1], wp))
            profile = Profile((16, 16), (hp, wp), (-(-mx[0] // 4) * 4, -(-mx[1] // 4) * 4))
        else:
            profile = Profile((hp, wp), (hp, wp), (hp, wp))
        onnx_model = export_step_bytes(net)
        precision = "fp32"
        if spec.fp16:
            precision = f"fp16-{fp16_mode}"
            if fp16_mode == "onnx":
                onnx_model = convert_to_fp16(onnx_model)
        gpu_name, cc = gpu_identity(self.device)
        extra = (("opt_level", str(opt_level)), ("workspace_mb", str(workspace_mb)))
        key = engine_key("trt", onnx_model, profile, precision, self.trt_version, gpu_name, cc, extra=extra)
        cache = EngineCache(engine_dir)
        timing = cache.directory / f"timing_trt{self.trt_version}_{slug(gpu_name)}_sm{cc[0]}{cc[1]}.cache"
        logger = _make_logger(trt, verbose)
        runtime = trt.Runtime(logger)

        def build() -> bytes:
            with torch.cuda.device(self.device):
                return build_engine(onnx_model, profile, feedback=self.feedback, num_feat=self.num_feat,
                                    scale=self.scale, fp16_flag=(spec.fp16 and fp16_mode == "flag"),
                                    workspace_mb=workspace_mb, opt_level=opt_level, timing_cache=timing,
                                    verbose=verbose)

        def load(payload: bytes):
            return deserialize_engine(runtime, payload, self.device)

        self.engine = cache.get_or_build(key, build, load)
        self.engine_path = cache.path(key)
        self._runtime = runtime
        self._in_names = input_names(self.feedback)
        self.dtype = _TRT_TO_TORCH.get(self.engine.get_tensor_dtype("cur").name, torch.float32)
        self._out_dtype = _TRT_TO_TORCH.get(self.engine.get_tensor_dtype("out").name, torch.float32)
        with torch.cuda.device(self.device):
            self._init_copy_streams()
            slots = []
            for _ in range(int(spec.num_streams)):
                ctx = self.engine.create_execution_context()
                if ctx is None:
                    raise RuntimeError("trt: could not create an execution context (GPU memory?)")
                slots.append(_Slot(torch.cuda.Stream(self.device), ctx))
        self.slots = SlotPool(slots)
        self.precision = precision

    def _compute(self, slot: _Slot, inputs: list[torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
        ctx = slot.context
        keep = []
        for name, t in zip(self._in_names, inputs):
            t = t.to(self.dtype).contiguous()
            keep.append(t)
            ctx.set_input_shape(name, tuple(t.shape))
            ctx.set_tensor_address(name, t.data_ptr())
        hp, wp = inputs[1].shape[-2:]
        out = torch.empty(1, 3, hp * self.scale, wp * self.scale, device=self.device, dtype=self._out_dtype)
        state = torch.empty(1, self.num_feat, hp, wp, device=self.device, dtype=self._out_dtype)
        ctx.set_tensor_address("out", out.data_ptr())
        ctx.set_tensor_address("new_state", state.data_ptr())
        if not ctx.execute_async_v3(slot.stream.cuda_stream):
            raise RuntimeError("trt: execute_async_v3 failed (see the TensorRT log)")
        return out, state

    def describe(self) -> str:
        return (f"trt (TensorRT {self.trt_version}, {torch.cuda.get_device_name(self.device)}, "
                f"{self.precision}, {self.spec.num_streams} stream(s))")


#: Options ``create`` accepts (``backends.create`` checks them).
OPTIONS: tuple[str, ...] = ("engine_dir", "fp16_mode", "dynamic_shapes", "max_shape", "workspace_mb", "opt_level", "verbose")


def create(net, desc, spec: RunnerSpec, **options) -> TRTRunner:
    """Options: ``engine_dir``, ``fp16_mode`` ('onnx'|'flag'), ``dynamic_shapes``, ``max_shape``,
    ``workspace_mb``, ``opt_level``, ``verbose``."""
    return TRTRunner(net, desc, spec, **options)
