"""Joining chunk files without re-encoding and muxing the source's other streams back in."""
from __future__ import annotations

import os
import subprocess
import uuid
from pathlib import Path

from .jobs import JobError, count_frames, tool

__all__ = ["concat_chunks", "mux_with_source", "join_and_mux"]


def _run(cmd: list[str], what: str) -> None:
    p = subprocess.run(cmd, capture_output=True, text=True)
    if p.returncode != 0:
        tail = "\n".join(p.stderr.strip().splitlines()[-15:])
        raise JobError(f"{what} failed (ffmpeg exited with {p.returncode}):\n{tail}")


def _quote(path: Path) -> str:
    # concat demuxer list syntax: single-quoted, a quote written as '\''
    return "'" + str(path.resolve()).replace("'", "'\\''") + "'"


def concat_chunks(chunks: list[Path], out: Path) -> None:
    """Join ``chunks`` (same codec and parameters) into ``out`` with the concat demuxer, ``-c copy``."""
    listing = out.with_name(f".{out.name}.{uuid.uuid4().hex}.txt")
    listing.write_text("ffconcat version 1.0\n" + "".join(f"file {_quote(c)}\n" for c in chunks))
    try:
        _run([tool("ffmpeg"), "-hide_banner", "-nostdin", "-loglevel", "error", "-y", "-f", "concat",
              "-safe", "0", "-i", str(listing), "-map", "0:v", "-c", "copy", "-f", "matroska", str(out)],
             "joining the chunks")
    finally:
        listing.unlink(missing_ok=True)


def mux_with_source(video: Path, source: Path, out: Path) -> None:
    """``out`` = the video of ``video`` + audio, subtitles, attachments, chapters and metadata of
    ``source``, all stream-copied."""
    _run([tool("ffmpeg"), "-hide_banner", "-nostdin", "-loglevel", "error", "-y", "-i", str(video),
          "-i", str(source), "-map", "0:v", "-map", "1:a?", "-map", "1:s?", "-map", "1:t?",
          "-map_chapters", "1", "-map_metadata", "1", "-c", "copy", "-f", "matroska", str(out)],
         f"muxing the streams of {source}")


def join_and_mux(chunks: list[Path], source: Path, out: Path, frames: int) -> None:
    """Concatenate ``chunks``, mux ``source``'s other streams, check ``frames``, rename to ``out``.

    Nothing appears at ``out`` unless every step succeeded (temporary files live next to it).
    """
    tag = uuid.uuid4().hex
    joined = out.with_name(f".{out.name}.{tag}.video.mkv")
    final = out.with_name(f".{out.name}.{tag}.tmp.mkv")
    try:
        concat_chunks(chunks, joined)
        mux_with_source(joined, source, final)
        got = count_frames(final)
        if got != frames:
            raise JobError(f"the joined file has {got} frames, expected {frames}")
        os.replace(final, out)
    finally:
        joined.unlink(missing_ok=True)
        final.unlink(missing_ok=True)
