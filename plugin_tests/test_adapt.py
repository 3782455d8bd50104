"""``vqdsr adapt`` end to end on a tiny LQ clip made with ffmpeg (a few steps per stage): the model it
registers loads in ``vqdsr.Upscale``; an interrupted run resumes without redoing finished stages;
benchmark folders are refused; the time budget's split."""
from __future__ import annotations

import json
import math
import subprocess
from pathlib import Path

import numpy as np
import pytest

import vsvqdsr as vqdsr
from conftest import clip_from_array, clip_to_array, reference_upscale, textured_frames
from vsvqdsr.cli.main import main
from vsvqdsr.training import adapt as adapt_mod
from vsvqdsr.training.adapt import BUDGET_SHARES, STAGES, split_budget, vsr_iterations

#: Tiny sizes: 8 frames of 160x128 LQ, degrader crop 64, VSR patch 96 x 3 frames, 2 steps per trainer.
FAST = ["--degrader-steps", "2", "--degrader-crop", "64", "--vsr-iters", "2", "--batch", "1", "--frames", "3",
        "--patch", "96", "--threads", "1", "--minutes", "30"]


def _lq(path: Path, size: str = "160x128", seconds: float = 1.0) -> Path:
    """A cartoon-ish source (testsrc2) with a cut, through a heavy MPEG-2 round trip."""
    subprocess.run(["ffmpeg", "-hide_banner", "-loglevel", "error", "-y", "-f", "lavfi", "-i",
                    f"testsrc2=size={size}:rate=8:duration={seconds}", "-c:v", "mpeg2video", "-q:v", "20",
                    str(path)], check=True)
    return path


@pytest.fixture()
def env(tmp_path, monkeypatch):
    monkeypatch.setenv("VSVQDSR_MODEL_DIR", str(tmp_path / "models"))
    (tmp_path / "models").mkdir()
    return tmp_path


def test_budget_split():
    assert math.isclose(sum(BUDGET_SHARES.values()), 1.0)
    b = split_budget(100)
    assert b == {"frames": 5.0, "degrader1": 20.0, "degrader2": 20.0, "floor": 2.0, "vsr": 50.0, "export": 3.0}
    assert list(b) == list(STAGES)
    for bad in (0, -1, float("nan"), float("inf")):
        with pytest.raises(ValueError):
            split_budget(bad)
    # 50 min at 3 s per iteration: 1000 iterations; never below the ones done, at most the cap
    assert vsr_iterations(50, 3.0, 5) == 1000
    assert vsr_iterations(0.01, 3.0, 5) == 5
    assert vsr_iterations(50, 3.0, 5, cap=40) == 40
    # with the first leg's time (start-up included) counted once: 5 done in 60 s, the rest at 3 s
    assert vsr_iterations(50, 3.0, 5, spent=60.0) == 5 + (3000 - 60) // 3
    assert vsr_iterations(0.5, 3.0, 5, spent=60.0) == 5  # the first leg used the whole stage
    with pytest.raises(ValueError):
        vsr_iterations(1, 0.0, 0)


def test_select_frames_scene_aware(tmp_path):
    import cv2

    from vsvqdsr.training.adapt import select_frames

    a = np.full((64, 64, 3), 100, np.uint8)
    b = a.copy()
    b[:8, :8] = 101  # near duplicate of a
    c = np.full((64, 64, 3), 200, np.uint8)  # a cut
    files = []
    for i, img in enumerate((a, b, a, c, c)):
        files.append(tmp_path / f"{i}.png")
        cv2.imwrite(str(files[-1]), img)
    assert select_frames([files]) == [files[0], files[3]]


