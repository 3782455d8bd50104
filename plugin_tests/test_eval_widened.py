"""The widened benchmark: the "old footage" severities (seeded numpy damage between real ffmpeg
passes), built on a tiny synthetic set, reproducible byte for byte; the damage operations."""
from __future__ import annotations

import json

import numpy as np
import pytest

from vsvqdsr import damage as D
from vsvqdsr.training.synthetic import make_clip_frames

HR = 96


def _clips() -> dict[str, np.ndarray]:
    return {f"c{k}": make_clip_frames(3, HR, seed=k) for k in range(2)}


@pytest.fixture(scope="module")
def wide_set(tmp_path_factory):
    from vsvqdsr.evaluation.build import SEVERITIES, build_set

    root = tmp_path_factory.mktemp("wide") / "set"
    build_set(root, _clips(), {"c0": {"package": "synthetic"}, "c1": {"package": "synthetic"}},
              severities=tuple(SEVERITIES))
    return root


def test_widened_set_is_recorded_and_rebuilds_byte_for_byte(wide_set, tmp_path):
    from vsvqdsr.evaluation.build import FAMILIES, SEVERITIES, build_set, clip_seed

    assert list(SEVERITIES)[:3] == ["light", "medium", "heavy"] and len(SEVERITIES) >= 4
    assert FAMILIES["old footage"] == ("old-film", "old-analogue")
    man = json.loads((wide_set / "benchmark.json").read_text())
    assert list(man["severities"]) == list(SEVERITIES)
    # the codec chains' entries are as before: description and ffmpeg lines only, no seeds
    assert set(man["severities"]["light"]) == {"description", "ffmpeg"}
    assert man["severities"]["light"]["ffmpeg"][0].endswith(
        "-i in.rgb -vf scale=24:24:flags=bicubic,format=yuv420p -c:v libx264 -preset medium -crf 23 -an pass1.mkv")
    film = man["severities"]["old-film"]
    assert film["family"] == "old footage" and film["seeds"] == {c: clip_seed(c, "old-film") for c in ("c0", "c1")}
    lines = film["ffmpeg"]
    assert lines[0] == "numpy optical_blur(sigma=1.5) [vsvqdsr.damage]"
    assert lines[1].startswith("numpy film_grain(") and "chroma_bleed" in lines[4]
    codecs = [c for c in ("mpeg4", "mpeg2video", "libx264") if any(f"-c:v {c} " in x for x in lines)]
    assert codecs == ["mpeg4", "mpeg2video", "libx264"]  # three generations, three codecs
    ana = man["severities"]["old-analogue"]["ffmpeg"]
    assert [x.split("(")[0] for x in ana if x.startswith("numpy")] == [
        "numpy tape_luma", "numpy tape_chroma", "numpy line_jitter", "numpy tape_noise"]
    assert "numpy_version" in man
    assert len(man["files"]) == 2 * 3 * (1 + len(SEVERITIES))
    # a rebuild (clips in the other order) gives the same bytes: seeds belong to (clip, severity)
    clips = _clips()
    again = build_set(tmp_path / "again", {"c1": clips["c1"], "c0": clips["c0"]}, {}, severities=tuple(SEVERITIES))
    assert json.loads((again / "benchmark.json").read_text())["files"] == man["files"]


