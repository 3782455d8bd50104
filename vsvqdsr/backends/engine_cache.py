"""On-disk cache of built engines (TensorRT, torch-tensorrt), safe across processes.

* The file name encodes everything the engine depends on (:class:`EngineKey`): a checksum of the
  ONNX, the shape profile, the precision, the runtime's versions (TensorRT and torch-tensorrt),
  the GPU name and its compute capability. A change of any of them selects another file.
* Files are written atomically (temporary file in the same folder + ``os.replace``) inside a
  :class:`filelock.FileLock`, so two vspipe processes never build the same engine twice and never
  read half a file.
* Every file carries a small header (magic, payload length, SHA-256 of the payload). A truncated
  or corrupted file, or one the runtime refuses to load, is rebuilt instead of crashing.

Folder: the ``engine_dir`` option, else ``$VSVQDSR_ENGINE_DIR``, else
``$XDG_CACHE_HOME/vsvqdsr/engines`` (``~/.cache/vsvqdsr/engines``).
"""
from __future__ import annotations

import hashlib
import os
import re
import struct
from collections.abc import Callable
from dataclasses import astuple, dataclass, field
from pathlib import Path
from typing import TypeVar

from filelock import FileLock, Timeout

from ..weights.loading import atomic_write_bytes  # one atomic writer for weights and engines
from ..log import get_logger

log = get_logger(__name__)


__all__ = ["EngineKey", "EngineCache", "CorruptEngine", "default_engine_dir", "pack", "unpack", "slug", "atomic_write_bytes"]

T = TypeVar("T")

MAGIC = b"VQDSRENG"
_HEADER = struct.Struct("<8sQ32s")  # magic, payload length, sha256(payload)


class CorruptEngine(RuntimeError):
    """A cached engine file is truncated, altered or unloadable."""


def default_engine_dir() -> Path:
    env = os.environ.get("VSVQDSR_ENGINE_DIR")
    if env:
        return Path(env).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "vsvqdsr" / "engines"


def slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9.]+", "-", text).strip("-") or "none"


@dataclass(frozen=True)
class EngineKey:
    """What a built engine depends on.

    Attributes:
        runtime: ``"trt"`` or ``"torch_trt"`` (the builder).
        onnx_sha256: hex SHA-256 of the source ONNX (or of the weights for torch-tensorrt).
        min_shape, opt_shape, max_shape: LR ``(height, width)`` of the optimisation profile.
        precision: ``"fp32"``, ``"fp16-onnx"``, ...
        trt_version: TensorRT version string (``""`` when not used).
        torch_trt_version: torch-tensorrt version string (``""`` when not used).
        gpu_name: device name as the driver reports it (``""`` for CPU artefacts).
        compute_capability: ``(major, minor)``; ``(0, 0)`` for CPU artefacts.
        extra: further build options that change the result (optimisation level, I/O formats, ...).
    """

    runtime: str
    onnx_sha256: str
    min_shape: tuple[int, int]
    opt_shape: tuple[int, int]
    max_shape: tuple[int, int]
    precision: str
    trt_version: str = ""
    torch_trt_version: str = ""
    gpu_name: str = ""
    compute_capability: tuple[int, int] = (0, 0)
    extra: tuple[tuple[str, str], ...] = field(default=())

    def digest(self) -> str:
        return hashlib.sha256(repr(astuple(self)).encode()).hexdigest()[:12]

    def filename(self) -> str:
        """A readable, unique file name (the trailing digest covers every field, ``extra`` too)."""
        shp = "-".join(f"{h}x{w}" for h, w in (self.min_shape, self.opt_shape, self.max_shape))
        parts = [self.runtime, self.onnx_sha256[:16], shp, self.precision]
        if self.trt_version:
            parts.append(f"trt{self.trt_version}")
        if self.torch_trt_version:
            parts.append(f"tt{self.torch_trt_version}")
        if self.gpu_name:
            parts.append(self.gpu_name)
        if self.compute_capability != (0, 0):
            parts.append("sm{}{}".format(*self.compute_capability))
        parts.append(self.digest())
        return "_".join(slug(p) for p in parts) + ".engine"


