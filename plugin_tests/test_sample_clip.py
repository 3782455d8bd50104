"""The bundled sample clip (examples/sample/sample.mkv, made by scripts/make_sample.sh) opens in
VapourSynth with the layout documented in examples/sample/README.md, and its hard cut is found by
scd.Detect at the default threshold, so scene-aware filters reset exactly there."""
from __future__ import annotations

from pathlib import Path

import pytest

vs = pytest.importorskip("vapoursynth")

SAMPLE = Path(__file__).resolve().parent.parent / "examples" / "sample" / "sample.mkv"
FRAMES = 126          # 84 frames of prologue_kid + 42 frames of the pirates pan
CUT = 84              # first frame of scene 2
WIDTH, HEIGHT = 320, 180


@pytest.fixture(scope="module")
def clip():
    core = vs.core
    if not hasattr(core, "bs"):
        pytest.fail("bestsource (vs.core.bs) is not loaded: pip install vapoursynth-bestsource")
    assert SAMPLE.is_file(), f"{SAMPLE} is missing: run scripts/make_sample.sh"
    # cachemode=0: index in memory only, so the test writes nothing next to the committed clip.
    return core.bs.VideoSource(str(SAMPLE), cachemode=0)


def test_layout(clip):
    assert clip.num_frames == FRAMES
    assert (clip.width, clip.height) == (WIDTH, HEIGHT)
    assert (clip.fps.numerator, clip.fps.denominator) == (24, 1)
    assert clip.format.id == vs.YUV420P8


def test_colour_tags(clip):
    props = clip.get_frame(0).props
    assert props["_Matrix"] == vs.MATRIX_BT709
    assert props["_Primaries"] == vs.PRIMARIES_BT709
    assert props["_Transfer"] == vs.TRANSFER_BT709
    assert props["_Range"] == vs.RANGE_LIMITED


def test_frames_are_real_pictures(clip):
    """Neither scene is blank: luma spans a wide range and the two scenes differ in brightness."""
    stats = clip.std.PlaneStats()
    props = [stats.get_frame(n).props for n in (0, CUT - 1, CUT, FRAMES - 1)]
    for p in props:
        assert p["PlaneStatsMax"] - p["PlaneStatsMin"] > 150
    assert abs(props[1]["PlaneStatsAverage"] - props[2]["PlaneStatsAverage"]) > 0.1


def test_scene_cut_detected(clip):
    core = vs.core
    if not hasattr(core, "scd"):
        pytest.fail("scd.Detect is not loaded: pip install vapoursynth-scenechange")
    det = core.scd.Detect(clip)  # default threshold (15 for 8-bit luma)
    prev = [n for n in range(1, FRAMES) if det.get_frame(n).props["_SceneChangePrev"] == 1]
    nxt = [n for n in range(FRAMES - 1) if det.get_frame(n).props["_SceneChangeNext"] == 1]
    # Frame 0 always carries _SceneChangePrev=1 (it has no predecessor); inside the clip only the cut.
    assert prev == [CUT]
    assert nxt == [CUT - 1]
