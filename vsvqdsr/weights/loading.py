"""Safe loading and atomic saving of state dicts.

Only two formats are read: safetensors, and torch's zip/pickle format through
``torch.load(weights_only=True)``, which refuses arbitrary Python objects. Nothing is unpickled freely.
"""
from __future__ import annotations

import os
import tempfile
import zipfile
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import BinaryIO

import torch

__all__ = ["WeightsError", "load_state_dict", "load_checkpoint", "save_state_dict", "atomic_write",
           "atomic_write_bytes", "atomic_torch_save", "current_umask"]

#: Keys under which training frameworks nest the weights, in order of preference.
#: BasicSR keeps the EMA copy under ``params_ema``; Lightning uses ``state_dict``.
_NESTED_KEYS = ("params_ema", "params", "state_dict", "model", "generator", "net_g")


class WeightsError(ValueError):
    """A weights file is missing, damaged, of a foreign format or of an unknown architecture."""


def load_checkpoint(path: str | os.PathLike) -> dict:
    """Load a whole checkpoint mapping safely (safetensors or ``torch.load(weights_only=True)``)."""
    p = Path(path)
    if not p.is_file():
        raise WeightsError(f"weights file not found: {p}")
    with p.open("rb") as f:
        head = f.read(16)
    if p.suffix == ".safetensors" or _looks_like_safetensors(head):
        from safetensors import SafetensorError
        from safetensors.torch import load_file
        try:
            return dict(load_file(str(p), device="cpu"))
        except (SafetensorError, OSError, ValueError) as e:
            raise WeightsError(f"{p.name}: damaged or not a safetensors file ({e})") from e
    if not (zipfile.is_zipfile(p) or head[:2] == b"\x80\x02"):
        raise WeightsError(f"{p.name}: not a safetensors or torch checkpoint file")
    try:
        obj = torch.load(str(p), map_location="cpu", weights_only=True)
    except Exception as e:  # torch raises several unrelated types for bad files
        raise WeightsError(f"{p.name}: cannot be loaded safely ({type(e).__name__}: {e})") from e
    if not isinstance(obj, Mapping):
        raise WeightsError(f"{p.name}: expected a mapping of tensors, found {type(obj).__name__}")
    return dict(obj)


def read_metadata(path: str | os.PathLike) -> dict[str, str]:
    """The string metadata of a ``.safetensors`` file (empty for other files); a damaged file is a
    :class:`WeightsError`."""
    p = Path(path)
    if p.suffix != ".safetensors":
        return {}
    from safetensors import safe_open

    try:
        with safe_open(str(p), framework="pt") as f:
            return dict(f.metadata() or {})
    except Exception as e:
        raise WeightsError(f"{p.name}: damaged or not a safetensors file ({e})") from e


def _looks_like_safetensors(head: bytes) -> bool:
    # 8-byte little-endian header length followed by a JSON object.
    return len(head) >= 9 and head[8:9] == b"{"


def unwrap_state_dict(ckpt: Mapping, prefix: str | None = None) -> dict[str, torch.Tensor]:
    """Return the tensor mapping inside a training checkpoint (EMA weights preferred)."""
    obj: Mapping = ckpt
    for key in _NESTED_KEYS:
        inner = obj.get(key) if isinstance(obj, Mapping) else None
        if isinstance(inner, Mapping) and inner:
            obj = inner
            break
    sd = {k: v for k, v in obj.items() if isinstance(v, torch.Tensor)}
    if not sd:
        raise WeightsError("the checkpoint holds no tensors")
    if prefix:
        sd = {k[len(prefix):]: v for k, v in sd.items() if k.startswith(prefix)}
    for strip in ("module.", "_orig_mod."):
        if all(k.startswith(strip) for k in sd):
            sd = {k[len(strip):]: v for k, v in sd.items()}
    return sd


def load_state_dict(path: str | os.PathLike, prefix: str | None = None) -> dict[str, torch.Tensor]:
    """Load the weights of ``path`` as a flat ``name -> tensor`` dict (CPU)."""
    return unwrap_state_dict(load_checkpoint(path), prefix)


def current_umask() -> int:
    """The process umask, read without changing it (Linux), else by the set-and-restore idiom."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except OSError:
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def atomic_write(path: str | os.PathLike, write: Callable[[BinaryIO], object]) -> None:
    """Call ``write(f)`` on a temporary file beside ``path``, then rename it to ``path`` (never
    half-written): for writers that stream to a file object (``torch.save``, ``savefig``)."""
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{p.name}.", suffix=".tmp", dir=p.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o666 & ~current_umask())  # mkstemp makes 0600; a user's file gets the usual mode
        os.replace(tmp, p)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> None:
    """Write ``data`` to ``path`` through a temporary file and a rename (never half-written)."""
    atomic_write(path, lambda f: f.write(data))


def atomic_torch_save(obj: object, path: str | os.PathLike) -> None:
    """``torch.save(obj)`` to ``path`` atomically (a training checkpoint)."""
    atomic_write(path, lambda f: torch.save(obj, f))


def save_state_dict(sd: Mapping[str, torch.Tensor], path: str | os.PathLike,
                    metadata: Mapping[str, str] | None = None) -> None:
    """Save tensors as safetensors, atomically, with string metadata (licence, origin, variant)."""
    from safetensors.torch import save

    tensors = {k: v.detach().to("cpu").contiguous() for k, v in sd.items()}
    atomic_write_bytes(path, save(tensors, metadata=dict(metadata or {})))
