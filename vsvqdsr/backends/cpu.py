"""CPU backend (``backend="cpu"``): the fastest correct CPU engine measured for this network.

Engines (option ``engine``), all fp32 and within 1e-4 of the torch reference:

* ``"openvino"``: OpenVINO CPU plugin on the exported ONNX step (the measured winner; see README
  and ``vqdsr bench``), used when ``openvino`` is installed;
* ``"ort"``: ONNX Runtime CPU (the fallback default; onnxruntime is a dependency);
* ``"torch"``: torch eager, channels_last (oneDNN); ``"torch_nchw"``: torch eager, NCHW.

There is no int8 path: a static QDQ int8 model (VNNI, ONNX Runtime / OpenVINO) was built and
measured at 1.8x the fp32 throughput with 0.14-0.16 dB PSNR-Y lost against ground truth, short of
the 2x / 0.1 dB it had to reach to be kept (README, "CPU").
Half precision is not used on the CPU (no fast fp16 convolution here); RGBH clips are computed in
fp32 and returned as half floats.
"""
from __future__ import annotations

import torch

from .base import RunnerSpec, StepRunner
from .torch_runner import TorchRunner

__all__ = ["OPTIONS", "CPURunner", "ENGINES", "default_engine", "create"]

ENGINES: tuple[str, ...] = ("openvino", "ort", "torch", "torch_nchw")


class CPURunner(TorchRunner):
    """torch eager on the CPU (``channels_last=False`` gives the peers' NCHW baseline)."""

    name = "cpu"

    def __init__(self, net, desc, spec: RunnerSpec, channels_last: bool = True) -> None:
        super().__init__(net, desc, spec, device="cpu", dtype=torch.float32, channels_last=channels_last)
        self._layout = "channels_last" if channels_last else "NCHW"

    def describe(self) -> str:
        return f"cpu (torch {torch.__version__}, {self._layout}, fp32, {torch.get_num_threads()} threads)"


def default_engine() -> str:
    """The fastest installed engine (order measured on the project's AVX-512 CPU)."""
    from . import openvino, ort

    if openvino.available():
        return "openvino"
    if ort.available():
        return "ort"
    return "torch"


#: Options ``create`` accepts (``backends.create`` checks them).
OPTIONS: tuple[str, ...] = ("engine", "threads")


def create(net, desc, spec: RunnerSpec, engine: str | None = None, **options) -> StepRunner:
    """Build a CPU runner.

    Args:
        engine: one of :data:`ENGINES`; ``None`` = :func:`default_engine`.
        options: passed to the engine (``threads``: CPU threads, default all cores).
    """
    engine = engine or default_engine()
    if engine not in ENGINES:
        raise ValueError(f"cpu: engine must be one of {', '.join(ENGINES)}, got {engine!r}")
    if engine in ("torch", "torch_nchw"):
        if options.get("threads"):
            torch.set_num_threads(int(options["threads"]))
        return CPURunner(net, desc, spec, channels_last=(engine == "torch"))
    if engine == "openvino":
        from .openvino import OpenVINORunner
        return OpenVINORunner(net, desc, spec, **options)
    from .ort import ORTRunner
    return ORTRunner(net, desc, spec, **options)
