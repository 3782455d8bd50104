"""The README's first command: ./scripts/demo.sh upscales the bundled sample through vspipe | ffmpeg."""
from __future__ import annotations

import json
import os
import subprocess

import pytest

from conftest import ROOT

SAMPLE = ROOT / "examples" / "sample" / "sample.mkv"


def probe(path) -> dict:
    res = subprocess.run(["ffprobe", "-v", "error", "-count_frames", "-select_streams", "v:0", "-show_entries",
                          "stream=width,height,nb_read_frames,codec_name", "-of", "json", str(path)],
                         capture_output=True, text=True, check=True)
    return json.loads(res.stdout)["streams"][0]


def check_demo_output(out_dir, stdout: str) -> None:
    """What demo.sh must leave in ``out_dir`` (and say on stdout) for the bundled sample."""
    import numpy as np
    from PIL import Image

    src, out = probe(SAMPLE), probe(out_dir / "demo_x4.mkv")
    assert out["codec_name"] == "h264"
    frames, w, h = int(src["nb_read_frames"]), 4 * src["width"], 4 * src["height"]
    assert int(out["nb_read_frames"]) == frames and (out["width"], out["height"]) == (w, h)
    # the demo's closing line reports what was really written
    last = stdout.strip().splitlines()[-1]
    assert last.startswith("demo: wrote ") and f"({frames} frames, {w}x{h})" in last, last
    assert not list(out_dir.glob(".demo_x4.*"))  # no half-written leftovers
    # the comparison: bicubic x4 on the left, Upscale on the right (8 px gap, 28 px caption band);
    # the same frame (measured 2026-12-03: 29.2 dB between the halves; 17.7 dB with one half shifted
    # by 10 px) but not the same pixels (mean absolute difference 3.9)
    img = np.asarray(Image.open(out_dir / "demo_compare.png").convert("RGB")).astype(np.float64)
    assert img.shape == (h + 28, 2 * w + 8, 3)
    left, right = img[28:, :w], img[28:, w + 8:]
    mad = float(np.abs(left - right).mean())
    assert mad > 0.5, f"the halves are (nearly) the same pixels: mean absolute difference {mad:.3f}"
    psnr = 10 * np.log10(255.0 ** 2 / float(((left - right) ** 2).mean()))
    assert psnr > 22, f"the halves show different frames: PSNR {psnr:.2f} dB"


@pytest.mark.slow
def test_demo_writes_playable_4x_video_and_comparison(tmp_path):
    assert SAMPLE.is_file(), "the bundled sample clip is missing"
    env = {**os.environ, "VSVQDSR_DEMO_OUT": str(tmp_path)}
    res = subprocess.run([str(ROOT / "scripts" / "demo.sh")], capture_output=True, text=True, env=env, timeout=1800)
    assert res.returncode == 0, res.stderr[-3000:]
    check_demo_output(tmp_path, res.stdout)
