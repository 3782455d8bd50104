"""torch CUDA backend (``backend="cuda"``): eager torch on one GPU.

fp16 when asked (``RunnerSpec.fp16``, i.e. RGBH clips or ``fp16=True``), channels_last, inference
mode, the runner's own CUDA streams (``num_streams`` slots for concurrent chains) and pinned host
staging (see :mod:`.cuda_streams`). ``cuda_graphs=True`` captures one CUDA graph per slot at the
runner's fixed padded size and replays it (removes the per-kernel launch overhead, which matters at
small frame sizes).
"""
from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Any

import torch

from .base import RunnerSpec
from .cuda_streams import GPURunnerBase, SlotPool, cuda_device

__all__ = ["OPTIONS", "CUDARunner", "available", "create"]


def available() -> bool:
    return bool(torch.cuda.is_available())


@dataclass
class _Slot:
    stream: Any
    graph: Any = None
    static_in: list = field(default_factory=list)
    static_out: tuple = ()


class CUDARunner(GPURunnerBase):
    name = "cuda"

    def __init__(self, net, desc, spec: RunnerSpec, cuda_graphs: bool = False, channels_last: bool = True) -> None:
        super().__init__(net, desc, spec)
        self.device = cuda_device(spec.device_id, "cuda")
        self.dtype = torch.float16 if spec.fp16 else torch.float32
        self.memory_format = torch.channels_last if channels_last else torch.contiguous_format
        self.net = copy.deepcopy(net).to(device=self.device, dtype=self.dtype,
                                         memory_format=self.memory_format).eval().requires_grad_(False)
        self.cuda_graphs = bool(cuda_graphs)
        with torch.cuda.device(self.device):
            self._init_copy_streams()
            slots = [_Slot(torch.cuda.Stream(self.device)) for _ in range(int(spec.num_streams))]
            if self.cuda_graphs:
                for slot in slots:
                    self._capture(slot)
        self.slots = SlotPool(slots)

    def _shapes(self) -> list[tuple[int, ...]]:
        hp, wp = self.padded
        s = self.scale
        shapes = [(1, 3, hp, wp)] * 3 + [(1, self.num_feat, hp, wp)]
        return shapes + ([(1, 3, s * hp, s * wp)] if self.feedback else [])

    def _capture(self, slot: _Slot) -> None:
        slot.static_in = [self._fmt(torch.zeros(sh, device=self.device, dtype=self.dtype)) for sh in self._shapes()]
        args = slot.static_in + ([] if self.feedback else [None])
        torch.cuda.synchronize(self.device)  # the zeros above were made on the default stream
        with torch.cuda.stream(slot.stream), torch.inference_mode():
            for _ in range(2):  # warm-up (cuDNN algorithm choice, allocator) outside the graph
                self.net.step(*args)
        slot.stream.synchronize()
        slot.graph = torch.cuda.CUDAGraph()
        with torch.inference_mode(), torch.cuda.graph(slot.graph, stream=slot.stream):
            slot.static_out = self.net.step(*args)
        slot.stream.synchronize()

    def _compute(self, slot: _Slot, inputs: list[torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
        if slot.graph is None:
            args = inputs + ([] if self.feedback else [None])
            return self.net.step(*args)
        for dst, src in zip(slot.static_in, inputs):
            dst.copy_(src)
        slot.graph.replay()
        out, state = slot.static_out
        # the graph's outputs are overwritten by the next replay: hand out copies
        return out.clone(memory_format=self.memory_format), state.clone(memory_format=self.memory_format)

    def describe(self) -> str:
        name = torch.cuda.get_device_name(self.device)
        extra = ", CUDA graphs" if self.cuda_graphs else ""
        return (f"cuda (torch {torch.__version__}, {name}, {'fp16' if self.spec.fp16 else 'fp32'}, "
                f"channels_last, {self.spec.num_streams} stream(s){extra})")


#: Options ``create`` accepts (``backends.create`` checks them).
OPTIONS: tuple[str, ...] = ("cuda_graphs", "channels_last")


def create(net, desc, spec: RunnerSpec, **options) -> CUDARunner:
    """Options: ``cuda_graphs`` (bool, default False), ``channels_last`` (bool, default True)."""
    return CUDARunner(net, desc, spec, **options)
