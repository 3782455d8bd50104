"""vqdsr render on a local Ray cluster of 2 CPU workers, the bundled sample's cut as two inputs.

Chunked output equals a single-process vspipe render frame for frame (ffv1, lossless); a worker
killed mid-run is retried and the output is unchanged; an interrupted run resumes with only the
missing chunks; a chunk that fails for good names input and frame range and writes no output.
The network is a tiny random RecurrentVSR so the CPU cost stays small.
"""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import pytest

from conftest import ROOT, VENV_BIN

ray = pytest.importorskip("ray")

from vsvqdsr.farm.render import DEFAULT_TEMPLATE, FarmError, RenderSettings, render  # noqa: E402

SAMPLE = ROOT / "examples" / "sample" / "sample.mkv"
FIRST, COUNT, CUT = 74, 20, 10  # sample frames 74..93; the sample's cut (frame 84) is local frame 10
MAX_CHAIN = 6                   # warm-up 3: scene 0..9 splits at 6, scene 10..19 at 16


def frame_hashes(path: Path) -> list[str]:
    """md5 of every decoded video frame."""
    p = subprocess.run(["ffmpeg", "-hide_banner", "-loglevel", "error", "-i", str(path), "-map", "0:v",
                        "-f", "framemd5", "-"], capture_output=True, text=True, check=True)
    return [line.rsplit(",", 1)[1].strip() for line in p.stdout.splitlines() if line and not line.startswith("#")]


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    d = tmp_path_factory.mktemp("farm")
    subprocess.run(["ffmpeg", "-hide_banner", "-loglevel", "error", "-y", "-i", str(SAMPLE), "-vf",
                    f"select='between(n,{FIRST},{FIRST + COUNT - 1})',setpts=N/24/TB,scale=160:90",
                    "-c:v", "ffv1", "-pix_fmt", "yuv420p", str(d / "a.mkv")], check=True)
    (d / "b.mkv").write_bytes((d / "a.mkv").read_bytes())
    import torch

    from vsvqdsr.nets.vsr import RecurrentVSR
    from vsvqdsr.weights import save_state_dict

    torch.manual_seed(0)
    save_state_dict(RecurrentVSR(num_feat=4, num_block=(1, 1, 1)).state_dict(), d / "tiny.safetensors")
    # the single-process reference: the same template, Upscale's own scene detection, one thread
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    vsp = subprocess.Popen([str(VENV_BIN / "vspipe"), "-c", "y4m", "-a", f"src={d / 'a.mkv'}", "-a",
                            f"model={d / 'tiny.safetensors'}", "-a", f"max_chain={MAX_CHAIN}",
                            str(DEFAULT_TEMPLATE), "-"], stdout=subprocess.PIPE, env=env)
    subprocess.run(["ffmpeg", "-hide_banner", "-loglevel", "error", "-y", "-f", "yuv4mpegpipe", "-i", "-",
                    "-c:v", "ffv1", str(d / "ref.mkv")], stdin=vsp.stdout, check=True)
    assert vsp.wait() == 0
    ref = frame_hashes(d / "ref.mkv")
    assert len(ref) == COUNT
    return d, ref


@pytest.fixture(scope="module")
def cluster():
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, logging_level="WARNING")
    yield
    ray.shutdown()


def settings(d: Path, **kw) -> RenderSettings:
    base = dict(encoder="ffv1", model=str(d / "tiny.safetensors"), max_chain=MAX_CHAIN, min_chunk=4, threads=1)
    return RenderSettings(**{**base, **kw})


def check_outputs(out: Path, ref: list[str]) -> None:
    for name in ("a", "b"):
        assert frame_hashes(out / f"{name}.mkv") == ref


def test_chunked_equals_single_process(data, cluster, tmp_path):
    d, ref = data
    rep = render([d / "a.mkv", d / "b.mkv"], tmp_path, settings(d), progress=False)
    # chunks at scene starts 0, 10 and at the max_chain segment starts 6, 16 (warm-up 3)
    for name in ("a", "b"):
        got = [(c.start, c.end, c.warmup) for c in rep.chunks if c.input.endswith(f"{name}.mkv")]
        assert got == [(0, 6, 0), (6, 10, 3), (10, 16, 0), (16, 20, 3)]
    check_outputs(tmp_path, ref)
    assert rep.retries == 0 and rep.rendered_frames == 2 * COUNT
    assert (tmp_path / "render-report.json").exists()
    assert not list(tmp_path.glob(".*tmp*"))


