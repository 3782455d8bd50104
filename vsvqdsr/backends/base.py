"""The runtime interface: run one recurrent step of a VSR network on device buffers.

A :class:`StepRunner` is created for one network, one input size and one device. The filter layer
uploads LR frames, keeps the hidden state (and, for the feedback variant, the previous output) as
opaque device objects between frames, and downloads the SR frame. Runners never touch VapourSynth.

Contract (every backend):

* ``upload(frame)``: host ``(3, h, w)`` float32/float16 array -> device object holding the frame
  padded to ``(hp, wp)`` (multiples of :attr:`size_multiple`, reflect padding).
* ``initial_state()``: the zero state (and zero previous output) for a chain start.
* ``step(prev, cur, nxt, state, prev_out)`` -> ``(out, state)`` on the device; ``prev_out`` is
  ``None`` for networks without feedback.
* ``download(out)``: device SR frame -> host ``(3, scale*h, scale*w)`` array, cropped, in
  :attr:`host_dtype`.
* ``step_count``: network steps run so far (the filter's exactly-once tests read it).
"""
from __future__ import annotations

import abc
import threading
from dataclasses import dataclass
from typing import Any

import numpy as np

__all__ = ["RunnerSpec", "StepRunner", "BackendUnavailable", "padded_size"]


class BackendUnavailable(RuntimeError):
    """The backend cannot run here (missing library or device); the message says how to fix it."""


def padded_size(h: int, w: int, multiple: int) -> tuple[int, int]:
    return -(-h // multiple) * multiple, -(-w // multiple) * multiple


@dataclass(frozen=True)
class RunnerSpec:
    """What a runner is built for.

    Attributes:
        height, width: LR input size in pixels (before padding).
        fp16: compute in half precision where the backend supports it.
        device_id: GPU index for GPU backends.
        host_dtype: numpy dtype of downloaded frames (float32 for RGBS, float16 for RGBH).
        num_streams: independent chains the backend may run at once (GPU backends).
    """

    height: int
    width: int
    fp16: bool = False
    device_id: int = 0
    host_dtype: Any = np.float32
    num_streams: int = 1


class StepRunner(abc.ABC):
    """One network, one size, one device. Thread-safe: steps may come from several VS threads."""

    name: str = "base"

    def __init__(self, net, desc, spec: RunnerSpec) -> None:
        self.desc = desc
        self.spec = spec
        self.scale = desc.scale
        self.size_multiple = desc.size_multiple
        self.padded = padded_size(spec.height, spec.width, desc.size_multiple)
        self._count_lock = threading.Lock()
        self.step_count = 0

    def _counted(self) -> None:
        with self._count_lock:
            self.step_count += 1

    @abc.abstractmethod
    def upload(self, frame: np.ndarray) -> Any: ...

    @abc.abstractmethod
    def initial_state(self) -> tuple[Any, Any]: ...

    @abc.abstractmethod
    def step(self, prev: Any, cur: Any, nxt: Any, state: Any, prev_out: Any) -> tuple[Any, Any]: ...

    @abc.abstractmethod
    def download(self, out: Any) -> np.ndarray: ...

    def nbytes_per_step(self) -> int:
        """Approximate device bytes one stored step (output + state) occupies."""
        hp, wp = self.padded
        item = 2 if self.spec.fp16 else 4
        return item * (3 * hp * wp * self.scale ** 2 + self.desc.num_feat * hp * wp)

    def describe(self) -> str:
        return f"{self.name} ({'fp16' if self.spec.fp16 else 'fp32'})"
