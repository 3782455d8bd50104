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
from dataclasses import dataclass
from pathlib import Path

import torch

from ..nets.vqgan import MultiScaleVQGAN, TopVQGAN, VQGANConfig
from .loading import WeightsError, load_checkpoint, save_state_dict, unwrap_state_dict

__all__ = ["DegraderDescriptor", "describe_degrader", "load_degrader", "load_degrader_state",
           "map_official_keys", "save_degrader", "build_degrader", "DEGRADER_KIND"]

#: ``kind`` written to our files' metadata and model cards (lets registries tell degraders from VSR models).
DEGRADER_KIND = "degrader"

#: Namespaces whose pickled objects may be replaced by an inert stub when reading official ckpts.
_STUBBABLE = ("pytorch_lightning.", "lightning.", "lightning_fabric.", "omegaconf.", "argparse.",
              "collections.", "typing.", "main.", "taming.", "vqgan.", "pathlib.", "numpy.", "builtins.")


@dataclass(frozen=True)
class DegraderDescriptor:
    """What a degrader checkpoint is: ``stage`` 1 (top only) or 2 (multi-scale), its config, size."""

    stage: int
    config: VQGANConfig
    num_params: int


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


def _groups_for(channels: list[int]) -> int:
    for g in (32, 16, 8, 4, 2, 1):
        if all(c % g == 0 for c in channels):
            return g
    return 1


def describe_degrader(sd: Mapping[str, torch.Tensor], norm_groups: int | None = None) -> DegraderDescriptor:
    """Recognise a VQGAN degrader state dict (our names, after :func:`map_official_keys`) by keys/shapes.

    ``norm_groups`` cannot be read from shapes; pass it when known (our metadata), else 32 is used
    when every width divides by 32 (the paper config), otherwise the largest power of two that does.
    """
    need = ["conv_in.weight", "top.encode_1.0.conv.weight", "top.encode_2.0.conv.weight",
            "top.encode_3.0.conv.weight", "top.encode_4.0.weight", "top.quantize.embedding.weight",
            "conv_out.weight"]
    missing = [k for k in need if k not in sd]
    if missing:
        raise WeightsError(f"not a VQGAN degrader checkpoint: missing {', '.join(missing[:3])}")
    ch = int(sd["conv_in.weight"].shape[0])
    widths = [ch] + [int(sd[k].shape[0]) for k in need[1:5]]
    if any(w % ch for w in widths):
        raise WeightsError(f"VQGAN widths {widths} are not multiples of the base width {ch}")
    n_embed, embed_dim = (int(s) for s in sd["top.quantize.embedding.weight"].shape)
    nrb = 1 + max(int(k.split(".")[3]) for k in sd if k.startswith("top.encode_0.blocks.")
                  and k.endswith(".conv1.weight"))
    cfg = VQGANConfig(ch=ch, ch_mult=tuple(w // ch for w in widths), num_res_blocks=nrb,  # type: ignore[arg-type]
                      embed_dim=embed_dim, n_embed=n_embed,
                      norm_groups=norm_groups or _groups_for(widths))
    stage = 2 if "mid.encode_3.0.weight" in sd and "bot.encode_2.0.weight" in sd else 1
    n = sum(v.numel() for v in sd.values())
    return DegraderDescriptor(stage, cfg, int(n))


def build_degrader(sd: Mapping[str, torch.Tensor], norm_groups: int | None = None,
                   stage: int | None = None) -> tuple[TopVQGAN, DegraderDescriptor]:
    """Build the network ``sd`` describes and load it strictly (float32)."""
    desc = describe_degrader(sd, norm_groups)
    if stage is not None and desc.stage != stage:
        raise WeightsError(f"expected a stage-{stage} VQGAN, found stage {desc.stage}")
    net: TopVQGAN = MultiScaleVQGAN(desc.config) if desc.stage == 2 else TopVQGAN(desc.config)
    try:
        net.load_state_dict({k: v.float() for k, v in sd.items()}, strict=True)
    except RuntimeError as e:
        raise WeightsError(f"weights do not fit the recognised stage-{desc.stage} VQGAN: {e}") from e
    return net, desc


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
    meta: dict[str, str] = {}
    if p.suffix == ".safetensors":
        from safetensors import safe_open
        try:
            with safe_open(str(p), framework="pt") as f:
                meta = dict(f.metadata() or {})
        except Exception as e:
            raise WeightsError(f"{p.name}: damaged or not a safetensors file ({e})") from e
        sd = load_checkpoint(p)
    else:
        sd = unwrap_state_dict(_load_lightning(p))
    return map_official_keys(sd), meta


def _resolve(model: str | os.PathLike) -> Path:
    from .registry import installed_models
    if isinstance(model, str) and not Path(model).expanduser().is_file():
        models = installed_models(DEGRADER_KIND)
        name = model
        if model == "default":
            ranked = sorted(models, key=lambda n: (models[n].card.get("benchmark_rank", 99), n != "degrade-lite", n))
            if not ranked:
                raise WeightsError("no degradation model is installed (expected degrade-lite in vsvqdsr/models)")
            name = ranked[0]
        if name not in models:
            raise WeightsError(f"unknown degradation model {model!r}; installed: "
                               f"{', '.join(sorted(models)) or 'none'}; or pass a file path")
        return models[name].path
    p = Path(model).expanduser()
    if not p.is_file():
        raise WeightsError(f"degradation model file not found: {p}")
    return p


def load_degrader(model: str | os.PathLike) -> MultiScaleVQGAN:
    """Load a multi-scale (stage-2) VQGAN degrader: eval mode, CPU, float32, ``requires_grad`` off.

    ``model`` is a registry name (``"default"``, ``"degrade-lite"``), our ``.safetensors`` or an
    official Lightning ``.ckpt``. Raises :class:`WeightsError` for unknown, unsafe or stage-1 files.
    """
    path = _resolve(model)
    sd, meta = load_degrader_state(path)
    groups = None
    if "vqgan_config" in meta:
        try:
            groups = int(json.loads(meta["vqgan_config"])["norm_groups"])
        except (ValueError, KeyError, TypeError) as e:
            raise WeightsError(f"{path.name}: bad vqgan_config metadata ({e})") from e
    net, desc = build_degrader(sd, groups)
    if not isinstance(net, MultiScaleVQGAN):
        raise WeightsError(f"{path.name}: a stage-1 (top-only) VQGAN cannot degrade; train stage 2 on it")
    return net.eval().requires_grad_(False)


def save_degrader(net: TopVQGAN, path: str | os.PathLike, half: bool = True,
                  extra: Mapping[str, str] | None = None) -> None:
    """Save a VQGAN atomically as safetensors (fp16 by default) with its config in the metadata."""
    stage = 2 if isinstance(net, MultiScaleVQGAN) else 1
    sd = {k: (v.half() if half and v.is_floating_point() else v) for k, v in net.state_dict().items()}
    meta = {"kind": DEGRADER_KIND, "vqgan_stage": str(stage),
            "vqgan_config": json.dumps(net.config.to_dict())}
    meta.update(extra or {})
    save_state_dict(sd, path, meta)