def test_killed_worker_is_retried(data, cluster, tmp_path):
    d, ref = data
    result: dict = {}

    def run():
        try:
            result["report"] = render([d / "a.mkv", d / "b.mkv"], tmp_path, settings(d, min_chunk=10),
                                      progress=False)
        except BaseException as e:  # surfaced below
            result["error"] = e

    t = threading.Thread(target=run)
    t.start()
    killed = None
    deadline = time.monotonic() + 120
    while killed is None and time.monotonic() < deadline and t.is_alive():
        for marker in tmp_path.glob(".vqdsr-render/*/*.running"):
            try:
                pid = int(marker.read_text())
                os.kill(pid, signal.SIGKILL)
                killed = pid
                break
            except (ValueError, OSError):
                continue
        time.sleep(0.05)
    t.join(300)
    assert killed is not None, "no running chunk seen"
    assert "error" not in result, result.get("error")
    rep = result["report"]
    assert rep.retries >= 1
    assert any("died" in e.lower() or "crash" in e.lower() or "worker" in e.lower()
               for c in rep.chunks for e in c.errors)
    check_outputs(tmp_path, ref)


class Interrupt(Exception):
    pass


def test_interrupted_run_resumes_missing_chunks_only(data, cluster, tmp_path):
    d, ref = data

    def stop(rec):
        raise Interrupt

    with pytest.raises(Interrupt):
        render([d / "a.mkv", d / "b.mkv"], tmp_path, settings(d, min_chunk=10), progress=False, on_chunk_done=stop)
    assert not (tmp_path / "a.mkv").exists() and not (tmp_path / "b.mkv").exists()
    kept = {(p.parent.name.split("-")[0], p.name) for p in tmp_path.glob(".vqdsr-render/*/c*.mkv")}
    assert 1 <= len(kept) < 4
    rep = render([d / "a.mkv", d / "b.mkv"], tmp_path, settings(d, min_chunk=10), progress=False)
    resumed = {(Path(c.input).stem, f"c{c.start:07d}-{c.end:07d}.mkv") for c in rep.chunks if c.resumed}
    assert resumed == kept
    assert [c.attempts for c in rep.chunks if not c.resumed] == [1] * (4 - len(kept))
    check_outputs(tmp_path, ref)


BAD = textwrap.dedent("""
    import vapoursynth as vs
    core = vs.core
    clip = core.bs.VideoSource(src)
    def boom(n, f):
        if n == 15:
            raise vs.Error("corrupt frame")
        return f
    core.std.ModifyFrame(clip, clip, boom).set_output()
""")


def test_failing_chunk_stops_with_input_and_range(data, cluster, tmp_path):
    d, _ = data
    tpl = tmp_path / "bad.vpy"
    tpl.write_text(BAD)
    out = tmp_path / "out"
    with pytest.raises(FarmError, match=r"a\.mkv: frames 10\.\.19 failed after 2 attempt") as e:
        render([d / "a.mkv"], out, settings(d, template=tpl, min_chunk=10, retries=1), progress=False)
    assert "corrupt frame" in str(e.value)
    assert not (out / "a.mkv").exists()
    assert not list(out.glob(".*tmp*"))


def test_cli_without_ray_explains_install(monkeypatch, capsys, tmp_path):
    from vsvqdsr.cli.main import main

    monkeypatch.setitem(sys.modules, "ray", None)
    assert main(["render", str(SAMPLE), "-o", str(tmp_path)]) == 2
    assert "pip install 'vsvqdsr[farm]'" in capsys.readouterr().err


def test_cli_rejects_bad_settings(capsys, tmp_path):
    from vsvqdsr.cli.main import main

    assert main(["render", str(SAMPLE), "-o", str(tmp_path), "--crf", "99"]) == 2
    assert "crf must be in 0..51" in capsys.readouterr().err
    assert main(["render", str(tmp_path / "missing.mkv"), "-o", str(tmp_path)]) == 2
    assert "missing.mkv does not exist" in capsys.readouterr().err
    assert not list(tmp_path.glob("*.mkv"))
