"""The quality benchmark's clean clips, rendered from Debian-packaged cel-animation material.

:func:`make_eval_set` renders four clips and hands them to :func:`.build.build_set`, which applies
the real ffmpeg degradation chains (``vqdsr eval build`` runs it). Sources (none of them is used by
the training data, ``scripts/make_degrade_data.sh``):

* ``eye``     synfig-examples ``eye.sif``: a painted eye opening (real synfig animation), 12 fps,
              frames 36-53 (3.0 s - 4.4 s), rendered at 960x544;
* ``headmo``  synfig-examples ``headmo.sif`` (a flat-coloured, outlined character head), still,
              rendered at 1920x1088, a slow camera zoom-in towards the head;
* ``eyes``    synfig-examples ``eyes.sif`` (cartoon eyes, thick outlines), still, 1920x1088, a
              zoomed-in horizontal camera pan;
* ``clipart`` openclipart-svg drawings picked by the rule below, composed side by side, a
              diagonal camera pan. Rule: ``find /usr/share/openclipart/svg -name '*.svg' | sort``,
              every file with ``NR % 500 == 251`` (training uses ``NR % 500 == 1``; that list is
              also excluded explicitly), rendered 800 px wide on white, kept when it looks like
              flat-colour drawing with dark lines (non-white coverage >= 25 %, mean chroma >= 30,
              dark (luma < 70) share of the drawing 5-99 %, flat (Sobel |g| < 8) share >= 40 %);
              the first three kept.

Camera moves are rendered in Python (affine warp with cubic interpolation at 2x, then an area
downscale), so they are sub-pixel smooth and deterministic. Each clip has 18 frames, HR 544x960
(LR 136x240: 540 is not a multiple of 8, 4:2:0 codecs need even LR sizes). The degradation chains
are :data:`.build.SEVERITIES`; the manifest records the exact ffmpeg command lines. Needs the
programs ``synfig``, ``rsvg-convert`` and ``ffmpeg``, the Debian packages synfig-examples and
openclipart-svg, and OpenCV. See docs/benchmark.md.
"""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np

from .build import build_set, sha256_file

__all__ = ["EvalSetError", "REQUIRED_TOOLS", "default_render_cache", "missing_tools", "make_eval_set"]

#: Programs the builder runs, and the Debian packages that provide them and the source material.
REQUIRED_TOOLS = ("synfig", "rsvg-convert", "ffmpeg")
INSTALL_HINT = "apt-get install synfig synfig-examples librsvg2-bin openclipart-svg ffmpeg"


class EvalSetError(RuntimeError):
    """The benchmark set cannot be built (a missing tool or source, a failed render)."""


EX = Path(os.environ.get("SYNFIG_EXAMPLES", "/usr/share/doc/synfig-examples/examples"))
CLIPART = Path("/usr/share/openclipart/svg")
H, W = 544, 960
FRAMES = 18
FPS = 12


def _log(msg: str) -> None:
    print(f"vqdsr eval build: {msg}", file=sys.stderr, flush=True)


def _run(cmd: list[str]) -> None:
    r = subprocess.run(cmd, capture_output=True, text=True)
    if r.returncode != 0:
        last = (r.stderr.strip().splitlines() or ["no output"])[-1]
        raise EvalSetError(f"{' '.join(cmd)} failed (exit {r.returncode}): {last}")


def _pkg_version(pkg: str) -> str:
    r = subprocess.run(["dpkg-query", "-W", "-f", "${Version}", pkg], capture_output=True, text=True)
    return r.stdout.strip() or "unknown"


def flatten(path: Path) -> np.ndarray:
    """RGBA render -> RGB on white (premultiplied compositing), uint8."""
    import cv2

    img = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    if img is None:
        raise EvalSetError(f"cannot read {path}")
    if img.ndim == 2:
        img = np.repeat(img[..., None], 3, -1)
    rgb = img[..., :3][..., ::-1].astype(np.float32)
    if img.shape[2] == 4:
        a = img[..., 3:4].astype(np.float32) / 255.0
        rgb = rgb * a + 255.0 * (1 - a)
    return np.clip(np.rint(rgb), 0, 255).astype(np.uint8)


def _synfig(sif: str, out: Path, w: int, h: int, threads: int, extra: list[str]) -> None:
    out.parent.mkdir(parents=True, exist_ok=True)
    _run(["synfig", "-q", "-T", str(threads), "-t", "png", "-w", str(w), "-h", str(h), *extra,
         "-i", str(EX / sif), "-o", str(out)])


