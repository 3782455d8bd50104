"""The GPU check's steps; each runs in its own process inside the kit's venv.

``python -m vsvqdsr.gpucheck.steps NAME --root R --out O --work W --kit K --result FILE [--dry-run]``
writes one JSON object to FILE: ``status`` (pass / fail / skip), ``reason``, ``checks``, ``figures``,
``tables`` (see :mod:`.summary`). Steps use the public entry points only: ``vsvqdsr.Upscale``,
``vsvqdsr.Degrade``, ``vsvqdsr.models()``, ``vspipe`` and ``vqdsr bench`` as processes, pytest.

Quality is compared as PSNR over RGB in [0, 1] (peak 1) between a GPU output and the CPU output of
the same filter; the pass thresholds are sanity bounds that catch a broken path (wrong layout,
overflow in half precision, a recurrence that drifts), the figures say how close it is.
"""
from __future__ import annotations

import argparse
import json
import math
import os
import re
import statistics
import subprocess
import sys
import textwrap
import time
import traceback
from pathlib import Path
from typing import Any, Callable

from .plan import SAMPLE, SAMPLE_FRAMES, SCENE2

#: Minimum per-frame PSNR (dB) of a GPU output against the CPU output.
PSNR_MIN = {"fp32": 50.0, "fp16": 40.0}
#: Degrade: CUDA vs CPU may pick a different codebook entry where two distances nearly tie.
DEGRADE_PSNR_MIN = 30.0
#: ``VSVQDSR_GPUCHECK_REHEARSAL=1`` (``gpu_check.sh --rehearse``): run the GPU steps on the CPU
#: backend over a 48x32 crop of the sample, to try the steps' plumbing without a GPU. Its figures
#: say nothing about a GPU.
REHEARSAL = os.environ.get("VSVQDSR_GPUCHECK_REHEARSAL") == "1"
GPU = "cpu" if REHEARSAL else "cuda"
SAMPLE_H, SAMPLE_W = 180, 320
LR_H, LR_W = (32, 48) if REHEARSAL else (SAMPLE_H, SAMPLE_W)


class Skip(Exception):
    """The step cannot run here; the message says why."""


class Report:
    def __init__(self, ctx: "Ctx") -> None:
        self.ctx = ctx
        self.checks: list[dict] = []
        self.figures: dict[str, Any] = {}
        self.tables: list[dict] = []

    def check(self, name: str, ok: bool, detail: str = "") -> bool:
        self.checks.append({"name": name, "ok": bool(ok), "detail": detail})
        return bool(ok)

    def table(self, title: str, columns: list[str], rows: list[list]) -> None:
        self.tables.append({"title": title, "columns": columns, "rows": rows})


class Ctx:
    def __init__(self, a: argparse.Namespace) -> None:
        self.root = Path(a.root).resolve()
        self.out = Path(a.out).resolve()
        self.work = Path(a.work).resolve()
        self.kit = Path(a.kit).resolve()
        self.dry_run = bool(a.dry_run)
        self.bin = Path(sys.executable).parent
        self.sample = self.root / SAMPLE
        self.ref = self.work / "cpu-reference.rgbs"

    @property
    def vspipe(self) -> str:
        return str(self.bin / "vspipe")


# -- helpers ----------------------------------------------------------------------------------------

RENDER_VPY = textwrap.dedent('''\
    # Upscale the sample with the options in -a opts=JSON; RGBS out (RGBH converted losslessly);
    # -a crop=HxW keeps the top-left HxW of the source.
    import json, threading
    import vapoursynth as vs
    import vsvqdsr
    core = vs.core
    stats = {}
    clip = core.bs.VideoSource(src, cachemode=0)
    if "crop" in globals():
        ch, cw = (int(v) for v in crop.split("x"))
        clip = core.std.CropAbs(clip, width=cw, height=ch, left=0, top=0)
    up = vsvqdsr.Upscale(clip, stats=stats, **json.loads(opts))
    if up.format.id != vs.RGBS:
        up = core.resize.Point(up, format=vs.RGBS)
    lock = threading.Lock()
    def dump(n, f):
        with lock:
            with open(stats_path, "w") as fh:
                json.dump(stats, fh)
        return f
    core.std.ModifyFrame(up, up, dump).set_output()
''')


def _script(ctx: Ctx) -> Path:
    path = ctx.work / "render.vpy"
    if not path.is_file():
        path.write_text(RENDER_VPY)
    return path


