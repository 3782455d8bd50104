"""``vqdsr.Upscale``: recurrent x4 animation video super-resolution as a VapourSynth filter."""
from __future__ import annotations

import os
from typing import Any

import numpy as np
import vapoursynth as vs

from .. import backends
from ..weights import WeightsError, load_state_dict, resolve_model
from ..weights.descriptors import build_network
from .chain import ChainPlan, RecurrentChain
from .formats import check_clip, to_float_rgb
from .scenes import SceneIndex

__all__ = ["Upscale"]

FUNC = "Upscale"


def _fail(msg: str) -> vs.Error:
    return vs.Error(f"{FUNC}: {msg}")


def Upscale(
    clip: vs.VideoNode,
    model: str | os.PathLike | None = None,
    backend: str = "auto",
    device_id: int = 0,
    fp16: bool | None = None,
    scene_detect: bool = True,
    scene_thresh: int | None = None,
    max_chain: int | None = None,
    warmup: int | None = None,
    num_streams: int = 1,
    cache_steps: int | None = None,
    stats: dict | None = None,
    **backend_options: Any,
) -> vs.VideoNode:
    """Upscale ``clip`` 4x with a recurrent VSR network (VQD-SR or AnimeSR).

    Output frame n is the network run over the frames from the start of n's scene (or chain) up to
    n, with neighbours clamped inside the scene, so the result is identical for any frame request
    order, ``vspipe`` range or thread count, and each network step runs once in a linear render.

    Args:
        clip: constant format and size; RGBS/RGBH are used as they are, anything else (YUV, GRAY,
            integer RGB) is converted to RGBS with its ``_Matrix``/``_ColorRange``/``_Primaries``/
            ``_Transfer`` props (missing ``_Matrix``: BT.709 above 1024x576, else BT.601). Any size:
            it is padded to a multiple of 4 internally; the output is exactly 4w x 4h.
        model: a registry name (``vqdsr.models()``), a weights file path, or None for the default.
        backend: ``"auto"`` (TensorRT, else CUDA, else CPU) or a backend name.
        device_id: GPU index for GPU backends.
        fp16: half precision inference where the backend allows; None = only for RGBH input.
            The output is RGBH for RGBH input (or non-float input with ``fp16=True``), else RGBS.
        scene_detect: detect cuts with ``scd.Detect`` where frames carry no ``_SceneChangePrev``.
        scene_thresh: ``scd.Detect`` threshold (its default when None).
        max_chain: restart the recurrence every N frames inside a scene (bounds random-access
            cost to N + warmup steps); None = one chain per scene.
        warmup: frames run before each restart so it does not show (default min(16, N // 2)).
        num_streams: independent chains a GPU backend may run at once.
        cache_steps: finished steps (frame + hidden state) kept for re-requests; default
            ``max(8, 2 * core.num_threads + 4)``.
        stats: optional dict the filter keeps updated with ``steps`` (network steps run),
            ``served`` (re-requests answered from the store) and ``fallback_steps``.
        backend_options: passed to the backend (e.g. ``engine_dir`` for TensorRT).

    Returns:
        RGBS (or RGBH) clip, 4x wider and taller, with the input's props plus ``VQDSR_Model`` and
        ``VQDSR_ChainStart`` (first frame of the chain that produced the frame).
    """
    check_clip(clip, FUNC)
    if max_chain is not None and (not isinstance(max_chain, int) or max_chain < 2):
        raise _fail(f"max_chain must be an integer >= 2 or None, got {max_chain!r}")
    if max_chain is None:
        if warmup not in (None, 0):
            raise _fail("warmup only applies together with max_chain")
        warmup = 0
    elif warmup is None:
        warmup = min(16, max_chain // 2)
    elif not isinstance(warmup, int) or not 0 <= warmup < max_chain:
        raise _fail(f"warmup must be an integer in [0, max_chain), got {warmup!r}")
    if cache_steps is not None and (not isinstance(cache_steps, int) or cache_steps < 2):
        raise _fail(f"cache_steps must be an integer >= 2, got {cache_steps!r}")
    if not isinstance(num_streams, int) or num_streams < 1:
        raise _fail(f"num_streams must be a positive integer, got {num_streams!r}")

    is_float_rgb = clip.format.id in (vs.RGBS, vs.RGBH)
    if fp16 is None:
        fp16 = clip.format.id == vs.RGBH
    half_out = clip.format.id == vs.RGBH or (not is_float_rgb and bool(fp16))

    try:
        name, path = resolve_model(model)
        net, desc = build_network(load_state_dict(path))
    except WeightsError as e:
        raise _fail(str(e)) from None

    rgb = to_float_rgb(clip, half=half_out)
    spec = backends.RunnerSpec(height=clip.height, width=clip.width, fp16=bool(fp16), device_id=device_id,
                               host_dtype=np.float16 if half_out else np.float32, num_streams=num_streams)
    try:
        runner = backends.create(backend, net, desc, spec, **backend_options)
    except (backends.BackendUnavailable, TypeError, ValueError) as e:
        raise _fail(f"backend {backend!r}: {e}") from None

    scenes = SceneIndex(rgb, scene_detect, scene_thresh)
    capacity = cache_steps or max(8, 2 * vs.core.num_threads + 4)
    chain = RecurrentChain(rgb, runner, scenes, ChainPlan(max_chain, warmup), capacity,
                           {"VQDSR_Model": name}, stats)
    return chain.output
