"""``vqdsr.Degrade``: transfer learned real-world degradation onto clean frames (VQD-SR's VQGAN).

Each output frame depends only on its input frame, the model, and ``(seed, frame number)``: the
top-k ranks of a frame are drawn from a counter-based generator keyed by those two numbers, so the
output is identical under any request order, thread count or ``vspipe`` range.
"""
from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

import numpy as np
import vapoursynth as vs

from ..nets.vqgan import TOPK_LIMIT
from .formats import array_to_frame, check_clip, copy_props, frame_to_array, to_float_rgb

__all__ = ["Degrade", "frame_ks"]

FUNC = "Degrade"

#: Seeds are 64-bit unsigned integers (the Philox key word); others are refused, not wrapped.
SEED_MAX = 2 ** 64 - 1


def _fail(msg: str) -> vs.Error:
    return vs.Error(f"{FUNC}: {msg}")


def _k_range(name: str, k: int | Sequence[int], k_limit: int) -> tuple[int, int]:
    if isinstance(k, bool):
        raise _fail(f"{name} must be an int or a (lo, hi) pair, got {k!r}")
    if isinstance(k, (int, np.integer)):
        lo = hi = int(k)
    elif isinstance(k, Sequence) and len(k) == 2 and all(isinstance(v, (int, np.integer)) and not isinstance(v, bool)
                                                        for v in k):
        lo, hi = int(k[0]), int(k[1])
    else:
        raise _fail(f"{name} must be an int or a (lo, hi) pair of ints, got {k!r}")
    if not 1 <= lo <= hi <= k_limit:
        raise _fail(f"{name}={k!r} is out of range; accepted: 1 <= lo <= hi <= {k_limit} "
                    f"(the codebook size, at most {TOPK_LIMIT})")
    return lo, hi


def frame_ks(seed: int, n: int, ranges: Sequence[tuple[int, int]]) -> list[int]:
    """The ranks (top, mid, bottom) used for frame ``n``: uniform in each inclusive range, keyed by (seed, n)."""
    rng = np.random.Generator(np.random.Philox(key=[seed & 0xFFFFFFFFFFFFFFFF, 0x5644_5153_5244_4547],
                                               counter=[n, 0, 0, 0]))
    return [int(rng.integers(lo, hi + 1)) for lo, hi in ranges]


def _int_arg(name: str, v: Any, lo: int, hi: int | None = None) -> int:
    if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < lo or (hi is not None and v > hi):
        rng = f"{lo}..{hi}" if hi is not None else f">= {lo}"
        raise _fail(f"{name} must be an int {rng}, got {v!r}")
    return int(v)


