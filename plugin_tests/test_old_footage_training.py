"""Old-footage training material: the benchmark's damage families with drawn parameters
(``old_footage_clip``) and ``scripts/make_old_footage_data.py`` over clean training clips, which
refuses the benchmark set."""
from __future__ import annotations

import json

import cv2
import numpy as np
import pytest

from conftest import load_script
from vsvqdsr.damage import ArrayStep
import torch

from vsvqdsr.training.degradations import CodecPass, old_footage_clip, old_footage_lr, sample_old_footage
from vsvqdsr.training.synthetic import make_clip_frames


def test_sampled_chains_follow_the_families():
    for seed in range(12):
        film = sample_old_footage(np.random.default_rng(seed), "film")
        ops = [s.op if isinstance(s, ArrayStep) else "codec" for s in film.steps]
        assert ops[:3] == ["optical_blur", "film_grain", "codec"] and ops[3] == "chroma_bleed"
        codecs = [s.codec for s in film.steps if isinstance(s, CodecPass)]
        assert 2 <= len(codecs) <= 3 and len(set(codecs)) == len(codecs)  # distinct codecs, 2-3 generations
        ana = sample_old_footage(np.random.default_rng(seed), "analogue")
        assert [s.op for s in ana.steps if isinstance(s, ArrayStep)] == [
            "tape_luma", "tape_chroma", "line_jitter", "tape_noise"]
        assert [s.codec for s in ana.steps if isinstance(s, CodecPass)] == ["mpeg2video", "libx264"]
    assert sample_old_footage(np.random.default_rng(3)) == sample_old_footage(np.random.default_rng(3))
    assert {sample_old_footage(np.random.default_rng(s)).family for s in range(12)} == {"film", "analogue"}
    with pytest.raises(ValueError, match="family must be one of film, analogue; got 'vhs'"):
        sample_old_footage(np.random.default_rng(0), "vhs")


@pytest.mark.parametrize("family", ["film", "analogue"])
def test_old_footage_clip_on_a_tiny_clip(family):
    hr = make_clip_frames(4, 64, seed=1).astype(np.float32) / 255.0
    lr, rec = old_footage_clip(hr, np.random.default_rng(5), family)
    assert lr.shape == (4, 16, 16, 3) and lr.dtype == np.float32 and 0 <= lr.min() and lr.max() <= 1
    assert rec.family == family and rec.ok
    again, rec2 = old_footage_clip(hr, np.random.default_rng(5), family)
    assert rec2 == rec and np.array_equal(again, lr)  # seeded: the same LR bytes
    area = np.stack([cv2.resize(f, (16, 16), interpolation=cv2.INTER_AREA) for f in hr])
    assert 0.01 < np.abs(lr - area).mean() < 0.25  # damaged, but still the same picture
    with pytest.raises(ValueError, match="multiple of 8"):
        old_footage_clip(hr[:, :60], np.random.default_rng(0))


def test_stage2_old_footage_share_replaces_whole_clips():
    hr = torch.from_numpy(np.stack([make_clip_frames(3, 64, seed=s) for s in (1, 2, 3, 4)])).float() / 255.0
    hr = hr.permute(0, 1, 4, 2, 3).contiguous()  # B,T,3,H,W
    lr = torch.full((4, 3, 3, 16, 16), 0.5)
    same, recs = old_footage_lr(hr, lr, np.random.default_rng(0), 0.0)
    assert same is lr and recs == [None] * 4  # off: untouched, nothing drawn
    out, recs = old_footage_lr(hr, lr, np.random.default_rng(2), 0.5)
    picked = [r is not None for r in recs]
    assert 0 < sum(picked) < 4  # this seed draws some clips, not all
    assert torch.equal(lr, torch.full_like(lr, 0.5))  # the input LR is not modified in place
    for i, took in enumerate(picked):
        if not took:
            assert torch.equal(out[i], lr[i])
            continue
        # the picked clip is old_footage_clip of its GT: a damaged picture of the same content
        area = torch.nn.functional.interpolate(hr[i], size=(16, 16), mode="area")
        assert 0.005 < (out[i] - area).abs().mean() < 0.25 and recs[i].family in ("film", "analogue")
    again, recs2 = old_footage_lr(hr, lr, np.random.default_rng(2), 0.5)
    assert recs2 == recs and torch.equal(again, out)  # seeded
    with pytest.raises(ValueError, match=r"prob must be in \[0, 1\]"):
        old_footage_lr(hr, lr, np.random.default_rng(0), 1.5)


