"""VQGAN degrader training: data (images, videos, near-duplicate filter, augmentation) and a tiny real run."""
from __future__ import annotations

import json
import subprocess

import numpy as np
import pytest
import torch

from vsvqdsr.training.vqgan_data import augment, filter_near_duplicates, list_frames
from vsvqdsr.training.vqgan_losses import NLayerDiscriminator, adaptive_weight, hinge_d_loss
from vsvqdsr.training.vqgan_train import TrainOptions, train_vqgan
from vsvqdsr.weights.degrader import load_degrader

TINY = dict(ch=8, ch_mult=[1, 1, 2, 2, 4], num_res_blocks=1, embed_dim=16, n_embed=64, norm_groups=4, beta=0.25)


def _cels(folder, n=6, size=(72, 96), seed=0):
    import cv2
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(n):
        # light paper with dark ink lines: grey, so colour augmentations barely change the target
        img = np.full((*size, 3), int(rng.integers(200, 230)), np.uint8)
        for _ in range(4):
            p = tuple(int(v) for v in rng.integers(0, min(size), 2))
            cv2.circle(img, p, int(rng.integers(8, 30)), (25, 25, 25), 2)
        cv2.imwrite(str(folder / f"{i:03d}.png"), img)
    return folder


def test_discriminator_size_and_losses():
    d = NLayerDiscriminator()
    assert sum(p.numel() for p in d.parameters()) == 2_765_633
    assert d(torch.zeros(1, 3, 256, 256)).shape == (1, 1, 30, 30)
    assert float(hinge_d_loss(torch.full((4,), 2.0), torch.full((4,), -2.0))) == 0.0
    w = torch.ones(3, requires_grad=True)
    lam = adaptive_weight((w * 2).sum(), (w * 1e-9).sum(), w)  # huge ratio -> clamped to 1e4 * 0.8
    assert float(lam) == pytest.approx(0.8 * 1e4)


def test_frames_from_folders_and_videos_and_dedup(tmp_path):
    _cels(tmp_path / "imgs", n=3)
    vid = tmp_path / "clip.mkv"
    subprocess.run(["ffmpeg", "-hide_banner", "-loglevel", "error", "-f", "lavfi", "-i",
                    "testsrc=size=64x48:rate=5:duration=1", "-c:v", "libx264", "-pix_fmt", "yuv420p", str(vid)],
                   check=True)
    groups = list_frames([tmp_path / "imgs", vid], tmp_path / "cache")
    assert sorted(len(g) for g in groups) == [3, 5]
    # duplicates of one frame collapse to one
    import shutil
    dup = tmp_path / "dup"
    dup.mkdir()
    for i in range(4):
        shutil.copy(groups[0][0], dup / f"{i}.png")
    assert len(filter_near_duplicates([sorted(dup.iterdir())], 1.0)) == 1
    rng = np.random.default_rng(0)
    for _ in range(20):
        out = augment(rng.integers(0, 255, (40, 70, 3), dtype=np.uint8), 32, rng)
        assert out.shape == (32, 32, 3) and out.dtype == np.uint8


def test_tiny_training_run_loss_falls_resumes_and_feeds_stage2(tmp_path):
    data = _cels(tmp_path / "lq")
    common = dict(data=[str(data)], config=TINY, crop=32, batch=4, lr=3e-3, perceptual="none",
                  disc_start=24, save_every=10, sample_every=10, threads=1)
    s1 = train_vqgan(TrainOptions(out=str(tmp_path / "s1"), stage=1, steps=30, **common))
    assert s1["steps"] == 30
    assert s1["l1_last"] < 0.85 * s1["l1_first"], s1
    log = [json.loads(line) for line in (tmp_path / "s1" / "log.jsonl").read_text().splitlines()]
    assert log[-1]["d_weight"] > 0 and log[0]["d_weight"] == 0  # GAN term only after disc_start
    assert list((tmp_path / "s1" / "samples").glob("*.png"))
    again = train_vqgan(TrainOptions(out=str(tmp_path / "s1"), stage=1, steps=32, **common))
    assert again["steps"] == 32 and len((tmp_path / "s1" / "log.jsonl").read_text().splitlines()) == 32
    s2 = train_vqgan(TrainOptions(out=str(tmp_path / "s2"), stage=2, steps=2, init=str(tmp_path / "s1"), **common))
    assert s2["steps"] == 2
    net = load_degrader(tmp_path / "s2" / "degrader.safetensors")
    y = net.degrade(torch.rand(1, 3, 20, 20), *(torch.ones(1, dtype=torch.int64) for _ in range(3)))
    assert y.shape == (1, 3, 20, 20)


def test_cli_rejects_stage2_without_init(tmp_path, capsys):
    from vsvqdsr.cli.main import main
    assert main(["train-degrader", "--data", str(tmp_path), "--out", str(tmp_path / "r"), "--stage", "2"]) == 2
    assert "--init" in capsys.readouterr().err