def test_adapt_end_to_end_resume_and_upscale(env, capsys, monkeypatch):
    lq = _lq(env / "show.mpg")
    ref = env / "ref.mkv"
    subprocess.run(["ffmpeg", "-hide_banner", "-loglevel", "error", "-y", "-f", "lavfi", "-i",
                    "testsrc2=size=320x256:rate=8:duration=1", "-c:v", "ffv1", str(ref)], check=True)
    work = env / "work"
    args = [str(lq), "--out", "myshow", "--work", str(work), "--reference", str(ref), *FAST]

    # interrupted after the degrader's stage 2: the floor stage raises as a Ctrl-C would
    real_floor = adapt_mod._RUNNERS["floor"]

    def interrupted(*a, **k):
        raise KeyboardInterrupt

    monkeypatch.setitem(adapt_mod._RUNNERS, "floor", interrupted)
    assert main(["adapt", *args]) == 130
    assert "adapt: stage-2 start: k = 1 floor" in capsys.readouterr().err  # the start is chosen, and said
    assert sorted(p.stem for p in (work / "stages").glob("*.json")) == ["degrader1", "degrader2", "frames"]
    assert not (env / "models" / "myshow.safetensors").exists()
    # without --resume the earlier run is not silently replaced
    capsys.readouterr()
    assert main(["adapt", *args]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "--resume" in err

    # --resume: finished stages are skipped (their runners would fail if called)
    monkeypatch.setitem(adapt_mod._RUNNERS, "floor", real_floor)
    for s in ("frames", "degrader1", "degrader2"):
        monkeypatch.setitem(adapt_mod._RUNNERS, s, interrupted)
    assert main(["adapt", *args, "--resume"]) == 0
    out, err = capsys.readouterr()
    for s in ("frames", "degrader1", "degrader2"):
        assert f"adapt: {s}: done earlier, skipped" in err
    assert "degrader floor on your frames (k = 1 reconstruction)" in err
    assert "damage of the LQ frames against the reference" in err
    assert err.index("degrader floor") < err.index("adapt: vsr ...")  # printed before the upscaler trains
    res = json.loads(out)
    assert res["model"] == "myshow" and res["vsr_iterations"] == 2

    card = json.loads((env / "models" / "myshow.json").read_text())
    assert card["kind"] == "vsr" and card["sources"][0]["file"] == "show.mpg"
    import hashlib
    assert card["sources"][0]["sha256"] == hashlib.sha256(lq.read_bytes()).hexdigest()
    assert card["degrader"]["stage1"]["steps"] == 2 and card["degrader"]["stage2"]["steps"] == 2
    assert card["degrader"]["stage1"]["init"] == "degrade-lite.safetensors"
    # stage 2 starts from whichever of the stage-1 splice and degrade-lite has the higher floor here
    s2 = card["degrader"]["stage2"]
    floors = s2["start_floors_db"]
    assert set(floors) == {"stage-1 splice", "degrade-lite"}
    if floors["stage-1 splice"] >= floors["degrade-lite"]:
        assert s2["init_note"] == "top branch from stage 1, middle and bottom from degrade-lite"
    else:
        assert s2["init"] == "degrade-lite.safetensors" and s2["init_note"].startswith("degrade-lite as a whole")
    # a few steps from degrade-lite keep its floor on these frames (random middle/bottom branches,
    # stage 2 from stage 1 alone, measured 8.1 dB here against 17.8 dB)
    from vsvqdsr.training.export_degrader import reconstruction_k1
    from vsvqdsr.weights.degrader import load_degrader
    shipped = reconstruction_k1(load_degrader("degrade-lite"), work / "frames")["psnr_db"]
    assert abs(card["reconstruction_k1_on_user_frames"]["psnr_db"] - shipped) < 1.5
    assert 5 < card["damage_psnr_db"] < 60
    assert card["vsr"]["iterations"] == 2 and card["frames"] >= 2
    assert "benchmark_rank" not in card  # never becomes the default model

    # usable at once by name
    from vsvqdsr.weights.registry import installed_models
    assert "myshow" in installed_models("vsr")
    frames = textured_frames(3, 48, 64, seed=3)
    out = clip_to_array(vqdsr.Upscale(clip_from_array(frames), model="myshow"))
    ref = reference_upscale(env / "models" / "myshow.safetensors", frames, [0])
    assert out.shape == (3, 3, 192, 256)
    np.testing.assert_allclose(out, ref, rtol=0, atol=2e-5)  # the adapted weights, not a default

    # the model exists now: refused without --force
    capsys.readouterr()
    assert main(["adapt", str(lq), "--out", "myshow", "--work", str(env / "work2"), *FAST]) == 2
    assert "pass --force" in capsys.readouterr().err
    # a resume on other videos is refused: the work folder is this run's
    other = _lq(env / "other.mpg", seconds=0.25)
    assert main(["adapt", str(other), "--out", "myshow", "--work", str(work), "--resume", *FAST]) == 2
    assert "the same LQ videos" in capsys.readouterr().err


@pytest.mark.parametrize("where", ["video", "clean"])
def test_benchmark_folders_refused(env, capsys, where):
    bench = env / "eval_set"
    bench.mkdir()
    (bench / "benchmark.json").write_text(json.dumps({"vsvqdsr-benchmark": True}))
    inside = _lq(bench / "clip.mpg", seconds=0.25)
    own = _lq(env / "own.mpg", seconds=0.25)
    argv = [str(inside), "--out", "x"] if where == "video" else [str(own), "--out", "x", "--clean", str(bench)]
    assert main(["adapt", *argv, "--work", str(env / "w")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "benchmark" in err and "never be used for training" in err
    assert not (env / "w").exists()


def test_bad_input_one_line(env, capsys):
    lq = _lq(env / "a.mpg", seconds=0.25)
    for argv, needle in ((["nope.mkv", "--out", "x"], "no such video"),
                         ([str(lq), "--out", "a/b"], "plain model name"),
                         ([str(lq), "--out", "x", "--minutes", "0"], "--minutes"),
                         ([str(lq), "--out", "x", "--reference", str(lq), str(lq)], "one per LQ video")):
        assert main(["adapt", *argv]) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and needle in err, err
