"""Joining x264 chunks without re-encoding and muxing audio, subtitles and chapters from the source."""
from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from vsvqdsr.farm.jobs import JobError, count_frames, encoder_args
from vsvqdsr.farm.join import join_and_mux

FF = ["ffmpeg", "-hide_banner", "-loglevel", "error", "-y"]


def make_chunk(path: Path, start: int, frames: int) -> None:
    subprocess.run(FF + ["-f", "lavfi", "-i", f"testsrc=size=64x48:rate=24,trim=start_frame={start}:end_frame="
                         f"{start + frames},setpts=N/24/TB", *encoder_args("x264", 20, "ultrafast"),
                         "-pix_fmt", "yuv420p", "-f", "matroska", str(path)], check=True)


@pytest.fixture
def source(tmp_path: Path) -> Path:
    srt = tmp_path / "s.srt"
    srt.write_text("1\n00:00:00,000 --> 00:00:00,500\nhello\n")
    meta = tmp_path / "meta.txt"
    meta.write_text(";FFMETADATA1\ntitle=episode 1\n[CHAPTER]\nTIMEBASE=1/1000\nSTART=0\nEND=500\ntitle=A\n"
                    "[CHAPTER]\nTIMEBASE=1/1000\nSTART=500\nEND=1000\ntitle=B\n")
    src = tmp_path / "src.mkv"
    subprocess.run(FF + ["-f", "lavfi", "-i", "testsrc=size=32x24:rate=24:duration=1", "-f", "lavfi", "-i",
                         "sine=frequency=440:duration=1", "-i", str(srt), "-i", str(meta),
                         "-map", "0:v", "-map", "1:a", "-map", "2:s", "-map_metadata", "3", "-map_chapters", "3",
                         "-c:v", "libx264", "-c:a", "flac", "-c:s", "srt", str(src)], check=True)
    return src


def frame_md5(path: Path) -> list[str]:
    p = subprocess.run(["ffmpeg", "-loglevel", "error", "-i", str(path), "-map", "0:v", "-f", "framemd5", "-"],
                       capture_output=True, text=True, check=True)
    return [x.rsplit(",", 1)[1].strip() for x in p.stdout.splitlines() if x and not x.startswith("#")]


def probe(path: Path) -> dict:
    p = subprocess.run(["ffprobe", "-v", "error", "-show_streams", "-show_chapters", "-show_format", "-of", "json",
                        str(path)], capture_output=True, text=True, check=True)
    return json.loads(p.stdout)


def test_join_and_mux_keeps_chunks_and_source_streams(tmp_path, source):
    chunks = [tmp_path / "c0.mkv", tmp_path / "c1.mkv"]
    make_chunk(chunks[0], 0, 10)
    make_chunk(chunks[1], 10, 14)
    out = tmp_path / "out.mkv"
    join_and_mux(chunks, source, out, 24)
    info = probe(out)
    kinds = [s["codec_type"] for s in info["streams"]]
    assert kinds == ["video", "audio", "subtitle"]
    v = info["streams"][0]
    assert (v["codec_name"], v["width"], v["height"]) == ("h264", 64, 48)  # the chunks' video, not the source's
    assert count_frames(out) == 24
    assert [c["tags"]["title"] for c in info["chapters"]] == ["A", "B"]
    assert info["format"]["tags"].get("title") == "episode 1"
    # stream copy: the same decoded frames, and every non-key packet byte for byte (key packets may
    # gain in-band parameter sets from the concat demuxer)
    def packets(p):
        r = subprocess.run(["ffprobe", "-v", "error", "-select_streams", "v:0", "-show_entries",
                            "packet=size,flags", "-of", "csv=p=0", str(p)], capture_output=True, text=True, check=True)
        return [line.split(",") for line in r.stdout.split()]
    joined, parts = packets(out), packets(chunks[0]) + packets(chunks[1])
    assert len(joined) == len(parts) == 24
    assert [j for j in joined if "K" not in j[1]] == [q for q in parts if "K" not in q[1]]
    assert frame_md5(out) == frame_md5(chunks[0]) + frame_md5(chunks[1])
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]


def test_wrong_frame_count_leaves_no_output(tmp_path, source):
    chunk = tmp_path / "c0.mkv"
    make_chunk(chunk, 0, 10)
    out = tmp_path / "out.mkv"
    with pytest.raises(JobError, match="has 10 frames, expected 24"):
        join_and_mux([chunk], source, out, 24)
    assert not out.exists()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]
