"""vqdsr.Upscale inside one process: parity, access orders, exactly-once, scenes, formats, errors."""
from __future__ import annotations

import random

import numpy as np
import pytest
import vapoursynth as vs

import vsvqdsr as vqdsr
from conftest import clip_from_array, clip_to_array, reference_upscale, textured_frames

core = vs.core
CUT = 7
FRAMES = textured_frames(12, 12, 16, seed=1, cut=CUT)


@pytest.fixture
def threads():
    old = core.num_threads
    yield lambda n: setattr(core, "num_threads", n)
    core.num_threads = old


@pytest.fixture(scope="module")
def src():
    return clip_from_array(FRAMES)


@pytest.fixture(scope="module")
def linear_out(src, animesr_path):
    return clip_to_array(vqdsr.Upscale(src, model=str(animesr_path)))


def test_matches_plain_torch_per_scene(linear_out, animesr_path):
    ref = reference_upscale(animesr_path, FRAMES, [CUT])
    assert linear_out.shape == (12, 3, 48, 64)
    np.testing.assert_allclose(linear_out, ref, rtol=0, atol=2e-5)


def test_vqdsr_variant_matches_plain_torch(src, vqdsr_random_path):
    out = clip_to_array(vqdsr.Upscale(src, model=str(vqdsr_random_path)))
    ref = reference_upscale(vqdsr_random_path, FRAMES, [CUT])
    np.testing.assert_allclose(out, ref, rtol=0, atol=2e-5)


def test_scene_cut_resets_state(src, linear_out, animesr_path):
    second = clip_to_array(vqdsr.Upscale(src[CUT:], model=str(animesr_path)))
    assert np.array_equal(second, linear_out[CUT:])
    # without detection the state flows across the cut and the output differs
    joined = clip_to_array(vqdsr.Upscale(src, model=str(animesr_path), scene_detect=False))
    assert np.array_equal(joined[:CUT - 1], linear_out[:CUT - 1])
    # the last frame before a cut does not look across it (next frame clamped to itself)
    assert not np.allclose(joined[CUT - 1], linear_out[CUT - 1], atol=1e-4)
    assert not np.allclose(joined[CUT:], linear_out[CUT:], atol=1e-3)


def test_scene_cuts_from_input_props_win(src, animesr_path):
    marked = core.std.SetFrameProps(src, _SceneChangePrev=0)
    marked = marked[:4] + core.std.SetFrameProps(marked[4:], _SceneChangePrev=1)[0] + marked[5:]
    out = vqdsr.Upscale(marked, model=str(animesr_path))
    starts = [out.get_frame(n).props["VQDSR_ChainStart"] for n in range(12)]
    assert starts == [0] * 4 + [4] * 8  # the detector's cut at 7 is overridden by the props


@pytest.mark.parametrize("nthreads", [1, 4])
@pytest.mark.parametrize("order", ["reverse", "random", "async"])
def test_access_order_independent(src, linear_out, animesr_path, threads, nthreads, order):
    threads(nthreads)
    st: dict = {}
    # A store as large as the clip: then even arbitrary orders run every step exactly once.
    clip = vqdsr.Upscale(src, model=str(animesr_path), stats=st, cache_steps=16)
    n = clip.num_frames
    if order == "reverse":
        got = clip_to_array(clip, list(range(n))[::-1])
    elif order == "random":
        idx = list(range(n))
        random.Random(5).shuffle(idx)
        got = clip_to_array(clip, idx)
    else:
        idx = list(range(n)) * 2
        random.Random(7).shuffle(idx)
        futs = [(i, clip.get_frame_async(i)) for i in idx]
        got = np.empty_like(linear_out)
        for i, fut in futs:
            f = fut.result()
            got[i] = np.stack([np.asarray(f[p]) for p in range(3)])
    assert np.array_equal(got, linear_out)
    assert st["steps"] == n  # every step exactly once, whatever the order
    assert st["fallback_steps"] == 0


