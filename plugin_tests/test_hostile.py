"""The package attacked as a hostile user would: leaks, wrong-size props, bad arguments, bad paths.

Every case asserts the clear error (type and the filter's or command's name) or the freed memory;
CLI cases run the real ``vqdsr`` entry point in a subprocess and check stderr carries no traceback.
"""
from __future__ import annotations

import gc
import os
import runpy
import stat
import subprocess
import sys
import weakref
from pathlib import Path

import numpy as np
import pytest
import vapoursynth as vs

import vsvqdsr as vqdsr
from conftest import ROOT, VENV_BIN, clip_from_array, textured_frames

core = vs.core


def _rss_mb() -> float:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


@pytest.fixture
def runners(monkeypatch):
    """Weak references to every runner ``Upscale`` builds while the test runs."""
    from vsvqdsr import backends

    refs: list[weakref.ref] = []
    real = backends.create

    def spy(*args, **kwargs):
        runner = real(*args, **kwargs)
        refs.append(weakref.ref(runner))
        return runner

    monkeypatch.setattr(backends, "create", spy)
    return refs


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory):
    import torch

    from vsvqdsr.nets.vsr import RecurrentVSR
    from vsvqdsr.weights import save_state_dict

    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("tiny") / "tiny.safetensors"
    save_state_dict(RecurrentVSR(num_feat=4, num_block=(1, 1, 1)).state_dict(), path)
    return str(path)


def _alive(refs) -> int:
    return sum(r() is not None for r in refs)


# -- 1. nothing leaks ------------------------------------------------------------------------------
def test_runner_freed_when_output_is_dropped(tiny_model, runners):
    src = clip_from_array(textured_frames(6, 12, 16, seed=3, cut=3))
    for _ in range(3):
        st: dict = {}
        out = vqdsr.Upscale(src, model=tiny_model, backend="cpu", stats=st)
        out.get_frame(4)  # a self-referencing chain was resolved: the cycles existed
        assert st["steps"] == 2 and _alive(runners) == 1
        del out
        assert _alive(runners) == 0, "reference counting alone must free the runner"
    gc.collect()
    assert _alive(runners) == 0


def test_runner_kept_while_only_a_downstream_clip_holds_it(tiny_model, runners):
    src = clip_from_array(textured_frames(4, 12, 16, seed=4))
    down = core.resize.Bicubic(vqdsr.Upscale(src, model=tiny_model, backend="cpu"), format=vs.YUV444PS,
                               matrix_s="709")
    gc.collect()
    assert _alive(runners) == 1
    down.get_frame(3)
    del down
    assert _alive(runners) == 0


def test_repeated_creation_memory_bounded(runners):
    """The issue's case: 320x180, backend="cpu", the default model; < 150 MB over 6 creations."""
    src = core.std.BlankClip(format=vs.RGBS, width=320, height=180, length=3)
    rss = []
    for _ in range(7):
        o = vqdsr.Upscale(src, backend="cpu")
        o.get_frame(0)
        del o
        gc.collect()
        rss.append(_rss_mb())
    assert _alive(runners) == 0
    assert rss[-1] - rss[0] < 150, f"RSS grew {rss[-1] - rss[0]:.0f} MB over 6 creations: {rss}"


def test_script_reevaluated_in_one_process_frees_everything(tiny_model, runners, tmp_path):
    """What a previewer does: evaluate the .vpy again, clear the outputs, repeat."""
    script = tmp_path / "s.vpy"
    script.write_text(
        "import vapoursynth as vs\nimport vsvqdsr as vqdsr\n"
        "src = vs.core.std.BlankClip(format=vs.YUV420P8, width=48, height=32, length=5)\n"
        f"vqdsr.Upscale(src, model={tiny_model!r}, backend='cpu').set_output()\n")
    for i in range(4):
        runpy.run_path(str(script), run_name="__vapoursynth__")
        vs.get_output(0).clip.get_frame(4)
        assert _alive(runners) == 1
        vs.clear_outputs()
        gc.collect()
        assert _alive(runners) == 0, f"evaluation {i}: the previous runner is still alive"