def pack(payload: bytes) -> bytes:
    """Header + payload (what is stored on disk)."""
    return _HEADER.pack(MAGIC, len(payload), hashlib.sha256(payload).digest()) + payload


def unpack(blob: bytes) -> bytes:
    """Check the header and return the payload, or raise :class:`CorruptEngine`."""
    if len(blob) < _HEADER.size:
        raise CorruptEngine(f"file is {len(blob)} bytes, shorter than the header")
    magic, n, digest = _HEADER.unpack_from(blob)
    if magic != MAGIC:
        raise CorruptEngine("bad magic: not a vsvqdsr engine file")
    payload = blob[_HEADER.size:]
    if len(payload) != n:
        raise CorruptEngine(f"payload is {len(payload)} bytes, header says {n} (truncated?)")
    if hashlib.sha256(payload).digest() != digest:
        raise CorruptEngine("payload checksum mismatch")
    return payload


class EngineCache:
    """A folder of engines. Thread- and process-safe.

    Args:
        directory: cache folder (created on demand); ``None`` = :func:`default_engine_dir`.
        lock_timeout: seconds to wait for another process's build before giving up (-1: forever).
    """

    def __init__(self, directory: str | os.PathLike | None = None, lock_timeout: float = -1) -> None:
        self.directory = Path(directory).expanduser() if directory else default_engine_dir()
        self.lock_timeout = lock_timeout
        above = next((p for p in (self.directory, *self.directory.parents) if p.exists()), None)
        if above is not None and not above.is_dir():
            raise ValueError(f"engine cache: engine_dir {self.directory} "
                             f"{'is' if above == self.directory else f'lies under {above}, which is'} "
                             "an existing file; accepted: a folder (created if missing)")

    def path(self, key: EngineKey) -> Path:
        return self.directory / key.filename()

    def _try_load(self, path: Path, load: Callable[[bytes], T]) -> T:
        try:
            blob = path.read_bytes()
        except FileNotFoundError:
            raise
        payload = unpack(blob)
        try:
            return load(payload)
        except Exception as e:  # the runtime refused it: treat as corrupt
            raise CorruptEngine(f"runtime could not load it: {e}") from e

    def get_or_build(self, key: EngineKey, build: Callable[[], bytes], load: Callable[[bytes], T]) -> T:
        """Return ``load(payload)`` of the cached engine, building and storing it first if needed.

        ``build()`` returns the serialized engine; it runs at most once across processes for one
        key (under the lock). ``load(payload)`` deserializes; if it raises, the file is rebuilt.
        """
        path = self.path(key)
        try:
            return self._try_load(path, load)  # fast path, no lock: files appear atomically
        except FileNotFoundError:
            pass
        except CorruptEngine as e:
            _log(f"engine cache: {path.name} is unusable ({e}); rebuilding")
        self.directory.mkdir(parents=True, exist_ok=True)
        lock = FileLock(str(path) + ".lock", timeout=self.lock_timeout)
        try:
            with lock:
                try:  # another process may have built it while we waited
                    return self._try_load(path, load)
                except FileNotFoundError:
                    pass
                except CorruptEngine:
                    path.unlink(missing_ok=True)
                payload = build()
                if not isinstance(payload, (bytes, bytearray, memoryview)):
                    payload = bytes(payload)
                atomic_write_bytes(path, pack(bytes(payload)))
                _log(f"engine cache: wrote {path}")
                return load(bytes(payload))
        except Timeout as e:
            raise RuntimeError(f"engine cache: timed out after {self.lock_timeout} s waiting for "
                               f"{lock.lock_file} (another process is building {path.name})") from e


def _log(msg: str) -> None:
    log.info(msg)
