"""scripts/check_wins.py: the win/loss verdict behind the model card and the default-model decision."""
from __future__ import annotations

import json

from conftest import load_script



def _load():
    return load_script("check_wins")


def _results(ours_light: float) -> dict:
    sev = {"a": {"light": {"s2": 10.0, "fl": 2.0}, "heavy": {"s2": 1.0, "fl": 3.0}},
           "ours": {"light": {"s2": ours_light, "fl": 1.0}, "heavy": {"s2": 2.0, "fl": 2.5}}}
    overall = {m: {k: (v["light"][k] + v["heavy"][k]) / 2 for k in ("s2", "fl")} for m, v in sev.items()}
    return {"metrics": {"s2": {"higher_is_better": True}, "fl": {"higher_is_better": False}},
            "benchmark": {"severities": ["light", "heavy"]}, "per_severity": sev, "overall": overall}


def test_every_cell_must_win(tmp_path, capsys):
    cw = _load()
    rows = cw.compare(_results(11.0), "ours", ["a"], ["s2", "fl"])
    assert len(rows) == 6 and all(r["win"] for r in rows)
    lose = cw.compare(_results(9.5), "ours", ["a"], ["s2", "fl"])
    assert [(r["scope"], r["win"]) for r in lose if r["metric"] == "s2"] == [
        ("overall", True), ("light", False), ("heavy", True)]
    p = tmp_path / "results.json"
    p.write_text(json.dumps(_results(9.0)))
    assert cw.main([str(p), "ours", "--against", "a", "--metrics", "s2", "fl"]) == 1
    assert "LOSS" in capsys.readouterr().out
    assert cw.main([str(p), "nobody", "--against", "a"]) == 2
    assert "not in the results: nobody" in capsys.readouterr().err
