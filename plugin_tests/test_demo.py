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


@pytest.mark.slow
def test_demo_writes_playable_4x_video_and_comparison(tmp_path):
    assert SAMPLE.is_file(), "the bundled sample clip is missing"
    env = {**os.environ, "VSVQDSR_DEMO_OUT": str(tmp_path)}
    res = subprocess.run([str(ROOT / "scripts" / "demo.sh")], capture_output=True, text=True, env=env, timeout=1800)
    assert res.returncode == 0, res.stderr[-3000:]
    assert res.stdout == "" or "demo:" in res.stdout + res.stderr
    src, out = probe(SAMPLE), probe(tmp_path / "demo_x4.mkv")
    assert out["codec_name"] == "h264"
    assert int(out["nb_read_frames"]) == int(src["nb_read_frames"])
    assert (out["width"], out["height"]) == (4 * src["width"], 4 * src["height"])
    png = tmp_path / "demo_compare.png"
    assert png.is_file() and png.stat().st_size > 10_000
    assert not list(tmp_path.glob(".demo_x4.*"))  # no half-written leftovers
