"""One loader for every kind: resolve a name or path, read it safely, recognise, validate, build.

``load_model(model, kind)`` returns ``(net, descriptor, display name)``: the network in eval mode,
CPU, float32, ``requires_grad`` off. ``kind`` is ``"vsr"``, ``"degrader"`` or ``"sisr"``;
unknown names, damaged, unsafe or crafted files, and files of another kind raise
:class:`~.loading.WeightsError` with a short message.
"""
from __future__ import annotations

import os
from pathlib import Path

from torch import nn

from .archs import describe_any
from .descriptors import KINDS, ModelDescriptor
from .loading import WeightsError, load_checkpoint, read_metadata, unwrap_state_dict
from .registry import resolve

__all__ = ["load_model", "read_weights"]


def read_weights(path: str | os.PathLike, kind: str) -> tuple[dict, dict[str, str]]:
    """``(state dict, string metadata)`` of a file; degraders go through the official-checkpoint path."""
    p = Path(path)
    if kind == "degrader":
        from .degrader import load_degrader_state

        return load_degrader_state(p)
    meta = read_metadata(p)
    return unwrap_state_dict(load_checkpoint(p)), meta


def load_model(model: str | os.PathLike | None, kind: str) -> tuple[nn.Module, ModelDescriptor, str]:
    """Load the model ``model`` (name, ``"default"``/None, or path) of ``kind``."""
    if kind not in KINDS:
        raise WeightsError(f"unknown model kind {kind!r}; accepted: {', '.join(KINDS)}")
    if kind == "degrader":
        from .degrader import load_degrader_model

        return load_degrader_model(model)
    name, path = resolve(model, kind)
    sd, meta = read_weights(path, kind)
    try:
        arch, desc = describe_any(sd, meta, kind)
    except WeightsError as e:
        raise WeightsError(f"{path.name}: {e}") from None
    return arch.load(sd, desc), desc, name