def test_small_store_random_order_recomputes_but_stays_identical(src, linear_out, animesr_path, threads):
    threads(1)
    st: dict = {}
    clip = vqdsr.Upscale(src, model=str(animesr_path), stats=st, cache_steps=2)
    idx = list(range(clip.num_frames))
    random.Random(11).shuffle(idx)
    assert np.array_equal(clip_to_array(clip, idx), linear_out)
    assert clip.num_frames < st["steps"] <= sum(n - (0 if n < CUT else CUT) + 1 for n in idx)


def test_exactly_once_linear_with_prefetch_and_small_cache(src, animesr_path, threads):
    threads(4)
    old = core.max_cache_size
    core.max_cache_size = 1
    try:
        st: dict = {}
        clip = vqdsr.Upscale(src, model=str(animesr_path), stats=st)
        window, futs = 6, {}
        for i in range(clip.num_frames):  # sliding-window prefetch like vspipe
            for j in range(i, min(i + window, clip.num_frames)):
                futs.setdefault(j, clip.get_frame_async(j))
            futs.pop(i).result()
        assert st["steps"] == clip.num_frames
    finally:
        core.max_cache_size = old


def test_random_access_costs_only_its_chain(src, animesr_path):
    st: dict = {}
    clip = vqdsr.Upscale(src, model=str(animesr_path), stats=st)
    clip.get_frame(CUT + 2)
    assert st["steps"] == 3  # frames CUT, CUT+1, CUT+2


def test_max_chain_is_deterministic_and_bounded(src, animesr_path, threads):
    threads(2)
    kw = dict(model=str(animesr_path), max_chain=3, warmup=1)
    a = clip_to_array(vqdsr.Upscale(src, **kw))
    idx = list(range(12))
    random.Random(3).shuffle(idx)
    b = clip_to_array(vqdsr.Upscale(src, **kw), idx)
    assert np.array_equal(a, b)
    st: dict = {}
    one = vqdsr.Upscale(src, stats=st, **kw)
    frame = one.get_frame(5)
    assert frame.props["VQDSR_ChainStart"] == 2  # segment 3..5 of scene 0, warm-up from frame 2
    assert st["steps"] == 4  # 2 (warm-up) + 3, 4, 5
    plain = clip_to_array(vqdsr.Upscale(src, model=str(animesr_path)))
    assert np.array_equal(a[:3], plain[:3]) and np.array_equal(a[CUT:CUT + 3], plain[CUT:CUT + 3])
    assert not np.array_equal(a[3:CUT], plain[3:CUT])


def test_props_copied_and_added(src, animesr_path):
    tagged = core.std.SetFrameProps(src, MyProp=42, _Matrix=0)
    f = vqdsr.Upscale(tagged, model=str(animesr_path)).get_frame(8)
    assert f.props["MyProp"] == 42 and f.props["VQDSR_ChainStart"] == CUT
    assert f.props["VQDSR_Model"] == str(animesr_path.stem)


@pytest.mark.parametrize("w, h", [(13, 9), (10, 6), (3, 2)])
def test_odd_sizes_padded_output_exact(animesr_path, w, h):
    frames = textured_frames(3, h, w, seed=2)
    out = clip_to_array(vqdsr.Upscale(clip_from_array(frames), model=str(animesr_path), scene_detect=False))
    assert out.shape == (3, 3, 4 * h, 4 * w)
    ref = reference_upscale(animesr_path, frames, [0])
    np.testing.assert_allclose(out, ref, rtol=0, atol=2e-5)


@pytest.mark.parametrize("fmt, out_fmt", [(vs.YUV420P8, vs.RGBS), (vs.GRAY8, vs.RGBS), (vs.RGB24, vs.RGBS),
                                          (vs.YUV444P16, vs.RGBS), (vs.RGBH, vs.RGBH)])
