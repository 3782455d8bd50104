"""``vqdsr.Upscale``: recurrent x4 animation video super-resolution as a VapourSynth filter."""
from __future__ import annotations

import dataclasses
import difflib
import inspect
import os
from typing import Any

import numpy as np
import vapoursynth as vs

from .. import backends
from ..backends import tiled
from ..backends.base import padded_size
from ..weights import WeightsError, load_state_dict, resolve_model
from ..weights.descriptors import build_network
from .chain import ChainPlan, RecurrentChain
from .formats import check_clip, check_color_props, to_float_rgb
from .output import check_output_args, finish
from .scenes import SceneIndex, default_warmup, scene_mode

__all__ = ["Upscale"]

FUNC = "Upscale"


def _fail(msg: str) -> vs.Error:
    return vs.Error(f"{FUNC}: {msg}")


def _is_int(v: object) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _check_args(model, backend, device_id, fp16, scene_detect, scene_thresh, stats, options) -> None:
    """Refuse bad argument types and ranges before any model is loaded."""
    if model is not None and not isinstance(model, (str, os.PathLike)):
        raise _fail(f"model must be a registry name, a weights file path or None, got {type(model).__name__}")
    if not isinstance(backend, str):
        raise _fail(f"backend must be a string (auto, {', '.join(sorted(backends.BACKENDS))}), "
                    f"got {type(backend).__name__}")
    if not _is_int(device_id) or device_id < 0:
        raise _fail(f"device_id must be an integer >= 0, got {device_id!r}")
    if fp16 is not None and not isinstance(fp16, (bool, int)):
        raise _fail(f"fp16 must be True, False or None, got {fp16!r}")
    if scene_mode(scene_detect) is None:
        raise _fail(f"scene_detect must be \"auto\", \"always\", \"never\", True (= auto) or False (= never), "
                    f"got {scene_detect!r}")
    if scene_thresh is not None and (not _is_int(scene_thresh) or not 0 <= scene_thresh <= 255):
        raise _fail("scene_thresh must be an integer in [0, 255] (scd.Detect's mean absolute luma "
                    f"difference of 8-bit frames) or None, got {scene_thresh!r}")
    if stats is not None and not isinstance(stats, dict):
        raise _fail(f"stats must be a dict or None, got {type(stats).__name__}")
    threads = options.get("threads")
    if threads is not None and (not _is_int(threads) or threads < 1):
        raise _fail(f"threads must be a positive integer or None, got {threads!r}")


def _check_options(backend: str, options: dict) -> None:
    """Refuse keyword arguments that neither ``Upscale`` nor any backend ``backend`` may use takes
    (``scale=2``, a typo like ``max_chian=16``), naming them, a close match and what is accepted."""
    try:
        backends.check_options(backend, options)
    except backends.UnknownOptions as e:
        own = [p for p in inspect.signature(Upscale).parameters if p not in ("clip", "backend_options")]
        hints = []
        for bad in e.names:
            close = difflib.get_close_matches(bad, own + e.accepted, n=1)
            hints.append(f"{bad} (did you mean {close[0]}?)" if close else bad)
        where = "any backend of backend='auto' (" + ", ".join(backends.AUTO_ORDER) + ")" \
            if backend == "auto" else f"backend {backend!r}"
        raise _fail(f"unknown argument(s) {', '.join(hints)}: neither Upscale nor {where} takes "
                    f"{'it' if len(e.names) == 1 else 'them'}; accepted: Upscale's {', '.join(own)}, and "
                    f"backend options {', '.join(e.accepted) or 'none'}") from None
    except backends.BackendUnavailable as e:
        raise _fail(f"backend {backend!r}: {e}") from None


#: Backends whose stored states live in GPU memory.
_GPU_BACKENDS = frozenset({"cuda", "trt", "torch_trt"})


