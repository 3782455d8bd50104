"""A tiny end-to-end CPU run of both VSR training stages, resume, and export to a loadable model."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from vsvqdsr.training.synthetic import write_clip_folders
from vsvqdsr.nets.vsr import RecurrentVSR
from vsvqdsr.training.data import ClipSampler, TrainClips, find_sources
from vsvqdsr.training.degradations import stage2_degrade, usm_sharp
from vsvqdsr.training.vsr_train import (TrainConfig, drop_feedback_channels, init_generator_weights,
                                        load_run_checkpoint, train)
from vsvqdsr.weights.descriptors import build_network
from vsvqdsr.weights.loading import load_state_dict, save_state_dict


def _net(sd) -> RecurrentVSR:
    net = RecurrentVSR(feedback=False)
    net.load_state_dict(sd)
    return net.eval()


@pytest.fixture(scope="module")
def workdir(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("vsrtrain")
    write_clip_folders(root / "data", clips=2, num_frames=6, size=112)
    torch.manual_seed(0)
    save_state_dict(RecurrentVSR(feedback=False).state_dict(), root / "init.safetensors")
    from vsvqdsr.nets.vqgan import LITE_CONFIG, MultiScaleVQGAN
    from vsvqdsr.weights.degrader import save_degrader

    torch.manual_seed(1)
    save_degrader(MultiScaleVQGAN(LITE_CONFIG), root / "degrader.safetensors", half=False)
    return root


def test_stage1_stage2_export(workdir: Path):
    torch.set_num_threads(1)
    data = [str(workdir / "data")]
    common = dict(data=data, batch=1, frames=3, workers=0, threads=1, log_every=2, seed=0)
    run1 = workdir / "run1"
    cfg1 = TrainConfig(stage=1, out=str(run1), init=str(workdir / "init.safetensors"), iters=8, patch=32,
                       lr=1e-3, save_every=4, sample_every=4, **common)
    s1 = train(cfg1, progress=False)
    assert s1["iter"] == 8 and s1["its_per_s"] > 0
    for rel in ("config.json", "losses.png", "losses.jsonl", "samples/iter_0000004.png", "samples/iter_0000008.png",
                "checkpoints/iter_0000004.pt", "checkpoints/latest.pt"):
        assert (run1 / rel).is_file(), rel
    # the loss on a fixed held-out batch goes down (G weights, against the USM target)
    sampler = ClipSampler(find_sources(data, 3), 3, 32)
    lr, gt = (x[None] for x in TrainClips(sampler, 1, seed=99)[0])
    before = _net(load_state_dict(workdir / "init.safetensors"))
    st1 = load_run_checkpoint(run1)
    with torch.no_grad():
        l_before = float((before(lr) - usm_sharp(gt)).abs().mean())
        l_after = float((_net(st1["params"])(lr) - usm_sharp(gt)).abs().mean())
    assert l_after < 0.9 * l_before, (l_before, l_after)
    # resume continues from the checkpoint
    s1b = train(TrainConfig(**{**cfg1.__dict__, "iters": 10}), progress=False)
    assert s1b["iter"] == 10 and [h["iter"] for h in s1b["history"]][-2:] == [8, 10]
    assert load_run_checkpoint(run1)["iter"] == 10

    # stage 2 from the stage-1 run, tiny untrained VQGAN degrader, real H.264
    run2 = workdir / "run2"
    cfg2 = TrainConfig(stage=2, out=str(run2), init=str(run1), degrader=str(workdir / "degrader.safetensors"),
                       iters=4, patch=96, lr=1e-3, lr_d=1e-4, save_every=100, sample_every=2,
                       perceptual="none", **common)  # the perceptual modules are tested on their own (CPU time)
    st1 = load_run_checkpoint(run1)
    s2 = train(cfg2, progress=False)
    st2 = load_run_checkpoint(run2)
    assert st2["stage"] == 2 and st2["iter"] == 4 and "params_d" in st2
    last = s2["history"][-1]
    assert {"l1", "gan_g", "d_real", "d_fake"} <= set(last) and all(np.isfinite(v) for v in last.values())
    gt2 = TrainClips(ClipSampler(find_sources(data, 3), 3, 96), 2, seed=99)[0][None]
    from vsvqdsr.weights.degrader import load_degrader

    lr2, _ = stage2_degrade(gt2, np.random.default_rng(0), load_degrader(workdir / "degrader.safetensors"))
    with torch.no_grad():
        l2_before = float((_net(st1["params"])(lr2) - gt2).abs().mean())
        l2_after = float((_net(st2["params"])(lr2) - gt2).abs().mean())
    assert l2_after < l2_before, (l2_before, l2_after)

    # export: EMA weights that build_network loads as the no-feedback VQD-SR variant
    out = workdir / "model.safetensors"
    from vsvqdsr.cli.main import main

    assert main(["export", str(run2), "-o", str(out)]) == 0
    sd = load_state_dict(out)
    net, desc = build_network(sd)
    assert desc.variant == "vqdsr" and desc.num_params == 1_467_728
    for k, v in st2["params_ema"].items():
        assert torch.equal(sd[k], v)
    with torch.no_grad():
        y = net(torch.rand(1, 2, 3, 8, 8))
    assert y.shape == (1, 2, 3, 32, 32)
    from safetensors import safe_open

    with safe_open(str(out), "pt") as f:
        meta = f.metadata()
    assert meta["variant"] == "vqdsr" and meta["stage"] == "2" and "EMA" in meta["origin"]
    # the run is named, but the trainer's absolute path does not travel with a shared model file
    assert run2.name in meta["origin"] and str(run2.parent) not in meta["origin"]
    assert json.loads((run2 / "config.json").read_text())["stage"] == 2
    _check_upscale_in_vspipe(out, workdir)


def _check_upscale_in_vspipe(model: Path, workdir: Path) -> None:
    """The exported file runs in ``vqdsr.Upscale`` under a real vspipe and matches plain torch."""
    import os
    import shutil
    import subprocess
    import sys

    from conftest import reference_upscale, textured_frames

    vspipe = Path(sys.executable).parent / "vspipe"
    if not vspipe.is_file():
        vspipe = Path(shutil.which("vspipe") or "vspipe")
    frames = textured_frames(3, 12, 16, seed=3)
    np.save(workdir / "frames.npy", frames)
    script = workdir / "exported.vpy"
    script.write_text(f"""
