"""The quality benchmark's clean clips, rendered from Debian-packaged cel-animation material.

:func:`make_eval_set` renders six clips and hands them to :func:`.build.build_set`, which applies
the degradation chains (``vqdsr eval build`` runs it). Sources (none of them is used by the
training data, ``scripts/make_degrade_data.sh``; :data:`TRAINING_SIF` lists what it uses and
the builder refuses those):

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
              the first three kept;
* ``texture`` synfig-examples ``noise.sif``: animated procedural noise (fire-coloured gradients over a
              grey checker texture), real synfig animation rendered at 960x544 with 24 fps time
              steps, frames 0-17, stored at 12 fps (half speed: at 12 fps steps the texture changes
              too much between frames to be a plausible shot);
* ``night``   openclipart-svg soft-shaded drawings (SVG gradients, no flat cel fills) picked by the
              rule below, darkened and set on a dark blue gradient backdrop (a night scene), a
              diagonal camera pan, then seeded moving film grain. Darkness, backdrop and grain are
              a deterministic treatment of the clean render (:func:`night_grade`, ``film_grain``
              of :mod:`vsvqdsr.damage`); the GT is the treated clip. Rule: the same sorted list,
              files with ``NR % 500 == 51`` then those with ``NR % 500 == 301`` (neither is a training
              residue), not in the training list, whose SVG uses a gradient and whose render is
              soft-shaded (non-white coverage >= 25 %, share of the drawing on soft ramps
              (1 <= Sobel |g| < 24) >= 15 %); the first three kept.

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
from pathlib import Path

import numpy as np

from ..damage import film_grain
from ..log import get_logger
from .build import build_set, clip_seed, sha256_file

__all__ = ["EvalSetError", "REQUIRED_TOOLS", "TRAINING_SIF", "BENCHMARK_SIF", "default_render_cache", "missing_tools",
           "make_eval_set", "night_grade"]

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

#: synfig-examples files that training data may use (scripts/make_degrade_data.sh: base, MORE=1,
#: SOFT=1; scripts/make_sample.sh): never a benchmark source.
TRAINING_SIF = frozenset({
    "prologue_kid.sif", "pirates.sif", "macwolfen.sif", "backdrop.sif",
    "candy.sif", "japan.sif", "wallpaper.sif", "installer-logo.sif", "logo.sif", "star.sif", "cells.sif",
    "gradient.sif", "sparkle.sif", "z_depth_test.sif", "warpcube.sif"})
#: The benchmark's synfig-examples sources.
BENCHMARK_SIF = ("eye.sif", "headmo.sif", "eyes.sif", "noise.sif")
assert not TRAINING_SIF & set(BENCHMARK_SIF)


log = get_logger(__name__)


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
    if sif in TRAINING_SIF:
        raise EvalSetError(f"{sif} is training material (scripts/make_degrade_data.sh); not a benchmark source")
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
        log.info("eval build: rendering eye.sif (18 frames at 960x544; slow: synfig blurs)")
        _synfig("eye.sif", d / "eye.png", W, H, threads,
               ["--fps", str(FPS), "--begin-time", "36f", "--end-time", f"{36 + FRAMES - 1}f"])
    return np.stack([flatten(f) for f in files]), {
        "package": "synfig-examples", "version": _pkg_version("synfig-examples"), "license": "GPL-2+",
        "file": "eye.sif", "kind": "animation", "render": f"synfig -w {W} -h {H} --fps {FPS} frames 36-53"}


def still(sif: str, cache: Path, threads: int) -> Path:
    p = cache / f"{Path(sif).stem}.png"
    if not p.is_file():
        log.info(f"eval build: rendering {sif} (1920x1088 still)")
        _synfig(sif, p, 2 * W, 2 * H, threads, [])
    return p


def clip_still(sif: str, cache: Path, threads: int, move: dict) -> tuple[np.ndarray, dict]:
    big = flatten(still(sif, cache, threads))
    return camera(big, **move), {
        "package": "synfig-examples", "version": _pkg_version("synfig-examples"), "license": "GPL-2+",
        "file": sif, "kind": "camera move over a still", "render": f"synfig -w {2 * W} -h {2 * H}",
        "camera": {k: list(v) if isinstance(v, tuple) else v for k, v in move.items()}}


def clip_texture(cache: Path, threads: int) -> tuple[np.ndarray, dict]:
    d = cache / "noise"
    files = [d / f"noise.{n:04d}.png" for n in range(FRAMES)]
    if not all(f.is_file() for f in files):
        log.info("eval build: rendering noise.sif (18 frames at 960x544)")
        _synfig("noise.sif", d / "noise.png", W, H, threads,
                ["--fps", "24", "--begin-time", "0f", "--end-time", f"{FRAMES - 1}f"])
    return np.stack([flatten(f) for f in files]), {
        "package": "synfig-examples", "version": _pkg_version("synfig-examples"), "license": "GPL-2+",
        "file": "noise.sif", "kind": "animation (procedural noise texture, colour gradients)",
        "render": f"synfig -w {W} -h {H} --fps 24 frames 0-{FRAMES - 1}, stored at {FPS} fps (half speed)"}


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


def looks_soft(svg: str, rgb: np.ndarray) -> bool:
    """The soft-shading test of the ``night`` clip: the SVG uses a gradient, the drawing covers
    >= 25 % of its render and >= 15 % of the drawing lies on soft ramps (1 <= Sobel |g| < 24)."""
    import cv2

    try:
        if "Gradient" not in Path(svg).read_text(encoding="utf-8", errors="replace"):
            return False
    except OSError:
        return False
    im = rgb.astype(np.float32)
    y = (im @ np.array([0.299, 0.587, 0.114], np.float32)).astype(np.float32)
    nw = im.min(-1) < 240
    if nw.mean() < 0.25:
        return False
    g = np.abs(cv2.Sobel(y, cv2.CV_32F, 1, 0)) + np.abs(cv2.Sobel(y, cv2.CV_32F, 0, 1))
    return ((g >= 1) & (g < 24) & nw).sum() / nw.sum() >= 0.15


#: The night grade: drawing colours ``255 * (c / 255) ** NIGHT_GAMMA * NIGHT_GAIN``; backdrop a
#: vertical gradient from NIGHT_TOP to NIGHT_BOTTOM (RGB); grain ``film_grain`` with NIGHT_GRAIN.
NIGHT_GAMMA, NIGHT_GAIN = 1.6, 0.5
NIGHT_TOP, NIGHT_BOTTOM = (10.0, 12.0, 30.0), (40.0, 44.0, 78.0)
NIGHT_GRAIN = {"strength": 4.0, "size": 1.0, "chroma": 0.2}


def night_grade(rgba: np.ndarray, top: int, height: int) -> np.ndarray:
    """``H,W,4`` uint8 RGBA drawing -> ``H,W,3`` float64 RGB: darkened (:data:`NIGHT_GAMMA`,
    :data:`NIGHT_GAIN`) and composited over the backdrop gradient, whose rows ``top .. top + H``
    of a canvas ``height`` rows high it covers."""
    # a table of Python floats: numpy's vectorised power may differ in the last bit between CPUs
    lut = np.array([255.0 * (i / 255.0) ** NIGHT_GAMMA * NIGHT_GAIN for i in range(256)], np.float64)
    a = rgba[..., 3:4].astype(np.float64) / 255.0
    fg = lut[rgba[..., :3]]
    t = ((np.arange(rgba.shape[0], dtype=np.float64) + top) / max(1, height - 1))[:, None, None]
    bg = np.array(NIGHT_TOP) * (1.0 - t) + np.array(NIGHT_BOTTOM) * t
    return fg * a + bg * (1.0 - a)


def _soft_picks(cache: Path) -> list[tuple[str, np.ndarray]]:
    import cv2

    files = sorted(str(p) for p in CLIPART.rglob("*.svg"))
    banned = training_clipart()
    order = [f for r in (51, 301) for i, f in enumerate(files, 1) if i % 500 == r and f not in banned]
    picked: list[tuple[str, np.ndarray]] = []
    for f in order:
        png = cache / "night" / (Path(f).stem + ".png")
        if not png.is_file():
            png.parent.mkdir(parents=True, exist_ok=True)
            r = subprocess.run(["rsvg-convert", "-w", "800", f, "-o", str(png)], capture_output=True)
            if r.returncode != 0:
                continue
        img = cv2.imread(str(png), cv2.IMREAD_UNCHANGED)
        if img is None or img.ndim != 3 or img.shape[2] != 4:
            continue
        rgba = np.ascontiguousarray(img[..., [2, 1, 0, 3]])
        if looks_soft(f, flatten(png)):
            picked.append((f, rgba))
        if len(picked) == 3:
            break
    if len(picked) < 3:
        raise EvalSetError("fewer than 3 soft-shaded openclipart drawings passed the rule")
    return picked


def clip_night(cache: Path) -> tuple[np.ndarray, dict]:
    import cv2

    picked = _soft_picks(cache)
    tiles = []
    for _, rgba in picked:
        h, w = rgba.shape[:2]
        s = 900 / h
        t = cv2.resize(rgba, (max(1, round(w * s)), 900), interpolation=cv2.INTER_AREA)
        tiles.append(np.pad(t, ((0, 0), (90, 90), (0, 0))))  # transparent margins
    strip = np.concatenate(tiles, axis=1)
    sh, sw = strip.shape[:2]
    ch = max(sh, round(sw * H / W))
    top = (ch - sh) // 2
    canvas = np.zeros((ch, sw, 4), np.uint8)
    canvas[top:top + sh] = strip
    graded = np.clip(np.rint(night_grade(canvas, 0, ch)), 0, 255).astype(np.uint8)
    z = sw / (2 * W)
    move = {"z0": round(z, 4), "z1": round(1.1 * z, 4), "c0": (0.3, 0.45), "c1": (0.55, 0.55)}
    clean = camera(graded, **move)
    seed = clip_seed("night", "gt")
    frames = film_grain(clean, np.random.default_rng(seed), **NIGHT_GRAIN)
    return frames, {
        "package": "openclipart-svg", "version": _pkg_version("openclipart-svg"), "license": "public domain (CC0)",
        "files": [f.replace(str(CLIPART) + "/", "") for f, _ in picked],
        "kind": "camera pan over soft-shaded drawings, night grade and film grain (treatment)",
        "render": "rsvg-convert -w 800 (alpha kept); scaled to 900 px high, side by side, 90 px margins",
        "rule": ("sorted find, NR % 500 == 51 then NR % 500 == 301, not in the training list, SVG uses a "
                 "gradient, coverage >= 25 %, soft ramps (1 <= Sobel |g| < 24) >= 15 % of the drawing"),
        "treatment": {"night_grade": {"gamma": NIGHT_GAMMA, "gain": NIGHT_GAIN, "backdrop_top": list(NIGHT_TOP),
                                      "backdrop_bottom": list(NIGHT_BOTTOM)},
                      "film_grain": dict(NIGHT_GRAIN), "grain_seed": seed,
                      "grain_rule": "numpy.random.default_rng(seed), seed = first 8 bytes of sha256('night/gt')"},
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
    """Render the six clean clips and build the benchmark set in ``out`` (replaced as a whole).

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
    clips["texture"], sources["texture"] = clip_texture(cache, threads)
    clips["night"], sources["night"] = clip_night(cache)
    for name, fr in clips.items():
        if fr.shape != (FRAMES, H, W, 3):
            raise EvalSetError(f"clip {name} has shape {fr.shape}, expected {(FRAMES, H, W, 3)}")
    from .build import SEVERITIES

    log.info(f"eval build: degrading ({len(SEVERITIES)} severities x {len(clips)} clips, real ffmpeg encodes)")
    result = build_set(out, clips, sources, fps=FPS, extra={
        "built_by": "vqdsr eval build (vsvqdsr.evaluation.sources)", "builder_sha256": sha256_file(__file__)})
    log.info(f"eval build: wrote {result} ({sum(f.shape[0] for f in clips.values())} GT frames)")
    return result
