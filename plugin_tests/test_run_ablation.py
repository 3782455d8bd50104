"""scripts/run_ablation.sh: the commands it runs per seed, its naming, skipping and the final table.

The `vqdsr` it calls is replaced (VQDSR=...) by a recorder that writes what each command would
leave behind, so the script's own logic is tested without training anything.
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.skipif(shutil.which("bash") is None, reason="needs bash")

FAKE = r'''
import json, sys
from pathlib import Path
args = sys.argv[1:]
with open(LOG, "a") as f:
    f.write(json.dumps(args) + "\n")
if args[0] == "export":
    Path(args[args.index("-o") + 1]).write_bytes(b"weights")
elif args[0] == "eval":
    out = Path(args[args.index("--out") + 1]); out.mkdir(parents=True, exist_ok=True)
    names = [Path(p).stem for p in args[args.index("--checkpoint") + 1:args.index("--threads")]]
    val = lambda n: {"s2": 1.0 if "vq" in n else 2.0, "nq": 1.0 if "vq" in n else 2.0}
    res = {"metrics": {"s2": {"label": "S2", "higher_is_better": True}, "nq": {"label": "NQ", "higher_is_better": False}},
           "benchmark": {"severities": ["light"]}, "overall": {n: val(n) for n in names},
           "per_severity": {n: {"light": val(n)} for n in names}}
    (out / "results.json").write_text(json.dumps(res))
'''


def _run(tmp_path: Path, **env) -> tuple[subprocess.CompletedProcess, list[list[str]]]:
    log = tmp_path / "calls.jsonl"
    fake = tmp_path / "fake_vqdsr"
    fake.write_text(f"#!{sys.executable}\nLOG = {str(log)!r}\n" + FAKE)
    fake.chmod(0o755)
    e = {**os.environ, "VQDSR": str(fake), "RUNS": str(tmp_path / "runs"), "EVAL_OUT": str(tmp_path / "eval"),
         "LOGS": str(tmp_path / "logs"),
         "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}", **env}
    p = subprocess.run(["bash", str(ROOT / "scripts" / "run_ablation.sh")], env=e, capture_output=True, text=True,
                       cwd=ROOT, timeout=120)
    calls = [json.loads(line) for line in log.read_text().splitlines()] if log.exists() else []
    return p, calls


def test_pairs_per_seed_then_one_eval_and_the_table(tmp_path):
    p, calls = _run(tmp_path, SEEDS="7 8", ITERS="20", DEGRADER="my-deg", TOPK="nearest")
    assert p.returncode == 0, p.stderr
    train = [c for c in calls if c[0] == "train-vsr"]
    assert len(train) == 4
    opt = lambda c, k: c[c.index(k) + 1]
    got = sorted((Path(opt(c, "--out")).name, opt(c, "--degrader"), opt(c, "--seed")) for c in train)
    assert got == [("abl-basic", "none", "7"), ("abl-basic-s8", "none", "8"),
                   ("abl-vq", "my-deg", "7"), ("abl-vq-s8", "my-deg", "8")]
    for c in train:  # same recipe on both sides; only the degrader differs
        assert opt(c, "--iters") == "20" and opt(c, "--topk") == "nearest" and opt(c, "--init") == "animesr-v1"
    ev = [c for c in calls if c[0] == "eval"]
    assert len(ev) == 1 and [Path(x).name for x in ev[0][ev[0].index("--checkpoint") + 1:ev[0].index("--threads")]] == [
        "abl-basic-20.safetensors", "abl-basic-s8-20.safetensors", "abl-vq-20.safetensors", "abl-vq-s8-20.safetensors"]
    assert "| NQ ↓ |" in p.stdout and "VQ beats basic in every pair in 2 of 4 cells: nq overall, nq light" in p.stdout

    # a second run trains nothing again; EVAL=0 stops before scoring
    p2, calls2 = _run(tmp_path, SEEDS="7 8", ITERS="20", EVAL="0")
    assert p2.returncode == 0 and len(calls2) == len(calls)
    # another VQ variant beside the first: only its own runs are trained
    p3, calls3 = _run(tmp_path, SEEDS="7", ITERS="20", VQ_NAME="abl-vqn", EVAL="0")
    new = [c for c in calls3[len(calls):] if c[0] == "train-vsr"]
    assert p3.returncode == 0 and [Path(c[c.index("--out") + 1]).name for c in new] == ["abl-vqn"]
