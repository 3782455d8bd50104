"""CUDA stream and pinned-memory discipline shared by the GPU backends (``cuda``, ``trt``, ``torch_trt``).

* Device objects handed to the filter are :class:`DeviceBuf`: a tensor plus the CUDA event that
  marks the end of the work producing it. Consumers make their stream wait on that event (no host
  synchronisation between steps) and ``record_stream`` the tensor so the caching allocator keeps it
  alive until their work is done.
* Compute runs on the runner's own streams, one per slot (``num_streams`` slots; a slot owns its
  stream and whatever per-execution state the backend needs: a TensorRT execution context, a CUDA
  graph). Independent chains (different scenes) step concurrently on different slots.
* Uploads and downloads use separate copy streams with pinned host staging buffers, so they overlap
  with compute of other frames.
"""
from __future__ import annotations

import contextlib
import queue
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

import numpy as np
import torch

from .base import BackendUnavailable, RunnerSpec, StepRunner
from .torch_runner import pad_to

__all__ = ["DeviceBuf", "SlotPool", "PinnedPool", "GPURunnerBase", "cuda_device", "produced", "consume"]

S = TypeVar("S")


def cuda_device(device_id: int, backend: str) -> torch.device:
    """Validate ``device_id`` and return its ``torch.device``, else raise :class:`BackendUnavailable`."""
    if not torch.cuda.is_available():
        raise BackendUnavailable(f"{backend}: no CUDA device is available (torch.cuda.is_available() is "
                                 f"False); use backend='cpu'")
    n = torch.cuda.device_count()
    if not 0 <= int(device_id) < n:
        raise BackendUnavailable(f"{backend}: device_id={device_id} is out of range; "
                                 f"{n} CUDA device(s) visible: 0..{n - 1}")
    return torch.device("cuda", int(device_id))


@dataclass
class DeviceBuf:
    """A device tensor and the event after which it is valid (``None``: valid now)."""

    tensor: torch.Tensor
    event: Any = None


def produced(tensor: torch.Tensor, stream: torch.cuda.Stream) -> DeviceBuf:
    ev = torch.cuda.Event()
    ev.record(stream)
    return DeviceBuf(tensor, ev)


def consume(stream: torch.cuda.Stream, *bufs: DeviceBuf | None) -> None:
    """Make ``stream`` wait for each buffer and keep its memory alive for ``stream``'s work."""
    for b in bufs:
        if b is None:
            continue
        if b.event is not None:
            stream.wait_event(b.event)
        b.tensor.record_stream(stream)


class SlotPool(Generic[S]):
    """A fixed set of slots (each with its stream) handed out to one caller at a time."""

    def __init__(self, slots: list[S]) -> None:
        if not slots:
            raise ValueError("SlotPool needs at least one slot")
        self.slots = list(slots)
        self._free: queue.Queue[S] = queue.Queue()
        for s in slots:
            self._free.put(s)

    @contextlib.contextmanager
    def acquire(self) -> Iterator[S]:
        slot = self._free.get()
        try:
            yield slot
        finally:
            self._free.put(slot)


