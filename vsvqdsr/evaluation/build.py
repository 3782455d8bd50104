"""Building a benchmark set: clean HR frames -> real lossy ffmpeg chains -> LR frames + manifest.

Every codec step is an actual ffmpeg encode/decode (no simulated codec); the "old footage" severities
add seeded numpy operations (optical blur, film grain, chroma bleed, analogue tape damage: see
:mod:`vsvqdsr.damage`) between the ffmpeg passes. Encoders and filters run single-threaded with bit-exact
flags, and the numpy operations use a fixed order of IEEE float64 operations and a seed per clip and
severity, so a rerun gives the same bytes. Frames are
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

from ..damage import ArrayStep
from ..provenance import BENCHMARK_MARKER, MANIFEST_NAME
from ..weights.loading import atomic_write_bytes, current_umask

__all__ = ["BENCHMARK_MARKER", "MANIFEST_NAME", "SCALE", "Severity", "SEVERITIES", "FAMILIES", "ArrayStep",
           "degrade_frames", "clip_seed", "write_png", "read_png", "build_set", "sha256_file"]

#: HR / LR size ratio.
SCALE = 4

_FF = ["ffmpeg", "-hide_banner", "-loglevel", "error", "-nostdin", "-y"]
_BITEXACT = ["-fflags", "+bitexact", "-flags:v", "+bitexact", "-threads", "1", "-filter_threads", "1"]


@dataclass(frozen=True)
class Severity:
    """One lossy chain: steps in order, each an ffmpeg pass ``(filters, encoder args, container
    suffix)`` or an :class:`~.damage.ArrayStep` (a seeded numpy operation on RGB frames).

    An ffmpeg pass reads the previous pass's file, or raw RGB frames (the clean HR frames, or the
    result of an array step). An array step after an ffmpeg pass gets that file decoded to RGB.
    ``{w}``/``{h}`` in filters are replaced by the LR width/height. After the last ffmpeg pass the
    file is decoded to RGB with ``final_filters`` (e.g. deinterlacing) and cropped to LR size; a
    chain may also end on an array step at LR size.
    """

    name: str
    description: str
    passes: tuple[tuple[str, tuple[str, ...], str] | ArrayStep, ...]
    final_filters: str = ""

    @property
    def seeded(self) -> bool:
        """True when the chain has numpy steps (which draw from the per-clip seed)."""
        return any(isinstance(p, ArrayStep) for p in self.passes)


#: The severities of the benchmark: the codec chains (light, medium, heavy; unchanged since the first
#: recorded results) and the "old footage" family (old-film, old-analogue).
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
    # --- the "old footage" family: damage before the downscale, then several generations ---
    "old-film": Severity(
        "old-film", ("old film transfer: optical blur (sigma 1.5 HR px) and moving film grain (clumped, "
                     "luma-dependent) on the HR frames; bicubic downscale; MPEG-4 part 2 (q 6); chroma "
                     "bleed (chroma smeared 2 px and shifted 1 px right); MPEG-2 (q 8); third generation "
                     "x264 CRF 28"),
        (ArrayStep("optical_blur", (("sigma", 1.5),)),
         ArrayStep("film_grain", (("strength", 9.0), ("size", 1.2), ("chroma", 0.25))),
         ("scale={w}:{h}:flags=bicubic,format=yuv420p",
          ("-c:v", "mpeg4", "-q:v", "6", "-g", "12", "-bf", "2"), "avi"),
         ArrayStep("chroma_bleed", (("sigma", 2.0), ("shift", 1.0))),
         ("format=yuv420p", ("-c:v", "mpeg2video", "-q:v", "8", "-g", "12", "-bf", "2"), "mpg"),
         ("format=yuv420p", ("-c:v", "libx264", "-preset", "veryfast", "-crf", "28"), "mkv"))),
    "old-analogue": Severity(
        "old-analogue", ("analogue tape capture: area downscale (lossless); luma band-limited with ringing, "
                         "chroma bandwidth loss (horizontal smear, line pairs averaged) and 1 px chroma delay, "
                         "per-line timing jitter, streaky tape noise; MPEG-2 capture (q 7, interlaced DCT); "
                         "second generation x264 CRF 26"),
        (("scale={w}:{h}:flags=area,format=rgb24", ("-c:v", "rawvideo", "-pix_fmt", "rgb24"), "nut"),
         ArrayStep("tape_luma", (("sigma", 0.9), ("ringing", 0.7))),
         ArrayStep("tape_chroma", (("sigma", 2.5), ("shift", 1.0))),
         ArrayStep("line_jitter", (("amplitude", 0.3), ("smooth", 6.0))),
         ArrayStep("tape_noise", (("strength", 5.0), ("streak", 3.0))),
         ("format=yuv420p", ("-c:v", "mpeg2video", "-q:v", "7", "-g", "12", "-flags", "+ildct", "-top", "1"),
          "mpg"),
         ("format=yuv420p", ("-c:v", "libx264", "-preset", "veryfast", "-crf", "26"), "mkv"))),
}

#: The severity families: the three codec-chain severities and the "old footage" ones.
FAMILIES: dict[str, tuple[str, ...]] = {"codec": ("light", "medium", "heavy"),
                                         "old footage": ("old-film", "old-analogue")}


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


def clip_seed(clip: str, severity: str) -> int:
    """The seed of ``clip``'s numpy steps under ``severity``: the first 8 bytes of
    SHA-256("<clip>/<severity>"), big-endian (independent of the clips' order and of other clips)."""
    return int.from_bytes(hashlib.sha256(f"{clip}/{severity}".encode()).digest()[:8], "big")


def _decode_rgb(path: str, t: int, sizes: Sequence[tuple[int, int]], cmds: list[str], tmp: str) -> np.ndarray:
    cmd = _FF + _BITEXACT + ["-i", path, "-f", "rawvideo", "-pix_fmt", "rgb24", "-"]
    raw = _run(cmd)
    cmds.append(" ".join(cmd).replace(tmp + "/", "").rstrip("-") + "frames.rgb")
    for h, w in sizes:
        if len(raw) == t * h * w * 3:
            return np.frombuffer(raw, np.uint8).reshape(t, h, w, 3).copy()
    raise RuntimeError(f"degrade_frames: {Path(path).name} decoded to {len(raw)} bytes, not {t} frames of any of "
                       f"{sizes}")


def degrade_frames(frames: np.ndarray, severity: Severity, fps: int = 24,
                   log: list[str] | None = None, seed: int = 0) -> np.ndarray:
    """Run ``frames`` (``T,H,W,3`` uint8 RGB, H and W multiples of 8) through ``severity``'s chain
    (real ffmpeg encodes/decodes and seeded numpy steps) and return ``T,H/4,W/4,3`` uint8 RGB.

    ``fps`` is the clip's frame rate (affects rate control). ``seed`` seeds the numpy steps (one
    generator for the whole chain, drawn in step order; see :func:`clip_seed`); chains without numpy
    steps ignore it. ``log``, if given, receives the exact command lines (ffmpeg with placeholder
    file names ``in.rgb``, ``pass1.mkv``, ``out.rgb``; numpy steps as ``numpy <op>(params)``).
    """
    t, h, w, c = frames.shape
    if c != 3 or frames.dtype != np.uint8 or h % (2 * SCALE) or w % (2 * SCALE):
        raise ValueError(f"degrade_frames: need T,H,W,3 uint8 with H, W multiples of {2 * SCALE}; got "
                         f"{frames.shape} {frames.dtype}")
    lw, lh = w // SCALE, h // SCALE
    rng = np.random.default_rng(seed)
    with tempfile.TemporaryDirectory(prefix="vqdsr-degrade-") as tmp:
        prev: str | None = None
        cur: np.ndarray | None = frames  # the frames as an array, or None when they are in ``prev``
        cmds: list[str] = []
        n_pass = 0
        for step in severity.passes:
            if isinstance(step, ArrayStep):
                if cur is None:
                    assert prev is not None
                    cur = _decode_rgb(prev, t, [(lh, lw), (h, w)], cmds, tmp)
                cur = step.apply(cur, rng)
                cmds.append(step.describe())
                continue
            filters, enc, ext = step
            n_pass += 1
            out = str(Path(tmp) / f"pass{n_pass}.{ext}")
            vf = filters.format(w=lw, h=lh, fps2=2 * fps)
            if cur is not None:
                ah, aw = cur.shape[1:3]
                src = ["-f", "rawvideo", "-pix_fmt", "rgb24", "-s", f"{aw}x{ah}", "-framerate", str(fps),
                       "-i", "-"]
                data: bytes | None = np.ascontiguousarray(cur).tobytes()
            else:
                src = ["-i", str(prev)]
                data = None
            cmd = _FF + _BITEXACT + src + ["-vf", vf, *enc, "-an", out]
            _run(cmd, data)
            cmds.append(" ".join(cmd).replace(tmp + "/", "").replace(" -i - ", " -i in.rgb "))
            prev, cur = out, None
        if cur is None:
            assert prev is not None
            vf = ",".join(x for x in (severity.final_filters, f"crop={lw}:{lh}:0:0", "format=rgb24") if x)
            cmd = _FF + _BITEXACT + ["-i", prev, "-vf", vf, "-f", "rawvideo", "-pix_fmt", "rgb24", "-"]
            raw = _run(cmd)
            cmds.append(" ".join(cmd).replace(tmp + "/", "").rstrip("-") + "out.rgb")
        else:
            if cur.shape[1:3] != (lh, lw):
                raise RuntimeError(f"degrade_frames: chain {severity.name!r} ends on frames of "
                                   f"{cur.shape[2]}x{cur.shape[1]}, not the LR size {lw}x{lh}")
            raw = np.ascontiguousarray(cur).tobytes()
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
        seeds: dict[str, dict[str, int]] = {}
        for name, frames in clips.items():
            t, h, w, _ = frames.shape
            clip_info[name] = {"frames": int(t), "hr_size": [int(h), int(w)],
                               "lr_size": [int(h) // SCALE, int(w) // SCALE], "fps": fps,
                               "source": dict(sources.get(name, {}))}
            for i, f in enumerate(frames):
                write_png(tmp / "gt" / name / f"{i:04d}.png", f)
            for sev in severities:
                log: list[str] = []
                seed = clip_seed(name, sev)
                lr = degrade_frames(frames, SEVERITIES[sev], fps, log, seed=seed)
                commands.setdefault(sev, log)
                if SEVERITIES[sev].seeded:
                    seeds.setdefault(sev, {})[name] = seed
                for i, f in enumerate(lr):
                    write_png(tmp / "lr" / sev / name / f"{i:04d}.png", f)
        for p in sorted(tmp.rglob("*.png")):
            files[p.relative_to(tmp).as_posix()] = sha256_file(p)
        manifest = {
            BENCHMARK_MARKER: 1,
            "note": "evaluation only: vsvqdsr's training data loaders refuse this folder",
            "scale": SCALE,
            "clips": clip_info,
            "severities": {s: _severity_entry(s, commands[s], seeds.get(s)) for s in severities},
            "ffmpeg_version": _ffmpeg_version(),
            **({"numpy_version": np.__version__} if seeds else {}),
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


def _severity_entry(name: str, commands: list[str], seeds: dict[str, int] | None) -> dict:
    entry: dict[str, object] = {"description": SEVERITIES[name].description, "ffmpeg": commands}
    if seeds is not None:  # only chains with numpy steps: the codec chains' entries stay as they were
        fam = next(f for f, names in FAMILIES.items() if name in names)
        entry.update({"family": fam, "seeds": seeds,
                      "seed_rule": "numpy steps draw, in order, from numpy.random.default_rng(seed); "
                                   "seed = first 8 bytes of sha256('<clip>/<severity>'), big-endian"})
    return entry


def _ffmpeg_version() -> str:
    try:
        r = subprocess.run(["ffmpeg", "-hide_banner", "-version"], capture_output=True, text=True, check=False)
        return r.stdout.splitlines()[0] if r.stdout else "unknown"
    except OSError:
        return "unknown"