def frame_bytes(h: int = LR_H, w: int = LR_W) -> int:
    return 3 * 4 * h * 4 * w * 4


def vspipe_render(ctx: Ctx, opts: dict, extra: list[str], on_frame: Callable[[int, Any], None],
                  tag: str, timeout: float = 170, size: tuple[int, int] = (LR_H, LR_W)) -> dict:
    """Run vspipe on the render script, streaming raw RGBS frames (planes R, G, B) to ``on_frame``.

    Returns ``{"frames", "seconds", "fps", "stats"}``; raises RuntimeError with vspipe's stderr."""
    import numpy as np

    stats_path = ctx.work / f"stats-{tag}.json"
    stats_path.unlink(missing_ok=True)
    err_path = ctx.work / f"vspipe-{tag}.err"
    args = [ctx.vspipe, "-a", f"src={ctx.sample}", "-a", f"opts={json.dumps(opts)}", "-a",
            f"stats_path={stats_path}", *extra, str(_script(ctx)), "-"]
    if size != (SAMPLE_H, SAMPLE_W):
        args[1:1] = ["-a", f"crop={size[0]}x{size[1]}"]
    fb = frame_bytes(*size)
    n = 0
    t = time.perf_counter()
    with open(err_path, "w") as err:
        proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=err, cwd=ctx.work)
        try:
            while True:
                buf = proc.stdout.read(fb)
                if not buf:
                    break
                if len(buf) != fb:
                    raise RuntimeError(f"vspipe ({tag}): truncated frame {n} ({len(buf)} of {fb} bytes)")
                # vspipe writes RGB planes as G, B, R (like ffmpeg's gbrpf32); reorder to R, G, B
                arr = np.frombuffer(buf, np.float32).reshape(3, 4 * size[0], 4 * size[1])[[2, 0, 1]]
                on_frame(n, arr)
                n += 1
            rc = proc.wait(timeout=max(1.0, timeout - (time.perf_counter() - t)))
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    secs = time.perf_counter() - t
    if rc != 0:
        raise RuntimeError(f"vspipe ({tag}) exit {rc}: {err_path.read_text()[-600:].strip()}")
    stats = json.loads(stats_path.read_text()) if stats_path.is_file() else {}
    return {"frames": n, "seconds": secs, "fps": n / secs if secs else None, "stats": stats}


def psnr(a, b) -> float:
    import numpy as np

    mse = float(np.mean((np.asarray(a, np.float64) - np.asarray(b, np.float64)) ** 2))
    return math.inf if mse == 0 else 10 * math.log10(1.0 / mse)


class FrameStats:
    """Per-frame PSNR and max abs difference of outputs against a reference."""

    def __init__(self) -> None:
        self.psnr: list[float] = []
        self.maxabs = 0.0
        self.finite = True

    def add(self, out, ref) -> None:
        import numpy as np

        out = np.asarray(out, np.float32)
        if not np.isfinite(out).all():
            self.finite = False
        self.psnr.append(psnr(out, ref))
        self.maxabs = max(self.maxabs, float(np.abs(out - ref).max()))

    def summary(self) -> dict:
        finite = [p for p in self.psnr if math.isfinite(p)]
        return {"frames": len(self.psnr), "psnr_min": min(self.psnr) if self.psnr else None,
                "psnr_mean": statistics.fmean(finite) if finite else (math.inf if self.psnr else None),
                "psnr_first": self.psnr[0] if self.psnr else None, "psnr_last": self.psnr[-1] if self.psnr else None,
                "max_abs": self.maxabs, "finite": self.finite}


def reference(ctx: Ctx):
    """The cpu-reference step's vspipe render of the whole sample, ``(126, 3, 4h, 4w)`` RGB."""
    import numpy as np

    if not ctx.ref.is_file():
        raise Skip("no CPU reference (the cpu-reference step failed or did not run)")
    return np.memmap(ctx.ref, np.float32, "r").reshape(-1, 3, 4 * LR_H, 4 * LR_W)


def scene2_reference(ctx: Ctx):
    """The CPU output over scene 2, indexed by frame number: from the cpu-reference render when
    there is one, else computed here with ``Upscale(backend="cpu")`` (needs no vspipe)."""
    import numpy as np

    import vsvqdsr

    if ctx.ref.is_file():
        return reference(ctx)
    a, b = SCENE2
    path = ctx.work / "cpu-scene2.npy"
    if not path.is_file():
        up = vsvqdsr.Upscale(source(ctx)[a:b], backend="cpu")
        arr = np.stack([x for _, x in clip_frames(up)])
        np.save(ctx.work / "cpu-scene2.part.npy", arr)
        (ctx.work / "cpu-scene2.part.npy").replace(path)
    arr = np.load(path, mmap_mode="r")
    return {a + i: arr[i] for i in range(b - a)}