def Degrade(
    clip: vs.VideoNode,
    model: str | os.PathLike | None = None,
    k_top: int | Sequence[int] = 1,
    k_mid: int | Sequence[int] = 1,
    k_bottom: int | Sequence[int] = (1, 50),
    seed: int = 0,
    per_scene: bool = False,
    scene_detect: bool = True,
    backend: str = "auto",
    device_id: int = 0,
    fp16: bool | None = None,
    max_pixels: int = 1920 * 1088,
    tile: int = 512,
    threads: int | None = None,
    **backend_options: Any,
) -> vs.VideoNode:
    """Degrade ``clip`` with a multi-scale VQGAN and stochastic top-k codebook lookup.

    Args:
        clip: constant format and size; RGBS/RGBH are used as they are, anything else is converted
            to RGBS like ``Upscale`` does (``_Matrix``/range props; missing ``_Matrix``: BT.709 above
            1024x576, else BT.601). Any size (padded to a multiple of 8 internally, cropped back).
        model: None or ``"default"`` (the default degrader), a registry name (``"degrade-lite"``),
            our ``.safetensors`` or an official ``pretrain_mul_vqgan.ckpt``.
        k_top, k_mid, k_bottom: 1-based rank of the codebook entry used per branch (1 = nearest).
            An int fixes it; a ``(lo, hi)`` pair draws it uniformly per frame from ``(seed, n)``.
            Paper setting: top 1, middle 1, bottom (1, 50). Larger k = stronger, stranger degradation.
        seed: seed of the per-frame draws, an int in ``0 .. 2**64 - 1`` (same seed -> same output).
        per_scene: draw the ranks once per scene (keyed by ``(seed, first frame of the scene)``)
            instead of per frame, like the paper's one-k-per-clip training data. Cuts come from the
            input's ``_SceneChangePrev`` props, else from ``scd.Detect`` when ``scene_detect``.
        scene_detect: with ``per_scene``, detect cuts where frames carry no ``_SceneChangePrev``.
        backend: as ``Upscale``: ``"auto"`` (TensorRT, else CUDA, else CPU) or a backend name
            (``cpu`` with option ``engine`` = openvino / ort / torch / torch_nchw, ``ort``,
            ``openvino``, ``cuda``, ``trt``, ``torch_trt``).
        device_id: GPU index for GPU backends.
        fp16: half precision where the backend allows (GPU backends). Default: only for RGBH input.
        max_pixels, tile: frames larger than ``max_pixels`` run in overlapping ``tile`` tiles.
        threads: CPU threads of the CPU engines (None: all cores); passed to the engine.
        backend_options: passed to the backend (e.g. ``engine="ort"``, ``engine_dir=...``), among them
            the CPU engines' ``precision``: ``"auto"`` (default: bf16 on CPUs with AMX-BF16, else
            f32), ``"f32"`` or ``"bf16"`` (OpenVINO, torch; onnxruntime is f32 only). Under bf16 the
            convolutions run in bf16 and the top-k lookup (distances, TopK, codebook rows) in f32.

    Returns:
        RGBS (RGBH for RGBH input) clip of the same size, with the input's props plus
        ``VQDSR_KTop``, ``VQDSR_KMid``, ``VQDSR_KBottom`` (ranks used) and ``VQDSR_DegradeModel``.
    """
    from ..backends import BackendUnavailable, RunnerSpec
    from ..backends.image import DegradeRunner
    from ..weights.degrader import load_degrader_model
    from ..weights.loading import WeightsError

    check_clip(clip, FUNC)
    if not isinstance(backend, str):
        raise _fail(f"backend must be a backend name, got {backend!r}")
    seed = _int_arg("seed", seed, 0, SEED_MAX)
    device_id = _int_arg("device_id", device_id, 0)
    max_pixels = _int_arg("max_pixels", max_pixels, 64 * 64)
    tile = _int_arg("tile", tile, 64)
    if threads is not None:
        backend_options["threads"] = _int_arg("threads", threads, 1)
    if "precision" in backend_options:
        from ..backends.precision import check

        try:
            check(backend_options["precision"])
        except ValueError as e:
            raise _fail(str(e)) from None
    if fp16 is not None and not isinstance(fp16, bool):
        raise _fail(f"fp16 must be True, False or None, got {fp16!r}")
    if model is not None and not isinstance(model, (str, os.PathLike)):
        raise _fail(f"model must be None, a model name or a file path, got {type(model).__name__}")
    try:
        net, desc, model_name = load_degrader_model(model)
    except (WeightsError, OSError) as e:
        raise _fail(str(e)) from None
    k_limit = min(desc.config.n_embed, TOPK_LIMIT)
    ranges = [_k_range("k_top", k_top, k_limit), _k_range("k_mid", k_mid, k_limit),
              _k_range("k_bottom", k_bottom, k_limit)]
    half = clip.format.id == vs.RGBH
    spec = RunnerSpec(height=clip.height, width=clip.width, fp16=bool(half if fp16 is None else fp16),
                      device_id=device_id, host_dtype=np.float16 if half else np.float32)
    try:
        # each branch's TopK takes the largest rank this clip can ask of it (a constant K)
        runner = DegradeRunner(net, spec, backend, k_max=tuple(hi for _, hi in ranges), max_pixels=max_pixels,
                               tile=tile, **backend_options)
    except (BackendUnavailable, ValueError, TypeError) as e:
        raise _fail(str(e)) from None
    del net  # the runner holds what it needs; it is freed with the clip
    rgb = to_float_rgb(clip, half=half)

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
        out = array_to_frame(runner.run(arr, ks), f)
        copy_props(out, f, {"VQDSR_KTop": ks[0], "VQDSR_KMid": ks[1], "VQDSR_KBottom": ks[2],
                            "VQDSR_DegradeModel": model_name})
        return out

    if scenes is not None:
        return rgb.std.ModifyFrame(clips=[rgb, scenes.info], selector=_frame)
    return rgb.std.ModifyFrame(clips=rgb, selector=_frame)
