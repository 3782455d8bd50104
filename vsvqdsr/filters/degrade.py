"""``vqdsr.Degrade``: transfer learned real-world degradation onto clean frames (VQD-SR's VQGAN).

Each output frame depends only on its input frame, the model, and ``(seed, frame number)``: the
top-k ranks of a frame are drawn from a counter-based generator keyed by those two numbers, so the
output is identical under any request order, thread count or ``vspipe`` range.
"""
from __future__ import annotations

import os
import threading
from collections.abc import Sequence
from typing import Any

import numpy as np
import vapoursynth as vs

from .formats import array_to_frame, check_clip, copy_props, frame_to_array, to_float_rgb

__all__ = ["Degrade"]

FUNC = "Degrade"

_CACHE: dict[tuple[str, str], Any] = {}
_CACHE_LOCK = threading.Lock()


def _fail(msg: str) -> vs.Error:
    return vs.Error(f"{FUNC}: {msg}")


def _k_range(name: str, k: int | Sequence[int], n_embed: int) -> tuple[int, int]:
    if isinstance(k, bool):
        raise _fail(f"{name} must be an int or a (lo, hi) pair, got {k!r}")
    if isinstance(k, (int, np.integer)):
        lo = hi = int(k)
    elif isinstance(k, Sequence) and len(k) == 2 and all(isinstance(v, (int, np.integer)) and not isinstance(v, bool)
                                                        for v in k):
        lo, hi = int(k[0]), int(k[1])
    else:
        raise _fail(f"{name} must be an int or a (lo, hi) pair of ints, got {k!r}")
    if not 1 <= lo <= hi <= n_embed:
        raise _fail(f"{name}={k!r} is out of range; accepted: 1 <= lo <= hi <= {n_embed} (codebook size)")
    return lo, hi


def frame_ks(seed: int, n: int, ranges: Sequence[tuple[int, int]]) -> list[int]:
    """The ranks (top, mid, bottom) used for frame ``n``: uniform in each inclusive range, keyed by (seed, n)."""
    rng = np.random.Generator(np.random.Philox(key=[seed & 0xFFFFFFFFFFFFFFFF, 0x5644_5153_5244_4547],
                                               counter=[n, 0, 0, 0]))
    return [int(rng.integers(lo, hi + 1)) for lo, hi in ranges]


def _load(model: str | os.PathLike, device: str) -> Any:
    from ..weights.degrader import load_degrader
    from ..weights.loading import WeightsError

    key = (str(model), device)
    with _CACHE_LOCK:
        net = _CACHE.get(key)
        if net is None:
            try:
                net = load_degrader(model)
            except (WeightsError, OSError) as e:
                raise _fail(str(e)) from e
            net = net.to(device)
            _CACHE[key] = net
    return net


def Degrade(
    clip: vs.VideoNode,
    model: str | os.PathLike = "default",
    k_top: int | Sequence[int] = 1,
    k_mid: int | Sequence[int] = 1,
    k_bottom: int | Sequence[int] = (1, 50),
    seed: int = 0,
    per_scene: bool = False,
    scene_detect: bool = True,
    backend: str = "cpu",
    device_id: int = 0,
    max_pixels: int = 1920 * 1088,
    tile: int = 512,
    threads: int | None = None,
) -> vs.VideoNode:
    """Degrade ``clip`` with a multi-scale VQGAN and stochastic top-k codebook lookup.

    Args:
        clip: constant format and size; RGBS/RGBH are used as they are, anything else is converted
            to RGBS like ``Upscale`` does (``_Matrix``/range props; missing ``_Matrix``: BT.709 above
            1024x576, else BT.601). Any size (padded to a multiple of 8 internally, cropped back).
        model: ``"default"``, a registry name (``"degrade-lite"``), our ``.safetensors`` or an
            official ``pretrain_mul_vqgan.ckpt``.
        k_top, k_mid, k_bottom: 1-based rank of the codebook entry used per branch (1 = nearest).
            An int fixes it; a ``(lo, hi)`` pair draws it uniformly per frame from ``(seed, n)``.
            Paper setting: top 1, middle 1, bottom (1, 50). Larger k = stronger, stranger degradation.
        seed: seed of the per-frame draws (same seed -> same output).
        per_scene: draw the ranks once per scene (keyed by ``(seed, first frame of the scene)``)
            instead of per frame, like the paper's one-k-per-clip training data. Cuts come from the
            input's ``_SceneChangePrev`` props, else from ``scd.Detect`` when ``scene_detect``.
        scene_detect: with ``per_scene``, detect cuts where frames carry no ``_SceneChangePrev``.
        backend: ``"cpu"`` or ``"cuda"`` (torch).
        device_id: GPU index for ``"cuda"``.
        max_pixels, tile: frames larger than ``max_pixels`` run in overlapping ``tile`` tiles.
        threads: torch CPU threads (None: leave torch's setting).

    Returns:
        RGBS (RGBH for RGBH input) clip of the same size, with the input's props plus
        ``VQDSR_KTop``, ``VQDSR_KMid``, ``VQDSR_KBottom`` (ranks used) and ``VQDSR_DegradeModel``.
    """
    import torch

    check_clip(clip, FUNC)
    if backend not in ("cpu", "cuda"):
        raise _fail(f"backend must be 'cpu' or 'cuda', got {backend!r}")
    if backend == "cuda" and not torch.cuda.is_available():
        raise _fail("backend='cuda' but torch sees no CUDA device; use backend='cpu'")
    if not isinstance(seed, (int, np.integer)) or isinstance(seed, bool):
        raise _fail(f"seed must be an int, got {seed!r}")
    if not isinstance(max_pixels, int) or max_pixels < 64 * 64:
        raise _fail(f"max_pixels must be an int >= 4096, got {max_pixels!r}")
    if threads is not None:
        torch.set_num_threads(int(threads))
    device = "cpu" if backend == "cpu" else f"cuda:{device_id}"
    net = _load(model, device)
    n_embed = net.config.n_embed
    ranges = [_k_range("k_top", k_top, n_embed), _k_range("k_mid", k_mid, n_embed),
              _k_range("k_bottom", k_bottom, n_embed)]
    half = clip.format.id == vs.RGBH
    rgb = to_float_rgb(clip, half=half)
    lock = threading.Lock()
    model_name = os.fspath(model)
    seed = int(seed)

    scenes = None
    if per_scene:
        from .scenes import SceneIndex
        scenes = SceneIndex(rgb, bool(scene_detect))

    def _frame(n: int, f: vs.VideoFrame | list[vs.VideoFrame]) -> vs.VideoFrame:
        if scenes is not None:
            f = f[0]  # f[1] is the scene index's frame n: n's scene start is now known
            ks = frame_ks(seed, scenes.start(n), ranges)
        else:
            ks = frame_ks(seed, n, ranges)
        arr = frame_to_array(f).astype(np.float32)
        x = torch.from_numpy(arr).unsqueeze(0).to(device)
        kt = [torch.tensor([k], dtype=torch.int64) for k in ks]
        with lock:
            y = net.degrade(x, *kt, max_pixels=max_pixels, tile=tile)
        out = array_to_frame(y[0].cpu().numpy().astype(arr.dtype if not half else np.float16), f)
        copy_props(out, f, {"VQDSR_KTop": ks[0], "VQDSR_KMid": ks[1], "VQDSR_KBottom": ks[2],
                            "VQDSR_DegradeModel": model_name})
        return out

    if scenes is not None:
        return rgb.std.ModifyFrame(clips=[rgb, scenes.info], selector=_frame)
    return rgb.std.ModifyFrame(clips=rgb, selector=_frame)
