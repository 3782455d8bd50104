"""Shared fixtures: small synthetic clips built from numpy, model files, torch references."""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parent.parent
VENV_BIN = Path(sys.executable).parent


def load_script(name: str):
    """Import ``scripts/<name>.py`` as a module (the scripts are not a package)."""
    import importlib.util

    spec = importlib.util.spec_from_file_location(name, ROOT / "scripts" / f"{name}.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def pytest_configure(config):
    config.addinivalue_line("markers", "gpu: needs a CUDA GPU (skipped without one)")
    config.addinivalue_line("markers", "slow: a real vspipe/ffmpeg run on the bundled sample")


def pytest_collection_modifyitems(config, items):
    try:
        import torch
        has_gpu = torch.cuda.is_available()
    except ImportError:
        has_gpu = False
    if not has_gpu:
        skip = pytest.mark.skip(reason="no CUDA GPU on this machine")
        for item in items:
            if "gpu" in item.keywords:
                item.add_marker(skip)


def textured_frames(t: int, h: int, w: int, seed: int = 0, cut: int | None = None) -> np.ndarray:
    """``(t, 3, h, w)`` float32 frames in [0, 1]: smooth moving pattern plus noise; a hard cut
    (a different pattern) starts at frame ``cut``."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    frames = np.empty((t, 3, h, w), np.float32)
    for i in range(t):
        scene = 0 if cut is None or i < cut else 1
        ph = 0.12 * i + 3.0 * scene
        for c in range(3):
            fx, fy = (0.31 + 0.2 * c + scene), (0.17 + 0.1 * c - 0.5 * scene)
            frames[i, c] = 0.5 + 0.35 * np.sin(fx * xx + fy * yy + ph + c)
    frames += rng.normal(0, 0.03, frames.shape).astype(np.float32)
    if cut is not None:
        frames[cut:] = 1.0 - frames[cut:]
    return np.clip(frames, 0, 1)


def clip_from_array(arr: np.ndarray, fmt=None, fps: tuple[int, int] = (24, 1)):
    """A VapourSynth clip (RGBS by default) whose frame i is ``arr[i]`` (planes first)."""
    import vapoursynth as vs

    core = vs.core
    fmt = fmt or vs.RGBS
    t, _, h, w = arr.shape
    blank = core.std.BlankClip(format=fmt, width=w, height=h, length=t, fpsnum=fps[0], fpsden=fps[1], keep=True)
    data = arr

    def fill(n, f):
        out = f.copy()
        for p in range(out.format.num_planes):
            np.copyto(np.asarray(out[p]), data[n, p], casting="unsafe")
        return out

    return core.std.ModifyFrame(blank, blank, fill)


def clip_to_array(clip, order=None) -> np.ndarray:
    """All frames of ``clip`` as ``(t, planes, h, w)``, requested in ``order`` (default linear)."""
    n = clip.num_frames
    order = list(range(n)) if order is None else order
    out = [None] * n
    for i in order:
        f = clip.get_frame(i)
        out[i] = np.stack([np.asarray(f[p]) for p in range(f.format.num_planes)]).copy()
    return np.stack(out)


@pytest.fixture(scope="session")
def animesr_path() -> Path:
    from vsvqdsr.weights import installed_models

    models = installed_models()
    if "animesr-v1" not in models:
        pytest.fail("animesr-v1 is not installed: run ./scripts/setup_env.sh (it runs `vqdsr fetch-weights`)")
    return models["animesr-v1"].path


@pytest.fixture(scope="session")
def vqdsr_random_path(tmp_path_factory) -> Path:
    """A VQD-SR (no feedback) checkpoint with deterministic random weights, saved as safetensors."""
    import torch

    from vsvqdsr.nets.vsr import RecurrentVSR
    from vsvqdsr.weights import save_state_dict

    torch.manual_seed(1234)
    net = RecurrentVSR(feedback=False)
    path = tmp_path_factory.mktemp("models") / "vqdsr-random.safetensors"
    save_state_dict(net.state_dict(), path, {"variant": "vqdsr"})
    return path


def reference_upscale(path, frames: np.ndarray, scene_starts: list[int]) -> np.ndarray:
    """Plain torch: run the network over each scene as one clip (NCHW fp32), padding to x4."""
    import torch
    import torch.nn.functional as F

    from vsvqdsr.weights import load_state_dict
    from vsvqdsr.weights.descriptors import build_network

    net, desc = build_network(load_state_dict(path))
    t, _, h, w = frames.shape
    hp, wp = -(-h // 4) * 4, -(-w // 4) * 4
    bounds = sorted(set(scene_starts) | {0}) + [t]
    outs = []
    with torch.no_grad():
        for a, b in zip(bounds[:-1], bounds[1:]):
            x = torch.from_numpy(frames[a:b])
            if (hp, wp) != (h, w):
                mode = "reflect" if hp - h < h and wp - w < w else "replicate"
                x = F.pad(x, (0, wp - w, 0, hp - h), mode=mode)
            y = net(x.unsqueeze(0))[0, :, :, : 4 * h, : 4 * w]
            outs.append(y.numpy())
    return np.concatenate(outs)
