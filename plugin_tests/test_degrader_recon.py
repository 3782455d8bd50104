"""scripts/degrader_recon.py: the clean-frame reconstruction check quoted for every degrader."""
from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from conftest import load_script

pytestmark = pytest.mark.skipif(shutil.which("ffmpeg") is None, reason="needs ffmpeg")


def _load():
    return load_script("degrader_recon")


def _clip(path: Path, colour: tuple[int, int, int]) -> None:
    """A 960x540 FFV1 clip of 8 frames: a flat colour with a moving dark bar."""
    frames = np.empty((8, 540, 960, 3), np.uint8)
    frames[:] = colour
    for i in range(8):
        frames[i, 200:260, 100 + 40 * i:400 + 40 * i] = (20, 20, 30)
    subprocess.run(["ffmpeg", "-loglevel", "error", "-y", "-f", "rawvideo", "-pix_fmt", "rgb24", "-s", "960x540",
                    "-r", "24", "-i", "-", "-c:v", "ffv1", str(path)], input=frames.tobytes(), check=True)


def test_reports_psnr_and_writes_sheet(tmp_path, capsys):
    rec = _load()
    for i, c in enumerate([(230, 200, 150), (90, 160, 220), (240, 240, 240)]):
        _clip(tmp_path / f"c{i}.mkv", c)
    x = rec.clean_lr_frames(tmp_path, 8)
    assert x.shape == (3, 3, 136, 240) and 0 <= float(x.min()) and float(x.max()) <= 1
    assert rec.psnr(x, x) == pytest.approx(100.0)  # identical frames hit the 1e-10 MSE floor
    sheet = tmp_path / "sheet.png"
    assert rec.main(["degrade-lite", "--clips", str(tmp_path), "--sheet", str(sheet)]) == 0
    line = capsys.readouterr().out.strip()
    nums = [float(v) for v in re.findall(r"(-?\d+\.\d+) dB", line)]
    assert line.startswith("degrade-lite:") and len(nums) == 3 and all(0 < v < 100 for v in nums)
    from PIL import Image

    w, h = Image.open(sheet).size
    assert (w, h) == (2 * 120 * 3, 2 * 80 * 3)  # clean + 2 columns for one model, 3 rows, at 2x


def test_bad_inputs_are_named(tmp_path, capsys):
    rec = _load()
    with pytest.raises(SystemExit, match="no .mkv clips"):
        rec.main(["degrade-lite", "--clips", str(tmp_path)])
    _clip(tmp_path / "c.mkv", (200, 200, 200))
    assert rec.main(["no-such-degrader", "--clips", str(tmp_path)]) == 2
    assert "no-such-degrader" in capsys.readouterr().err


def test_damage_of_a_benchmark_set(tmp_path, capsys):
    """--damage: per-severity PSNR of a real-chain benchmark set's LR against its clean LR."""
    from vsvqdsr.training.synthetic import make_clip_frames

    from vsvqdsr.evaluation.build import build_set

    rec = _load()
    root = tmp_path / "set"
    build_set(root, {"c0": make_clip_frames(4, 200, seed=0)}, {"c0": {"package": "synthetic"}},
              severities=("light", "heavy"))
    dmg = rec.benchmark_damage(root)
    assert list(dmg) == ["light", "heavy"]
    assert 15 < dmg["heavy"] < dmg["light"] < 60, dmg  # heavier chains lose more
    assert rec.main(["--damage", str(root)]) == 0
    line = capsys.readouterr().out.strip()
    assert line == f"benchmark LR damage (PSNR of LR vs clean LR): light {dmg['light']:.2f} dB, heavy {dmg['heavy']:.2f} dB"
    assert rec.main(["--damage", str(tmp_path / "nothing")]) == 2
    assert "not a benchmark set" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        rec.main([])


def test_real_chain_frames_are_compared_and_shown(tmp_path, capsys):
    """--real: the LR-size real-chain frames of the same clips, their PSNR and one sheet column each."""
    from PIL import Image

    rec = _load()
    clips, lq = tmp_path / "clips", tmp_path / "lq_lr"
    clips.mkdir()
    for i, c in enumerate([(230, 200, 150), (90, 160, 220)]):
        _clip(clips / f"c{i}.mkv", c)
    x = rec.clean_lr_frames(clips, 8)
    rng = np.random.default_rng(0)
    for chain in rec.CHAINS:
        for i in range(2):
            d = lq / f"{chain}_c{i}"
            d.mkdir(parents=True)
            noisy = (x[i].permute(1, 2, 0).numpy() * 255 + rng.normal(0, 4, (136, 240, 3))).clip(0, 255)
            Image.fromarray(noisy.round().astype(np.uint8)).save(d / "00006.png")
    sheet = tmp_path / "sheet.png"
    assert rec.main(["--clips", str(clips), "--real", str(lq), "--sheet", str(sheet)]) == 0
    line = capsys.readouterr().out.strip()
    nums = [float(v) for v in re.findall(r"(-?\d+\.\d+) dB", line)]
    assert line.startswith("real chains at LR size") and len(nums) == 4
    assert all(33 < v < 40 for v in nums), nums  # sigma-4 noise on 0-255 is about 36 dB
    assert Image.open(sheet).size == (2 * 120 * 5, 2 * 80 * 2)  # clean + 4 chains, 2 rows
    (lq / "analog_c1" / "00006.png").unlink()
    assert rec.main(["--clips", str(clips), "--real", str(lq)]) == 2
    assert "analog_c1" in capsys.readouterr().err
