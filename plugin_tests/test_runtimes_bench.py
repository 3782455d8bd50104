"""`vqdsr bench` runs end to end at a tiny size (a smoke test of the command, not a timing test)."""
from __future__ import annotations

import json

from vsvqdsr.cli.bench import macs_per_lr_pixel
from vsvqdsr.cli.main import main
from vsvqdsr.nets.vsr import RecurrentVSR


def test_bench_tiny_json(tmp_path, capsys):
    out = tmp_path / "b.json"
    rc = main(["bench", "--sizes", "8x12", "--frames", "2", "--model", "random", "--only", "onnxruntime",
               "--json", str(out)])
    assert rc == 0
    captured = capsys.readouterr()
    assert "torch eager NCHW fp32" in captured.out and "onnxruntime fp32" in captured.out
    data = json.loads(out.read_text())
    rows = {r["label"]: r for r in data["rows"]}
    base = rows["torch eager NCHW fp32 (cpu)"]
    assert base["speedup"] == 1.0 and len(base["samples_ms"]) == 2 and base["ms"] > 0
    assert rows["onnxruntime fp32 (cpu)"]["fps"] > 0
    assert data["info"]["peak_gflops"]["cpu-fp32"] > 0
    assert "cpu fp32 target 8x12" in captured.out
    (verdict,) = data["cpu_targets"]
    assert verdict["size"] == "8x12" and verdict["limit_ms"] > 0 and verdict["best_ms"] > 0


def test_bench_rejects_bad_sizes(capsys):
    assert main(["bench", "--sizes", "180by320", "--model", "random"]) == 2
    assert "HEIGHTxWIDTH" in capsys.readouterr().err


def test_macs_per_pixel_matches_the_spec():
    # spec 1.7: about 1.10 M MACs per LR pixel (VQD-SR), 1.127 M with the SR feedback (AnimeSR)
    assert abs(macs_per_lr_pixel(RecurrentVSR(feedback=False)) / 1e6 - 1.10) < 0.01
    assert abs(macs_per_lr_pixel(RecurrentVSR(feedback=True)) / 1e6 - 1.127) < 0.005


def test_cpu_verdict_met_and_missed():
    from vsvqdsr.cli.bench import Row, cpu_verdicts

    macs = 1.1e6
    limit_ms = 2 * macs * 10 * 10 / 100e9 * 1000  # 10x10 LR at a 100 GFLOP/s GEMM peak
    rows = [Row("step", "torch eager NCHW fp32 (cpu)", "10x10", ms=3 * limit_ms),
            Row("step", "openvino fp32 (cpu)", "10x10", ms=1.05 * limit_ms),
            Row("step", "torch cuda fp16", "10x10", ms=0.01 * limit_ms),  # GPU rows never count
            Row("step", "openvino fp32 (cpu)", "20x20", ms=2 * 4 * limit_ms)]
    by_size = {v["size"]: v for v in cpu_verdicts(rows, macs, {"10x10": 100.0, "20x20": 100.0})}
    a, b = by_size["10x10"], by_size["20x20"]
    assert a["best_label"] == "openvino fp32 (cpu)" and a["met"] and a["missed_by"] == 0
    assert abs(a["ratio"] - 1.05) < 1e-9
    assert not b["met"] and abs(b["ratio"] - 2.0) < 1e-9 and abs(b["missed_by"] - (2.0 / 1.1 - 1)) < 1e-9


def test_bench_degrade_and_sisr_tiny(tmp_path, capsys):
    """`--what degrade,sisr` times the torch eager baseline and the runners in one run."""
    out = tmp_path / "d.json"
    rc = main(["bench", "--what", "degrade,sisr", "--sizes", "16x24", "--frames", "1", "--warmup", "0",
               "--only", "onnxruntime", "--threads", "1", "--json", str(out)])
    assert rc == 0
    captured = capsys.readouterr()
    assert "degrade cpu target 16x24" in captured.out
    data = json.loads(out.read_text())
    rows = {(r["kind"], r["label"]): r for r in data["rows"]}
    base = rows[("degrade", "torch eager degrade() NCHW fp32 (cpu)")]
    assert base["speedup"] == 1.0 and base["ms"] > 0
    assert rows[("degrade", "onnxruntime fp32 (cpu)")]["ms"] > 0
    assert rows[("sisr", "onnxruntime fp32 (cpu)")]["ms"] > 0
    (v,) = data["speed_targets"]
    assert v["kind"] == "degrade" and v["target"] == 3.0 and v["met"] == (v["speedup"] >= 3.0)
    assert "avx2" in data["info"]["cpu"] or "AVX2" in data["info"]["cpu"]
    assert main(["bench", "--what", "degrade,teleport", "--sizes", "16x24"]) == 2
    assert "--what: teleport not known" in capsys.readouterr().err