def test_old_footage_is_damage_beyond_the_codec_chains(wide_set):
    from vsvqdsr.evaluation.dataset import load_set

    bset = load_set(wide_set, verify=True)
    lr = {(c.severity, c.name): c.load_lr().astype(np.float64) for c in bset.clips}
    gt = {c.name: c.load_gt().astype(np.float64) for c in bset.clips}

    def err(sev: str) -> float:  # mean abs difference from the GT's 4x4 box average
        out = []
        for name, g in gt.items():
            t, h, w, _ = g.shape
            box = g.reshape(t, h // 4, 4, w // 4, 4, 3).mean(axis=(2, 4))
            out.append(np.abs(lr[(sev, name)] - box).mean())
        return float(np.mean(out))

    assert err("old-film") > err("light") and err("old-analogue") > err("light")
    for name in gt:
        assert not np.array_equal(lr[("old-film", name)], lr[("light", name)])


def test_damage_ops_are_seeded_and_do_what_they_say():
    rng = np.random.default_rng
    f = make_clip_frames(2, 48, seed=7)
    flat = np.full((2, 32, 40, 3), 120, np.uint8)
    # a flat image stays flat under blur, bleed, tape luma/chroma and jitter (edges mirrored)
    for op, kw in [("optical_blur", {"sigma": 1.5}), ("chroma_bleed", {"sigma": 2.0, "shift": 1.0}),
                   ("tape_luma", {"sigma": 0.9, "ringing": 0.7}), ("tape_chroma", {"sigma": 2.5, "shift": 1.0}),
                   ("line_jitter", {"amplitude": 0.6, "smooth": 6.0})]:
        assert np.array_equal(D.OPS[op](flat, rng(0), **kw), flat), op
    # grain and noise: the same seed gives the same bytes, another seed others; mean kept
    g1 = D.film_grain(flat, rng(1), strength=9.0, size=1.2, chroma=0.25)
    assert np.array_equal(g1, D.film_grain(flat, rng(1), strength=9.0, size=1.2, chroma=0.25))
    assert not np.array_equal(g1, D.film_grain(flat, rng(2), strength=9.0, size=1.2, chroma=0.25))
    assert not np.array_equal(g1[0], g1[1])  # fresh grain every frame
    dev = g1[..., 1].astype(float) - 120
    assert abs(dev.mean()) < 2.5 and 4.0 < dev.std() < 12.0  # about strength x midtone weight (0.98)
    n = D.tape_noise(flat, rng(3), strength=5.0, streak=3.0).astype(float)[..., 1] - 120
    assert 3.0 < n.std() < 7.0
    # streaks: neighbours along a line are far more alike than neighbours across lines
    assert np.abs(np.diff(n, axis=2)).mean() < 0.5 * np.abs(np.diff(n, axis=1)).mean()
    # chroma bleed leaves luma (up to rounding) and moves colour right
    bar = np.full((1, 8, 32, 3), 100, np.uint8)  # mid grey: no clipping of the moved colour
    bar[:, :, 10:20, 0] = 160
    out = D.chroma_bleed(bar, rng(0), sigma=1.0, shift=2.0)
    y = lambda a: a[..., 0] * 0.299 + a[..., 1] * 0.587 + a[..., 2] * 0.114  # noqa: E731
    assert np.abs(y(out.astype(float)) - y(bar.astype(float))).max() < 1.5
    red = out[0, 4, :, 0].astype(float) - out[0, 4, :, 1]
    assert red[20:23].sum() > red[7:10].sum()  # the colour trails to the right
    # jitter: zero amplitude is the identity; otherwise lines move differently
    assert np.array_equal(D.line_jitter(f, rng(0), amplitude=0.0, smooth=6.0), f)
    j = D.line_jitter(f, rng(0), amplitude=1.0, smooth=6.0)
    assert not np.array_equal(j, f)
    with pytest.raises(ValueError, match="unknown operation 'sharpen'"):
        D.ArrayStep("sharpen")
    with pytest.raises(ValueError, match="T,H,W,3 uint8"):
        D.optical_blur(f[0], rng(0), sigma=1.0)
    assert D.ArrayStep("optical_blur", (("sigma", 1.5),)).describe() == "numpy optical_blur(sigma=1.5) [vsvqdsr.damage]"


def test_clip_sources_exclude_training_material(tmp_path):
    from vsvqdsr.evaluation import sources as S

    assert not S.TRAINING_SIF & set(S.BENCHMARK_SIF) and len(S.BENCHMARK_SIF) == 4
    script = (S.Path(__file__).resolve().parents[1] / "scripts" / "make_degrade_data.sh").read_text()
    loops = [ln.split(" in ", 1)[1].split(";")[0].split() for ln in script.splitlines()
             if ln.strip().startswith(("for s in", "for a in"))]
    used = {w.split(":")[0] + ".sif" for ws in loops for w in ws} | {"prologue_kid.sif"}
    assert used <= S.TRAINING_SIF  # every synfig source the training script renders is listed
    with pytest.raises(S.EvalSetError, match="pirates.sif is training material"):
        S._synfig("pirates.sif", tmp_path / "p.png", 64, 64, 1, [])
    assert not (tmp_path / "p.png").exists()


def test_night_grade_darkens_over_a_gradient_backdrop():
    from vsvqdsr.evaluation import sources as S

    rgba = np.zeros((10, 4, 4), np.uint8)
    rgba[:5] = (255, 255, 255, 255)  # opaque white drawing on top, transparent below
    out = S.night_grade(rgba, 0, 10)
    assert np.allclose(out[0, 0], 255 * S.NIGHT_GAIN)  # white becomes gain x 255
    assert np.allclose(out[9, 0], S.NIGHT_BOTTOM) and out[6, 0, 2] < out[9, 0, 2]  # backdrop gradient



def test_soft_shading_rule(tmp_path):
    from vsvqdsr.evaluation import sources as S

    grad, flat = tmp_path / "g.svg", tmp_path / "f.svg"
    grad.write_text("<svg><linearGradient id='a'/></svg>")
    flat.write_text("<svg><rect fill='red'/></svg>")
    ramp = np.tile(np.linspace(60, 200, 64)[None, :, None], (64, 1, 3)).astype(np.uint8)  # soft shading
    cel = np.full((64, 64, 3), 255, np.uint8)
    cel[:, :40] = (200, 40, 40)  # one flat fill
    assert S.looks_soft(str(grad), ramp)
    assert not S.looks_soft(str(flat), ramp)  # no SVG gradient
    assert not S.looks_soft(str(grad), cel)  # flat fills only
    assert not S.looks_soft(str(tmp_path / "missing.svg"), ramp)