def camera(big: np.ndarray, z0: float, z1: float, c0: tuple[float, float], c1: tuple[float, float],
           frames: int = FRAMES) -> np.ndarray:
    """A camera move over ``big`` (zoom 1 = the whole image): zoom and centre (x, y in 0..1)
    interpolated linearly (zoom geometrically) over ``frames``; returns ``T,H,W,3`` uint8."""
    import cv2

    bh, bw = big.shape[:2]
    out = []
    for i in range(frames):
        s = i / (frames - 1)
        z = z0 * (z1 / z0) ** s
        cx = (c0[0] + (c1[0] - c0[0]) * s) * bw
        cy = (c0[1] + (c1[1] - c0[1]) * s) * bh
        ww, wh = bw / z, bh / z
        # keep the window inside the image
        cx = min(max(cx, ww / 2), bw - ww / 2)
        cy = min(max(cy, wh / 2), bh - wh / 2)
        ow, oh = 2 * W, 2 * H
        sx, sy = ow / ww, oh / wh
        m = np.array([[sx, 0, -(cx - ww / 2) * sx], [0, sy, -(cy - wh / 2) * sy]], np.float64)
        f = cv2.warpAffine(big, m, (ow, oh), flags=cv2.INTER_CUBIC, borderMode=cv2.BORDER_REPLICATE)
        out.append(cv2.resize(f, (W, H), interpolation=cv2.INTER_AREA))
    return np.stack(out)


def clip_eye(cache: Path, threads: int) -> tuple[np.ndarray, dict]:
    d = cache / "eye"
    files = [d / f"eye.{n:04d}.png" for n in range(36, 36 + FRAMES)]
    if not all(f.is_file() for f in files):
        _log("rendering eye.sif (18 frames at 960x544; slow: synfig blurs)")
        _synfig("eye.sif", d / "eye.png", W, H, threads,
               ["--fps", str(FPS), "--begin-time", "36f", "--end-time", f"{36 + FRAMES - 1}f"])
    return np.stack([flatten(f) for f in files]), {
        "package": "synfig-examples", "version": _pkg_version("synfig-examples"), "license": "GPL-2+",
        "file": "eye.sif", "kind": "animation", "render": f"synfig -w {W} -h {H} --fps {FPS} frames 36-53"}


def still(sif: str, cache: Path, threads: int) -> Path:
    p = cache / f"{Path(sif).stem}.png"
    if not p.is_file():
        _log(f"rendering {sif} (1920x1088 still)")
        _synfig(sif, p, 2 * W, 2 * H, threads, [])
    return p


def clip_still(sif: str, cache: Path, threads: int, move: dict) -> tuple[np.ndarray, dict]:
    big = flatten(still(sif, cache, threads))
    return camera(big, **move), {
        "package": "synfig-examples", "version": _pkg_version("synfig-examples"), "license": "GPL-2+",
        "file": sif, "kind": "camera move over a still", "render": f"synfig -w {2 * W} -h {2 * H}",
        "camera": {k: list(v) if isinstance(v, tuple) else v for k, v in move.items()}}


def training_clipart() -> set[str]:
    """The openclipart files scripts/make_degrade_data.sh may use (NR % 500 == 1, and with MORE=1
    also NR % 250 == 126)."""
    files = sorted(str(p) for p in CLIPART.rglob("*.svg"))
    return {f for i, f in enumerate(files, 1) if i % 500 == 1 or i % 250 == 126}


def looks_cel(rgb: np.ndarray) -> bool:
    import cv2

    im = rgb.astype(np.float32)
    y = (im @ np.array([0.299, 0.587, 0.114], np.float32)).astype(np.float32)
    nw = im.min(-1) < 240
    if nw.mean() < 0.25:
        return False
    n = nw.sum()
    dark = ((y < 70) & nw).sum() / n
    g = np.abs(cv2.Sobel(y, cv2.CV_32F, 1, 0)) + np.abs(cv2.Sobel(y, cv2.CV_32F, 0, 1))
    flat = ((g < 8) & nw).sum() / n
    chroma = (im.max(-1) - im.min(-1))[nw].mean()
    return chroma >= 30 and 0.05 <= dark <= 0.99 and flat >= 0.40


