"""Building a benchmark set: clean HR frames -> real lossy ffmpeg chains -> LR frames + manifest.

Every degradation step is an actual ffmpeg encode/decode (no simulated codec). Encoders and
filters run single-threaded with bit-exact flags so a rerun gives the same bytes. Frames are
stored as PNG written by this module (``cv2.imencode``, deterministic), so the stored files do not
depend on ffmpeg's PNG encoder either.

Layout of a set folder::

    benchmark.json                    manifest (marker, sources, commands, files with sha256)
    gt/<clip>/0000.png ...            clean HR frames, RGB 8-bit
    lr/<severity>/<clip>/0000.png     degraded LR frames (HR / 4), RGB 8-bit

The manifest carries :data:`BENCHMARK_MARKER`, which training data loaders refuse
(:func:`vsvqdsr.evaluation.dataset.check_not_benchmark`).
"""
from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np

from ..provenance import BENCHMARK_MARKER, MANIFEST_NAME
from ..weights.loading import atomic_write_bytes, current_umask

__all__ = ["BENCHMARK_MARKER", "MANIFEST_NAME", "SCALE", "Severity", "SEVERITIES", "degrade_frames",
           "write_png", "read_png", "build_set", "sha256_file"]

#: HR / LR size ratio.
SCALE = 4

_FF = ["ffmpeg", "-hide_banner", "-loglevel", "error", "-nostdin", "-y"]
_BITEXACT = ["-fflags", "+bitexact", "-flags:v", "+bitexact", "-threads", "1", "-filter_threads", "1"]


@dataclass(frozen=True)
class Severity:
    """One lossy chain: ffmpeg passes, each ``(filters, encoder args, container suffix)``.

    The first pass reads the clean HR frames; each later pass reads the previous pass's file.
    ``{w}``/``{h}`` in filters are replaced by the LR width/height. After the last pass the file is
    decoded to RGB with ``final_filters`` (e.g. deinterlacing) and cropped to LR size.
    """

    name: str
    description: str
    passes: tuple[tuple[str, tuple[str, ...], str], ...]
    final_filters: str = ""


#: The three severities of the benchmark (light, medium, heavy).
SEVERITIES: dict[str, Severity] = {
    "light": Severity(
        "light", "bicubic downscale; H.264 (x264 CRF 23, preset medium), 4:2:0",
        (("scale={w}:{h}:flags=bicubic,format=yuv420p",
          ("-c:v", "libx264", "-preset", "medium", "-crf", "23"), "mkv"),)),
    "medium": Severity(
        "medium", "area downscale; MPEG-4 part 2 (q 9), 4:2:0; second generation x264 CRF 30",
        (("scale={w}:{h}:flags=area,format=yuv420p",
          ("-c:v", "mpeg4", "-q:v", "9", "-g", "12", "-bf", "2"), "avi"),
         ("format=yuv420p", ("-c:v", "libx264", "-preset", "veryfast", "-crf", "30"), "mkv"))),
    "heavy": Severity(
        "heavy", ("bilinear downscale; 4:1:1 chroma; frames doubled and interlaced (tff, vertical "
                  "low-pass); MPEG-2 interlaced, 150 kb/s cap, quantiser floor 14; decoded, "
                  "yadif-deinterlaced; second generation x264 CRF 28"),
        (("scale={w}:{h}:flags=bilinear,format=yuv411p,format=yuv420p,fps=fps={fps2},"
          "interlace=scan=tff:lowpass=complex",
          ("-c:v", "mpeg2video", "-b:v", "150k", "-maxrate", "250k", "-bufsize", "500k", "-g", "12",
           "-qmin", "14", "-flags", "+ilme+ildct", "-top", "1"), "mpg"),
         ("yadif=mode=send_frame:parity=tff:deint=all,format=yuv420p",
          ("-c:v", "libx264", "-preset", "veryfast", "-crf", "28"), "mkv"))),
}


