"""CPU backend (``backend="cpu"``): the fastest correct CPU engine measured for this network.

Engines (option ``engine``), all within 1e-4 of the torch reference in f32:

* ``"openvino"``: OpenVINO CPU plugin on the exported ONNX step (the measured winner; see docs/runtimes.md
  and ``vqdsr bench``), used when ``openvino`` is installed;
* ``"ort"``: ONNX Runtime CPU (the fallback default; onnxruntime is a dependency);
* ``"torch"``: torch eager, channels_last (oneDNN); ``"torch_nchw"``: torch eager, NCHW.

There is no int8 path: static QDQ int8 models (per-channel weights, calibrated on training frames,
run by OpenVINO) were measured at 1.5-1.84x the f32 step, and the one reaching 1.8x lost 0.32 dB
PSNR-Y against ground truth (0.14-0.16 dB in an earlier measurement), short of the 1.8x and 0.1 dB
together that keeping it needs (docs/runtimes.md, "CPU precision").
Option ``precision`` (:mod:`.precision`): ``"auto"`` (bf16 on CPUs with AMX-BF16, else f32),
``"f32"`` or ``"bf16"`` (OpenVINO, torch; onnxruntime is f32 only). Half precision (``fp16``) is not
used on the CPU (no fast fp16 convolution here); RGBH clips are computed in the CPU precision and
returned as half floats.
"""
from __future__ import annotations

import torch

from .base import RunnerSpec, StepRunner
from .precision import resolve
from .torch_runner import TorchRunner

__all__ = ["OPTIONS", "CPURunner", "ENGINES", "default_engine", "create"]

ENGINES: tuple[str, ...] = ("openvino", "ort", "torch", "torch_nchw")


class CPURunner(TorchRunner):
    """torch eager on the CPU (``channels_last=False`` gives the peers' NCHW baseline)."""

    name = "cpu"

    def __init__(self, net, desc, spec: RunnerSpec, channels_last: bool = True, precision: str = "f32") -> None:
        self.precision = resolve(precision, "torch")
        dtype = torch.bfloat16 if self.precision == "bf16" else torch.float32
        super().__init__(net, desc, spec, device="cpu", dtype=dtype, channels_last=channels_last)
        self._layout = "channels_last" if channels_last else "NCHW"

    def describe(self) -> str:
        return (f"cpu (torch {torch.__version__}, {self._layout}, {self.precision}, "
                f"{torch.get_num_threads()} threads)")

    def nbytes_per_step(self) -> int:
        return super().nbytes_per_step() // (2 if self.precision == "bf16" else 1)


def default_engine() -> str:
    """The fastest installed engine (order measured on the project's AVX-512 CPU)."""
    from . import openvino, ort

    if openvino.available():
        return "openvino"
    if ort.available():
        return "ort"
    return "torch"


#: Options ``create`` accepts (``backends.create`` checks them).
OPTIONS: tuple[str, ...] = ("engine", "threads", "precision")


def create(net, desc, spec: RunnerSpec, engine: str | None = None, **options) -> StepRunner:
    """Build a CPU runner.

    Args:
        engine: one of :data:`ENGINES`; ``None`` = :func:`default_engine`.
        options: passed to the engine (``threads``: CPU threads, default all cores; ``precision``).
    """
    engine = engine or default_engine()
    if engine not in ENGINES:
        raise ValueError(f"cpu: engine must be one of {', '.join(ENGINES)}, got {engine!r}")
    if engine in ("torch", "torch_nchw"):
        if options.get("threads"):
            torch.set_num_threads(int(options["threads"]))
        return CPURunner(net, desc, spec, channels_last=(engine == "torch"),
                         precision=options.get("precision", "auto"))
    if engine == "openvino":
        from .openvino import OpenVINORunner
        return OpenVINORunner(net, desc, spec, **options)
    from .ort import ORTRunner
    return ORTRunner(net, desc, spec, **options)
