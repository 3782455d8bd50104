"""`vqdsr eval` on a tiny synthetic benchmark set built through the real builder (real ffmpeg chains)."""
from __future__ import annotations

import json
import math

import cv2
import numpy as np
import pytest

from vsvqdsr.training.synthetic import make_clip_frames, write_clip_folders

HR = 200  # NIQE needs more than 192 px each side


def _pink_noise(h: int, w: int, seed: int = 0) -> np.ndarray:
    """``1,h,w,3`` uint8 grey noise with power falling with frequency (octaves summed)."""
    rng = np.random.default_rng(seed)
    acc = np.zeros((h, w), np.float32)
    for s in (1, 2, 4, 8, 16, 32):
        n = rng.normal(0, 1, (h // s + 1, w // s + 1)).astype(np.float32)
        acc += cv2.resize(n, (w, h), interpolation=cv2.INTER_CUBIC) * s ** 0.5
    acc = (acc - acc.min()) / (acc.max() - acc.min()) * 255
    return np.repeat(acc[..., None], 3, -1).astype(np.uint8)[None]


def _clips() -> dict[str, np.ndarray]:
    return {f"c{k}": make_clip_frames(4, HR, seed=k) for k in range(2)}


@pytest.fixture(scope="module")
def tiny_set(tmp_path_factory):
    from vsvqdsr.evaluation.build import build_set

    root = tmp_path_factory.mktemp("bench") / "set"
    build_set(root, _clips(), {"c0": {"package": "synthetic"}, "c1": {"package": "synthetic"}},
              severities=("light", "heavy"))
    return root


def test_build_set_manifest_and_determinism(tiny_set, tmp_path):
    from vsvqdsr.evaluation.build import BENCHMARK_MARKER, build_set, sha256_file
    from vsvqdsr.evaluation.dataset import load_set

    man = json.loads((tiny_set / "benchmark.json").read_text())
    assert man[BENCHMARK_MARKER] == 1
    assert list(man["severities"]) == ["light", "heavy"]
    assert any("libx264" in c for c in man["severities"]["light"]["ffmpeg"])
    assert any("mpeg2video" in c and "yadif" not in c for c in man["severities"]["heavy"]["ffmpeg"])
    assert man["clips"]["c0"]["lr_size"] == [HR // 4, HR // 4]
    for rel, digest in man["files"].items():
        assert sha256_file(tiny_set / rel) == digest
    bset = load_set(tiny_set, verify=True)
    assert len(bset.clips) == 4 and bset.num_lr_frames == 16
    lr, gt = bset.clips[0].load_lr(), bset.clips[0].load_gt()
    assert lr.shape == (4, HR // 4, HR // 4, 3) and gt.shape == (4, HR, HR, 3)
    # the LR frames really went through a lossy chain: close to, but not equal to, an area downscale
    ref = cv2.resize(gt[0], (HR // 4, HR // 4), interpolation=cv2.INTER_AREA).astype(float)
    assert 0.5 < np.abs(lr[0] - ref).mean() < 20
    # a rebuild gives the same bytes
    again = build_set(tmp_path / "again", _clips(), {"c0": {"package": "synthetic"}, "c1": {"package": "synthetic"}},
                      severities=("light", "heavy"))
    assert json.loads((again / "benchmark.json").read_text())["files"] == man["files"]


def test_metrics_identity_and_order():
    from vsvqdsr.evaluation import metrics as M
    from vsvqdsr.evaluation.options import DEFAULT_OPTIONS

    assert DEFAULT_OPTIONS["metrics"] == list(M.METRICS)
    gt = make_clip_frames(4, HR, seed=3)
    assert M.psnr_y(gt, gt) == math.inf
    assert M.ssim_y(gt, gt) == pytest.approx(1.0)
    assert M.flicker(gt, gt) == 0.0
    assert M.ssimulacra2(gt, gt) > 99
    assert M.cvvdp(gt, gt, 24) == pytest.approx(10.0, abs=1e-3)
    light = np.stack([cv2.GaussianBlur(f, (0, 0), 0.8) for f in gt])
    heavy = np.stack([cv2.GaussianBlur(f, (0, 0), 2.5) for f in gt])
    for fn in (M.psnr_y, M.ssim_y, M.ssimulacra2):
        assert fn(gt, gt) > fn(light, gt) > fn(heavy, gt), fn.__name__
    # flicker: noise that changes every frame flickers, the same noise on every frame does not
    rng = np.random.default_rng(0)
    static = np.clip(gt + rng.integers(-8, 9, gt.shape[1:]), 0, 255).astype(np.uint8)
    moving = np.clip(gt + rng.integers(-8, 9, gt.shape), 0, 255).astype(np.uint8)
    assert M.flicker(static, gt) < 0.5 < M.flicker(moving, gt)
    # NIQE: blur moves a natural-looking (1/f noise) image away from natural-scene statistics
    nat = _pink_noise(288, 288)
    assert M.niqe(np.stack([cv2.GaussianBlur(f, (0, 0), 2.5) for f in nat])) > M.niqe(nat) + 5
    with pytest.raises(ValueError, match="psnr_y"):
        M.psnr_y(gt, gt[:, :100])


def test_niqe_matches_scikit_video(monkeypatch):
    """Our NIQE against scikit-video's own, with the two fixes it needs on current numpy/scipy."""
    import scipy
    from PIL import Image

    skm = pytest.importorskip("skvideo.measure")
    from vsvqdsr.evaluation.metrics import niqe_frame, rgb_to_y

    def imresize(img, s, interp="bicubic", mode="F"):
        im = Image.fromarray(img, mode="F")
        return np.asarray(im.resize(tuple(int(v * s) for v in im.size), Image.BICUBIC))

    import scipy.misc  # noqa: F401  (may be a stub module on current scipy)
    monkeypatch.setattr(scipy.misc, "imresize", imresize, raising=False)
    monkeypatch.setattr(np, "int", int, raising=False)
    y = rgb_to_y(make_clip_frames(1, 256, seed=5)[0])
    ref = float(skm.niqe(y[None, ..., None].astype(np.float32))[0])
    assert niqe_frame(y) == pytest.approx(ref, rel=2e-3)


def _run_cli(argv):
    from vsvqdsr.cli.main import main

    return main(["eval", *argv])


def test_eval_end_to_end_cache_and_reports(tiny_set, tmp_path, vqdsr_random_path, capsys):
    out = tmp_path / "out"
    base = [str(tiny_set), "--out", str(out), "--threads", "1", "--quiet", "--niqe-step", "4"]
    assert _run_cli(base + ["--methods", "bicubic", "nearest", "lanczos",
                            "--checkpoint", str(vqdsr_random_path)]) == 0
    cap = capsys.readouterr()
    assert cap.out == ""  # nothing on stdout unless asked
    res = json.loads((out / "results.json").read_text())
    names = [m["name"] for m in res["methods"]]
    assert names == ["bicubic", "nearest", "lanczos", "vqdsr-random"]
    assert res["run"]["computed_sr_clips"] == 16 and res["run"]["computed_metric_clips"] == 16
    assert set(res["overall"]["bicubic"]) == {"psnr_y", "ssim_y", "ssimulacra2", "cvvdp", "flicker", "niqe"}
    assert res["options"]["niqe_step"] == 4 and res["options"]["cvvdp_crop"] == [272, 480]
    ov = res["overall"]
    for k in ("psnr_y", "ssim_y", "ssimulacra2"):
        assert ov["bicubic"][k] > ov["nearest"][k], k
        assert ov["lanczos"][k] > ov["nearest"][k], k
    assert ov["vqdsr-random"]["psnr_y"] < ov["bicubic"]["psnr_y"]  # random weights are no upscaler
    assert set(res["per_severity"]["bicubic"]) == {"light", "heavy"}
    # heavier degradation scores lower
    assert res["per_severity"]["bicubic"]["light"]["psnr_y"] > res["per_severity"]["bicubic"]["heavy"]["psnr_y"]
    md = (out / "results.md").read_text()
    assert "PSNR-Y (dB) ↑" in md and "Flicker (Y) ↓" in md and "## Severity: heavy" in md and "**" in md
    # per-clip figures: one table per severity and metric, methods x clips, from the per-clip values
    assert "## Per clip" in md and "### heavy: PSNR-Y (dB) ↑" in md and "| method | c0 | c1 |" in md
    pc = res["per_clip"]["lanczos"]["light"]
    block = md.split("### light: SSIM-Y ↑")[1].split("###")[0]
    row = next(ln for ln in block.splitlines() if ln.startswith("| lanczos |"))
    assert row.replace("**", "") == f"| lanczos | {pc['c0']['ssim_y']:.4f} | {pc['c1']['ssim_y']:.4f} |"
    for k in res["metrics"]:
        assert cv2.imread(str(out / "charts" / f"{k}.png")) is not None
    sheet = cv2.imread(str(out / "crops.png"))
    assert sheet is not None and sheet.shape[0] > 2 * 160 and sheet.shape[1] > 6 * 160
    assert res["crop_sheet"]["clip"] == "c0"
    # second run: everything from the cache
    assert _run_cli(base + ["--methods", "bicubic", "nearest", "lanczos",
                            "--checkpoint", str(vqdsr_random_path), "--print"]) == 0
    cap = capsys.readouterr()
    assert cap.out.startswith("# vqdsr eval results")
    res2 = json.loads((out / "results.json").read_text())
    assert res2["run"]["computed_sr_clips"] == 0 and res2["run"]["computed_metric_clips"] == 0
    assert res2["overall"] == res["overall"]
    assert all(m["from_cache"] for m in res2["methods"])
    # adding a method computes only that method
    assert _run_cli(base + ["--methods", "bicubic", "nearest", "lanczos", "realesr-animevideov3",
                            "--checkpoint", str(vqdsr_random_path)]) == 0
    res3 = json.loads((out / "results.json").read_text())
    assert res3["run"]["computed_sr_clips"] == 4 and res3["run"]["computed_metric_clips"] == 4
    assert [m["from_cache"] for m in res3["methods"]] == [True, True, True, False, True]


def test_eval_vsr_method_matches_upscale(tiny_set, vqdsr_random_path):
    """The VSR method is exactly vsvqdsr.Upscale (cpu backend, no scene detection), rounded to 8 bits."""
    import vapoursynth as vs

    import vsvqdsr
    from vsvqdsr.evaluation.dataset import frames_to_clip, load_set
    from vsvqdsr.evaluation.methods import resolve_methods, run_clips, run_method

    clip = load_set(tiny_set).clips[0]
    lr = clip.load_lr()
    (m,) = resolve_methods([], [vqdsr_random_path])
    got = run_method(m, lr, clip.fps, threads=1)
    ref = vsvqdsr.Upscale(frames_to_clip(lr), model=str(vqdsr_random_path), backend="cpu", scene_detect=False,
                          threads=1)
    assert ref.format.id == vs.RGBS
    f = ref.get_frame(2)
    want = np.clip(np.rint(np.stack([np.asarray(f[p]) for p in range(3)], -1) * 255), 0, 255)
    assert got.shape == (4, HR, HR, 3)
    assert np.abs(got[2].astype(int) - want).max() <= 1
    # several clips through one filter instance (scene reset at each clip) == one run per clip
    clips = [c.load_lr() for c in load_set(tiny_set).clips[:3]]
    batch = [sr for sr, _ in run_clips(m, clips, [24] * 3, threads=1)]
    for lr_k, sr_k in zip(clips, batch):
        assert np.array_equal(sr_k, run_method(m, lr_k, 24, threads=1))


def test_eval_cli_errors(tiny_set, tmp_path, capsys):
    assert _run_cli([str(tmp_path / "nope"), "--out", str(tmp_path / "o")]) == 2
    assert "vqdsr eval: load_set:" in capsys.readouterr().err
    assert _run_cli([str(tiny_set), "--out", str(tmp_path / "o"), "--methods", "bicubic", "magic"]) == 2
    err = capsys.readouterr().err
    assert "vqdsr eval:" in err and "unknown method 'magic'" in err
    assert _run_cli([str(tiny_set), "--out", str(tmp_path / "o"), "--checkpoint", str(tmp_path / "x.safetensors")]) == 2
    assert "does not exist" in capsys.readouterr().err
    assert _run_cli([str(tiny_set), "--out", str(tmp_path / "o"), "--metrics", "lpips"]) == 2
    assert "unknown metrics" in capsys.readouterr().err
    (tmp_path / "fake").mkdir()
    (tmp_path / "fake" / "benchmark.json").write_text('{"clips": {}}')
    assert _run_cli([str(tmp_path / "fake"), "--out", str(tmp_path / "o")]) == 2
    assert "marker" in capsys.readouterr().err


def test_training_refuses_benchmark(tiny_set, tmp_path):
    from vsvqdsr.training.data import find_sources
    from vsvqdsr.training.enhance import enhance_dir
    from vsvqdsr.training.vqgan_data import list_frames

    for p in (tiny_set, tiny_set / "gt", tiny_set / "lr" / "light" / "c0", tiny_set.parent):
        with pytest.raises(ValueError, match="find_sources: .*benchmark"):
            find_sources([p])
        with pytest.raises(ValueError, match="list_frames: .*benchmark"):
            list_frames([p], tmp_path / "cache")
        with pytest.raises(ValueError, match="enhance_dir: .*benchmark"):
            enhance_dir(p, tmp_path / "enh")
    # ordinary training folders still work
    data = write_clip_folders(tmp_path / "train", clips=1, num_frames=3, size=32)
    assert len(find_sources([data])) == 1
    assert len(list_frames([data], tmp_path / "cache")) == 1


def test_sharpness_probe_scores_blurred_outputs(tiny_set, tmp_path, capsys):
    """scripts/sharpness_probe.py re-scores a method's cached frames: sigma 0 equals the run's own
    ColorVideoVDP, and blurring an already soft upscale (bicubic) costs score."""
    from conftest import load_script

    out = tmp_path / "out"
    assert _run_cli([str(tiny_set), "--out", str(out), "--threads", "1", "--quiet", "--metrics", "cvvdp",
                     "--methods", "bicubic", "nearest"]) == 0
    capsys.readouterr()
    res = json.loads((out / "results.json").read_text())
    probe = load_script("sharpness_probe")
    assert probe.main([str(out), "bicubic", "--sigmas", "1.5", "--severities", "light",
                       "--json", str(tmp_path / "p.json")]) == 0
    text = capsys.readouterr().out
    assert "| light/c0 |" in text and "**light mean**" in text and "heavy/" not in text
    rows = json.loads((tmp_path / "p.json").read_text())
    assert [r["clip"] for r in rows] == ["c0", "c1"]
    for r in rows:
        assert r["scores"]["0.0"] == pytest.approx(res["per_clip"]["bicubic"]["light"][r["clip"]]["cvvdp"], abs=1e-4)
        assert r["scores"]["1.5"] < r["scores"]["0.0"]
    with pytest.raises(SystemExit, match="no method 'nope'"):
        probe.main([str(out), "nope"])
    with pytest.raises(SystemExit, match="unknown severities"):
        probe.main([str(out), "bicubic", "--severities", "medium"])


def test_cache_key_carries_the_precision_that_ran(monkeypatch, vqdsr_random_path):
    """An f32 run keeps the keys of every f32 result; where auto resolves to bf16 (AMX-BF16) the
    network methods get other keys, so f32 and bf16 frames are never mixed up."""
    import vsvqdsr.backends.precision as prec
    from vsvqdsr.evaluation.methods import ran_precision, resolve_methods

    assert ran_precision("cpu", {"avx2", "fma"}) == {}
    assert ran_precision("cpu", {"amx_bf16"}) == {"precision_ran": "bf16"}
    assert ran_precision("ort", {"amx_bf16"}) == {} and ran_precision("cuda", {"amx_bf16"}) == {}
    keys = {}
    for caps in ({"avx2", "fma"}, {"avx2", "amx_bf16"}):
        monkeypatch.setattr(prec, "capabilities", lambda caps=caps: frozenset(caps))
        ms = resolve_methods(["bicubic"], [vqdsr_random_path])
        keys[frozenset(caps)] = [m.cache_key("m") for m in ms]
        if "amx_bf16" not in caps:  # f32: the settings (and so the keys) of recorded results
            assert ms[1].settings == {"backend": "cpu", "scene_detect": False}
    f32, bf16 = keys.values()
    assert f32[0] == bf16[0] and f32[1] != bf16[1]  # a resizer has no precision; the network has
