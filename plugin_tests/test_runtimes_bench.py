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


def test_bench_rejects_bad_sizes(capsys):
    assert main(["bench", "--sizes", "180by320", "--model", "random"]) == 2
    assert "HEIGHTxWIDTH" in capsys.readouterr().err


def test_macs_per_pixel_matches_the_spec():
    # spec 1.7: about 1.10 M MACs per LR pixel (VQD-SR), 1.127 M with the SR feedback (AnimeSR)
    assert abs(macs_per_lr_pixel(RecurrentVSR(feedback=False)) / 1e6 - 1.10) < 0.01
    assert abs(macs_per_lr_pixel(RecurrentVSR(feedback=True)) / 1e6 - 1.127) < 0.005
