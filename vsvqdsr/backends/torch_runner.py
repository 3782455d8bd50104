"""Shared torch implementation of :class:`StepRunner` (used by the CPU and CUDA backends)."""
from __future__ import annotations

from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from .base import RunnerSpec, StepRunner

__all__ = ["TorchRunner", "pad_to"]


def pad_to(x: torch.Tensor, hp: int, wp: int) -> torch.Tensor:
    """Pad ``B,C,h,w`` at the bottom/right to ``hp, wp`` (reflect where possible, else replicate)."""
    h, w = x.shape[-2:]
    ph, pw = hp - h, wp - w
    if ph == 0 and pw == 0:
        return x
    mode = "reflect" if ph < h and pw < w else "replicate"
    return F.pad(x, (0, pw, 0, ph), mode=mode)


class TorchRunner(StepRunner):
    """Eager torch on one device; ``channels_last`` memory format (faster convolutions on oneDNN)."""

    name = "torch"

    def __init__(self, net, desc, spec: RunnerSpec, device: str | torch.device = "cpu",
                 dtype: torch.dtype = torch.float32, channels_last: bool = True) -> None:
        super().__init__(net, desc, spec)
        self.device = torch.device(device)
        self.dtype = dtype
        self.memory_format = torch.channels_last if channels_last else torch.contiguous_format
        self.net = net.to(device=self.device, dtype=dtype, memory_format=self.memory_format).eval()

    def _fmt(self, x: torch.Tensor) -> torch.Tensor:
        return x.contiguous(memory_format=self.memory_format)

    def upload(self, frame: np.ndarray) -> torch.Tensor:
        t = torch.from_numpy(np.ascontiguousarray(frame)).to(self.device, self.dtype, non_blocking=True)
        return self._fmt(pad_to(t.unsqueeze(0), *self.padded))

    def initial_state(self) -> tuple[torch.Tensor, torch.Tensor | None]:
        hp, wp = self.padded
        like = torch.empty(1, 3, hp, wp, device=self.device, dtype=self.dtype)
        state, prev_out = self.net.initial_state(like)
        return self._fmt(state), (self._fmt(prev_out) if prev_out is not None else None)

    @torch.inference_mode()
    def step(self, prev: Any, cur: Any, nxt: Any, state: Any, prev_out: Any) -> tuple[Any, Any]:
        out, state = self.net.step(prev, cur, nxt, state, prev_out)
        self._counted()
        return out, state

    def download(self, out: torch.Tensor) -> np.ndarray:
        h, w = self.spec.height * self.scale, self.spec.width * self.scale
        host = out[0, :, :h, :w].to("cpu", torch.float32 if self.spec.host_dtype == np.float32 else torch.float16)
        return np.ascontiguousarray(host.numpy())
