"""scripts/ablation_table.py: the VQ-vs-basic verdict per metric and severity, over seed pairs."""
from __future__ import annotations

import json

import pytest
from conftest import load_script


def _results() -> dict:
    # two seed pairs; "s2" (higher is better): VQ wins pair 1 only at light; "nq" (lower is better): VQ wins both
    sev = {"b7": {"light": {"s2": 10.0, "nq": 5.0}, "heavy": {"s2": 2.0, "nq": 6.0}},
           "b8": {"light": {"s2": 11.0, "nq": 5.2}, "heavy": {"s2": 2.5, "nq": 6.1}},
           "v7": {"light": {"s2": 10.5, "nq": 4.0}, "heavy": {"s2": 1.0, "nq": 5.0}},
           "v8": {"light": {"s2": 9.0, "nq": 4.9}, "heavy": {"s2": 1.5, "nq": 5.9}}}
    overall = {m: {k: (v["light"][k] + v["heavy"][k]) / 2 for k in ("s2", "nq")} for m, v in sev.items()}
    return {"metrics": {"s2": {"label": "S2", "higher_is_better": True}, "nq": {"label": "NQ", "higher_is_better": False}},
            "benchmark": {"severities": ["light", "heavy"]}, "per_severity": sev, "overall": overall}


def test_rows_means_and_pairs(tmp_path, capsys):
    ab = load_script("ablation_table")
    rows = ab.ablation_rows(_results(), ["b7", "b8"], ["v7", "v8"])
    by = {(r["metric"], r["scope"]): r for r in rows}
    assert len(rows) == 6
    assert by[("s2", "light")]["basic"] == pytest.approx(10.5) and by[("s2", "light")]["vq"] == pytest.approx(9.75)
    assert by[("s2", "light")]["vq_wins"] == 1 and not by[("s2", "light")]["holds"]
    assert by[("s2", "heavy")]["vq_wins"] == 0
    assert all(by[("nq", s)]["holds"] for s in ("overall", "light", "heavy"))
    p = tmp_path / "results.json"
    p.write_text(json.dumps(_results()))
    assert ab.main([str(p), "--basic", "b7", "b8", "--vq", "v7", "v8"]) == 0
    out = capsys.readouterr().out
    assert "| NQ ↓ |" in out and "**VQ** (2/2)" in out and "mixed (1/2)" in out
    assert out.strip().endswith("3 of 6 cells: nq overall, nq light, nq heavy")


def test_bad_input_is_named(tmp_path, capsys):
    ab = load_script("ablation_table")
    p = tmp_path / "results.json"
    p.write_text(json.dumps(_results()))
    assert ab.main([str(p), "--basic", "b7", "--vq", "v7", "v8"]) == 2
    assert "same number" in capsys.readouterr().err
    assert ab.main([str(p), "--basic", "b7", "--vq", "nobody"]) == 2
    assert "not in the results: nobody" in capsys.readouterr().err
    assert ab.main([str(p), "--basic", "b7", "--vq", "v7", "--metrics", "psnr"]) == 2
    assert "unknown metric 'psnr'" in capsys.readouterr().err
    assert ab.main([str(tmp_path / "none.json"), "--basic", "b7", "--vq", "v7"]) == 2
