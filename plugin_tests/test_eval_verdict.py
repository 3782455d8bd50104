"""The benchmark verdict behind the model card and the default-model decision, and its CLI verbs
(``vqdsr eval verdict``, ``vqdsr eval card``); the two-word verbs beside ``vqdsr eval EVAL_SET``."""
from __future__ import annotations

import json
import os
import stat

import pytest

from vsvqdsr.cli.main import build_parser, main
from vsvqdsr.evaluation.verdict import compare, update_card

MET = {"ssimulacra2": True, "cvvdp": True, "flicker": False, "psnr_y": True}
BASE = ("realesr-animevideov3", "animesr-v1", "animesr-v2", "realesrgan-x4plus-anime")


def _small(ours_light: float) -> dict:
    sev = {"a": {"light": {"s2": 10.0, "fl": 2.0}, "heavy": {"s2": 1.0, "fl": 3.0}},
           "ours": {"light": {"s2": ours_light, "fl": 1.0}, "heavy": {"s2": 2.0, "fl": 2.5}}}
    overall = {m: {k: (v["light"][k] + v["heavy"][k]) / 2 for k in ("s2", "fl")} for m, v in sev.items()}
    return {"metrics": {"s2": {"higher_is_better": True}, "fl": {"higher_is_better": False}},
            "benchmark": {"severities": ["light", "heavy"]}, "per_severity": sev, "overall": overall}


def _full(ours_cvvdp_heavy: float) -> dict:
    base = {"light": {"ssimulacra2": 40.0, "cvvdp": 8.5, "flicker": 2.0, "psnr_y": 34.0},
            "heavy": {"ssimulacra2": 1.0, "cvvdp": 7.3, "flicker": 3.0, "psnr_y": 30.0}}
    ours = {"light": {"ssimulacra2": 41.0, "cvvdp": 8.6, "flicker": 1.9, "psnr_y": 34.5},
            "heavy": {"ssimulacra2": 2.0, "cvvdp": ours_cvvdp_heavy, "flicker": 2.9, "psnr_y": 30.5}}
    sev = {"ours": ours, **{b: base for b in BASE}}
    overall = {m: {k: (v["light"][k] + v["heavy"][k]) / 2 for k in MET} for m, v in sev.items()}
    per_clip = {m: {s: {c: dict(vals) for c in ("c0", "c1")} for s, vals in v.items()} for m, v in sev.items()}
    return {"metrics": {k: {"higher_is_better": h} for k, h in MET.items()},
            "benchmark": {"severities": ["light", "heavy"], "manifest_sha256": "ab" * 32},
            "options": {"cvvdp_frames": 8}, "per_clip": per_clip, "per_severity": sev, "overall": overall}


def test_every_cell_must_win():
    rows = compare(_small(11.0), "ours", ["a"], ["s2", "fl"])
    assert len(rows) == 6 and all(r["win"] for r in rows)
    lose = compare(_small(9.5), "ours", ["a"], ["s2", "fl"])
    assert [(r["scope"], r["win"]) for r in lose if r["metric"] == "s2"] == [
        ("overall", True), ("light", False), ("heavy", True)]
    with pytest.raises(KeyError, match="not in the results: nobody"):
        compare(_small(9.5), "nobody", ["a"], ["s2"])
    with pytest.raises(KeyError, match="unknown metric 'psnr'"):
        compare(_small(9.5), "ours", ["a"], ["psnr"])


def test_rank_only_when_every_goal_cell_wins():
    card = {"name": "ours", "benchmark": {"verdict": "kept"}, "benchmark_rank": 1}
    lost = update_card(card, _full(7.25), "ours", "vqdsr eval ...")
    assert "benchmark_rank" not in lost and lost["benchmark"]["verdict"] == "kept"
    assert card["benchmark_rank"] == 1  # the input is not modified
    assert lost["benchmark"]["goal_cells"]["cvvdp/heavy"] == "LOSS"
    assert lost["benchmark"]["goal_cells"]["cvvdp/heavy/clips"] == "LOSS"
    assert lost["benchmark"]["goal_cells_won"] == "13 of 15"  # 3 metrics x (overall, 2 severities, 2 clip cells)
    assert lost["benchmark"]["figures"]["heavy"]["cvvdp"] == 7.25
    assert lost["benchmark"]["baselines"]["animesr-v1"]["light"]["psnr_y"] == 34.0
    won = update_card({"name": "ours"}, _full(7.4), "ours", "vqdsr eval ...")
    assert won["benchmark_rank"] == 1 and won["benchmark"]["goal_cells_won"] == "15 of 15"
    assert won["benchmark"]["manifest_sha256"] == "ab" * 32