def test_formats_converted(animesr_path, fmt, out_fmt):
    rgb = clip_from_array(textured_frames(2, 8, 8))
    yuv_like = vs.core.get_video_format(fmt).color_family != vs.RGB
    clip = core.resize.Bicubic(rgb, format=fmt, **({"matrix_s": "709"} if yuv_like else {}))
    out = vqdsr.Upscale(clip, model=str(animesr_path))
    assert (out.format.id, out.width, out.height) == (out_fmt, 32, 32)
    arr = clip_to_array(out).astype(np.float32)
    assert np.isfinite(arr).all() and 0.2 < arr.mean() < 0.8


def test_yuv_without_matrix_uses_documented_default(animesr_path):
    rgb = clip_from_array(textured_frames(2, 8, 8))
    yuv = core.resize.Bicubic(rgb, format=vs.YUV444PS, matrix_s="170m").std.RemoveFrameProps("_Matrix")
    tagged = core.std.SetFrameProps(yuv, _Matrix=6)
    a = clip_to_array(vqdsr.Upscale(yuv, model=str(animesr_path)))
    b = clip_to_array(vqdsr.Upscale(tagged, model=str(animesr_path)))
    assert np.array_equal(a, b)  # SD without _Matrix -> BT.601 (ST 170M)


def test_bad_inputs_give_clear_errors(src, animesr_path):
    with pytest.raises(vs.Error, match="Upscale: clip must be"):
        vqdsr.Upscale("not a clip")
    mixed = core.std.Splice([src[:2], core.std.BlankClip(src, width=8, height=8, length=2)], mismatch=True)
    with pytest.raises(vs.Error, match="Upscale: variable size is not supported; accepted"):
        vqdsr.Upscale(mixed)
    with pytest.raises(vs.Error, match="Upscale: max_chain"):
        vqdsr.Upscale(src, model=str(animesr_path), max_chain=1)
    with pytest.raises(vs.Error, match="Upscale: warmup"):
        vqdsr.Upscale(src, model=str(animesr_path), max_chain=4, warmup=4)
    with pytest.raises(vs.Error, match="Upscale: unknown model 'nope'"):
        vqdsr.Upscale(src, model="nope")
    with pytest.raises(vs.Error, match="Upscale: backend 'warp-drive'"):
        vqdsr.Upscale(src, model=str(animesr_path), backend="warp-drive")


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory):
    """A very small network of the same family: long-clip tests measure the filter, not the net."""
    import torch

    from vsvqdsr.nets.vsr import RecurrentVSR
    from vsvqdsr.weights import save_state_dict

    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("tiny") / "tiny.safetensors"
    save_state_dict(RecurrentVSR(num_feat=4, num_block=(1, 1, 1)).state_dict(), path)
    return str(path)


def _rss_mb() -> float:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


def test_long_clip_memory_bounded(tiny_model, threads):
    threads(2)
    n = 10_000
    src = core.std.BlankClip(format=vs.RGBS, width=4, height=4, length=n, color=[0.3, 0.5, 0.7])
    st: dict = {}
    clip = vqdsr.Upscale(src, model=tiny_model, scene_detect=False, cache_steps=8, stats=st)
    rss = []
    for i in range(n):
        clip.get_frame(i)
        if i in (1_000, n - 1):
            rss.append(_rss_mb())
    assert st["steps"] == n and st["stored"] <= 8
    assert rss[1] - rss[0] < 64, f"memory grew {rss[1] - rss[0]:.0f} MB over {n - 1000} frames"


def test_deep_random_access_resolves_whole_chain(tiny_model):
    n = 2_000
    src = core.std.BlankClip(format=vs.RGBS, width=4, height=4, length=n, color=[0.3, 0.5, 0.7])
    st: dict = {}
    clip = vqdsr.Upscale(src, model=tiny_model, scene_detect=True, cache_steps=8, stats=st)
    last = clip.get_frame(n - 1)  # random access at the far end: one 2,000-step chain, resolved by VS
    assert st["steps"] == n and last.props["VQDSR_ChainStart"] == 0
    for i in range(n - 8, n):  # the most recent steps are still stored
        clip.get_frame(i)
    assert st["steps"] == n