def _clean_clip(folder, n=6):
    folder.mkdir(parents=True)
    for i, f in enumerate(make_clip_frames(n, 64, seed=2)):
        cv2.imwrite(str(folder / f"{i:04d}.png"), f[..., ::-1])


def test_make_old_footage_data_script(tmp_path, capsys):
    mod = load_script("make_old_footage_data")
    _clean_clip(tmp_path / "clean" / "clipA")
    out = tmp_path / "old"
    argv = [str(tmp_path / "clean"), "--out", str(out), "--samples", "2", "--frames", "4", "--seed", "1"]
    assert mod.main(argv) == 0
    cap = capsys.readouterr()
    assert cap.out == "" and "2 LQ clips" in cap.err
    chains = json.loads((out / "chains.json").read_text())["samples"]
    assert [c["family"] for c in chains] == ["film", "analogue"]
    for c in chains:
        frames = sorted((out / c["folder"]).glob("*.png"))
        assert len(frames) == 4 and cv2.imread(str(frames[0])).shape == (16, 16, 3)
        assert any(s.startswith("numpy ") for s in c["steps"])
    first = {p.name: p.read_bytes() for p in (out / chains[0]["folder"]).glob("*.png")}
    assert mod.main(argv) == 2 and "exists and is not empty" in capsys.readouterr().err
    assert mod.main(argv + ["--force"]) == 0  # the same seed: the same bytes
    assert {p.name: p.read_bytes() for p in (out / chains[0]["folder"]).glob("*.png")} == first


def test_make_old_footage_data_refuses_the_benchmark(tmp_path, capsys):
    mod = load_script("make_old_footage_data")
    bench = tmp_path / "eval_set"
    _clean_clip(bench / "gt" / "c0")
    (bench / "benchmark.json").write_text(json.dumps({"vsvqdsr-benchmark": 1}))
    assert mod.main([str(bench), "--out", str(tmp_path / "o"), "--frames", "4"]) == 2
    err = capsys.readouterr().err
    assert len(err.splitlines()) == 1 and "evaluation benchmark set" in err and "find_sources" in err
    _clean_clip(tmp_path / "clean" / "a")
    assert mod.main([str(tmp_path / "clean"), "--out", str(bench / "old"), "--frames", "4"]) == 2
    assert "make_old_footage_data: " in capsys.readouterr().err and not (bench / "old").exists()
    assert mod.main([str(tmp_path / "clean"), "--out", str(tmp_path / "o"), "--crop", "20"]) == 2


def test_make_show_runs_a_benchmark_chain_over_training_clips(tmp_path, capsys):
    from vsvqdsr.evaluation.build import SEVERITIES, clip_seed, degrade_frames

    mod = load_script("make_show")
    _clean_clip(tmp_path / "clean" / "clipA", n=4)
    out = tmp_path / "show"
    assert mod.main([str(tmp_path / "clean"), "--out", str(out), "--severity", "old-analogue"]) == 0
    cap = capsys.readouterr()
    assert cap.out == "" and "1/1 clipA: 4 frames 64x64" in cap.err
    rec = json.loads((out / "show.json").read_text())["clips"]["clipA"]
    assert rec["lr_size"] == [16, 16] and rec["seed"] == clip_seed("clipA", "old-analogue")

    def decode(path, size):
        import subprocess
        raw = subprocess.run(["ffmpeg", "-v", "error", "-i", str(path), "-f", "rawvideo", "-pix_fmt", "rgb24", "-"],
                             capture_output=True, check=True).stdout
        return np.frombuffer(raw, np.uint8).reshape(-1, size, size, 3)

    clean = decode(out / "clean" / "clipA.mkv", 64)
    assert np.array_equal(clean, make_clip_frames(4, 64, seed=2))  # lossless clean reference
    # the show is the benchmark chain's output, stored losslessly
    expect = degrade_frames(clean, SEVERITIES["old-analogue"], fps=24, seed=rec["seed"])
    assert np.array_equal(decode(out / "lq" / "clipA.mkv", 16), expect)
    assert mod.main([str(tmp_path / "clean"), "--out", str(out)]) == 2  # not replaced without --force
    assert "exists and is not empty" in capsys.readouterr().err
    assert mod.main([str(tmp_path / "clean"), "--out", str(tmp_path / "o"), "--severity", "vhs"]) == 2
    bench = tmp_path / "eval_set"
    _clean_clip(bench / "gt" / "c0", n=2)
    (bench / "benchmark.json").write_text(json.dumps({"vsvqdsr-benchmark": 1}))
    assert mod.main([str(bench), "--out", str(tmp_path / "o2")]) == 2
    assert "evaluation benchmark set" in capsys.readouterr().err and not (tmp_path / "o2").exists()
