"""torch-tensorrt backend (``backend="torch_trt"``): the design's second TensorRT route.

The step module is compiled with ``torch_tensorrt.compile(..., ir="dynamo")`` at the runner's fixed
padded size, saved with ``torch_tensorrt.save`` and cached by :class:`~.engine_cache.EngineCache`;
the key holds a checksum of the weights, the shape, the precision, the TensorRT **and**
torch-tensorrt versions, the GPU name and its compute capability. Same stream and pinned-memory
discipline as the other GPU backends. Without torch-tensorrt: :class:`BackendUnavailable` saying
``pip install 'vsvqdsr[trt]'``.
"""
from __future__ import annotations

import copy
import hashlib
import os
import tempfile
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from .base import BackendUnavailable, RunnerSpec
from .cuda_streams import GPURunnerBase, SlotPool, cuda_device
from .engine_cache import EngineCache, EngineKey
from .trt import INSTALL_HINT, gpu_identity, import_tensorrt, stdout_to_stderr

__all__ = ["OPTIONS", "TorchTRTRunner", "available", "create", "weights_checksum"]


def import_torch_tensorrt():
    try:
        import torch_tensorrt
    except ImportError as e:
        raise BackendUnavailable(f"torch_trt: torch-tensorrt is not installed ({e}); install it with "
                                 f"{INSTALL_HINT} (needs an NVIDIA GPU), or use backend='cuda' or 'cpu'") from e
    return torch_tensorrt


def available() -> bool:
    try:
        import torch_tensorrt  # noqa: F401
    except ImportError:
        return False
    return bool(torch.cuda.is_available())


def weights_checksum(net) -> str:
    """SHA-256 over the network's parameter names, shapes and fp32 values, plus its variant."""
    h = hashlib.sha256(f"feedback={net.feedback};scale={net.scale};feat={net.num_feat}".encode())
    for k, v in sorted(net.state_dict().items()):
        h.update(k.encode())
        h.update(str(tuple(v.shape)).encode())
        h.update(v.detach().to("cpu", torch.float32).contiguous().numpy().tobytes())
    return h.hexdigest()


@dataclass
class _Slot:
    stream: Any



def program_bytes(ttrt, compiled, example) -> bytes:
    """A compiled torch-tensorrt module serialised as an exported program (what the engine cache stores)."""
    with tempfile.TemporaryDirectory(prefix="vsvqdsr-ttrt-") as tmp:
        path = Path(tmp) / "module.ep"
        try:  # the keyword was renamed across torch-tensorrt releases
            ttrt.save(compiled, str(path), output_format="exported_program", arg_inputs=list(example))
        except TypeError:
            ttrt.save(compiled, str(path), output_format="exported_program", inputs=list(example))
        return path.read_bytes()


def load_program(ttrt, payload: bytes, device):
    """The module :func:`program_bytes` serialised, loaded onto ``device``."""
    with tempfile.TemporaryDirectory(prefix="vsvqdsr-ttrt-") as tmp:
        path = Path(tmp) / "module.ep"
        path.write_bytes(payload)
        with torch.cuda.device(device):
            return ttrt.load(str(path)).module()

class TorchTRTRunner(GPURunnerBase):
    name = "torch_trt"

    def __init__(self, net, desc, spec: RunnerSpec, engine_dir: str | os.PathLike | None = None) -> None:
        trt = import_tensorrt()
        ttrt = import_torch_tensorrt()
        super().__init__(net, desc, spec)
        from ..nets.vsr import StepModule

        self.device = cuda_device(spec.device_id, "torch_trt")
        self.dtype = torch.float16 if spec.fp16 else torch.float32
        hp, wp = self.padded
        gpu_name, cc = gpu_identity(self.device)
        key = EngineKey(runtime="torch_trt", onnx_sha256=weights_checksum(net), min_shape=(hp, wp),
                        opt_shape=(hp, wp), max_shape=(hp, wp), precision="fp16" if spec.fp16 else "fp32",
                        trt_version=str(trt.__version__), torch_trt_version=str(ttrt.__version__),
                        gpu_name=gpu_name, compute_capability=cc)
        module = StepModule(copy.deepcopy(net)).to(self.device, self.dtype).eval().requires_grad_(False)
        shapes = [(1, 3, hp, wp)] * 3 + [(1, self.num_feat, hp, wp)]
        if self.feedback:
            shapes.append((1, 3, hp * self.scale, wp * self.scale))
        example = tuple(torch.zeros(s, device=self.device, dtype=self.dtype) for s in shapes)

        def build() -> bytes:
            with stdout_to_stderr(), torch.cuda.device(self.device), torch.no_grad():
                compiled = ttrt.compile(module, ir="dynamo", inputs=list(example),
                                        enabled_precisions={self.dtype})
                return program_bytes(ttrt, compiled, example)

        def load(payload: bytes):
            return load_program(ttrt, payload, self.device)

        self.module = EngineCache(engine_dir).get_or_build(key, build, load)
        self._versions = f"torch-tensorrt {ttrt.__version__}, TensorRT {trt.__version__}"
        self._lock = threading.Lock()  # one compiled module; calls are serialised
        with torch.cuda.device(self.device):
            self._init_copy_streams()
            self.slots = SlotPool([_Slot(torch.cuda.Stream(self.device)) for _ in range(int(spec.num_streams))])

    def _compute(self, slot: _Slot, inputs: list[torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
        with self._lock:
            out, state = self.module(*[t.contiguous() for t in inputs])
        return out, state

    def describe(self) -> str:
        return f"torch_trt ({self._versions}, {'fp16' if self.spec.fp16 else 'fp32'})"


#: Options ``create`` accepts (``backends.create`` checks them).
OPTIONS: tuple[str, ...] = ("engine_dir",)


def create(net, desc, spec: RunnerSpec, **options) -> TorchTRTRunner:
    """Options: ``engine_dir``."""
    return TorchTRTRunner(net, desc, spec, **options)