def test_fallback_recompute_after_eviction_is_identical(src, linear_out, animesr_path):
    """The path taken when a needed state was evicted between decision and step gives the same bytes."""
    from vsvqdsr import backends
    from vsvqdsr.filters.chain import ChainPlan, RecurrentChain
    from vsvqdsr.filters.scenes import SceneIndex
    from vsvqdsr.weights import load_state_dict
    from vsvqdsr.weights.descriptors import build_network

    net, desc = build_network(load_state_dict(animesr_path))
    runner = backends.create("cpu", net, desc, backends.RunnerSpec(height=src.height, width=src.width))
    scenes = SceneIndex(src, scene_detect=True)
    st: dict = {}
    chain = RecurrentChain(src, runner, scenes, ChainPlan(), capacity=4, extra_props={}, stats=st)
    chain.clip().get_frame(CUT + 3)  # resolves scene starts up to there
    chain.store = type(chain.store)(4)  # forget every step
    entry = chain._recompute(CUT, CUT + 2, CUT)
    got = np.stack([np.asarray(entry.frame[p]) for p in range(3)])
    assert np.array_equal(got, linear_out[CUT + 2])
    assert st["fallback_steps"] == 3


@pytest.mark.parametrize("kw, bad, hint", [({"scale": 2}, "scale", None), ({"max_chian": 16}, "max_chian", "max_chain"),
                                          ({"onnx_model": "m.onnx"}, "onnx_model", None)])
def test_auto_refuses_options_no_backend_takes(src, animesr_path, kw, bad, hint):
    """Under backend='auto' an option none of trt/cuda/cpu takes is an error, not a silent 4x."""
    with pytest.raises(vs.Error) as err:
        vqdsr.Upscale(src, model=str(animesr_path), **kw)
    msg = str(err.value)
    assert msg.startswith(f"Upscale: unknown argument(s) {bad}") and "backend='auto'" in msg
    assert "accepted: Upscale's model, backend" in msg and "engine_dir" in msg and "threads" in msg
    if hint:
        assert f"did you mean {hint}?" in msg
    with pytest.raises(vs.Error, match="Upscale: unknown argument.*engine_dir.*backend 'cpu'.*options engine, threads, precision$"):
        vqdsr.Upscale(src, model=str(animesr_path), backend="cpu", engine_dir="/tmp/x")


def test_auto_drops_options_of_another_backend_with_a_note(src, animesr_path, capfd):
    from vsvqdsr import backends

    if backends.resolve_auto() != "cpu":
        pytest.skip("auto picks a GPU backend here")
    out = vqdsr.Upscale(src, model=str(animesr_path), engine_dir="/nonexistent/engines", threads=1)
    assert (out.width, out.height) == (4 * src.width, 4 * src.height)
    err = capfd.readouterr()
    assert "which ignores engine_dir" in err.err and err.out == ""


def test_interlaced_input_warns_once(src, animesr_path, capfd):
    capfd.readouterr()
    clip_to_array(vqdsr.Upscale(core.std.SetFrameProps(src[:3], _FieldBased=0), model=str(animesr_path)))
    assert "_FieldBased" not in capfd.readouterr().err  # progressive: silent
    tff = core.std.SetFrameProps(core.resize.Bicubic(src[:3], format=vs.YUV420P8, matrix_s="709"), _FieldBased=2)
    clip_to_array(vqdsr.Upscale(tff, model=str(animesr_path)))
    err = capfd.readouterr()
    assert err.err.count("Upscale: frame 0 has _FieldBased=2 (top field first): the input is interlaced") == 1
    assert sum("_FieldBased" in line for line in err.err.splitlines()) == 1 and err.out == ""


