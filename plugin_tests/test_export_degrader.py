"""``vqdsr export degrader``: a real (tiny) two-stage train-degrader run shipped as fp16 weights + card."""
from __future__ import annotations

import json

import numpy as np
import torch

from vsvqdsr.cli.main import main
from vsvqdsr.training.vqgan_train import TrainOptions, train_vqgan
from vsvqdsr.weights.degrader import load_degrader

TINY = dict(ch=8, ch_mult=[1, 1, 2, 2, 4], num_res_blocks=1, embed_dim=16, n_embed=64, norm_groups=4, beta=0.25)


def _frames(folder, n=27):
    import cv2

    rng = np.random.default_rng(1)
    folder.mkdir(parents=True)
    for i in range(n):
        img = np.full((136, 144, 3), int(rng.integers(200, 230)), np.uint8)
        cv2.circle(img, (int(rng.integers(20, 120)), int(rng.integers(20, 110))), 30, (25, 60, 200), 3)
        cv2.imwrite(str(folder / f"{i:03d}.png"), img)
    return folder


def test_export_degrader_writes_weights_and_card(tmp_path, capsys):
    data = _frames(tmp_path / "lq")
    common = dict(data=[str(data)], config=TINY, crop=32, batch=2, lr=3e-3, perceptual="none",
                  disc_start=100, save_every=10, sample_every=10, threads=1)
    s1 = train_vqgan(TrainOptions(out=str(tmp_path / "s1"), stage=1, steps=3, **common))
    s2 = train_vqgan(TrainOptions(out=str(tmp_path / "s2"), stage=2, steps=2, init=str(tmp_path / "s1"), **common))
    capsys.readouterr()
    out = tmp_path / "models"
    assert main(["export", "degrader", "--s1", str(tmp_path / "s1"), "--s2", str(tmp_path / "s2"),
                 "--data", str(data), "--name", "tiny", "--out-dir", str(out), "--note", "smoke"]) == 0
    summary = json.loads(capsys.readouterr().out)
    weights, card_path = out / "tiny.safetensors", out / "tiny.json"
    assert summary["file"] == str(weights) and summary["bytes"] == weights.stat().st_size
    card = json.loads(card_path.read_text())
    net = load_degrader(weights)
    assert card["params"] == sum(p.numel() for p in net.parameters())
    assert card["name"] == "tiny" and card["quality"] == "smoke" and card["config"]["ch"] == 8
    assert card["recipe"]["stage1"]["steps"] == s1["steps"] == 3 and card["recipe"]["stage2"]["steps"] == 2
    assert card["losses"]["stage2_l1_last"] == round(s2["l1_last"], 4)
    assert card["reconstruction_k1"] == summary["reconstruction_k1"]
    assert card["reconstruction_k1"]["crops"] == 2  # frames 0 and 25 of 27
    again = ["export", "degrader", "--s1", str(tmp_path / "s1"), "--s2", str(tmp_path / "s2"), "--data", str(data),
             "--name", "tiny", "--out-dir", str(out)]
    before = weights.read_bytes()
    assert main(again) == 2
    assert capsys.readouterr().err == f"vqdsr export degrader: output file {weights} exists; pass --force to overwrite it\n"
    assert weights.read_bytes() == before
    assert main([*again, "--force"]) == 0 and json.loads(capsys.readouterr().out)["file"] == str(weights)
    assert 5 < card["reconstruction_k1"]["psnr_db"] < 60
    from safetensors import safe_open

    with safe_open(str(weights), "pt") as f:
        assert f.metadata()["steps_stage2"] == "2"
        assert {f.get_tensor(k).dtype for k in f.keys() if f.get_tensor(k).is_floating_point()} == {torch.float16}


def test_export_degrader_bad_input(tmp_path, capsys):
    (tmp_path / "empty").mkdir()
    argv = ["export", "degrader", "--s1", str(tmp_path / "nope1"), "--s2", str(tmp_path / "nope2"),
            "--data", str(tmp_path / "empty"), "--out-dir", str(tmp_path / "out")]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err == f"vqdsr export degrader: {tmp_path / 'nope1' / 'summary.json'} does not exist " \
                  "(not a train-degrader run folder)\n"
    for run in ("s1", "s2"):
        (tmp_path / run).mkdir()
        (tmp_path / run / "summary.json").write_text("{}")
        (tmp_path / run / "log.jsonl").write_text("")
    (tmp_path / "s2" / "last.pt").write_bytes(b"")
    argv[3], argv[5] = str(tmp_path / "s1"), str(tmp_path / "s2")
    assert main(argv) == 2
    assert capsys.readouterr().err == f"vqdsr export degrader: no PNG frames under {tmp_path / 'empty'}\n"
    assert main([*argv, "--name", "../x"]) == 2
    assert "name must be a plain file stem" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()
