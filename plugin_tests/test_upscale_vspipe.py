"""vqdsr.Upscale through the real vspipe: every access pattern gives the same bytes, each step once."""
from __future__ import annotations

import json
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from conftest import VENV_BIN, clip_from_array, clip_to_array, textured_frames

VSPIPE = str(VENV_BIN / "vspipe") if (VENV_BIN / "vspipe").exists() else shutil.which("vspipe")
T, H, W, CUT = 14, 12, 16, 8

SCRIPT = textwrap.dedent("""
    import json, sys, threading
    sys.path.insert(0, {tests!r})
    import vapoursynth as vs
    import vsvqdsr as vqdsr
    from conftest import clip_from_array, textured_frames
    core = vs.core
    if "threads" in globals():
        core.num_threads = int(threads)
    if "cache" in globals():
        core.max_cache_size = int(cache)
    stats = {{}}
    clip = vqdsr.Upscale(clip_from_array(textured_frames({t}, {h}, {w}, seed=3, cut={cut})),
                         model={model!r}, stats=stats)
    lock = threading.Lock()
    def dump(n, f):
        with lock:
            with open({stats_path!r}, "w") as fh:
                json.dump(stats, fh)
        return f
    core.std.ModifyFrame(clip, clip, dump).set_output()
""")


@pytest.fixture(scope="module")
def script(tmp_path_factory, animesr_path):
    d = tmp_path_factory.mktemp("vspipe")
    path = d / "up.vpy"
    path.write_text(SCRIPT.format(tests=str(Path(__file__).parent), t=T, h=H, w=W, cut=CUT,
                                  model=str(animesr_path), stats_path=str(d / "stats.json")))
    return path


@pytest.fixture(scope="module")
def expected(animesr_path):
    import vsvqdsr as vqdsr

    clip = vqdsr.Upscale(clip_from_array(textured_frames(T, H, W, seed=3, cut=CUT)), model=str(animesr_path))
    return clip_to_array(clip)


def run_vspipe(script: Path, *args: str) -> tuple[np.ndarray, dict]:
    out = script.parent / "out.raw"
    res = subprocess.run([VSPIPE, *args, str(script), str(out)], capture_output=True, text=True, timeout=600)
    assert res.returncode == 0, res.stderr
    raw = np.fromfile(out, dtype=np.float32)
    # vspipe writes RGB planes in G, B, R order (like ffmpeg's gbrpf32); put them back in R, G, B.
    frames = raw.reshape(-1, 3, 4 * H, 4 * W)[:, [2, 0, 1]]
    stats = json.loads((script.parent / "stats.json").read_text())
    return frames, stats


@pytest.mark.parametrize("args", [[], ["-r", "1"], ["-a", "threads=1"], ["-a", "threads=4", "-a", "cache=1"]],
                         ids=["default", "requests1", "threads1", "threads4-cache1"])
def test_vspipe_linear_matches_in_process_and_runs_each_step_once(script, expected, args):
    frames, stats = run_vspipe(script, *args)
    assert frames.shape[0] == T
    assert np.array_equal(frames, expected)
    assert stats["steps"] == T and stats["fallback_steps"] == 0


@pytest.mark.parametrize("start, end", [(5, 11), (CUT, T - 1), (T - 1, T - 1)])
def test_vspipe_frame_ranges(script, expected, start, end):
    frames, stats = run_vspipe(script, "-s", str(start), "-e", str(end))
    assert np.array_equal(frames, expected[start:end + 1])
    chain_start = 0 if start < CUT else CUT
    assert stats["steps"] == end + 1 - chain_start  # only the chain up to the range is computed


def test_vspipe_to_ffmpeg_gives_expected_frames_and_size(tmp_path, animesr_path):
    if shutil.which("ffmpeg") is None or shutil.which("ffprobe") is None:
        pytest.fail("ffmpeg/ffprobe missing: ./scripts/setup_env.sh installs them")
    vpy = tmp_path / "enc.vpy"
    vpy.write_text(textwrap.dedent(f"""
        import sys
        sys.path.insert(0, {str(Path(__file__).parent)!r})
        import vapoursynth as vs
        import vsvqdsr as vqdsr
        from conftest import clip_from_array, textured_frames
        src = clip_from_array(textured_frames(6, 10, 14, seed=4))
        src = vs.core.resize.Bicubic(src, format=vs.YUV420P8, matrix_s="709")
        up = vqdsr.Upscale(src, model={str(animesr_path)!r})
        vs.core.resize.Bicubic(up, format=vs.YUV420P8, matrix_s="709").set_output()
    """))
    mkv = tmp_path / "out.mkv"
    pipe = subprocess.Popen([VSPIPE, "-c", "y4m", str(vpy), "-"], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    enc = subprocess.run(["ffmpeg", "-v", "error", "-y", "-i", "-", "-c:v", "libx264", "-preset", "ultrafast",
                          str(mkv)], stdin=pipe.stdout, capture_output=True, timeout=300)
    pipe.stdout.close()
    assert pipe.wait(timeout=300) == 0, pipe.stderr.read().decode()
    assert enc.returncode == 0, enc.stderr.decode()
    probe = subprocess.run(["ffprobe", "-v", "error", "-count_frames", "-select_streams", "v:0", "-show_entries",
                            "stream=width,height,nb_read_frames", "-of", "json", str(mkv)],
                           capture_output=True, text=True, check=True)
    stream = json.loads(probe.stdout)["streams"][0]
    assert (stream["width"], stream["height"], int(stream["nb_read_frames"])) == (56, 40, 6)


def test_vspipe_stdout_carries_only_video(script, expected):
    """Nothing but frame data reaches stdout (vspipe's video pipe)."""
    res = subprocess.run([VSPIPE, str(script), "-"], capture_output=True, timeout=600)
    assert res.returncode == 0, res.stderr.decode()[-2000:]
    assert len(res.stdout) == expected.size * 4
    frames = np.frombuffer(res.stdout, dtype=np.float32).reshape(expected.shape[0], 3, 4 * H, 4 * W)[:, [2, 0, 1]]
    assert np.array_equal(frames, expected)
