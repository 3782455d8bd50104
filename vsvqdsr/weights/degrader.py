"""Loading the VQ degradation model (multi-scale VQGAN): ours and the official release.

Accepted inputs of :func:`load_degrader`:

* a registry name (``"degrade-lite"``; ``"default"`` picks the best installed degrader);
* our safetensors file, whose metadata holds ``vqgan_config`` (JSON) and ``vqgan_stage``;
* an official VQD-SR Lightning checkpoint (``pretrain_mul_vqgan.ckpt``): weights under
  ``state_dict`` with prefix ``endecoder.``. It is read with ``torch.load(weights_only=True)``.
  Lightning 1.0.x checkpoints also pickle non-tensor objects (callback states keyed by the
  callback *class*, hyper-parameter containers); the safe unpickler refuses those globals. We then
  list the refused globals with ``torch.serialization.get_unsafe_globals_in_checkpoint``, and if all
  of them belong to training-framework namespaces, load again with ``weights_only=True`` while those
  names resolve to an inert stub class of ours (it accepts and discards any arguments and state).
  No foreign code is ever imported or executed.

Official key mapping: strip ``endecoder.``; drop ``mid.quantize.*`` and ``bot.quantize.*`` (the
release builds per-branch codebooks but only ever uses ``top.quantize``); ignore ``loss.*``
(discriminator and LPIPS). All other names are identical to :mod:`vsvqdsr.nets.vqgan`.
"""
from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path

import torch

from ..nets.vqgan import MultiScaleVQGAN, TopVQGAN
from .archs import VQGAN
from .descriptors import ModelDescriptor
from .loading import WeightsError, load_checkpoint, read_metadata, save_state_dict, unwrap_state_dict

__all__ = ["DegraderDescriptor", "describe_degrader", "load_degrader", "load_degrader_state",
           "map_official_keys", "save_degrader", "build_degrader", "DEGRADER_KIND", "load_degrader_model"]

#: ``kind`` written to our files' metadata and model cards (lets registries tell degraders from VSR models).
DEGRADER_KIND = "degrader"

#: Namespaces whose pickled objects may be replaced by an inert stub when reading official ckpts.
_STUBBABLE = ("pytorch_lightning.", "lightning.", "lightning_fabric.", "omegaconf.", "argparse.",
              "collections.", "typing.", "main.", "taming.", "vqgan.", "pathlib.", "numpy.", "builtins.")


#: Degrader descriptors are the one :class:`~.descriptors.ModelDescriptor` type (``kind="degrader"``,
#: ``stage``, ``config``); the old name stays for callers.
DegraderDescriptor = ModelDescriptor