# -- 2. _Alpha is scaled with the frame ------------------------------------------------------------
@pytest.mark.parametrize("alpha_fmt", [vs.GRAYS, vs.GRAY8])
def test_alpha_prop_is_upscaled(tiny_model, alpha_fmt):
    w, h = 64, 48
    src = clip_from_array(textured_frames(2, h, w, seed=5))
    a = textured_frames(2, h, w, seed=6)[:, :1]
    alpha = clip_from_array(a * (255 if alpha_fmt == vs.GRAY8 else 1), fmt=alpha_fmt)
    out = vqdsr.Upscale(core.std.ClipToProp(src, alpha), model=tiny_model, backend="cpu")
    f = out.get_frame(1)
    got = f.props["_Alpha"]
    assert (got.width, got.height, got.format.id) == (4 * w, 4 * h, alpha_fmt)
    ref = core.resize.Bilinear(alpha, 4 * w, 4 * h).get_frame(1)
    diff = np.abs(np.asarray(got[0]).astype(np.float64) - np.asarray(ref[0]).astype(np.float64))
    assert diff.max() <= (1e-5 if alpha_fmt == vs.GRAYS else 1)
    # the downstream use the issue broke: a mask the size of the picture
    merged = core.std.MaskedMerge(out, out.std.Invert(), out.std.PropToClip("_Alpha").resize.Point(
        format=vs.GRAYS), first_plane=True)
    assert merged.get_frame(0).width == 4 * w


# -- 4. bad arguments: vs.Error("Upscale: ...") naming what is accepted ----------------------------
BAD_ARGS = [
    (dict(model=5), "model must be a registry name"),
    (dict(threads=-1), "threads must be a positive integer"),
    (dict(threads="4"), "threads must be a positive integer"),
    (dict(scene_thresh="x"), r"scene_thresh must be an integer in \[0, 255\]"),
    (dict(scene_thresh=-5), r"scene_thresh must be an integer in \[0, 255\]"),
    (dict(stats=[]), "stats must be a dict or None"),
    (dict(device_id=-1), "device_id must be an integer >= 0"),
    (dict(backend=3), "backend must be a string"),
]


@pytest.mark.parametrize("kwargs,msg", BAD_ARGS, ids=[repr(k) for k, _ in BAD_ARGS])
def test_bad_arguments(kwargs, msg):
    src = core.std.BlankClip(format=vs.RGBS, width=16, height=16, length=2)
    with pytest.raises(vs.Error, match=f"^Upscale: {msg}"):
        vqdsr.Upscale(src, **kwargs)


def test_variable_format_named_as_such():
    mixed = core.std.Splice([core.std.BlankClip(format=vs.RGBS, width=16, height=16, length=2),
                             core.std.BlankClip(format=vs.YUV420P8, width=16, height=16, length=2)],
                            mismatch=True)
    with pytest.raises(vs.Error, match="^Upscale: variable format is not supported; accepted"):
        vqdsr.Upscale(mixed)


@pytest.mark.parametrize("prop,value,family", [("_Matrix", 99, vs.YUV420P8), ("_Transfer", 99, vs.YUV420P8),
                                               ("_Primaries", 3, vs.YUV444P8), ("_Matrix", 1, vs.RGB24),
                                               ("_Range", 7, vs.GRAY8)])
def test_bad_colour_props_fail_with_the_filter_name(tiny_model, prop, value, family):
    src = core.std.BlankClip(format=family, width=16, height=16, length=5)
    bad = core.std.SetFrameProps(src[4], **{prop: value})
    out = vqdsr.Upscale(src[:4] + bad, model=tiny_model, backend="cpu")
    out.get_frame(1)  # frames with good props are fine (frame 1 reads frames 0..3)
    # VapourSynth puts the Python traceback of a callback in front of the message; the last line is ours
    with pytest.raises(vs.Error, match=f"Upscale: frame 4 has {prop}={value}, which cannot be converted to RGB; "
                                       "accepted for [A-Z]+ clips: "):
        out.get_frame(4)


