#!/usr/bin/env python3
"""A stand-in "user's show": clean *training* clips put through one of the benchmark's damage chains,
for trying `vqdsr adapt` on footage whose damage is known exactly.

usage: python scripts/make_show.py CLEAN [CLEAN ...] --out OUT [--severity old-analogue]
           [--max-frames 48] [--force]

Each clean clip (a video or a folder of frames, found by ``vsvqdsr.training.data.find_sources``, which
refuses the benchmark set and anything inside it) is cropped at the top left to a multiple of 8 on
each side, cut to its first ``--max-frames`` frames and run through
``vsvqdsr.evaluation.build.degrade_frames`` with the chain of ``--severity`` (the same real ffmpeg
encodes and seeded numpy steps the benchmark uses; the seed is drawn from the clip's name like the
benchmark's). Written, FFV1 (lossless, so the damage is the chain's alone):

* ``OUT/lq/<clip>.mkv``: the damaged clip at 1/4 size: the "show" (``vqdsr adapt OUT/lq/*.mkv``);
* ``OUT/clean/<clip>.mkv``: the cropped clean clip at full size, for ``vqdsr adapt --reference``;
* ``OUT/show.json``: the chain's exact commands per clip, the severity and the clips' sizes.

Errors: one line on stderr, exit status 2. Progress goes to stderr; nothing to stdout.
"""
from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np


def _fail(msg: str) -> int:
    print(f"make_show: {msg}", file=sys.stderr)
    return 2


def _frames(src, count: int) -> np.ndarray:
    """The first ``count`` full frames of a clip source as uint8 ``T,H,W,3`` RGB."""
    from vsvqdsr.training.data import FrameFolder

    if isinstance(src, FrameFolder):
        import cv2
        out = [cv2.cvtColor(cv2.imread(str(f), cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB) for f in src.files[:count]]
        return np.stack(out)
    cmd = ["ffmpeg", "-nostdin", "-v", "error", "-i", str(src.path), "-frames:v", str(count),
           "-f", "rawvideo", "-pix_fmt", "rgb24", "pipe:1"]
    raw = subprocess.run(cmd, capture_output=True, check=True).stdout
    n = len(raw) // (src.width * src.height * 3)
    return np.frombuffer(raw[: n * src.width * src.height * 3], np.uint8).reshape(n, src.height, src.width, 3)


def _write_ffv1(path: Path, frames: np.ndarray, fps: int) -> None:
    t, h, w, _ = frames.shape
    cmd = ["ffmpeg", "-nostdin", "-v", "error", "-y", "-f", "rawvideo", "-pix_fmt", "rgb24", "-s", f"{w}x{h}",
           "-framerate", str(fps), "-i", "pipe:0", "-c:v", "ffv1", "-pix_fmt", "bgr0", str(path)]
    subprocess.run(cmd, input=np.ascontiguousarray(frames).tobytes(), check=True, capture_output=True)


def main(argv: list[str] | None = None) -> int:
    from vsvqdsr.evaluation.build import SEVERITIES, clip_seed, degrade_frames
    from vsvqdsr.training.data import find_sources

    ap = argparse.ArgumentParser(description="a damaged 'show' from clean training clips, through a benchmark chain")
    ap.add_argument("clean", nargs="+", help="clean training clips (videos, frame folders, or folders of them)")
    ap.add_argument("--out", required=True, help="output folder (OUT/lq, OUT/clean, OUT/show.json)")
    ap.add_argument("--severity", default="old-analogue", help=f"one of {', '.join(SEVERITIES)} (default old-analogue)")
    ap.add_argument("--max-frames", type=int, default=48, help="frames per clip, from the start (default 48)")
    ap.add_argument("--fps", type=int, default=24, help="frame rate given to the codecs (default 24)")
    ap.add_argument("--force", action="store_true", help="replace an existing, non-empty --out folder")
    a = ap.parse_args(argv)
    if a.severity not in SEVERITIES:
        return _fail(f"--severity must be one of {', '.join(SEVERITIES)}; got {a.severity!r}")
    if a.max_frames < 1:
        return _fail(f"--max-frames must be >= 1; got {a.max_frames}")
    out = Path(a.out)
    if out.exists() and (not out.is_dir() or any(out.iterdir())) and not a.force:
        return _fail(f"{out} exists and is not empty; pass --force to replace it")
    if shutil.which("ffmpeg") is None:
        return _fail("ffmpeg is not on PATH")
    try:
        sources = find_sources(a.clean)
    except ValueError as e:
        return _fail(str(e))
    if not sources:
        return _fail("no clips found")
    if out.exists():
        shutil.rmtree(out)
    (out / "lq").mkdir(parents=True)
    (out / "clean").mkdir()
    sev = SEVERITIES[a.severity]
    record = {"severity": a.severity, "description": sev.description, "clips": {}}
    for i, src in enumerate(sources):
        frames = _frames(src, a.max_frames)
        h, w = frames.shape[1] // 8 * 8, frames.shape[2] // 8 * 8
        frames = np.ascontiguousarray(frames[:, :h, :w])
        log: list[str] = []
        seed = clip_seed(src.name, a.severity)
        lq = degrade_frames(frames, sev, fps=a.fps, log=log, seed=seed)
        _write_ffv1(out / "lq" / f"{src.name}.mkv", lq, a.fps)
        _write_ffv1(out / "clean" / f"{src.name}.mkv", frames, a.fps)
        record["clips"][src.name] = {"frames": int(len(frames)), "hr_size": [h, w], "lr_size": list(lq.shape[1:3]),
                                     "seed": seed, "commands": log}
        print(f"make_show: {i + 1}/{len(sources)} {src.name}: {len(frames)} frames {w}x{h}", file=sys.stderr)
    (out / "show.json").write_text(json.dumps(record, indent=1) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