def default_cache_mb(runner_name: str, device_id: int = 0) -> int:
    """The step store's default budget: 1/64 of physical RAM, within [256, 1024] MiB; on a GPU backend
    also at most 1/8 of the device's memory (the states live there)."""
    try:
        ram = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        ram = 8 << 30
    mb = min(1024, max(256, (ram // 64) >> 20))
    if runner_name in _GPU_BACKENDS:
        try:
            import torch

            mb = min(mb, (torch.cuda.get_device_properties(device_id).total_memory // 8) >> 20)
        except Exception:  # noqa: BLE001 -- no torch/CUDA query: keep the RAM-based figure
            pass
    return max(16, int(mb))


#: Automatic tiling: a step whose untiled activations would exceed ``AUTO_TILE_TRIGGER_MB`` MiB is
#: tiled into windows of at most ``AUTO_TILE_MB`` MiB of activations. Tiling costs compute (each
#: window recomputes its halo), so frames that fit run untiled; frames that do not get small windows,
#: because the full-frame buffers (store, state, output) grow with the frame at the same time.
AUTO_TILE_TRIGGER_MB = 1536
AUTO_TILE_MB = 384


def _pair(v: Any) -> tuple[int, int] | None:
    """``v`` as ``(x, y)`` positive ints (an int means both), or None if it is not one."""
    if _is_int(v):
        v = (v, v)
    if isinstance(v, (tuple, list)) and len(v) == 2 and all(_is_int(i) and i >= 1 for i in v):
        return int(v[0]), int(v[1])
    return None


def _check_tile_args(tiles, tilesize, overlap) -> None:
    if tiles is not None and _pair(tiles) is None:
        raise _fail(f"tiles must be a positive integer or (across, down) of positive integers, or None, got {tiles!r}")
    if tilesize is not None and (_pair(tilesize) is None or min(_pair(tilesize)) < 8):
        raise _fail("tilesize must be (width, height) in input pixels, each an integer >= 8 (or one such "
                    f"integer for both), or None, got {tilesize!r}")
    if tiles is not None and tilesize is not None:
        raise _fail("give tiles (a count) or tilesize (a size), not both")
    if overlap is not None and (not _is_int(overlap) or overlap < 0):
        raise _fail(f"overlap must be an integer (input pixels, at least the receptive field of one step) "
                    f"or None, got {overlap!r}")


def tile_grid(hp: int, wp: int, tiles, tilesize, halo: int) -> tuple[int, int]:
    """Tiles ``(across, down)`` for a padded ``hp x wp`` input (see ``Upscale``'s ``tiles``)."""
    if tiles is not None:
        return _pair(tiles)
    if tilesize is not None:
        tw, th = _pair(tilesize)
        return -(-wp // tw), -(-hp // th)
    if tiled.ACTIVATION_BYTES_PER_PIXEL * hp * wp <= AUTO_TILE_TRIGGER_MB << 20:
        return 1, 1
    limit = AUTO_TILE_MB << 20
    # square-ish tiles of at most ``limit`` bytes, the halo counted
    n = 2
    while True:
        gx = max(1, round((n * wp / hp) ** 0.5))
        gy = -(-n // gx)
        lay = tiled.tile_layout(hp, wp, (gx, gy), halo)
        if tiled.ACTIVATION_BYTES_PER_PIXEL * lay.win_h * lay.win_w <= limit or n > 256:
            return gx, gy
        n += 1


def _tiling(spec, desc, tiles, tilesize, overlap) -> tiled.TileLayout | None:
    """The tile layout for ``spec`` (None: run untiled); refuses an overlap below the receptive field
    and more tiles than the input has 4-pixel columns/rows."""
    hp, wp = padded_size(spec.height, spec.width, desc.size_multiple)
    reach = tiled.step_reach(tuple(desc.num_block))
    if overlap is not None and overlap < reach:
        raise _fail(f"overlap must be >= {reach} input pixels (the receptive field of one step of this network; "
                    f"less puts seams into the hidden state that grow along the scene), or None, got {overlap}")
    grid = tile_grid(hp, wp, tiles, tilesize, reach if overlap is None else overlap)
    if grid[0] > wp // 4 or grid[1] > hp // 4:
        raise _fail(f"tiles {grid[0]}x{grid[1]} do not fit a {spec.width}x{spec.height} input; accepted: at most "
                    f"{wp // 4} across and {hp // 4} down (tiles of at least 4 pixels)")
    if grid == (1, 1):
        return None
    layout = tiled.tile_layout(hp, wp, grid, reach if overlap is None else overlap, desc.size_multiple)
    if layout.grid == (1, 1) or (layout.win_h, layout.win_w) == (hp, wp):
        return None
    return layout


def _make_runner(backend, net, desc, spec, layout, options):
    """The runner for ``spec``: a :class:`~vsvqdsr.backends.tiled.TiledRunner` over a runner built for
    one window when ``layout`` is given."""
    if layout is None:
        return backends.create(backend, net, desc, spec, **options)
    inner_spec = dataclasses.replace(spec, height=layout.win_h, width=layout.win_w)
    inner = backends.create(backend, net, desc, inner_spec, **options)
    return tiled.TiledRunner(inner, desc, spec, layout)


def _check_finite(state: dict, path) -> None:
    """Refuse NaN/Inf weights: they would make every output frame silently non-finite."""
    import torch

    bad = [k for k, t in state.items() if torch.is_tensor(t) and t.is_floating_point()
           and not bool(torch.isfinite(t).all())]
    if bad:
        more = f" and {len(bad) - 3} more" if len(bad) > 3 else ""
        raise WeightsError(f"{os.fspath(path)}: weights contain NaN or Inf in {', '.join(bad[:3])}{more}; "
                           "accepted: finite weights only")


def Upscale(
    clip: vs.VideoNode,
    model: str | os.PathLike | None = None,
    backend: str = "auto",
    device_id: int = 0,
    fp16: bool | None = None,
    scene_detect: bool | str = "auto",
    scene_thresh: int | None = None,
    max_chain: int | None = None,
    warmup: int | None = None,
    num_streams: int = 1,
    cache_steps: int | None = None,
    cache_mb: int | None = None,
    width: int | None = None,
    height: int | None = None,
    kernel: str = "bicubic",
    linear: bool = False,
    format: Any = None,  # noqa: A002 -- the name every VapourSynth filter uses
    clamp: bool = False,
    tiles: int | tuple[int, int] | None = None,
    tilesize: int | tuple[int, int] | None = None,
    overlap: int | None = None,
    stats: dict | None = None,
    **backend_options: Any,
) -> vs.VideoNode:
    """Upscale ``clip`` 4x with a recurrent VSR network (VQD-SR or AnimeSR).

    Output frame n is the network run over the frames from the start of n's scene (or chain) up to
    n, with neighbours clamped inside the scene, so the result is identical for any frame request
    order, ``vspipe`` range or thread count, and each network step runs once in a linear render.

    Args:
        clip: constant format and size; RGBS/RGBH are used as they are, anything else (YUV, GRAY,
            integer RGB) is converted to RGBS with its ``_Matrix``/``_Range``/``_Primaries``/
            ``_Transfer`` props (missing ``_Matrix``: BT.709 above 1024x576, else BT.601; a code
            ``resize`` cannot convert fails that frame with ``Upscale: frame n has ...``). Any size:
            it is padded to a multiple of 4 internally; the output is exactly 4w x 4h. Interlaced
            frames (``_FieldBased`` > 0) are processed as they are, with one warning on stderr.
        model: a registry name (``vqdsr.models()``), a weights file path, or None for the default.
        backend: ``"auto"`` (TensorRT, else CUDA, else CPU) or a backend name.
        device_id: GPU index for GPU backends.
        fp16: half precision inference where the backend allows; None = only for RGBH input.
            The output is RGBH for RGBH input (or non-float input with ``fp16=True``), else RGBS.
        scene_detect: ``"auto"`` (or True): a frame's own ``_SceneChangePrev`` decides, ``scd.Detect``
            where it has none; ``"always"``: a cut where either the prop or ``scd.Detect`` says so
            (use it on splices of clips that already carry the prop: ``det[0:3] + det[100:104]``
            keeps a stale ``_SceneChangePrev=0`` at the join); ``"never"`` (or False): the props alone.
        scene_thresh: ``scd.Detect`` threshold, an integer in [0, 255] (its default when None).
        max_chain: restart the recurrence every N frames inside a scene (bounds random-access
            cost to N + warmup steps); None = one chain per scene.
        warmup: frames run before each restart so it does not show (default min(16, N // 2)).
        num_streams: independent chains a GPU backend may run at once.
        cache_steps: an explicit count of finished steps (frame + hidden state) kept for
            re-requests, overriding ``cache_mb``.
        cache_mb: size in MiB of the step store (output frames, hidden states, device outputs):
            default 1/64 of RAM within [256, 1024] (and at most 1/8 of the GPU's memory on a GPU
            backend). Over it, a step whose successor is stored goes first; at least 2 steps are
            kept when chains interleave. A linear render runs every step once with any size, a
            larger store only helps re-requests and random access.
        width, height: output size after super-resolution (downscale with ``kernel``); one of them
            alone keeps the aspect ratio (rounded to even). None = 4x the input.
        kernel: ``resize`` kernel for width/height and format conversion: point, bilinear, bicubic
            (default), lanczos, spline16, spline36, spline64.
        linear: resize in linear light (the frame's ``_Transfer``, BT.709 where it has none);
            negative overshoot becomes 0 on the way.
        format: None = RGBS/RGBH as described below; ``"same"`` = the input's format; or any
            VapourSynth format (``vs.YUV420P10``). YUV/GRAY output uses each input frame's
            ``_Matrix``/``_Range`` (missing: the defaults the input was decoded with).
        clamp: clamp float output to [0, 1] (the network overshoots: RGBS spans about
            -0.47..1.18 on the bundled sample); integer formats are clamped by the conversion.
        tiles: run each step as this many overlapping tiles, an int (across and down) or
            ``(across, down)``; 1 = never tile. None (with ``tilesize`` None): automatic, when one
            untiled step's activations (about 3.7 KB per input pixel in fp32) would exceed
            :data:`AUTO_TILE_TRIGGER_MB` MiB, into tiles of at most :data:`AUTO_TILE_MB` MiB
            (720x480 runs untiled, 1280x720 as 4x4 tiles). The hidden state stays
            full-frame; each tile sees the inputs and state over its region plus ``overlap`` pixels
            of context, and only its interior is kept, so the output equals the untiled output up to
            float rounding (no seams, no drift over the scene) while memory is bounded by the tile.
        tilesize: tile size ``(width, height)`` (or one int for both) in input pixels, rounded up to a
            multiple of 4, instead of ``tiles``.
        overlap: context on each inner side of a tile, in input pixels; at least (and by default) the
            receptive field of one step (:func:`~vsvqdsr.backends.tiled.step_reach`, 28 for the
            shipped networks), rounded up to a multiple of 4.
        stats: optional dict the filter keeps updated with ``steps`` (network steps run),
            ``served`` (re-requests answered from the store), ``fallback_steps``, ``stored`` and
            ``stored_mb`` (steps held in the store and their size).
        backend_options: passed to the backend (e.g. ``engine_dir`` for TensorRT; for the CPU
            engines ``precision="auto"|"f32"|"bf16"``: auto is bf16 on CPUs with AMX-BF16, else f32).
            An option that no backend ``backend`` may pick takes (``scale=2``, ``max_chian=16``) is an
            error in every mode; under ``"auto"`` options of another backend of the auto order are
            dropped with a note on stderr.

    Returns:
        RGBS (or RGBH) clip, 4x wider and taller, with the input's props plus ``VQDSR_Model`` and
        ``VQDSR_ChainStart`` (first frame of the chain that produced the frame); an ``_Alpha`` prop
        is resized with the picture (bilinear). Samples are not clamped to [0, 1] (the network's
        overshoot at edges is kept; integer conversion clamps). The clip alone owns the engine:
        dropping it (and its frames) frees the runner, the stored states and device memory.

    Raises:
        vs.Error: ``"Upscale: ..."`` naming the bad argument (or clip, weights, backend) and what is
        accepted; weights holding NaN or Inf are refused.
    """
    check_clip(clip, FUNC)
    _check_args(model, backend, device_id, fp16, scene_detect, scene_thresh, stats, backend_options)
    _check_options(backend, backend_options)
    if max_chain is not None and (not isinstance(max_chain, int) or max_chain < 2):
        raise _fail(f"max_chain must be an integer >= 2 or None, got {max_chain!r}")
    if max_chain is None:
        if warmup not in (None, 0):
            raise _fail("warmup only applies together with max_chain")
        warmup = 0
    elif warmup is None:
        warmup = default_warmup(max_chain)
    elif not isinstance(warmup, int) or not 0 <= warmup < max_chain:
        raise _fail(f"warmup must be an integer in [0, max_chain), got {warmup!r}")
    if cache_steps is not None and (not isinstance(cache_steps, int) or cache_steps < 2):
        raise _fail(f"cache_steps must be an integer >= 2, got {cache_steps!r}")
    if cache_mb is not None and (not _is_int(cache_mb) or cache_mb < 1):
        raise _fail(f"cache_mb must be an integer >= 1 (MiB) or None, got {cache_mb!r}")
    if cache_mb is not None and cache_steps is not None:
        raise _fail("give cache_mb (a size) or cache_steps (a count), not both")
    if not isinstance(num_streams, int) or num_streams < 1:
        raise _fail(f"num_streams must be a positive integer, got {num_streams!r}")
    check_output_args(clip, 4, width, height, kernel, linear, format, clamp, FUNC)  # fail before loading
    _check_tile_args(tiles, tilesize, overlap)

    is_float_rgb = clip.format.id in (vs.RGBS, vs.RGBH)
    if fp16 is None:
        fp16 = clip.format.id == vs.RGBH
    half_out = clip.format.id == vs.RGBH or (not is_float_rgb and bool(fp16))

    try:
        name, path = resolve_model(model)
        state = load_state_dict(path)
        _check_finite(state, path)
        net, desc = build_network(state)
    except (WeightsError, OSError) as e:
        raise _fail(str(e)) from None

    # Float RGB passes through untouched; anything else is converted with its colour props, checked here.
    rgb = clip if is_float_rgb else to_float_rgb(check_color_props(clip, FUNC), half=half_out)
    spec = backends.RunnerSpec(height=clip.height, width=clip.width, fp16=bool(fp16), device_id=device_id,
                               host_dtype=np.float16 if half_out else np.float32, num_streams=num_streams)
    layout = _tiling(spec, desc, tiles, tilesize, overlap)
    try:
        runner = _make_runner(backend, net, desc, spec, layout, backend_options)
    except (RuntimeError, TypeError, ValueError, OSError) as e:  # BackendUnavailable is a RuntimeError
        raise _fail(f"backend {backend!r}: {e}") from None

    out_w, out_h, out_fmt = check_output_args(clip, runner.scale, width, height, kernel, linear, format, clamp,
                                              FUNC)
    scenes = SceneIndex(rgb, scene_detect, scene_thresh)
    budget = None
    if cache_steps is None:
        budget = (cache_mb if cache_mb is not None else default_cache_mb(runner.name, device_id)) << 20
    chain = RecurrentChain(rgb, runner, scenes, ChainPlan(max_chain, warmup), cache_steps,
                           {"VQDSR_Model": name}, stats, budget=budget)
    return finish(chain.clip(), clip, out_w, out_h, kernel, linear, out_fmt, clamp)