def test_verdict_cli(tmp_path, capsys):
    p = tmp_path / "results.json"
    p.write_text(json.dumps(_small(9.0)))
    assert main(["eval", "verdict", str(p), "ours", "--against", "a", "--metrics", "s2", "fl"]) == 1
    out = capsys.readouterr().out
    assert "LOSS" in out and out.splitlines()[-1] == "4 of 6 cells won"  # a tie overall is no win
    p.write_text(json.dumps(_small(11.0)))
    rows = tmp_path / "rows.json"
    assert main(["eval", "verdict", str(p), "ours", "--against", "a", "--metrics", "s2", "fl",
                 "--json", str(rows)]) == 0
    assert capsys.readouterr().out.splitlines()[-1] == "6 of 6 cells won"
    assert [r["win"] for r in json.loads(rows.read_text())] == [True] * 6
    rows.write_text("keep")
    assert main(["eval", "verdict", str(p), "ours", "--against", "a", "--metrics", "s2", "--json", str(rows)]) == 2
    cap = capsys.readouterr()
    assert cap.out == "" and cap.err == f"vqdsr eval verdict: rows file (--json) {rows} exists; pass --force to overwrite it\n"
    assert rows.read_text() == "keep"
    assert main(["eval", "verdict", str(p), "ours", "--against", "a", "--metrics", "s2", "--json", str(rows),
                 "--force"]) == 0
    assert len(json.loads(rows.read_text())) == 3


@pytest.mark.parametrize("argv, says", [
    (["RES", "nobody", "--against", "a"], "vqdsr eval verdict: not in the results: nobody; have: a, ours"),
    (["RES", "ours", "--against", "a", "--metrics", "psnr"], "vqdsr eval verdict: unknown metric 'psnr'; have: s2, fl"),
    (["MISSING", "ours"], "vqdsr eval verdict: cannot read results"),
    (["BAD", "ours"], "vqdsr eval verdict: cannot read results"),
])
def test_verdict_cli_bad_input(tmp_path, capsys, argv, says):
    (tmp_path / "r.json").write_text(json.dumps(_small(9.0)))
    (tmp_path / "bad.json").write_text("{not json")
    paths = {"RES": tmp_path / "r.json", "MISSING": tmp_path / "none.json", "BAD": tmp_path / "bad.json"}
    assert main(["eval", "verdict", *[str(paths.get(a, a)) for a in argv]]) == 2
    cap = capsys.readouterr()
    assert cap.out == "" and len(cap.err.splitlines()) == 1 and cap.err.startswith(says)


def test_card_cli_rewrites_the_card_and_names_bad_input(tmp_path, capsys):
    res, card = tmp_path / "results.json", tmp_path / "m.json"
    res.write_text(json.dumps(_full(7.4)))
    card.write_text(json.dumps({"name": "ours"}))
    assert main(["eval", "card", str(res), "ours", str(card), "--command", "vqdsr eval x"]) == 0
    out = json.loads(card.read_text())
    assert out["benchmark_rank"] == 1 and out["benchmark"]["command"] == "vqdsr eval x"
    umask = os.umask(0)
    os.umask(umask)
    assert card.read_text().endswith("}\n") and stat.S_IMODE(os.stat(card).st_mode) == 0o666 & ~umask
    cap = capsys.readouterr()
    assert cap.out == "" and "benchmark_rank 1 (default model)" in cap.err
    before = card.read_bytes()
    assert main(["eval", "card", str(res), "nobody", str(card), "--command", "c"]) == 2
    err = capsys.readouterr().err
    assert len(err.splitlines()) == 1 and err.startswith("vqdsr eval card: not in the results: nobody")
    (tmp_path / "list.json").write_text("[]")
    assert main(["eval", "card", str(res), "ours", str(tmp_path / "list.json"), "--command", "c"]) == 2
    assert "is not a JSON object" in capsys.readouterr().err
    assert card.read_bytes() == before  # untouched on error
    assert [p.name for p in tmp_path.iterdir() if p.name.endswith(".tmp")] == []
    res.write_text(json.dumps(_full(7.25)))  # a lost cell takes the default-model rank away
    assert main(["eval", "card", str(res), "ours", str(card), "--command", "c"]) == 0
    assert "benchmark_rank" not in json.loads(card.read_text())