def clip_frames(clip, start: int = 0, end: int | None = None):
    """Yield ``(n, float32 R,G,B array)`` of a clip's frames, linear."""
    import numpy as np

    end = clip.num_frames if end is None else end
    for n in range(start, end):
        f = clip.get_frame(n)
        yield n, np.stack([np.asarray(f[p], np.float32) for p in range(f.format.num_planes)])


def source(ctx: Ctx):
    """The sample as a clip (YUV420P8), cropped to ``LR_H x LR_W`` in a rehearsal."""
    import vapoursynth as vs

    clip = vs.core.bs.VideoSource(str(ctx.sample), cachemode=0)
    if (LR_H, LR_W) != (SAMPLE_H, SAMPLE_W):
        clip = vs.core.std.CropAbs(clip, width=LR_W, height=LR_H, left=0, top=0)
    return clip


def _cuda_name() -> str:
    import torch

    if REHEARSAL:
        return "REHEARSAL on the CPU, figures meaningless"

    return torch.cuda.get_device_name(0)


# -- steps ------------------------------------------------------------------------------------------

def step_imports(ctx: Ctx, r: Report) -> None:
    import importlib
    from importlib import metadata

    import torch  # first: the GPU steps run whenever torch sees a device, whatever else fails here

    r.figures["torch"] = torch.__version__
    r.figures["torch_cuda_build"] = torch.version.cuda
    r.figures["cuda_available"] = bool(torch.cuda.is_available())
    if torch.cuda.is_available():
        props = torch.cuda.get_device_properties(0)
        r.figures["cuda_device"] = f"{props.name} (sm_{props.major}{props.minor}, {props.total_memory / 2**30:.0f} GiB)"
        r.figures["cuda_devices"] = torch.cuda.device_count()
    import vsvqdsr

    r.check("vsvqdsr is the working tree's", Path(vsvqdsr.__file__).resolve().is_relative_to(ctx.root),
            vsvqdsr.__file__)
    import vapoursynth as vs

    core = vs.core
    r.figures["vapoursynth"] = f"R{core.version_number()}"
    r.check("vapoursynth comes from the venv", Path(vs.__file__).resolve().is_relative_to(Path(sys.prefix).resolve()),
            vs.__file__)
    for ns, what in (("bs", "bestsource"), ("scd", "scenechange"), ("resize", "resize")):
        r.check(f"VapourSynth plugin {ns} ({what}) loaded", hasattr(core, ns))
    failed = []
    for mod in ("numpy", "safetensors", "filelock", "tqdm", "onnx", "pytest", "packaging"):
        try:
            importlib.import_module(mod)
        except Exception as e:  # noqa: BLE001
            failed.append(f"{mod}: {type(e).__name__}: {e}")
    r.check("runtime and test imports", not failed, "; ".join(failed))
    man = json.loads((ctx.kit / "manifest.json").read_text())
    from packaging.markers import default_environment
    from packaging.requirements import Requirement

    env = dict(default_environment(), extra="")
    wrong, unmet = [], []
    for w in man["wheels"]:
        try:
            dist = metadata.distribution(w["dist"])
        except metadata.PackageNotFoundError:
            wrong.append(f"{w['dist']} not installed")
            continue
        if dist.version != w["version"]:
            wrong.append(f"{w['dist']} {dist.version} seen, kit has {w['version']}")
        for req in dist.requires or []:
            q = Requirement(req)
            if q.marker is not None and not q.marker.evaluate(env):
                continue
            try:
                have = metadata.version(q.name)
            except metadata.PackageNotFoundError:
                unmet.append(f"{w['dist']} needs {q} (missing)")
                continue
            if q.specifier and not q.specifier.contains(have, prereleases=True):
                unmet.append(f"{w['dist']} needs {q}, found {have}")
    r.check("the kit's versions are the ones imported", not wrong, "; ".join(wrong))
    r.check("every requirement of the kit's wheels is met", not unmet, "; ".join(unmet))
    models = vsvqdsr.models()
    r.check("model vqdsr-ft (shipped) resolves", "vqdsr-ft" in models, ", ".join(models))
    r.check("model degrade-lite (shipped) present", (ctx.root / "vsvqdsr/models/degrade-lite.safetensors").is_file())
    res = subprocess.run([ctx.vspipe, "--version"], capture_output=True, text=True, timeout=60)
    r.check("vspipe --version runs", res.returncode == 0, (res.stdout + res.stderr).strip().splitlines()[0]
            if (res.stdout + res.stderr).strip() else f"exit {res.returncode}")
    try:
        import tensorrt

        r.figures["tensorrt"] = tensorrt.__version__
    except Exception as e:  # noqa: BLE001 - absent is the normal case on a bare machine
        r.figures["tensorrt"] = f"not importable ({type(e).__name__})"