def test_always_cuts_a_splice_of_detected_clips(animesr_path):
    """``det[0:3] + det[100:104]`` keeps frame 100's ``_SceneChangePrev=0`` at the join: "auto" trusts
    it and runs the state across the hard cut; "always" (prop OR detection) starts a scene there."""
    frames = textured_frames(104, 12, 16, seed=3, cut=50)
    src = clip_from_array(frames)
    det = core.scd.Detect(core.resize.Bicubic(src, format=vs.YUV444P8, matrix_s="709"))
    det = core.std.CopyFrameProps(src, det, props=["_SceneChangePrev", "_SceneChangeNext"])
    assert [det.get_frame(i).props["_SceneChangePrev"] for i in (2, 50, 100)] == [0, 1, 0]
    spliced = det[0:3] + det[100:104]
    sframes = np.concatenate([frames[0:3], frames[100:104]])
    outs = {mode: vqdsr.Upscale(spliced, model=str(animesr_path), scene_detect=mode)
            for mode in ("auto", "always", "never", True, False)}
    starts = {mode: [clip.get_frame(n).props["VQDSR_ChainStart"] for n in range(7)] for mode, clip in outs.items()}
    assert starts["always"] == [0, 0, 0, 3, 3, 3, 3]
    assert starts["auto"] == starts[True] == starts["never"] == starts[False] == [0] * 7  # the pitfall
    ref = reference_upscale(animesr_path, sframes, [3])
    got = clip_to_array(outs["always"])
    np.testing.assert_allclose(got, ref, rtol=0, atol=2e-5)  # same tolerance as the per-scene parity test
    assert np.array_equal(got[3:], clip_to_array(vqdsr.Upscale(clip_from_array(sframes[3:]),
                                                               model=str(animesr_path))))
    assert not np.allclose(clip_to_array(outs["auto"])[2:], ref[2:], atol=1e-3)  # ghosting across the join
    with pytest.raises(vs.Error, match='Upscale: scene_detect must be "auto", "always", "never"'):
        vqdsr.Upscale(spliced, model=str(animesr_path), scene_detect="sometimes")


def test_store_budget_bounds_memory_in_a_threaded_linear_render(threads):
    """16 threads, vspipe-like prefetch of 16 frames, 192x128 input (one stored step: a 768x512 RGBS
    frame + a 64-channel fp32 state, about 11 MiB): the store stays within ``cache_mb``, RSS stops
    growing once the pipeline is full, and every step still runs exactly once. The old count-based
    default (2 * 16 + 4 = 36 steps) held about 400 MiB here."""
    threads(16)
    n, window = 40, 16
    src = clip_from_array(textured_frames(n, 128, 192, seed=4))
    st: dict = {}
    # the sizes above are vqdsr-ft's (no feedback input): named, not left to whichever model is the default
    clip = vqdsr.Upscale(src, model="vqdsr-ft", backend="cpu", cache_mb=24, stats=st)
    futs, rss, peak_mb = {}, {}, 0.0
    for i in range(n):
        for j in range(i, min(i + window, n)):
            futs.setdefault(j, clip.get_frame_async(j))
        futs.pop(i).result()
        peak_mb = max(peak_mb, st["stored_mb"])
        if i in (window, n - 1):
            rss[i] = _rss_mb()
    assert st["steps"] == n and st["fallback_steps"] == 0  # exactly once, with a 2-step store
    assert peak_mb <= 24 and st["stored"] == 2
    assert rss[n - 1] - rss[window] < 120, f"RSS grew {rss[n - 1] - rss[window]:.0f} MiB after the pipeline filled"


