"""scripts/card_figures.py: a model card's benchmark figures and its default-model rank come from results.json."""
from __future__ import annotations

import json

from conftest import load_script

MET = {"ssimulacra2": True, "cvvdp": True, "flicker": False, "psnr_y": True}


def _load():
    return load_script("card_figures")


def _results(ours_cvvdp_heavy: float) -> dict:
    base = {"light": {"ssimulacra2": 40.0, "cvvdp": 8.5, "flicker": 2.0, "psnr_y": 34.0},
            "heavy": {"ssimulacra2": 1.0, "cvvdp": 7.3, "flicker": 3.0, "psnr_y": 30.0}}
    ours = {"light": {"ssimulacra2": 41.0, "cvvdp": 8.6, "flicker": 1.9, "psnr_y": 34.5},
            "heavy": {"ssimulacra2": 2.0, "cvvdp": ours_cvvdp_heavy, "flicker": 2.9, "psnr_y": 30.5}}
    sev = {"ours": ours, **{b: base for b in ("realesr-animevideov3", "animesr-v1", "animesr-v2")}}
    overall = {m: {k: (v["light"][k] + v["heavy"][k]) / 2 for k in MET} for m, v in sev.items()}
    return {"metrics": {k: {"higher_is_better": h} for k, h in MET.items()},
            "benchmark": {"severities": ["light", "heavy"], "manifest_sha256": "ab" * 32},
            "options": {"cvvdp_frames": 8}, "per_severity": sev, "overall": overall}


def test_rank_only_when_every_goal_cell_wins(tmp_path):
    cf = _load()
    card = {"name": "ours", "benchmark": {"verdict": "kept"}, "benchmark_rank": 1}
    lost = cf.update_card(card, _results(7.25), "ours", "vqdsr eval ...")
    assert "benchmark_rank" not in lost and lost["benchmark"]["verdict"] == "kept"
    assert lost["benchmark"]["goal_cells"]["cvvdp/heavy"] == "LOSS"
    assert lost["benchmark"]["goal_cells_won"] == "8 of 9"
    assert lost["benchmark"]["figures"]["heavy"]["cvvdp"] == 7.25
    assert lost["benchmark"]["baselines"]["animesr-v1"]["light"]["psnr_y"] == 34.0
    won = cf.update_card({"name": "ours"}, _results(7.4), "ours", "vqdsr eval ...")
    assert won["benchmark_rank"] == 1 and won["benchmark"]["goal_cells_won"] == "9 of 9"
    assert won["benchmark"]["manifest_sha256"] == "ab" * 32


def test_main_rewrites_the_card_and_names_bad_input(tmp_path, capsys):
    cf = _load()
    res, card = tmp_path / "results.json", tmp_path / "m.json"
    res.write_text(json.dumps(_results(7.4)))
    card.write_text(json.dumps({"name": "ours"}))
    assert cf.main([str(res), "ours", str(card), "--command", "vqdsr eval x"]) == 0
    out = json.loads(card.read_text())
    assert out["benchmark_rank"] == 1 and out["benchmark"]["command"] == "vqdsr eval x"
    assert "benchmark_rank 1" in capsys.readouterr().err
    assert cf.main([str(res), "nobody", str(card), "--command", "c"]) == 2
    assert "nobody" in capsys.readouterr().err
    assert json.loads(card.read_text()) == out  # untouched on error
    assert [p.name for p in tmp_path.iterdir() if p.suffix == ".tmp"] == []