def step_cpu_smoke(ctx: Ctx, r: Report) -> None:
    import numpy as np

    frames = []
    h, w = 64, 96  # a crop of the sample: the CPU may be slow, this checks the plumbing
    res = vspipe_render(ctx, {"backend": "cpu"}, ["-s", "0", "-e", "1"], lambda n, a: frames.append(a.copy()),
                        "smoke", size=(h, w))
    r.figures.update({"frames": res["frames"], "s_per_frame": res["seconds"] / max(1, res["frames"]),
                      "steps": res["stats"].get("steps")})
    r.check(f"vspipe gave 2 frames of {4 * w}x{4 * h}", res["frames"] == 2)
    ok = bool(frames) and all(np.isfinite(f).all() and -0.5 < float(f.min()) and float(f.max()) < 1.5
                              and float(f.std()) > 0.01 for f in frames)
    r.check("frames finite, in [-0.5, 1.5], not flat", ok,
            "; ".join(f"min {f.min():.3f} max {f.max():.3f} std {f.std():.3f}" for f in frames))
    r.check("2 network steps for 2 frames", res["stats"].get("steps") == 2, json.dumps(res["stats"]))


def step_gpu_tests(ctx: Ctx, r: Report) -> None:
    import xml.etree.ElementTree as ET

    files = sorted(str(p.relative_to(ctx.root)) for p in (ctx.root / "plugin_tests").glob("test_*.py")
                   if "mark.gpu" in p.read_text())
    junit = ctx.work / "gpu-tests.xml"
    cmd = [sys.executable, "-m", "pytest", "-m", "gpu", "-q", "-p", "no:cacheprovider", "-rA",
           "--continue-on-collection-errors", f"--junitxml={junit}", *files]
    res = subprocess.run(cmd, cwd=ctx.root, capture_output=True, text=True, timeout=230)
    (ctx.out / "gpu-tests.txt").write_text(res.stdout[-20000:] + res.stderr[-5000:])
    if not junit.is_file():
        r.check("pytest ran", False, f"exit {res.returncode}: {(res.stdout + res.stderr)[-400:]}")
        return
    rows, counts = [], {"passed": 0, "failed": 0, "error": 0, "skipped": 0, "not runnable here": 0}
    for case in ET.parse(junit).getroot().iter("testcase"):
        name = f"{case.get('classname', '')}::{case.get('name', '')}"
        outcome, msg, text = "passed", "", ""
        for tag in ("failure", "error", "skipped"):
            el = case.find(tag)
            if el is not None:
                outcome = {"failure": "failed", "error": "error", "skipped": "skipped"}[tag]
                text = el.text or ""
                errors = [ln.lstrip("E ").strip() for ln in text.splitlines()
                          if re.search(r"\w+(Error|Exception): ", ln)]
                msg = (errors[-1] if errors else (el.get("message") or text).strip().split("\n")[0])[:200]
                break
        if outcome == "error" and "ModuleNotFoundError" in text and not case.get("name", "").startswith("test_"):
            outcome = "not runnable here"  # a test module that imports something the kit lacks
        counts[outcome] += 1
        rows.append([name, outcome, msg])
    r.table("gpu-marked tests", ["test", "outcome", "message"], rows)
    r.figures.update(counts)
    r.check("at least one gpu test ran", counts["passed"] + counts["failed"] > 0)
    r.check("no gpu test failed or errored", counts["failed"] == 0 and counts["error"] == 0,
            "; ".join(f"{n}: {m}" for n, o, m in rows if o in ("failed", "error"))[:600])