def test_cache_mb_and_cache_steps_arguments(src, animesr_path):
    from vsvqdsr.filters.upscale import default_cache_mb

    assert 256 <= default_cache_mb("cpu") <= 1024
    st: dict = {}
    clip_to_array(vqdsr.Upscale(src, model=str(animesr_path), cache_steps=3, stats=st))
    assert st["stored"] == 3  # an explicit count overrides the size budget
    with pytest.raises(vs.Error, match="Upscale: give cache_mb .* or cache_steps .*, not both"):
        vqdsr.Upscale(src, model=str(animesr_path), cache_steps=3, cache_mb=64)
    with pytest.raises(vs.Error, match="Upscale: cache_mb must be an integer >= 1"):
        vqdsr.Upscale(src, model=str(animesr_path), cache_mb=0.5)


def _flat(clip) -> np.ndarray:
    """Every plane of every frame, flattened (for subsampled formats)."""
    return np.concatenate([np.asarray(f[p]).ravel() for f in clip.frames() for p in range(f.format.num_planes)])


def test_width_height_format_clamp(src, linear_out, animesr_path):
    """Scaler outputs: target size with a named kernel (optionally in linear light), a format, clamping;
    each equals the documented resize of the plain x4 RGBS output."""
    m = str(animesr_path)
    plain = vqdsr.Upscale(src, model=m)
    assert vqdsr.Upscale(src, model=m, format=None, clamp=False).format.id == vs.RGBS  # default unchanged
    half = vqdsr.Upscale(src, model=m, width=32, height=24, kernel="spline36")
    assert (half.width, half.height, half.format.id) == (32, 24, vs.RGBS)
    assert np.array_equal(clip_to_array(half), clip_to_array(core.resize.Spline36(plain, 32, 24)))
    assert vqdsr.Upscale(src, model=m, width=32).height == 24  # aspect kept
    lin = clip_to_array(vqdsr.Upscale(src, model=m, width=32, height=24, linear=True))
    lin_ref = core.resize.Bicubic(core.resize.Point(plain, transfer_in_s="709", transfer_s="linear"), 32, 24)
    lin_ref = core.resize.Point(lin_ref, transfer_in_s="linear", transfer_s="709")  # no _Transfer: BT.709
    assert np.array_equal(lin, clip_to_array(lin_ref))
    assert not np.allclose(lin, clip_to_array(core.resize.Bicubic(plain, 32, 24)), atol=1e-3)
    clamped = clip_to_array(vqdsr.Upscale(src, model=m, clamp=True))
    assert np.array_equal(clamped, np.clip(linear_out, 0, 1))
    # the input's format: YUV420P8 in, YUV420P8 out, decoded and re-encoded with the same matrix/range
    yuv = core.resize.Bicubic(src, format=vs.YUV420P8, matrix_s="170m")
    same = vqdsr.Upscale(yuv, model=m, format="same")
    assert (same.format.id, same.width, same.height) == (vs.YUV420P8, 64, 48)
    ref = core.resize.Bicubic(vqdsr.Upscale(yuv, model=m), format=vs.YUV420P8, matrix_s="170m", range_s="limited")
    assert np.array_equal(_flat(same), _flat(ref))
    f = same.get_frame(0)
    assert f.props["_Matrix"] == 6 and f.props["_Range"] == 0  # ST 170M, limited (R81: 0 = limited)
    full = core.std.SetFrameProps(yuv, _Range=1)  # a full-range input comes back full range
    assert vqdsr.Upscale(full, model=m, format="same").get_frame(0).props["_Range"] == 1
    ten = vqdsr.Upscale(yuv, model=m, width=32, height=24, format=vs.YUV420P10)
    assert (ten.format.id, ten.width, ten.height) == (vs.YUV420P10, 32, 24)
    for kw, msg in [({"width": 0}, "width must be a positive integer"), ({"kernel": "sinc"}, "kernel must be one of"),
                    ({"format": "yuv"}, 'format must be None'), ({"linear": True}, "linear only applies"),
                    ({"width": 33, "height": 24, "format": vs.YUV420P8}, "33x24 does not fit YUV420P8"),
                    ({"clamp": 1}, "clamp must be True or False")]:
        with pytest.raises(vs.Error, match=f"Upscale: {msg}"):
            vqdsr.Upscale(src, model=m, **kw)