def clip_clipart(cache: Path) -> tuple[np.ndarray, dict]:
    import cv2

    files = sorted(str(p) for p in CLIPART.rglob("*.svg"))
    banned = training_clipart()
    picked: list[tuple[str, np.ndarray]] = []
    for i, f in enumerate(files, 1):
        if i % 500 != 251 or f in banned:
            continue
        png = cache / "clipart" / (Path(f).stem + ".png")
        if not png.is_file():
            png.parent.mkdir(parents=True, exist_ok=True)
            r = subprocess.run(["rsvg-convert", "-w", "800", "-b", "white", f, "-o", str(png)], capture_output=True)
            if r.returncode != 0:
                continue
        rgb = flatten(png)
        if looks_cel(rgb):
            picked.append((f, rgb))
        if len(picked) == 3:
            break
    if len(picked) < 3:
        raise EvalSetError("fewer than 3 openclipart drawings passed the rule")
    # side by side on white, each scaled to 1000 px high with a margin, canvas 16:9 in height 1088
    tiles = []
    for _, rgb in picked:
        h, w = rgb.shape[:2]
        s = 1000 / h
        t = cv2.resize(rgb, (max(1, round(w * s)), 1000), interpolation=cv2.INTER_AREA)
        tiles.append(np.pad(t, ((44, 44), (60, 60), (0, 0)), constant_values=255))
    strip = np.concatenate(tiles, axis=1)
    # zoom is relative to the whole (16:9-padded) strip: a window about 2x the output size, so the
    # drawings are downscaled, never upscaled; pan left to right with a slight zoom-in
    z = strip.shape[1] / (2 * W)
    move = {"z0": round(z, 4), "z1": round(1.1 * z, 4), "c0": (0.25, 0.45), "c1": (0.5, 0.55)}
    frames = camera_strip(strip, move)
    return frames, {
        "package": "openclipart-svg", "version": _pkg_version("openclipart-svg"), "license": "public domain (CC0)",
        "files": [f.replace(str(CLIPART) + "/", "") for f, _ in picked], "kind": "camera pan over drawings",
        "render": "rsvg-convert -w 800 -b white; scaled to 1000 px high, side by side",
        "rule": "sorted find, NR % 500 == 251, not in the training list (NR % 500 == 1), cel-look test",
        "camera": {k: list(v) if isinstance(v, tuple) else v for k, v in move.items()}}


def camera_strip(strip: np.ndarray, move: dict) -> np.ndarray:
    """Pan a 16:9 window over a wide strip: pad the strip to 16:9 first, then :func:`camera`."""
    h, w = strip.shape[:2]
    need_h = round(w * H / W)
    pad = max(0, need_h - h)
    canvas = np.pad(strip, ((pad // 2, pad - pad // 2), (0, 0), (0, 0)), constant_values=255)
    return camera(canvas, **move)


def default_render_cache() -> Path:
    """Where the synfig/rsvg renders are kept between builds: ``~/.cache/vsvqdsr/eval-render``."""
    return Path.home() / ".cache" / "vsvqdsr" / "eval-render"


def missing_tools() -> list[str]:
    """The programs of :data:`REQUIRED_TOOLS` not found on ``PATH``."""
    return [t for t in REQUIRED_TOOLS if shutil.which(t) is None]


def make_eval_set(out: str | os.PathLike, render_cache: str | os.PathLike | None = None,
                  threads: int = 2) -> Path:
    """Render the four clean clips and build the benchmark set in ``out`` (replaced as a whole).

    Args:
        out: the set folder.
        render_cache: folder for the synfig/rsvg renders (default :func:`default_render_cache`);
            reused by a later build, so only the degradation runs again.
        threads: synfig render threads (>= 1).

    Raises:
        EvalSetError: a missing program or source, a failed render.
    """
    if threads < 1:
        raise EvalSetError(f"threads must be >= 1, got {threads}")
    missing = missing_tools()
    if missing:
        raise EvalSetError(f"{', '.join(missing)} missing ({INSTALL_HINT})")
    cache = Path(render_cache) if render_cache is not None else default_render_cache()
    clips: dict[str, np.ndarray] = {}
    sources: dict[str, dict] = {}
    clips["eye"], sources["eye"] = clip_eye(cache, threads)
    clips["headmo"], sources["headmo"] = clip_still(
        "headmo.sif", cache, threads, {"z0": 1.6, "z1": 2.4, "c0": (0.78, 0.55), "c1": (0.84, 0.50)})
    clips["eyes"], sources["eyes"] = clip_still(
        "eyes.sif", cache, threads, {"z0": 2.2, "z1": 2.0, "c0": (0.16, 0.46), "c1": (0.42, 0.50)})
    clips["clipart"], sources["clipart"] = clip_clipart(cache)
    for name, fr in clips.items():
        if fr.shape != (FRAMES, H, W, 3):
            raise EvalSetError(f"clip {name} has shape {fr.shape}, expected {(FRAMES, H, W, 3)}")
    _log("degrading (3 severities x 4 clips, real ffmpeg encodes)")
    result = build_set(out, clips, sources, fps=FPS, extra={
        "built_by": "vqdsr eval build (vsvqdsr.evaluation.sources)", "builder_sha256": sha256_file(__file__)})
    _log(f"wrote {result} ({sum(f.shape[0] for f in clips.values())} GT frames)")
    return result