def step_cpu_reference(ctx: Ctx, r: Report) -> None:
    import numpy as np

    tmp = ctx.ref.with_suffix(".part")
    with open(tmp, "wb") as f:
        res = vspipe_render(ctx, {"backend": "cpu"}, [], lambda n, a: f.write(np.ascontiguousarray(a).tobytes()),
                            "cpu-reference", timeout=230)
    tmp.replace(ctx.ref)
    r.figures.update({"frames": res["frames"], "fps": res["fps"], "steps": res["stats"].get("steps"),
                      "fallback_steps": res["stats"].get("fallback_steps")})
    r.check(f"{SAMPLE_FRAMES} frames", res["frames"] == SAMPLE_FRAMES)
    r.check("each step once (linear vspipe)", res["stats"].get("steps") == SAMPLE_FRAMES, json.dumps(res["stats"]))


def step_parity(ctx: Ctx, r: Report) -> None:
    import vsvqdsr

    ref = scene2_reference(ctx)
    a, b = SCENE2
    src = source(ctx)[a:b]
    rows = []
    outs = {}
    for fp16 in (False, True):
        for graphs in (False, True):
            prec = "fp16" if fp16 else "fp32"
            label = f"cuda {prec}" + (" + CUDA graphs" if graphs else "")
            up = vsvqdsr.Upscale(src, backend=GPU, fp16=fp16, **({} if REHEARSAL else {"cuda_graphs": graphs}))
            fs = FrameStats()
            kept = []
            t = None
            for n, arr in clip_frames(up):
                if n == 1:
                    t = time.perf_counter()
                fs.add(arr, ref[a + n])
                if n in (0, b - a - 1):
                    kept.append(arr)
            fps = (b - a - 1) / (time.perf_counter() - t)
            s = fs.summary()
            outs[label] = kept
            rows.append([label, s["frames"], s["psnr_min"], s["psnr_mean"], s["psnr_first"], s["psnr_last"],
                         s["max_abs"], fps])
            r.check(f"{label}: finite, every frame >= {PSNR_MIN[prec]:.0f} dB against the CPU",
                    s["finite"] and s["psnr_min"] >= PSNR_MIN[prec], f"min {s['psnr_min']:.2f} dB")
    for prec in ("fp32", "fp16"):
        e, g = outs[f"cuda {prec}"], outs[f"cuda {prec} + CUDA graphs"]
        r.figures[f"{prec}_graphs_vs_eager_psnr_last"] = psnr(g[-1], e[-1])
    r.table(f"Upscale (vqdsr-ft) on scene 2 of the sample, frames {a}-{b - 1}, against the CPU render "
            f"({_cuda_name()})", ["variant", "frames", "PSNR min", "PSNR mean", "first", "last", "max abs diff",
                                  "fps (in-process, linear)"], rows)


def step_vspipe(ctx: Ctx, r: Report) -> None:
    ref = reference(ctx)
    rows = []
    for fp16 in (False, True):
        prec = "fp16" if fp16 else "fp32"
        fs = FrameStats()
        res = vspipe_render(ctx, {"backend": GPU, "fp16": fp16}, [], lambda n, arr: fs.add(arr, ref[n]),
                            f"cuda-{prec}")
        s = fs.summary()
        rows.append([f"cuda {prec}", res["frames"], s["psnr_min"], s["psnr_mean"], s["max_abs"], res["fps"],
                     res["stats"].get("steps")])
        r.check(f"{prec}: {SAMPLE_FRAMES} frames, each step once", res["frames"] == SAMPLE_FRAMES
                and res["stats"].get("steps") == SAMPLE_FRAMES, json.dumps(res["stats"]))
        r.check(f"{prec}: finite, every frame >= {PSNR_MIN[prec]:.0f} dB against the CPU render",
                s["finite"] and s["psnr_min"] is not None and s["psnr_min"] >= PSNR_MIN[prec],
                f"min {s['psnr_min']} dB")
    r.table(f"vspipe, whole sample (126 frames, a cut at 84), backend=cuda vs backend=cpu ({_cuda_name()})",
            ["render", "frames", "PSNR min", "PSNR mean", "max abs diff", "fps (vspipe, incl. start-up)", "steps"],
            rows)


