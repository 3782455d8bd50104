"""Shared host-memory (numpy) implementation of :class:`StepRunner` for CPU inference engines.

Device objects are C-contiguous float32 numpy arrays in ``1,C,H,W`` layout; subclasses only
implement :meth:`HostRunner._run` (one step of the exported graph).
"""
from __future__ import annotations

import abc
from typing import Any

import numpy as np

from .base import RunnerSpec, StepRunner

__all__ = ["HostRunner", "pad_host"]


def pad_host(x: np.ndarray, hp: int, wp: int) -> np.ndarray:
    """Pad ``...,h,w`` at the bottom/right to ``hp, wp``: reflect where possible, else replicate
    (the same rule as :func:`~.torch_runner.pad_to`)."""
    h, w = x.shape[-2:]
    ph, pw = hp - h, wp - w
    if ph == 0 and pw == 0:
        return x
    mode = "reflect" if ph < h and pw < w else "edge"
    width = [(0, 0)] * (x.ndim - 2) + [(0, ph), (0, pw)]
    return np.pad(x, width, mode=mode)


class HostRunner(StepRunner):
    """fp32 numpy buffers on the host; ``feedback`` networks get ``prev_out`` as a fifth input."""

    name = "host"

    def __init__(self, net, desc, spec: RunnerSpec) -> None:
        super().__init__(net, desc, spec)
        self.feedback = bool(desc.feedback)
        self.num_feat = int(desc.num_feat)

    def upload(self, frame: np.ndarray) -> np.ndarray:
        if frame.ndim != 3 or frame.shape[0] != 3:
            raise ValueError(f"{self.name}: upload expects a (3, h, w) array, got shape {frame.shape}")
        x = np.asarray(frame, dtype=np.float32)[None]
        return np.ascontiguousarray(pad_host(x, *self.padded))

    def initial_state(self) -> tuple[np.ndarray, np.ndarray | None]:
        hp, wp = self.padded
        state = np.zeros((1, self.num_feat, hp, wp), np.float32)
        prev_out = np.zeros((1, 3, hp * self.scale, wp * self.scale), np.float32) if self.feedback else None
        return state, prev_out

    @abc.abstractmethod
    def _run(self, inputs: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
        """Run the step graph on ``[prev, cur, nxt, state(, prev_out)]`` -> ``(out, new_state)``."""

    def step(self, prev: Any, cur: Any, nxt: Any, state: Any, prev_out: Any) -> tuple[Any, Any]:
        inputs = [prev, cur, nxt, state]
        if self.feedback:
            if prev_out is None:
                raise ValueError(f"{self.name}: the feedback network needs prev_out")
            inputs.append(prev_out)
        out, new_state = self._run(inputs)
        self._counted()
        return out, new_state

    def download(self, out: np.ndarray) -> np.ndarray:
        h, w = self.spec.height * self.scale, self.spec.width * self.scale
        return np.ascontiguousarray(out[0, :, :h, :w], dtype=self.spec.host_dtype)

    def nbytes_per_step(self) -> int:
        hp, wp = self.padded
        return 4 * (3 * hp * wp * self.scale ** 2 + self.num_feat * hp * wp)