def test_nan_weights_refused_at_load(tiny_model, tmp_path):
    import torch

    from vsvqdsr.weights import load_state_dict, save_state_dict

    sd = load_state_dict(tiny_model)
    key = sorted(sd)[3]
    sd[key] = sd[key].clone()
    sd[key].view(-1)[0] = float("nan")
    bad = tmp_path / "nan.safetensors"
    save_state_dict(sd, bad)
    src = core.std.BlankClip(format=vs.RGBS, width=16, height=16, length=2)
    with pytest.raises(vs.Error, match=f"^Upscale: .*weights contain NaN or Inf in {key}"):
        vqdsr.Upscale(src, model=str(bad))
    sd[key].view(-1)[0] = float("inf")
    save_state_dict(sd, bad)
    with pytest.raises(vs.Error, match="NaN or Inf"):
        vqdsr.Upscale(src, model=str(bad))
    assert torch.isfinite(load_state_dict(tiny_model)[key]).all()


# -- 5. the CLI: outputs checked before work starts, one line, exit 2 -----------------------------
def _vqdsr(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]))
    return subprocess.run([str(VENV_BIN / "vqdsr"), *args], capture_output=True, text=True, cwd=cwd, env=env,
                          timeout=300)


def _one_clear_line(p: subprocess.CompletedProcess, command: str, *fragments: str) -> None:
    assert p.returncode == 2, (p.returncode, p.stderr)
    assert "Traceback" not in p.stderr and "Traceback" not in p.stdout, p.stderr
    last = p.stderr.strip().splitlines()[-1]
    assert last.startswith(f"vqdsr {command}: "), p.stderr
    for frag in fragments:
        assert frag in last, (frag, last)


@pytest.fixture(scope="module")
def run_pt(tmp_path_factory, tiny_model):
    """A run checkpoint as train-vsr writes one (params, params_ema, stage, iter)."""
    import torch

    from vsvqdsr.weights import load_state_dict

    sd = load_state_dict(tiny_model)
    d = tmp_path_factory.mktemp("run")
    torch.save({"stage": 1, "iter": 10, "params": sd, "params_ema": sd}, d / "run.pt")
    torch.save({"stage": 1, "iter": 10, "params": sd}, d / "no_ema.pt")
    return d


def test_cli_output_paths_that_are_files(tmp_path, run_pt):
    afile = tmp_path / "afile"
    afile.write_text("mine")
    video = tmp_path / "in.mkv"
    video.write_bytes(b"x")
    (tmp_path / "frames").mkdir()
    _one_clear_line(_vqdsr("render", str(video), "-o", str(afile), cwd=tmp_path), "render", "existing file")
    _one_clear_line(_vqdsr("export", str(run_pt / "run.pt"), "-o", str(afile / "x.safetensors"), cwd=tmp_path),
                    "export", f"lies under {afile}")
    _one_clear_line(_vqdsr("train-vsr", "--stage", "1", "--data", str(tmp_path / "frames"), "--out", str(afile),
                           "--iters", "1", cwd=tmp_path), "train-vsr", "existing file")
    _one_clear_line(_vqdsr("enhance-hr", str(tmp_path / "frames"), str(afile), cwd=tmp_path), "enhance-hr",
                    "existing file")
    assert afile.read_text() == "mine"


def test_cli_enhance_hr_nested_output_that_is_a_file(tmp_path):
    """The output folder is fine but a sub-folder the mirrored tree needs is a file: found after a
    frame was written, reported as one line."""
    import cv2
    import torch

    from vsvqdsr.nets.srvgg import SRVGGCompact
    from vsvqdsr.weights import save_state_dict

    torch.manual_seed(0)
    model = tmp_path / "sr.safetensors"
    save_state_dict(SRVGGCompact(num_feat=4, num_conv=1).state_dict(), model,
                    {"arch": "srvgg", "in_ch": "3", "out_ch": "3", "num_feat": "4", "num_conv": "1", "scale": "4"})
    src, out = tmp_path / "in", tmp_path / "out"
    for sub in ("a", "b"):
        (src / sub).mkdir(parents=True)
        cv2.imwrite(str(src / sub / "f.png"), np.full((8, 8, 3), 128, np.uint8))
    out.mkdir()
    (out / "b").write_text("mine")
    p = _vqdsr("enhance-hr", str(src), str(out), "--model", str(model), "--device", "cpu", cwd=tmp_path)
    _one_clear_line(p, "enhance-hr", str(out / "b"))
    assert (out / "a" / "f.png").is_file() and (out / "b").read_text() == "mine"