def step_exactly_once(ctx: Ctx, r: Report) -> None:
    import numpy as np

    full = ctx.work / "cuda-default.rgbs"
    opts = {"backend": GPU}
    with open(full, "wb") as f:
        base = vspipe_render(ctx, opts, [], lambda n, a: f.write(np.ascontiguousarray(a).tobytes()), "eo-default")
    ref = np.memmap(full, np.float32, "r").reshape(-1, 3, 4 * LR_H, 4 * LR_W)
    cut = SCENE2[0]
    runs = [("-r 1", ["-r", "1"], 0, SAMPLE_FRAMES - 1, SAMPLE_FRAMES),
            ("-s 90 -e 110 (mid scene 2)", ["-s", "90", "-e", "110"], 90, 110, 110 - cut + 1),
            ("-s 80 -e 90 (across the cut)", ["-s", "80", "-e", "90"], 80, 90, cut + (90 - cut + 1))]
    rows = [["default requests", base["frames"], "(reference)", base["stats"].get("steps"), SAMPLE_FRAMES,
             base["stats"].get("fallback_steps")]]
    r.check("default requests: each step once", base["stats"].get("steps") == SAMPLE_FRAMES
            and base["stats"].get("fallback_steps") == 0, json.dumps(base["stats"]))
    for i, (label, extra, s, e, want_steps) in enumerate(runs):
        diff = {"max": 0.0, "equal": True}

        def cmp(n, a, s=s, diff=diff):
            if not np.array_equal(a, ref[s + n]):
                diff["equal"] = False
                diff["max"] = max(diff["max"], float(np.abs(a - ref[s + n]).max()))

        res = vspipe_render(ctx, opts, extra, cmp, f"eo-{i}")
        same = diff["equal"] and res["frames"] == e - s + 1
        rows.append([label, res["frames"], "identical" if diff["equal"] else f"max abs diff {diff['max']:.3g}",
                     res["stats"].get("steps"), want_steps, res["stats"].get("fallback_steps")])
        r.check(f"{label}: same bytes as the default render", same, f"max abs diff {diff['max']:.3g}")
        r.check(f"{label}: {want_steps} network steps", res["stats"].get("steps") == want_steps,
                json.dumps(res["stats"]))
    full.unlink(missing_ok=True)
    r.table("vspipe, backend=cuda fp32, whole sample or a range", ["run", "frames", "vs default render",
                                                                     "steps", "expected steps", "fallback"], rows)


def step_bench(ctx: Ctx, r: Report) -> None:
    js = ctx.out / "bench.json"
    sizes, only = ("32x48", "channels_last") if REHEARSAL else ("180x320,480x720,1080x1920", "cuda,tensorrt")
    cmd = [sys.executable, "-m", "vsvqdsr.cli.main", "bench", "--sizes", sizes, "--frames", "10", "--warmup", "2",
           "--only", only, "--max-seconds", "2", "--json", str(js)]
    res = subprocess.run(cmd, cwd=ctx.work, capture_output=True, text=True, timeout=290)
    (ctx.out / "bench.txt").write_text(res.stdout + "\n--- stderr ---\n" + res.stderr[-8000:])
    r.check("vqdsr bench exit 0", res.returncode == 0, res.stderr.strip()[-300:])
    if not js.is_file():
        return
    data = json.loads(js.read_text())
    info = data.get("info", {})
    peaks = info.get("peak_gflops", {})
    r.figures.update({"model": info.get("model"), "gpu_fp16_gemm_gflops": peaks.get("gpu-fp16"),
                      "gpu_fp32_gemm_gflops": peaks.get("gpu-fp32"),
                      "macs_per_lr_pixel": info.get("macs_per_lr_pixel")})
    rows, failed = [], []
    for row in data.get("rows", []):
        if row.get("kind") != "step":
            continue
        share = row.get("peak_share")
        rows.append([row["size"], row["label"], row.get("ms"), row.get("fps"),
                     None if share is None else 100 * share, row.get("speedup"), row.get("note", "")])
        gpu = "(cpu)" not in row["label"]
        if gpu and (row.get("ms") is None or str(row.get("note", "")).startswith("failed")):
            failed.append(f"{row['size']} {row['label']}: {row.get('note')}")
    r.check("every GPU candidate timed at every size", bool(rows) and not failed, "; ".join(failed)[:600])
    r.table("vqdsr bench (step, median of 10; % peak = share of the fp16 GEMM peak for fp16 rows, "
            "fp32 for fp32 rows)", ["LR size", "backend", "ms/frame", "fps", "% peak", "vs CPU NCHW", "note"], rows)


