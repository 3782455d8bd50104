"""vqdsr.Degrade: determinism per seed, k matters, order independence, props, formats, vspipe."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import vapoursynth as vs

from vsvqdsr.filters.degrade import Degrade, frame_ks
from vsvqdsr.nets.vqgan import MultiScaleVQGAN, VQGANConfig
from vsvqdsr.weights.degrader import save_degrader

core = vs.core
TINY = VQGANConfig(ch=8, ch_mult=(1, 1, 2, 2, 4), num_res_blocks=1, embed_dim=16, n_embed=64, norm_groups=4)
W, H, N = 44, 30, 6
VSPIPE = str(Path(sys.executable).parent / "vspipe") if (Path(sys.executable).parent / "vspipe").exists() \
    else shutil.which("vspipe")


@pytest.fixture(scope="module")
def model_path(tmp_path_factory) -> Path:
    torch.manual_seed(5)
    net = MultiScaleVQGAN(TINY)
    with torch.no_grad():  # spread the codebook so different ranks pick visibly different entries
        net.codebook.embedding.weight.normal_(0, 1)
    p = tmp_path_factory.mktemp("deg") / "tiny.safetensors"
    save_degrader(net, p)
    return p


def make_clip(fmt: int = vs.RGBS, seed: int = 0) -> vs.VideoNode:
    rng = np.random.default_rng(seed)
    frames = rng.random((N, 3, H, W), dtype=np.float32)
    blank = core.std.BlankClip(format=vs.RGBS, width=W, height=H, length=N)

    def fill(n, f):
        out = f.copy()
        for p in range(3):
            np.copyto(np.asarray(out[p]), frames[n, p])
        out.props["SourceFrame"] = n
        return out

    clip = blank.std.ModifyFrame(blank, fill)
    if fmt == vs.RGBS:
        return clip
    if fmt == vs.RGBH:
        return clip.resize.Point(format=vs.RGBH)
    return clip.resize.Bicubic(format=fmt, matrix_s="170m")


def grab(clip: vs.VideoNode, order=None) -> dict[int, tuple[np.ndarray, dict]]:
    out = {}
    for n in (order if order is not None else range(clip.num_frames)):
        f = clip.get_frame(n)
        out[n] = (np.stack([np.asarray(f[p]).copy() for p in range(3)]), dict(f.props))
    return out


def test_deterministic_per_seed_and_order_independent(model_path):
    a = grab(Degrade(make_clip(), model=str(model_path), k_mid=(1, 10), k_bottom=(1, 50), seed=3))
    rng = np.random.default_rng(1)
    order = list(rng.permutation(N)) + [2, 2, 0]
    b = grab(Degrade(make_clip(), model=str(model_path), k_mid=(1, 10), k_bottom=(1, 50), seed=3), order)
    for n in range(N):
        assert np.array_equal(a[n][0], b[n][0]), n
        assert a[n][1]["VQDSR_KBottom"] == b[n][1]["VQDSR_KBottom"]
        assert a[n][1]["SourceFrame"] == n  # input props are kept
        assert 1 <= a[n][1]["VQDSR_KMid"] <= 10 and 1 <= a[n][1]["VQDSR_KBottom"] <= 50
        assert a[n][1]["VQDSR_KTop"] == 1
        assert [a[n][1][k] for k in ("VQDSR_KTop", "VQDSR_KMid", "VQDSR_KBottom")] == \
            frame_ks(3, n, [(1, 1), (1, 10), (1, 50)])
    other = grab(Degrade(make_clip(), model=str(model_path), k_mid=(1, 10), k_bottom=(1, 50), seed=4))
    assert any(other[n][1]["VQDSR_KBottom"] != a[n][1]["VQDSR_KBottom"] for n in range(N))
    assert any(not np.array_equal(other[n][0], a[n][0]) for n in range(N))
    assert len({a[n][1]["VQDSR_KBottom"] for n in range(N)}) > 1  # drawn per frame


def test_per_scene_draws_follow_scene_cuts(model_path):
    clip = make_clip()
    clip = clip[:3] + clip[3:].std.SetFrameProps(_SceneChangePrev=0)
    clip = clip[:3] + clip[3].std.SetFrameProps(_SceneChangePrev=1) + clip[4:]
    deg = Degrade(clip, model=str(model_path), k_mid=(1, 10), k_bottom=(1, 50), seed=2, per_scene=True,
                  scene_detect=False)
    got = grab(deg, order=[5, 1, 4, 0, 3, 2])
    ks = {n: [got[n][1][k] for k in ("VQDSR_KTop", "VQDSR_KMid", "VQDSR_KBottom")] for n in range(N)}
    ranges = [(1, 1), (1, 10), (1, 50)]
    assert all(ks[n] == frame_ks(2, 0, ranges) for n in range(3))
    assert all(ks[n] == frame_ks(2, 3, ranges) for n in range(3, N))


def test_k_changes_the_output_and_range_is_valid(model_path):
    near = grab(Degrade(make_clip(), model=str(model_path), k_bottom=1))
    far = grab(Degrade(make_clip(), model=str(model_path), k_bottom=40))
    for n in range(N):
        assert near[n][1]["VQDSR_KBottom"] == 1 and far[n][1]["VQDSR_KBottom"] == 40
        assert near[n][0].min() >= 0 and near[n][0].max() <= 1
    assert all(not np.allclose(near[n][0], far[n][0]) for n in range(N))


def test_formats(model_path):
    yuv = Degrade(make_clip(vs.YUV420P8), model=str(model_path))
    assert yuv.format.id == vs.RGBS and (yuv.width, yuv.height) == (W, H)
    half = Degrade(make_clip(vs.RGBH), model=str(model_path))
    assert half.format.id == vs.RGBH
    f = half.get_frame(0)
    assert np.isfinite(np.asarray(f[0]).astype(np.float32)).all()


@pytest.mark.parametrize("kwargs,match", [
    (dict(k_bottom=(0, 5)), "k_bottom"), (dict(k_mid=65), "k_mid"), (dict(k_top=(5, 2)), "k_top"),
    (dict(k_bottom=1.5), "k_bottom"), (dict(backend="tpu"), "backend"), (dict(model="no-such-model"), "no-such-model"),
])
def test_bad_arguments_name_the_filter(model_path, kwargs, match):
    kw = dict(model=str(model_path)) | kwargs
    with pytest.raises(vs.Error, match=rf"Degrade: .*{match}"):
        Degrade(make_clip(), **kw)


def test_vspipe_output_equals_in_process(model_path, tmp_path):
    if VSPIPE is None:
        pytest.fail("vspipe not found next to the interpreter or on PATH")
    script = tmp_path / "deg.vpy"
    script.write_text(
        "import sys\n"
        f"sys.path.insert(0, {str(Path(__file__).parent)!r})\n"
        f"sys.path.insert(0, {str(Path(__file__).resolve().parent.parent)!r})\n"
        "from test_degrade_filter import make_clip\n"
        "from vsvqdsr.filters.degrade import Degrade\n"
        f"Degrade(make_clip(), model={str(model_path)!r}, k_bottom=(1, 50), seed=9).set_output()\n")
    env = dict(os.environ, PYTHONPATH=str(Path(__file__).resolve().parent.parent))
    ref = grab(Degrade(make_clip(), model=str(model_path), k_bottom=(1, 50), seed=9), order=list(range(N))[::-1])
    for args, frames in ((["-p"], range(N)), (["-s", "2", "-e", "4"], range(2, 5))):
        out = tmp_path / "out.raw"
        r = subprocess.run([VSPIPE, *args, str(script), str(out)], capture_output=True, env=env)
        assert r.returncode == 0, r.stderr.decode()[-2000:]
        # vspipe writes RGB planes in G, B, R order (ffmpeg's gbrpf32)
        raw = np.fromfile(out, dtype=np.float32).reshape(len(frames), 3, H, W)[:, [2, 0, 1]]
        for i, n in enumerate(frames):
            assert np.array_equal(raw[i], ref[n][0]), (args, n)


@pytest.mark.parametrize("engine", ["ort", "openvino"])
def test_backends_equal_torch_eager_and_follow_the_same_draws(model_path, engine):
    """Every output frame equals MultiScaleVQGAN.degrade with that frame's own draws (within 1e-3),
    and the draws are those of frame_ks, on the exported graph as on the torch engine."""
    from vsvqdsr.weights.degrader import load_degrader

    net = load_degrader(model_path)
    ranges = [(1, 1), (1, 10), (1, 50)]
    kw = dict(model=str(model_path), k_mid=(1, 10), k_bottom=(1, 50), seed=11)
    got = grab(Degrade(make_clip(), backend=engine, threads=1, **kw))
    eager = grab(Degrade(make_clip(), backend="cpu", engine="torch_nchw", threads=1, **kw))
    src = grab(make_clip())
    for n in range(N):
        ks = frame_ks(11, n, ranges)
        props = got[n][1]
        assert [props["VQDSR_KTop"], props["VQDSR_KMid"], props["VQDSR_KBottom"]] == ks
        assert [eager[n][1][k] for k in ("VQDSR_KTop", "VQDSR_KMid", "VQDSR_KBottom")] == ks
        ref = net.degrade(torch.from_numpy(src[n][0])[None], *[torch.tensor([k]) for k in ks])[0].numpy()
        assert np.abs(got[n][0] - ref).max() < 1e-3, (n, ks)
        assert np.abs(eager[n][0] - ref).max() < 1e-5, (n, ks)
    # fixed ranks as well
    fixed = grab(Degrade(make_clip(), model=str(model_path), k_bottom=7, backend=engine))
    ref = net.degrade(torch.from_numpy(src[0][0])[None], torch.tensor([1]), torch.tensor([1]), torch.tensor([7]))
    assert np.abs(fixed[0][0] - ref[0].numpy()).max() < 1e-3


@pytest.mark.parametrize("kwargs,match", [
    (dict(threads=0), "threads must be an int >= 1, got 0"),
    (dict(threads=1.5), "threads must be an int"),
    (dict(seed=-1), r"seed must be an int 0..18446744073709551615, got -1"),
    (dict(seed=2 ** 64), "seed must be an int 0..18446744073709551615"),
    (dict(seed=1.0), "seed must be an int"),
    (dict(bogus=3), "no backend takes option.*bogus"),
    (dict(backend="ort", engine="torch"), "backend 'ort' does not take option.*engine"),
    (dict(backend="cpu", engine="tpu"), "engine must be one of"),
    (dict(model=3), "model must be None, a model name or a file path"),
    (dict(fp16="yes"), "fp16 must be"),
    (dict(device_id=-1), "device_id must be an int >= 0"),
    (dict(tile=8), "tile must be an int >= 64"),
])
def test_every_bad_input_is_a_degrade_error(model_path, kwargs, match):
    kw = dict(model=str(model_path)) | kwargs
    with pytest.raises(vs.Error, match=rf"^Degrade: .*{match}"):
        Degrade(make_clip(), **kw)


def test_model_none_is_the_default_degrader():
    deg = Degrade(make_clip(), model=None, k_bottom=3, backend="cpu", engine="ort", threads=1)
    f = deg.get_frame(0)
    assert f.props["VQDSR_DegradeModel"] == "degrade-lite" and f.props["VQDSR_KBottom"] == 3


def test_crafted_and_damaged_degrader_files_are_degrade_errors(tmp_path, model_path):
    from vsvqdsr.weights import save_state_dict
    from vsvqdsr.weights.degrader import load_degrader

    sd = load_degrader(model_path).state_dict()
    sd["top.encode_0.blocks.5000.conv1.weight"] = torch.zeros(8, 8, 3, 3)
    save_state_dict(sd, tmp_path / "huge.safetensors", {"kind": "degrader"})
    with pytest.raises(vs.Error, match="^Degrade: huge.safetensors: ResnetBlocks per stage is 5001"):
        Degrade(make_clip(), model=str(tmp_path / "huge.safetensors"))
    (tmp_path / "junk.safetensors").write_bytes(b"\x10\x00\x00\x00\x00\x00\x00\x00{not json at all")
    with pytest.raises(vs.Error, match="^Degrade: junk.safetensors: damaged"):
        Degrade(make_clip(), model=str(tmp_path / "junk.safetensors"))
    top = {k: v for k, v in load_degrader(model_path).state_dict().items() if not k.startswith(("mid.", "bot."))}
    save_state_dict(top, tmp_path / "s1.safetensors", {"kind": "degrader"})
    with pytest.raises(vs.Error, match="^Degrade: s1.safetensors: a stage-1"):
        Degrade(make_clip(), model=str(tmp_path / "s1.safetensors"))


def test_the_filter_keeps_no_model_cache_and_leaves_torch_threads_alone(model_path, monkeypatch):
    import gc
    import weakref

    import vsvqdsr.backends.image as image

    made = []
    real = image.DegradeRunner

    class Spy(real):
        def __init__(self, *a, **k):
            super().__init__(*a, **k)
            made.append(weakref.ref(self))

    monkeypatch.setattr(image, "DegradeRunner", Spy)
    before = torch.get_num_threads()
    clip = Degrade(make_clip(), model=str(model_path), backend="cpu", engine="ort", threads=1)
    clip.get_frame(0)
    assert torch.get_num_threads() == before and made[0]() is not None
    del clip
    gc.collect()
    assert made[0]() is None  # the runner (and its engine) went with the clip
