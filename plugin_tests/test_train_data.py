"""Clip sources and the spec's clip sampling (3.1)."""
from __future__ import annotations

import subprocess
from pathlib import Path

import numpy as np
import pytest

from vsvqdsr.training.synthetic import make_clip_frames, write_clip_folders
from vsvqdsr.training.data import ClipSampler, TrainClips, augment_clip, find_sources, sample_window


def test_sample_window_semantics():
    rng = np.random.default_rng(0)
    seen_intervals, seen_rev = set(), set()
    for _ in range(500):
        src, frames, interval, rev = sample_window(rng, [100, 40], 15)
        n = [100, 40][src]
        diffs = np.diff(frames)
        assert len(frames) == 15 and np.all(np.abs(diffs) == interval) and len(set(np.sign(diffs))) == 1
        assert min(frames) >= 0 and max(frames) < n
        assert (diffs[0] < 0) == rev
        seen_intervals.add(interval)
        seen_rev.add(rev)
    assert seen_intervals == {1, 2, 3} and seen_rev == {True, False}


def test_sample_window_centres_on_key_and_redraws_at_edges():
    # a single 100-frame source, interval fixed to 2: windows centred on the key when it fits
    centres = []
    for seed in range(300):
        rng = np.random.default_rng(seed)
        key = int(np.random.default_rng(seed).integers(0, 100))
        _, frames, _, rev = sample_window(rng, [100], 15, intervals=(2,))
        c = sorted(frames)[7]
        centres.append(c)
        if 14 <= key <= 85:
            assert c == key
        else:
            assert 14 <= c <= 85  # redrawn among the valid centres
    assert min(centres) == 14 or max(centres) == 85


def test_augment_shared_by_all_frames():
    clip = np.random.default_rng(0).random((3, 8, 6, 3))
    out = augment_clip(clip, True, True, True)
    assert out.shape == (3, 6, 8, 3)
    for t in range(3):
        np.testing.assert_array_equal(out[t], clip[t][::-1, ::-1].transpose(1, 0, 2))


def test_sources_frames_and_video(tmp_path: Path):
    write_clip_folders(tmp_path / "frames", clips=2, num_frames=6, size=64)
    frames = make_clip_frames(7, 64, seed=5)
    vid = tmp_path / "v.mkv"
    subprocess.run(["ffmpeg", "-v", "error", "-f", "rawvideo", "-pix_fmt", "rgb24", "-s", "64x64", "-r", "25",
                    "-i", "-", "-c:v", "ffv1", "-pix_fmt", "bgr0", str(vid)], input=frames.tobytes(), check=True)
    srcs = find_sources([tmp_path / "frames", vid])
    assert [s.num_frames for s in srcs] == [6, 6, 7] and all((s.width, s.height) == (64, 64) for s in srcs)
    got = srcs[2].read([4, 2, 3], 8, 16, 32)
    np.testing.assert_allclose(got, frames[[4, 2, 3], 8:40, 16:48] / 255.0, atol=1e-6)  # lossless ffv1
    fr = srcs[0].read([1], 0, 0, 64)
    np.testing.assert_allclose(fr[0], make_clip_frames(6, 64, seed=0)[1] / 255.0, atol=1e-6)

    sampler = ClipSampler(srcs, num_frames=5, patch=32)
    ds = TrainClips(sampler, stage=1, seed=3)
    lr, gt = ds[7]
    assert lr.shape == (5, 3, 8, 8) and gt.shape == (5, 3, 32, 32)
    lr2, gt2 = ds[7]
    assert np.array_equal(lr.numpy(), lr2.numpy()) and np.array_equal(gt.numpy(), gt2.numpy())
    assert TrainClips(sampler, stage=2, seed=3)[7].shape == (5, 3, 32, 32)
    with pytest.raises(ValueError, match="fewer than"):
        ClipSampler(srcs, num_frames=8, patch=32)
    with pytest.raises(ValueError, match="smaller than"):
        ClipSampler(srcs, num_frames=5, patch=128)