def _two_scene_clip(h: int, w: int, length: int):
    import vapoursynth as vs

    core = vs.core
    scenes = []
    for i, colour in enumerate(([0.2, 0.5, 0.7], [0.8, 0.3, 0.1])):
        c = core.std.BlankClip(format=vs.RGBH, width=w, height=h, length=length, color=colour, keep=True)
        c = core.std.SetFrameProps(c, _SceneChangePrev=0)
        scenes.append(core.std.SetFrameProps(c[0], _SceneChangePrev=1) + c[1:])
    return scenes[0] + scenes[1]


def step_streams(ctx: Ctx, r: Report) -> None:
    import torch
    import vapoursynth as vs

    import vsvqdsr

    core = vs.core
    core.num_threads = max(4, core.num_threads)
    bench = ctx.out / "bench.json"
    info = json.loads(bench.read_text()).get("info", {}) if bench.is_file() else {}
    macs = info.get("macs_per_lr_pixel")
    peak = (info.get("peak_gflops") or {}).get("gpu-fp16")
    rows = []
    sizes = (((32, 48), 4),) if REHEARSAL else (((180, 320), 24), ((480, 720), 12), ((1080, 1920), 6))
    for (h, w), length in sizes:
        fps_by = {}
        for ns in (1, 2):
            stats: dict = {}
            clip = _two_scene_clip(h, w, length)
            up = vsvqdsr.Upscale(clip, backend=GPU, fp16=True, num_streams=ns, scene_detect=False, stats=stats)
            up.get_frame(0)
            up.get_frame(length)
            if not REHEARSAL:
                torch.cuda.synchronize()
            t = time.perf_counter()
            for i in range(1, length):
                fa, fb = up.get_frame_async(i), up.get_frame_async(length + i)
                fa.result()
                fb.result()
            secs = time.perf_counter() - t
            fps = 2 * (length - 1) / secs
            fps_by[ns] = fps
            share = (2 * macs * h * w * fps / 1e9 / peak * 100) if macs and peak else None
            rows.append([f"{h}x{w}", ns, 2 * (length - 1), fps, share, stats.get("steps")])
            r.check(f"{h}x{w} num_streams={ns}: each step once", stats.get("steps") == 2 * length, json.dumps(stats))
            del up
        r.figures[f"{h}x{w}_streams2_vs_1"] = fps_by[2] / fps_by[1]
    r.table(f"Upscale (vqdsr-ft), RGBH in/out, backend=cuda fp16, two scenes requested in parallel "
            f"(get_frame_async), {_cuda_name()}; % peak of the fp16 GEMM rate from the bench step",
            ["LR size", "num_streams", "frames timed", "fps", "% fp16 peak", "steps"], rows)


def step_degrade(ctx: Ctx, r: Report) -> None:
    import numpy as np
    import vapoursynth as vs

    import vsvqdsr

    core = vs.core
    src = source(ctx)
    frames = src[0:4] + src[84:88]
    outs: dict[str, list] = {}
    props: dict[str, list] = {}
    rows = []
    for backend in ("cpu", "cuda"):
        d = vsvqdsr.Degrade(frames, backend=backend if backend == "cpu" else GPU, seed=7)
        d.get_frame(0)
        t = time.perf_counter()
        got = []
        for n in range(d.num_frames):
            f = d.get_frame(n)
            got.append(np.stack([np.asarray(f[p], np.float32) for p in range(3)]))
            props.setdefault(backend, []).append(tuple(f.props[k] for k in ("VQDSR_KTop", "VQDSR_KMid",
                                                                            "VQDSR_KBottom")))
        outs[backend] = got
        rows.append([f"{backend} {LR_W}x{LR_H}", (time.perf_counter() - t) * 1000 / d.num_frames])
    r.check("same per-frame ranks on cuda and cpu", props["cpu"] == props["cuda"])
    ps = [psnr(c, g) for c, g in zip(outs["cpu"], outs["cuda"])]
    r.figures.update({"psnr_cuda_vs_cpu_min": min(ps), "psnr_cuda_vs_cpu_mean": statistics.fmean(
        [p for p in ps if math.isfinite(p)] or [math.inf])})
    r.check("cuda output finite", all(np.isfinite(g).all() for g in outs["cuda"]))
    r.check(f"cuda vs cpu >= {DEGRADE_PSNR_MIN:.0f} dB on every frame", min(ps) >= DEGRADE_PSNR_MIN,
            f"min {min(ps):.2f} dB")
    d2 = vsvqdsr.Degrade(frames, backend=GPU, seed=7)
    rev = [None] * d2.num_frames
    for n in reversed(range(d2.num_frames)):
        f = d2.get_frame(n)
        rev[n] = np.stack([np.asarray(f[p], np.float32) for p in range(3)])
    r.check("cuda: reverse request order gives the same bytes", all(np.array_equal(x, y)
                                                                     for x, y in zip(rev, outs["cuda"])))
    if not REHEARSAL:
        big = core.resize.Bicubic(frames[:3], width=1280, height=720)
        d3 = vsvqdsr.Degrade(big, backend=GPU, seed=7)
        d3.get_frame(0)
        t = time.perf_counter()
        for n in range(1, 3):
            d3.get_frame(n)
        rows.append(["cuda 1280x720", (time.perf_counter() - t) * 1000 / 2])
    r.table(f"Degrade (degrade-lite, paper ranks), {_cuda_name()}", ["backend, size", "ms/frame"], rows)