def sha256_file(path: str | os.PathLike) -> str:
    """Hex SHA-256 of a file's bytes."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def write_png(path: str | os.PathLike, rgb: np.ndarray) -> None:
    """Write ``H,W,3`` uint8 RGB as PNG, atomically; the bytes depend only on the pixels."""
    import cv2

    ok, buf = cv2.imencode(".png", np.ascontiguousarray(rgb[..., ::-1]), [cv2.IMWRITE_PNG_COMPRESSION, 6])
    if not ok:
        raise OSError(f"write_png: cannot encode {path}")
    atomic_write_bytes(path, buf.tobytes())


def read_png(path: str | os.PathLike) -> np.ndarray:
    """``H,W,3`` uint8 RGB of an image file (alpha dropped)."""
    import cv2

    img = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if img is None:
        raise OSError(f"read_png: cannot read image {path}")
    return np.ascontiguousarray(img[..., ::-1])


def _run(cmd: list[str], stdin: bytes | None = None) -> bytes:
    try:
        r = subprocess.run(cmd, input=stdin, capture_output=True, check=False)
    except FileNotFoundError as e:
        raise RuntimeError("degrade_frames: ffmpeg is not installed (apt-get install ffmpeg)") from e
    if r.returncode != 0:
        raise RuntimeError(f"degrade_frames: ffmpeg failed ({' '.join(cmd)}): {r.stderr.decode(errors='replace')[-800:]}")
    return r.stdout


def degrade_frames(frames: np.ndarray, severity: Severity, fps: int = 24,
                   log: list[str] | None = None) -> np.ndarray:
    """Run ``frames`` (``T,H,W,3`` uint8 RGB, H and W multiples of 8) through ``severity``'s real
    ffmpeg chain and return ``T,H/4,W/4,3`` uint8 RGB.

    ``fps`` is the clip's frame rate (affects rate control). ``log``, if given, receives the exact
    ffmpeg command lines (with placeholder file names ``in.rgb``, ``pass1.mkv``, ``out.rgb``).
    """
    t, h, w, c = frames.shape
    if c != 3 or frames.dtype != np.uint8 or h % (2 * SCALE) or w % (2 * SCALE):
        raise ValueError(f"degrade_frames: need T,H,W,3 uint8 with H, W multiples of {2 * SCALE}; got "
                         f"{frames.shape} {frames.dtype}")
    lw, lh = w // SCALE, h // SCALE
    with tempfile.TemporaryDirectory(prefix="vqdsr-degrade-") as tmp:
        prev: str | None = None
        cmds: list[str] = []
        for i, (filters, enc, ext) in enumerate(severity.passes):
            out = str(Path(tmp) / f"pass{i + 1}.{ext}")
            vf = filters.format(w=lw, h=lh, fps2=2 * fps)
            if prev is None:
                src = ["-f", "rawvideo", "-pix_fmt", "rgb24", "-s", f"{w}x{h}", "-framerate", str(fps),
                       "-i", "-"]
                data: bytes | None = np.ascontiguousarray(frames).tobytes()
            else:
                src = ["-i", prev]
                data = None
            cmd = _FF + _BITEXACT + src + ["-vf", vf, *enc, "-an", out]
            _run(cmd, data)
            cmds.append(" ".join(cmd).replace(tmp + "/", "").replace(" -i - ", " -i in.rgb "))
            prev = out
        assert prev is not None
        vf = ",".join(x for x in (severity.final_filters, f"crop={lw}:{lh}:0:0", "format=rgb24") if x)
        cmd = _FF + _BITEXACT + ["-i", prev, "-vf", vf, "-f", "rawvideo", "-pix_fmt", "rgb24", "-"]
        raw = _run(cmd)
        cmds.append(" ".join(cmd).replace(tmp + "/", "").rstrip("-") + "out.rgb")
    n = len(raw) // (lw * lh * 3)
    if n != t:
        raise RuntimeError(f"degrade_frames: chain {severity.name!r} returned {n} frames for {t}")
    if log is not None:
        log.extend(cmds)
    return np.frombuffer(raw, np.uint8).reshape(t, lh, lw, 3).copy()


def build_set(out: str | os.PathLike, clips: Mapping[str, np.ndarray], sources: Mapping[str, dict],
              severities: Sequence[str] = tuple(SEVERITIES), fps: int = 24,
              extra: Mapping[str, object] | None = None) -> Path:
    """Write a benchmark set to ``out`` from clean clips (name -> ``T,H,W,3`` uint8 RGB).

    ``sources`` maps clip names to provenance (package, licence, how rendered); ``extra`` goes into
    the manifest as is. ``out`` is replaced as a whole: the set is built in a sibling temporary folder
    and renamed into place, so a half-built set never carries a manifest. Returns ``out``.
    """
    out = Path(out)
    unknown = [s for s in severities if s not in SEVERITIES]
    if unknown:
        raise ValueError(f"build_set: unknown severities {unknown}; known: {', '.join(SEVERITIES)}")
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    os.chmod(tmp, 0o777 & ~current_umask())  # mkdtemp makes 0700; the set becomes the user's folder
    try:
        files: dict[str, str] = {}
        clip_info: dict[str, dict] = {}
        commands: dict[str, list[str]] = {}
        for name, frames in clips.items():
            t, h, w, _ = frames.shape
            clip_info[name] = {"frames": int(t), "hr_size": [int(h), int(w)],
                               "lr_size": [int(h) // SCALE, int(w) // SCALE], "fps": fps,
                               "source": dict(sources.get(name, {}))}
            for i, f in enumerate(frames):
                write_png(tmp / "gt" / name / f"{i:04d}.png", f)
            for sev in severities:
                log: list[str] = []
                lr = degrade_frames(frames, SEVERITIES[sev], fps, log)
                commands.setdefault(sev, log)
                for i, f in enumerate(lr):
                    write_png(tmp / "lr" / sev / name / f"{i:04d}.png", f)
        for p in sorted(tmp.rglob("*.png")):
            files[p.relative_to(tmp).as_posix()] = sha256_file(p)
        manifest = {
            BENCHMARK_MARKER: 1,
            "note": "evaluation only: vsvqdsr's training data loaders refuse this folder",
            "scale": SCALE,
            "clips": clip_info,
            "severities": {s: {"description": SEVERITIES[s].description, "ffmpeg": commands[s]}
                           for s in severities},
            "ffmpeg_version": _ffmpeg_version(),
            **dict(extra or {}),
            "files": files,
        }
        atomic_write_bytes(tmp / MANIFEST_NAME, (json.dumps(manifest, indent=1, sort_keys=False) + "\n").encode())
        if out.exists():
            old = out.with_name(f".{out.name}.old")
            shutil.rmtree(old, ignore_errors=True)
            os.replace(out, old)
            os.replace(tmp, out)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return out


def _ffmpeg_version() -> str:
    try:
        r = subprocess.run(["ffmpeg", "-hide_banner", "-version"], capture_output=True, text=True, check=False)
        return r.stdout.splitlines()[0] if r.stdout else "unknown"
    except OSError:
        return "unknown"
