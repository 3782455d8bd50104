"""CPU backend (``backend="cpu"``): torch with channels_last on oneDNN, fp32.

Half precision is not used on the CPU (no fast fp16 convolution here); RGBH clips are computed in
fp32 and returned as half floats.
"""
from __future__ import annotations

import torch

from .base import RunnerSpec
from .torch_runner import TorchRunner

__all__ = ["CPURunner", "create"]


class CPURunner(TorchRunner):
    name = "cpu"

    def __init__(self, net, desc, spec: RunnerSpec) -> None:
        super().__init__(net, desc, spec, device="cpu", dtype=torch.float32, channels_last=True)

    def describe(self) -> str:
        return f"cpu (torch {torch.__version__}, channels_last, fp32, {torch.get_num_threads()} threads)"


def create(net, desc, spec: RunnerSpec, **options) -> CPURunner:
    return CPURunner(net, desc, spec)