def step_tensorrt(ctx: Ctx, r: Report) -> None:
    try:
        import tensorrt
    except Exception as e:  # noqa: BLE001
        raise Skip(f"import tensorrt failed ({type(e).__name__}: {e})") from None
    import vsvqdsr

    ref = scene2_reference(ctx)
    a, b = SCENE2
    src = source(ctx)[a:b]
    rows = []
    for fp16 in (False, True):
        prec = "fp16" if fp16 else "fp32"
        t0 = time.perf_counter()
        up = vsvqdsr.Upscale(src, backend="trt", fp16=fp16, engine_dir=str(ctx.work / "engines"))
        up.get_frame(0)
        build = time.perf_counter() - t0
        fs = FrameStats()
        t = time.perf_counter()
        for n, arr in clip_frames(up):
            fs.add(arr, ref[a + n])
        fps = (b - a) / (time.perf_counter() - t)
        s = fs.summary()
        rows.append([f"trt {prec}", s["frames"], s["psnr_min"], s["psnr_mean"], s["max_abs"], fps, build])
        r.check(f"trt {prec}: finite, every frame >= {PSNR_MIN[prec]:.0f} dB against the CPU",
                s["finite"] and s["psnr_min"] >= PSNR_MIN[prec], f"min {s['psnr_min']:.2f} dB")
    r.table(f"Upscale backend=trt (TensorRT {tensorrt.__version__}) on scene 2 vs the CPU render",
            ["variant", "frames", "PSNR min", "PSNR mean", "max abs diff", "fps", "first frame s (engine)"], rows)


def _clean(v: Any) -> Any:
    """Strict JSON: non-finite floats as the strings "inf", "-inf", "nan"; numpy scalars as Python."""
    if hasattr(v, "item") and not isinstance(v, (list, dict, str)):
        v = v.item()
    if isinstance(v, float) and not math.isfinite(v):
        return "nan" if v != v else ("inf" if v > 0 else "-inf")
    if isinstance(v, dict):
        return {k: _clean(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [_clean(x) for x in v]
    return v


STEP_FUNCS: dict[str, Callable[[Ctx, Report], None]] = {
    "imports": step_imports, "cpu-smoke": step_cpu_smoke, "gpu-tests": step_gpu_tests,
    "cpu-reference": step_cpu_reference, "parity": step_parity, "vspipe": step_vspipe,
    "exactly-once": step_exactly_once, "bench": step_bench, "streams": step_streams, "degrade": step_degrade,
    "tensorrt": step_tensorrt,
}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m vsvqdsr.gpucheck.steps")
    p.add_argument("step", choices=sorted(STEP_FUNCS))
    for opt in ("--root", "--out", "--work", "--kit", "--result"):
        p.add_argument(opt, required=True)
    p.add_argument("--dry-run", action="store_true")
    a = p.parse_args(argv)
    ctx = Ctx(a)
    rep = Report(ctx)
    status, reason = "pass", ""
    try:
        STEP_FUNCS[a.step](ctx, rep)
        if not all(c["ok"] for c in rep.checks):
            status, reason = "fail", "; ".join(c["name"] for c in rep.checks if not c["ok"])
    except Skip as e:
        status, reason = "skip", str(e)
    except Exception as e:  # noqa: BLE001 - reported; the run goes on with the next step
        traceback.print_exc()
        status, reason = "fail", f"{type(e).__name__}: {e}"[:500]
    out = {"status": status, "reason": reason, "checks": rep.checks, "figures": rep.figures, "tables": rep.tables}
    Path(a.result).write_text(json.dumps(_clean(out), indent=1, default=str, allow_nan=False))
    return 0


if __name__ == "__main__":
    sys.exit(main())