def test_cli_export_refuses_to_overwrite_without_force(tmp_path, run_pt):
    out = tmp_path / "m.safetensors"
    out.write_bytes(b"users own file")
    _one_clear_line(_vqdsr("export", str(run_pt / "run.pt"), "-o", str(out), cwd=tmp_path), "export",
                    "exists; pass --force")
    assert out.read_bytes() == b"users own file"
    old = os.umask(0o022)
    try:
        p = _vqdsr("export", str(run_pt / "run.pt"), "-o", str(out), "--force", cwd=tmp_path)
    finally:
        os.umask(old)
    assert p.returncode == 0, p.stderr
    assert out.read_bytes()[:8] != b"users ow"
    assert stat.S_IMODE(out.stat().st_mode) == 0o644  # the umask's mode, not mkstemp's 0600


def test_cli_export_without_ema_weights(tmp_path, run_pt):
    _one_clear_line(_vqdsr("export", str(run_pt / "no_ema.pt"), "-o", str(tmp_path / "m.safetensors"),
                           cwd=tmp_path), "export", "no EMA weights (params_ema)")
    assert not (tmp_path / "m.safetensors").exists()


def test_cli_render_corrupt_input_one_line(tmp_path):
    pytest.importorskip("ray")
    bad = tmp_path / "corrupt.mkv"
    bad.write_bytes(np.random.default_rng(0).integers(0, 256, 5000, dtype=np.uint8).tobytes())
    p = _vqdsr("render", str(bad), "-o", str(tmp_path / "out"), "--workers", "1", "--no-progress", cwd=tmp_path)
    _one_clear_line(p, "render", "probing failed", "VideoSource: Couldn't open")
    assert "vapoursynth.pyx" not in p.stderr


def test_engine_cache_folder_that_is_a_file(tmp_path):
    from vsvqdsr.backends.engine_cache import EngineCache

    afile = tmp_path / "afile"
    afile.write_text("x")
    with pytest.raises(ValueError, match="engine cache: engine_dir .* is an existing file; accepted: a folder"):
        EngineCache(afile)
    with pytest.raises(ValueError, match=f"lies under {afile}, which is an existing file"):
        EngineCache(afile / "engines")
    assert EngineCache(tmp_path / "new" / "engines").directory.name == "engines"


def test_weights_written_with_the_umask_mode(tmp_path):
    from vsvqdsr.weights.loading import atomic_write_bytes

    old = os.umask(0o027)
    try:
        atomic_write_bytes(tmp_path / "f.bin", b"data")
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "f.bin").stat().st_mode) == 0o640


def test_checkpoints_written_atomically_with_the_umask_mode(tmp_path):
    import torch

    from vsvqdsr.weights.loading import atomic_torch_save, atomic_write

    ck = tmp_path / "run" / "latest.pt"
    old = os.umask(0o027)
    try:
        atomic_torch_save({"iter": 3, "w": torch.arange(4)}, ck)
    finally:
        os.umask(old)
    assert stat.S_IMODE(ck.stat().st_mode) == 0o640
    assert torch.load(ck, weights_only=True)["iter"] == 3

    def half_then_fail(f):
        f.write(b"half a checkpoint")
        raise RuntimeError("disk full")

    with pytest.raises(RuntimeError, match="disk full"):
        atomic_write(ck, half_then_fail)
    assert torch.load(ck, weights_only=True)["iter"] == 3  # the old checkpoint is untouched
    assert sorted(p.name for p in ck.parent.iterdir()) == ["latest.pt"]  # and no temporary file is left


def test_enhanced_pngs_written_with_the_umask_mode(tmp_path):
    from vsvqdsr.training.enhance import _write_png

    old = os.umask(0o022)
    try:
        _write_png(tmp_path / "a" / "f.png", np.zeros((4, 4, 3), np.uint8))
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "a" / "f.png").stat().st_mode) == 0o644


if __name__ == "__main__":
    sys.exit(pytest.main([__file__, "-q"]))