def test_long_catchup_is_logged_rate_limited_and_linear_render_is_silent(tiny_model, threads, capfd):
    threads(4)
    n = 200
    src = core.std.BlankClip(format=vs.RGBS, width=8, height=8, length=n, color=[0.3, 0.5, 0.7])
    capfd.readouterr()
    linear = vqdsr.Upscale(src, model=tiny_model, scene_detect=False)
    futs = {}
    for i in range(n):  # vspipe-like prefetch: every step is already on its way, nothing to report
        for j in range(i, min(i + 16, n)):
            futs.setdefault(j, linear.get_frame_async(j))
        futs.pop(i).result()
    assert "needs" not in capfd.readouterr().err
    st: dict = {}
    seek = vqdsr.Upscale(src, model=tiny_model, scene_detect=False, stats=st)
    seek.get_frame(150)
    seek.get_frame(199)  # 49 more steps, within the rate limit: no second line
    err = capfd.readouterr()
    lines = [ln for ln in err.err.splitlines() if "needs" in ln]
    assert lines == [lines[0]] and lines[0].startswith("vsvqdsr: Upscale: frame 150 needs 151 steps from scene start 0")
    assert err.out == "" and st["steps"] == 200
    bounded = vqdsr.Upscale(src, model=tiny_model, scene_detect=False, max_chain=16, warmup=4)
    bounded.get_frame(150)  # at most 16 + 4 steps: below the threshold
    assert "needs" not in capfd.readouterr().err


def test_preview_recipe_matches_the_encode(src, animesr_path, threads):
    """docs/preview.md: the same max_chain/warmup on both sides -> a previewer's random seeks (one
    thread, small store) give the very bytes of a threaded linear render, each seek costing at most
    max_chain + warmup steps."""
    kw = dict(model=str(animesr_path), max_chain=3, warmup=1)
    threads(4)
    encode = clip_to_array(vqdsr.Upscale(src, **kw))
    threads(1)
    st: dict = {}
    preview = vqdsr.Upscale(src, stats=st, cache_steps=2, **kw)
    got = {}
    for n in [9, 2, 11, 5, 0, 8, 3, 10, 1, 7, 4, 6]:
        before = st["steps"]
        f = preview.get_frame(n)
        got[n] = np.stack([np.asarray(f[p]) for p in range(3)])
        assert st["steps"] - before <= 3 + 1
    assert all(np.array_equal(got[n], encode[n]) for n in range(12))


def test_step_store_evicts_superseded_steps_first():
    """Over its budget the store drops a step whose successor is stored before any other: a linear
    chain under a budget smaller than one step keeps one step (the one the next step reads), a seek's
    latest step survives a later step of another walk of the same chain, and interleaved chains keep
    at least two steps."""
    from vsvqdsr.filters.chain import Entry, StepStore

    def entry():
        return Entry(None, np.zeros(1000, np.uint8), None)

    store = StepStore(budget=500)
    for k in range(5):
        store.put((0, k), entry())
        assert len(store) == 1 and store.get((0, k)) is not None
    store = StepStore(capacity=2)
    for key in [(0, 20), (0, 5), (0, 6)]:  # a seek to 20, then a walk 5 -> 6
        store.put(key, entry())
    assert store.get((0, 6)) is not None and store.get((0, 20)) is not None and store.get((0, 5)) is None
    store = StepStore(budget=500)
    store.put((0, 3), entry())
    store.put((10, 10), entry())
    assert len(store) == 2  # two chains' latest steps: nothing superseded, the minimum is kept
    store.put((10, 11), entry())
    assert store.get((10, 10)) is None and len(store) == 2 and store.get((0, 3)) is not None