def test_two_word_verbs_keep_the_old_eval_form():
    parser = build_parser()
    from vsvqdsr.cli import eval as cli_eval
    from vsvqdsr.cli.main import _verbs, join_verb

    verbs = _verbs(parser)
    assert {"eval", "eval build", "eval verdict", "eval card", "export degrader"} <= verbs
    old = parser.parse_args(join_verb(["eval", "my_set", "--out", "o"], verbs))
    assert old.func is cli_eval._run and old.eval_set == "my_set" and old.out == "o"
    dotted = parser.parse_args(join_verb(["eval", "./build", "--out", "o"], verbs))
    assert dotted.func is cli_eval._run and dotted.eval_set == "./build"
    new = parser.parse_args(join_verb(["eval", "build", "--out", "s"], verbs))
    assert new.func is cli_eval._build and new.out == "s" and new.threads == 2
    assert join_verb(["eval"], verbs) == ["eval"]


def test_eval_build_bad_input(tmp_path, capsys, monkeypatch):
    assert main(["eval", "build", "--out", str(tmp_path / "s"), "--threads", "0"]) == 2
    assert capsys.readouterr().err == "vqdsr eval build: threads must be >= 1, got 0\n"
    monkeypatch.setenv("PATH", str(tmp_path))  # none of synfig, rsvg-convert, ffmpeg
    assert main(["eval", "build", "--out", str(tmp_path / "s")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("vqdsr eval build: synfig, rsvg-convert, ffmpeg missing (apt-get install")
    assert len(err.splitlines()) == 1 and not (tmp_path / "s").exists()
    (tmp_path / "old").mkdir()
    (tmp_path / "old" / "keep.png").write_bytes(b"x")
    assert main(["eval", "build", "--out", str(tmp_path / "old")]) == 2
    assert capsys.readouterr().err == (f"vqdsr eval build: benchmark set folder {tmp_path / 'old'} exists and is "
                                       "not empty; pass --force to replace it\n")
    assert (tmp_path / "old" / "keep.png").exists()
    with pytest.raises(SystemExit) as e:  # argparse: --out is required
        main(["eval", "build"])
    assert e.value.code == 2 and "--out" in capsys.readouterr().err


SEVS = ("light", "medium", "heavy", "old-film", "old-analogue")
CLIPS = ("eye", "headmo", "eyes", "clipart", "texture", "night")


def _wide(edit=None) -> dict:
    """Recorded results of the widened set (6 clips x 5 severities, 4 anchors): "ours" beats the best
    anchor on every clip by 1 SSIMULACRA2 point, 0.02 JOD and 0.1 flicker; ``edit(per_clip)`` changes it."""
    rng = __import__("numpy").random.default_rng(0)
    per_clip: dict = {}
    for b in BASE:
        per_clip[b] = {s: {c: {"ssimulacra2": float(rng.uniform(0, 40)), "cvvdp": float(rng.uniform(7, 9)),
                               "flicker": float(rng.uniform(1.5, 3.5)), "psnr_y": 30.0} for c in CLIPS} for s in SEVS}
    per_clip["ours"] = {s: {c: {"ssimulacra2": max(per_clip[b][s][c]["ssimulacra2"] for b in BASE) + 1.0,
                                "cvvdp": max(per_clip[b][s][c]["cvvdp"] for b in BASE) + 0.02,
                                "flicker": min(per_clip[b][s][c]["flicker"] for b in BASE) - 0.1,
                                "psnr_y": 31.0} for c in CLIPS} for s in SEVS}
    if edit:
        edit(per_clip["ours"])
    mean = lambda xs: sum(xs) / len(xs)  # noqa: E731
    per_sev = {m: {s: {k: mean([per_clip[m][s][c][k] for c in CLIPS]) for k in MET} for s in SEVS} for m in per_clip}
    overall = {m: {k: mean([per_clip[m][s][c][k] for s in SEVS for c in CLIPS]) for k in MET} for m in per_clip}
    return {"metrics": {k: {"higher_is_better": h} for k, h in MET.items()},
            "benchmark": {"severities": list(SEVS), "clips": list(CLIPS), "manifest_sha256": "cd" * 32},
            "options": {}, "per_clip": per_clip, "per_severity": per_sev, "overall": overall}


def test_widened_rule_every_severity_and_five_of_six_clips():
    from vsvqdsr.evaluation.verdict import clips_needed

    assert [clips_needed(n) for n in (1, 2, 4, 6, 12)] == [1, 2, 4, 5, 10]
    cells = 3 * (1 + 2 * len(SEVS))  # overall + severity means + clip cells, per goal metric
    won = update_card({"name": "ours"}, _wide(), "ours", "vqdsr eval ...")
    assert won["benchmark_rank"] == 1 and won["benchmark"]["goal_cells_won"] == f"{cells} of {cells}"
    assert "5 of 6 clips" in won["benchmark"]["rule"] and "realesrgan-x4plus-anime" in won["benchmark"]["rule"]

    def lose_old_film(oc):  # far behind on the old-film chain, ahead everywhere else
        for c in CLIPS:
            oc["old-film"][c]["ssimulacra2"] -= 30.0
    lost = update_card({"name": "ours", "benchmark_rank": 1}, _wide(lose_old_film), "ours", "vqdsr eval ...")
    g = lost["benchmark"]["goal_cells"]
    assert "benchmark_rank" not in lost
    assert g["ssimulacra2/old-film"] == "LOSS" and g["ssimulacra2/old-film/clips"] == "LOSS"
    assert g["ssimulacra2/old-analogue"] == "WIN" and g["cvvdp/old-film"] == "WIN"
    # the overall mean survives (ours leads each clip's best anchor, so the best anchor's mean by far
    # more than 1 point): a win overall does not make up for a lost severity
    assert g["ssimulacra2/overall"] == "WIN" and sum(v == "LOSS" for v in g.values()) == 2

    def lose_one_clip(oc):  # one clip of six lost: still 5 of 6
        oc["heavy"]["night"]["cvvdp"] -= 1.0
    one = update_card({"name": "ours"}, _wide(lose_one_clip), "ours", "c")
    row = next(r for r in one["benchmark"]["goal_table"] if r["cell"] == "cvvdp/heavy/clips")
    assert row["value"] == 5 and row["baseline_value"] == 5 and row["result"] == "WIN"
    assert row["clips"]["night"]["result"] == "LOSS" and row["clips"]["eye"]["result"] == "WIN"

    def lose_two_clips_win_mean(oc):  # the mean still wins (a big lead elsewhere), two clips lost
        oc["medium"]["eye"]["flicker"] += 0.15
        oc["medium"]["eyes"]["flicker"] += 0.15
        oc["medium"]["night"]["flicker"] -= 1.0
    two = update_card({"name": "ours", "benchmark_rank": 1}, _wide(lose_two_clips_win_mean), "ours", "c")
    g = two["benchmark"]["goal_cells"]
    assert g["flicker/medium"] == "WIN" and g["flicker/medium/clips"] == "LOSS" and "benchmark_rank" not in two


def test_card_table_comes_from_the_results_file(tmp_path, capsys):
    res = _wide()
    p, card = tmp_path / "results.json", tmp_path / "m.json"
    p.write_text(json.dumps(res))
    card.write_text(json.dumps({"name": "ours"}))
    assert main(["eval", "card", str(p), "ours", str(card), "--command", "vqdsr eval wide"]) == 0
    table = {r["cell"]: r for r in json.loads(card.read_text())["benchmark"]["goal_table"]}
    for sev in SEVS:
        r = table[f"ssimulacra2/{sev}"]
        best = max(BASE, key=lambda b: res["per_severity"][b][sev]["ssimulacra2"])
        assert r["best_baseline"] == best and r["value"] == round(res["per_severity"]["ours"][sev]["ssimulacra2"], 4)
        assert r["baseline_value"] == round(res["per_severity"][best][sev]["ssimulacra2"], 4)
        for c in CLIPS:
            assert table[f"flicker/{sev}/clips"]["clips"][c]["value"] == round(res["per_clip"]["ours"][sev][c]["flicker"], 4)
    capsys.readouterr()
    assert main(["eval", "verdict", str(p), "ours"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert any(ln.startswith("cvvdp        old-film/clips ours won 6 of 6 clips, needs 5 (lost: none)  WIN") for ln in out)
    assert out[-1] == "33 of 33 cells won"
    del res["per_clip"]
    p.write_text(json.dumps(res))
    assert main(["eval", "card", str(p), "ours", str(card), "--command", "c"]) == 2
    assert "no per-clip figures" in capsys.readouterr().err