import numpy as np
import vapoursynth as vs
import vsvqdsr as vqdsr
core = vs.core
arr = np.load({str(workdir / "frames.npy")!r})
blank = core.std.BlankClip(format=vs.RGBS, width=16, height=12, length=3, keep=True)
def fill(n, f):
    out = f.copy()
    for p in range(3):
        np.copyto(np.asarray(out[p]), arr[n, p])
    return out
src = core.std.ModifyFrame(blank, blank, fill)
vqdsr.Upscale(src, model={str(model)!r}, backend="cpu", scene_detect=False).set_output()
""")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(Path(__file__).resolve().parent.parent),
                                                       os.environ.get("PYTHONPATH", "")])}
    res = subprocess.run([str(vspipe), str(script), "-"], capture_output=True, env=env, timeout=300)
    assert res.returncode == 0, res.stderr.decode(errors="replace")[-2000:]
    # vspipe writes RGB planes in G, B, R order (ffmpeg's gbrp convention)
    got = np.frombuffer(res.stdout, np.float32).reshape(3, 3, 48, 64)[:, [2, 0, 1]]
    ref = reference_upscale(model, frames, [0])
    np.testing.assert_allclose(got, ref, atol=2e-4)


def test_stage2_fidelity_finetune_has_no_discriminator(workdir: Path):
    """--gan-weight 0: L1 (+ perceptual) only; no D is built, trained or saved."""
    torch.set_num_threads(1)
    run = workdir / "run_fid"
    cfg = TrainConfig(stage=2, data=[str(workdir / "data")], out=str(run), init=str(workdir / "init.safetensors"),
                      degrader="none", iters=2, patch=96, batch=1, frames=3, workers=0, threads=1, log_every=1,
                      save_every=100, sample_every=100, perceptual="none", gan_weight=0.0, h264=False)
    s = train(cfg, progress=False)
    st = load_run_checkpoint(run)
    assert st["iter"] == 2 and "params_d" not in st and "opt_d" not in st
    assert set(s["history"][-1]) >= {"l1"} and not {"gan_g", "d_real", "d_fake"} & set(s["history"][-1])
    with pytest.raises(ValueError, match="gan_weight"):
        train(TrainConfig(**{**cfg.__dict__, "out": str(workdir / "bad_w"), "gan_weight": -1.0}), progress=False)


def test_stage2_usm_gt_changes_only_the_target(workdir: Path):
    """--usm-gt: same seed, same LR and SR at the first step, but L1 is taken against the sharpened GT."""
    torch.set_num_threads(1)
    base = dict(stage=2, data=[str(workdir / "data")], init=str(workdir / "init.safetensors"), degrader="none",
                iters=1, patch=96, batch=1, frames=3, workers=0, threads=1, log_every=1, save_every=100,
                sample_every=100, perceptual="none", gan_weight=0.0, h264=False, seed=3)
    plain = train(TrainConfig(out=str(workdir / "run_plain"), **base), progress=False)["history"][-1]["l1"]
    sharp = train(TrainConfig(out=str(workdir / "run_usm"), usm_gt=True, **base), progress=False)["history"][-1]["l1"]
    again = train(TrainConfig(out=str(workdir / "run_plain2"), **base), progress=False)["history"][-1]["l1"]
    assert plain == again and sharp != plain


def test_train_rejects_bad_config(workdir: Path):
    with pytest.raises(ValueError, match="multiple of 16"):
        train(TrainConfig(stage=1, data=[str(workdir / "data")], out=str(workdir / "bad"), patch=40))
    with pytest.raises(ValueError, match=">= 96"):
        train(TrainConfig(stage=2, data=[str(workdir / "data")], out=str(workdir / "bad"), patch=64))


def test_drop_feedback_channels():
    torch.manual_seed(0)
    fb = RecurrentVSR(feedback=True).state_dict()
    sd = drop_feedback_channels(fb)
    w, w0 = sd["recurrent_cell.conv_s1_first.0.weight"], fb["recurrent_cell.conv_s1_first.0.weight"]
    assert w.shape == (64, 73, 3, 3)
    assert torch.equal(w[:, :9], w0[:, :9]) and torch.equal(w[:, 9:], w0[:, 57:])  # frames kept, state kept
    _net(sd)  # loads strictly into the no-feedback network


def test_init_from_animesr_if_installed():
    from vsvqdsr.weights.registry import installed_models

    if "animesr-v1" not in installed_models():
        pytest.skip("animesr-v1 not installed (run `vqdsr fetch-weights`)")
    g, ema, how = init_generator_weights("animesr-v1")
    assert "feedback input channels dropped" in how and g["recurrent_cell.conv_s1_first.0.weight"].shape[1] == 73
    _net(g)


def test_train_vsr_cli_errors(workdir: Path, capsys):
    from vsvqdsr.cli.main import main

    assert main(["train-vsr", "--stage", "2", "--data", str(workdir / "data"), "--out", str(workdir / "x")]) == 2
    assert "--degrader" in capsys.readouterr().err
    assert main(["train-vsr", "--stage", "1", "--data", str(workdir / "nothing"), "--out", str(workdir / "x"),
                 "--iters", "1"]) == 2
    assert "no such file or folder" in capsys.readouterr().err
    assert main(["export", str(workdir / "nothing"), "-o", str(workdir / "m.safetensors")]) == 2


def _train_vsr_parser():
    import argparse

    from vsvqdsr.cli.main import build_parser

    sub = next(a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction))
    return sub.choices["train-vsr"]


def test_train_vsr_cli_defaults_are_train_configs():
    from dataclasses import fields

    from vsvqdsr.cli.train_vsr import config_from_args

    p = _train_vsr_parser()
    base = ["--stage", "1", "--data", "d1", "d2", "--out", "run"]
    assert config_from_args(p.parse_args(base)) == TrainConfig(stage=1, data=["d1", "d2"], out="run")
    cfg = config_from_args(p.parse_args(base + ["--topk", "paper", "--no-h264", "--usm-gt", "--zoom-max", "2",
                                                "--workers", "0", "--iters", "7", "--lr", "3e-5"]))
    assert (cfg.topk_mode, cfg.h264, cfg.usm_gt, cfg.zoom_max, cfg.workers, cfg.iters, cfg.lr) == (
        "paper", False, True, 2.0, 0, 7, 3e-5)
    # every option reaches a TrainConfig field (none is dropped on the way)
    names = {f.name for f in fields(TrainConfig)}
    dests = {a.dest for a in p._actions if a.dest not in ("help", "func")}
    assert {{"topk": "topk_mode", "no_h264": "h264"}.get(d, d) for d in dests} <= names


@pytest.mark.gpu
def test_gpu_stage2_degradations_and_training(workdir: Path):
    from vsvqdsr.weights.degrader import load_degrader

    dev = torch.device("cuda")
    deg = load_degrader(workdir / "degrader.safetensors").to(dev)
    hr = torch.rand(2, 3, 3, 96, 96, device=dev)
    lr, rec = stage2_degrade(hr, np.random.default_rng(0), deg)
    assert lr.device.type == "cuda" and lr.shape == (2, 3, 3, 24, 24) and rec.h264_ok == [True, True]
    assert 0 <= float(lr.min()) and float(lr.max()) <= 1
    cfg = TrainConfig(stage=2, data=[str(workdir / "data")], out=str(workdir / "gpu_run"),
                      degrader=str(workdir / "degrader.safetensors"), iters=2, batch=2, frames=3, patch=96,
                      workers=0, device="cuda", save_every=100, sample_every=2, log_every=1)
    s = train(cfg, progress=False)
    assert s["iter"] == 2 and all(np.isfinite(v) for v in s["last"].values())
    assert (workdir / "gpu_run" / "checkpoints" / "latest.pt").is_file()