class PinnedPool:
    """Reusable page-locked host buffers keyed by (shape, dtype); a buffer is reused only after the
    copy that last used it has completed."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._free: dict[tuple, list[tuple[torch.Tensor, Any]]] = {}

    def get(self, shape: tuple[int, ...], dtype: torch.dtype) -> torch.Tensor:
        key = (tuple(shape), dtype)
        with self._lock:
            lst = self._free.get(key)
            item = lst.pop() if lst else None
        if item is None:
            return torch.empty(shape, dtype=dtype, pin_memory=True)
        buf, ev = item
        if ev is not None:
            ev.synchronize()
        return buf

    def put(self, buf: torch.Tensor, event: Any = None) -> None:
        with self._lock:
            self._free.setdefault((tuple(buf.shape), buf.dtype), []).append((buf, event))


def host_to_torch_dtype(host_dtype: Any) -> torch.dtype:
    return torch.float16 if np.dtype(host_dtype) == np.float16 else torch.float32


class GPURunnerBase(StepRunner):
    """Upload / initial state / download on copy streams with pinned staging; subclasses implement
    :meth:`_compute` on a slot (``slot.stream`` is current while it runs).

    Attributes set by subclasses before use: ``device``, ``dtype`` (device compute/I-O dtype),
    ``memory_format``, ``slots`` (:class:`SlotPool` of objects with a ``stream`` attribute).
    """

    name = "gpu"
    device: torch.device
    dtype: torch.dtype
    memory_format: torch.memory_format = torch.contiguous_format
    slots: SlotPool

    def __init__(self, net, desc, spec: RunnerSpec, num_copy_streams: int = 2) -> None:
        super().__init__(net, desc, spec)
        if int(spec.num_streams) < 1:
            raise ValueError(f"{self.name}: num_streams must be >= 1, got {spec.num_streams}")
        self.feedback = bool(desc.feedback)
        self.num_feat = int(desc.num_feat)
        self._pinned = PinnedPool()
        self._copy_streams: SlotPool | None = None
        self._num_copy_streams = num_copy_streams

    def _init_copy_streams(self) -> None:
        self._copy_streams = SlotPool([torch.cuda.Stream(self.device) for _ in range(self._num_copy_streams)])

    def _fmt(self, x: torch.Tensor) -> torch.Tensor:
        return x.contiguous(memory_format=self.memory_format)

    def upload(self, frame: np.ndarray) -> DeviceBuf:
        if frame.ndim != 3 or frame.shape[0] != 3:
            raise ValueError(f"{self.name}: upload expects a (3, h, w) array, got shape {frame.shape}")
        src = torch.from_numpy(np.ascontiguousarray(frame))
        staging = self._pinned.get(tuple(src.shape), src.dtype)
        staging.copy_(src)
        assert self._copy_streams is not None
        with self._copy_streams.acquire() as stream, torch.cuda.stream(stream):
            dev = staging.to(self.device, non_blocking=True)
            copied = torch.cuda.Event()
            copied.record(stream)
            self._pinned.put(staging, copied)
            x = self._fmt(pad_to(dev.to(self.dtype).unsqueeze(0), *self.padded))
            return produced(x, stream)

    def initial_state(self) -> tuple[DeviceBuf, DeviceBuf | None]:
        hp, wp = self.padded
        with torch.cuda.device(self.device):
            state = self._fmt(torch.zeros(1, self.num_feat, hp, wp, device=self.device, dtype=self.dtype))
            prev_out = None
            if self.feedback:
                prev_out = DeviceBuf(self._fmt(torch.zeros(1, 3, hp * self.scale, wp * self.scale,
                                                           device=self.device, dtype=self.dtype)))
            torch.cuda.current_stream(self.device).synchronize()
        return DeviceBuf(state), prev_out

    def _compute(self, slot: Any, inputs: list[torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
        raise NotImplementedError

    def step(self, prev: Any, cur: Any, nxt: Any, state: Any, prev_out: Any) -> tuple[DeviceBuf, DeviceBuf]:
        bufs = [prev, cur, nxt, state] + ([prev_out] if self.feedback else [])
        if self.feedback and prev_out is None:
            raise ValueError(f"{self.name}: the feedback network needs prev_out")
        with self.slots.acquire() as slot, torch.cuda.stream(slot.stream), torch.inference_mode():
            consume(slot.stream, *bufs)
            out, new_state = self._compute(slot, [b.tensor for b in bufs])
            ev = torch.cuda.Event()
            ev.record(slot.stream)
        self._counted()
        return DeviceBuf(out, ev), DeviceBuf(new_state, ev)

    def download(self, out: DeviceBuf) -> np.ndarray:
        h, w = self.spec.height * self.scale, self.spec.width * self.scale
        tdtype = host_to_torch_dtype(self.spec.host_dtype)
        staging = self._pinned.get((3, h, w), tdtype)
        assert self._copy_streams is not None
        with self._copy_streams.acquire() as stream, torch.cuda.stream(stream):
            consume(stream, out)
            staging.copy_(out.tensor[0, :, :h, :w].to(tdtype), non_blocking=True)
            done = torch.cuda.Event()
            done.record(stream)
        done.synchronize()
        result = staging.numpy().copy()
        self._pinned.put(staging, None)
        return result
