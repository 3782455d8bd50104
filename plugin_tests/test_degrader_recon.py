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