def map_official_keys(sd: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Map an official (or already stripped) VQGAN state dict onto our module names."""
    has_prefix = any(k.startswith("endecoder.") for k in sd)
    out: dict[str, torch.Tensor] = {}
    for k, v in sd.items():
        if has_prefix:
            if not k.startswith("endecoder."):
                continue  # loss.discriminator.*, loss.perceptual_loss.*
            k = k[len("endecoder."):]
        if k.startswith(("mid.quantize.", "bot.quantize.", "loss.")):
            continue
        out[k] = v
    return out


def describe_degrader(sd: Mapping[str, torch.Tensor], norm_groups: int | None = None) -> ModelDescriptor:
    """Recognise a VQGAN degrader state dict (our names, after :func:`map_official_keys`) by keys/shapes,
    every count and shape checked before anything is allocated (:data:`~.archs.VQGAN`).

    ``norm_groups`` cannot be read from shapes; pass it when known (our metadata), else 32 is used
    when every width divides by 32 (the paper config), otherwise the largest power of two that does.
    """
    meta = {"vqgan_config": json.dumps({"norm_groups": int(norm_groups)})} if norm_groups else None
    return VQGAN.describe(sd, meta)


def build_degrader(sd: Mapping[str, torch.Tensor], norm_groups: int | None = None,
                   stage: int | None = None) -> tuple[TopVQGAN, ModelDescriptor]:
    """Build the network ``sd`` describes and load it strictly (float32)."""
    desc = describe_degrader(sd, norm_groups)
    if stage is not None and desc.stage != stage:
        raise WeightsError(f"expected a stage-{stage} VQGAN, found stage {desc.stage}")
    return VQGAN.load(sd, desc), desc


class _Inert:
    """Stand-in for a pickled non-tensor object of a training framework: keeps nothing, runs nothing."""

    def __init__(self, *args: object, **kwargs: object) -> None:
        pass

    def __setstate__(self, state: object) -> None:
        pass

    def __setitem__(self, key: object, value: object) -> None:
        pass

    def append(self, item: object) -> None:
        pass

    def extend(self, items: object) -> None:
        pass


def _load_lightning(path: Path) -> dict:
    try:
        return load_checkpoint(path)
    except WeightsError as first:
        from torch.serialization import get_unsafe_globals_in_checkpoint, safe_globals
        try:
            names = get_unsafe_globals_in_checkpoint(str(path))
        except Exception:
            raise first from None
        foreign = [n for n in names if not n.startswith(_STUBBABLE)]
        if not names or foreign:
            raise WeightsError(f"{path.name}: cannot be loaded safely; it pickles {foreign or names}") from None
        with safe_globals([(_Inert, n) for n in names]):
            try:
                obj = torch.load(str(path), map_location="cpu", weights_only=True)
            except Exception as e:
                raise WeightsError(f"{path.name}: cannot be loaded safely ({type(e).__name__}: {e})") from e
        if not isinstance(obj, Mapping):
            raise WeightsError(f"{path.name}: expected a checkpoint mapping") from None
        return dict(obj)


def load_degrader_state(path: str | os.PathLike) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    """Read a degrader file: ``(state dict in our names, metadata)`` (metadata empty for official files)."""
    p = Path(path)
    meta = read_metadata(p)
    if p.suffix == ".safetensors":
        sd = load_checkpoint(p)
    else:
        sd = unwrap_state_dict(_load_lightning(p))
    return map_official_keys(sd), meta


def load_degrader_model(model: str | os.PathLike | None) -> tuple[MultiScaleVQGAN, ModelDescriptor, str]:
    """Resolve and load a multi-scale (stage-2) degrader: ``(net, descriptor, display name)``.

    The net is in eval mode, CPU, float32, ``requires_grad`` off. Raises :class:`WeightsError` for
    unknown, unsafe, damaged, crafted or stage-1 files (a stage-1 top-only VQGAN cannot degrade).
    """
    from .registry import resolve

    name, path = resolve(model, DEGRADER_KIND)
    sd, meta = load_degrader_state(path)
    try:
        desc = VQGAN.describe(sd, meta)
    except WeightsError as e:
        raise WeightsError(f"{path.name}: {e}") from None
    if desc.stage != 2:
        raise WeightsError(f"{path.name}: a stage-1 (top-only) VQGAN cannot degrade; train stage 2 on it")
    net = VQGAN.load(sd, desc)
    assert isinstance(net, MultiScaleVQGAN)
    return net, desc, name


def load_degrader(model: str | os.PathLike | None) -> MultiScaleVQGAN:
    """Load a multi-scale (stage-2) VQGAN degrader: eval mode, CPU, float32, ``requires_grad`` off.

    ``model`` is a registry name (``"default"`` or None: the default degrader; ``"degrade-lite"``),
    our ``.safetensors`` or an official Lightning ``.ckpt``. Raises :class:`WeightsError` for
    unknown, unsafe or stage-1 files.
    """
    return load_degrader_model(model)[0]


def save_degrader(net: TopVQGAN, path: str | os.PathLike, half: bool = True,
                  extra: Mapping[str, str] | None = None) -> None:
    """Save a VQGAN atomically as safetensors (fp16 by default) with its config in the metadata."""
    stage = 2 if isinstance(net, MultiScaleVQGAN) else 1
    sd = {k: (v.half() if half and v.is_floating_point() else v) for k, v in net.state_dict().items()}
    meta = {"kind": DEGRADER_KIND, "vqgan_stage": str(stage),
            "vqgan_config": json.dumps(net.config.to_dict())}
    meta.update(extra or {})
    save_state_dict(sd, path, meta)
