"""Chunk planning for vqdsr render (pure): scene starts, minimum length, max_chain warm-up splits."""
from __future__ import annotations

import pytest

from vsvqdsr.farm.cuts import format_cuts, parse_cuts
from vsvqdsr.farm.planning import Chunk, default_warmup, plan_chunks, split_points


def covers(chunks: list[Chunk], n: int) -> bool:
    return chunks[0].start == 0 and chunks[-1].end == n and all(
        a.end == b.start for a, b in zip(chunks, chunks[1:]))


def test_one_chunk_per_scene_when_scenes_are_long_enough():
    chunks = plan_chunks(126, [0, 84], min_chunk=10)
    assert chunks == [Chunk(0, 84, 0), Chunk(84, 126, 84)]
    assert all(c.warmup == 0 for c in chunks)


def test_short_scenes_merge_up_to_min_chunk():
    cuts = [0, 3, 5, 9, 30, 31, 60]
    chunks = plan_chunks(64, cuts, min_chunk=10)
    assert covers(chunks, 64)
    assert [c.start for c in chunks] == [0, 30]  # 60 would leave a 4-frame tail: merged
    assert all(c.start in cuts for c in chunks)
    assert all(c.frames >= 10 for c in chunks)


def test_timeline_shorter_than_min_chunk_is_one_chunk():
    assert plan_chunks(5, [0, 2], min_chunk=240) == [Chunk(0, 5, 0)]
    assert plan_chunks(1, [], min_chunk=1) == [Chunk(0, 1, 0)]


def test_long_scene_without_max_chain_is_never_split():
    chunks = plan_chunks(1000, [0, 900], min_chunk=100)
    assert chunks == [Chunk(0, 900, 0), Chunk(900, 1000, 900)]


def test_long_scene_split_at_segment_starts_with_warmup():
    # scene 0..99 then 100..119; max_chain 20 (warm-up 10): segment starts 20, 40, 60, 80 inside scene 1
    points = split_points([0, 100], 120, max_chain=20)
    assert points == {0: 0, 20: 10, 40: 30, 60: 50, 80: 70, 100: 100}
    chunks = plan_chunks(120, [0, 100], min_chunk=30, max_chain=20)
    assert chunks == [Chunk(0, 40, 0), Chunk(40, 80, 30), Chunk(80, 120, 70)]
    assert [c.warmup for c in chunks] == [0, 10, 10]


def test_segment_starts_restart_in_every_scene_and_explicit_warmup():
    chunks = plan_chunks(50, [0, 25], min_chunk=1, max_chain=10, warmup=3)
    assert [(c.start, c.src_start) for c in chunks] == [(0, 0), (10, 7), (20, 17), (25, 25), (35, 32), (45, 42)]
    assert covers(chunks, 50)
    # a segment start never falls on or past the next scene start
    assert all(c.src_start >= 0 for c in chunks)


def test_default_warmup_matches_upscale():
    from vsvqdsr.filters import scenes

    assert default_warmup is scenes.default_warmup  # one definition, shared with Upscale
    assert [default_warmup(n) for n in (2, 6, 32, 100)] == [1, 3, 16, 16]


@pytest.mark.parametrize("n,cuts,m,mc", [(200, [0, 7, 50, 51, 120], 13, None), (200, [0, 90], 17, 8),
                                         (33, [0, 32], 1, 2), (500, list(range(0, 500, 3)), 40, 5)])
def test_plan_invariants(n, cuts, m, mc):
    chunks = plan_chunks(n, cuts, min_chunk=m, max_chain=mc)
    assert covers(chunks, n)
    points = split_points(cuts, n, max_chain=mc)
    for c in chunks:
        assert points[c.start] == c.src_start
        assert c.frames >= min(m, n)


@pytest.mark.parametrize("kw,msg", [({"min_chunk": 0}, "min_chunk"), ({"max_chain": 1}, "max_chain"),
                                    ({"max_chain": 4, "warmup": 4}, "warmup")])
def test_bad_arguments(kw, msg):
    with pytest.raises(ValueError, match=msg):
        plan_chunks(10, [0], **kw)
    with pytest.raises(ValueError, match="outside"):
        plan_chunks(10, [0, 10])


def test_cut_strings_round_trip():
    assert parse_cuts("84, 0,12") == [0, 12, 84]
    assert parse_cuts(b"") == [0]
    assert format_cuts([0, 12, 84]) == "0,12,84"
    with pytest.raises(ValueError, match="comma-separated"):
        parse_cuts("0,x")


def test_farm_cuts_are_upscales_cuts():
    """The farm's detect_cuts and Upscale's SceneIndex run one rule: own props win over scd.Detect."""
    import vapoursynth as vs
    from conftest import clip_from_array, textured_frames

    from vsvqdsr.farm import cuts as farm_cuts
    from vsvqdsr.filters import scenes
    from vsvqdsr.filters.formats import to_float_rgb

    assert farm_cuts.cut_flags is scenes.cut_flags
    clip = clip_from_array(textured_frames(12, 48, 64, seed=3, cut=6))
    own = {3: 1, 6: 0}  # frame 3 claims a cut, frame 6 (a real cut) denies one; the rest carry no prop

    def mark(n, f):
        out = f.copy()
        if n in own:
            out.props["_SceneChangePrev"] = own[n]
        return out

    marked = vs.core.std.ModifyFrame(clip, clip, mark)
    for c, expected in ((clip, [0, 6]), (marked, [0, 3])):
        index = scenes.SceneIndex(to_float_rgb(c), scene_detect=True)
        upscale_cuts = [n for n, f in enumerate(index.cuts.frames()) if f.props["C"]]
        assert farm_cuts.detect_cuts(c) == upscale_cuts == expected
    assert farm_cuts.detect_cuts(clip, scene_detect=False) == [0]
