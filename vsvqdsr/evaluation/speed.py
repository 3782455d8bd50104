"""Speed benchmark harness of ``vqdsr bench`` (the CLI only parses options and prints the table).

``--what upscale``: for each LR size, every candidate VSR step runner is created and warmed up,
then timed in interleaved rounds (one step of each candidate per round, so a change in machine load
hits all candidates alike); the median per candidate is reported as ms/frame and fps, with the
speed-up against torch eager NCHW fp32 (measured in the same run) and the share of the machine's
measured peak of the precision the row really ran (fp32 or bf16 GEMM GFLOP/s on the CPU, both timed
in the same rounds; fp16/fp32 GEMM on the GPU for GPU rows). CPU candidates run in f32 and bf16; a
bf16 request that compiles to f32 (a CPU without bf16) shows as f32 in the row's ``precision``.
Optionally a full ``vsvqdsr.Upscale`` render of N frames per backend, judged against the limit of
the precision it ran (:func:`render_verdicts`), and vs-mlrt's OpenVINO plugin on the same network,
exported stateless, beside ``Upscale`` (:func:`_bench_vsmlrt`).

``--what degrade``: the degrader (``vqdsr.Degrade``'s network) at each frame size: today's torch
eager path (:meth:`MultiScaleVQGAN.degrade`, the baseline) against the
:class:`~vsvqdsr.backends.image.DegradeRunner` on every available backend/engine, the same ranks
for every candidate in a round (the paper's draws: top 1, middle 1, bottom U{1..50} per round).

``--what sisr``: a single-image SR model: the torch path (:func:`~vsvqdsr.training.enhance.sr_image`
is not imported here; the baseline is the same tiling in torch eager NCHW) against the
:class:`~vsvqdsr.backends.image.SISRRunner` on every backend/engine.

Both image graphs' CPU rows carry the precision their engine ran (the 'ran' column: an OpenVINO
bf16 request shows f32 on a CPU without bf16) and their share of the GEMM peak of that precision
(``2 x conv MACs x pixels / GEMM rate``), fp32 and bf16 GEMMs being timed in the same rounds.

Progress goes to stderr. Figures are medians of interleaved rounds; ratios are within one run.
"""
from __future__ import annotations

import platform
import statistics
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..log import get_logger

log = get_logger(__name__)

__all__ = ["ALL_SIZES", "WHATS", "BenchError", "Candidate", "Row", "macs_per_lr_pixel", "measure_cpu_peak",
           "measure_gpu_peak", "cpu_verdicts", "render_verdicts", "speedup_verdicts", "CPU_TARGET_FACTOR",
           "RENDER_TARGET_FACTOR", "RENDER_TARGET_SIZE", "DEGRADE_TARGET", "run_bench"]

#: What ``vqdsr bench`` can time.
WHATS = ("upscale", "degrade", "sisr")


class BenchError(ValueError):
    """A bad benchmark option (the CLI prints it and exits with 2)."""


def _log(msg: str) -> None:
    log.info(f"bench: {msg}")


ALL_SIZES = ((180, 320), (270, 480), (480, 720), (540, 960), (1080, 1920))


@dataclass
class Candidate:
    label: str
    backend: str
    options: dict = field(default_factory=dict)
    fp16: bool = False
    gpu: bool = False
    baseline: bool = False


@dataclass
class Row:
    kind: str  # "step" or "render"
    label: str
    size: str
    ms: float | None = None
    fps: float | None = None
    speedup: float | None = None
    peak_share: float | None = None
    samples_ms: list = field(default_factory=list)
    describe: str = ""
    note: str = ""
    gflops: float | None = None  # peak rows: the GEMM rate measured in that size's rounds
    precision: str = ""  # CPU rows: the precision the engine really ran (its ``precision`` attribute)


def macs_per_lr_pixel(net) -> float:
    """Convolution multiply-adds per LR pixel of one step, counted with forward hooks at 16x16."""
    import torch

    total = 0

    def hook(mod, inp, out):
        nonlocal total
        k = mod.kernel_size[0] * mod.kernel_size[1]
        total += out.numel() * (mod.in_channels // mod.groups) * k

    hs = [m.register_forward_hook(hook) for m in net.modules() if isinstance(m, torch.nn.Conv2d)]
    try:
        x = torch.zeros(1, 3, 16, 16)
        state, prev_out = net.initial_state(x)
        with torch.inference_mode():
            net.step(x, x, x, state, prev_out)
    finally:
        for h in hs:
            h.remove()
    return total / (16 * 16)


def measure_cpu_peak(reps: int = 5, n: int = 2048) -> float:
    """fp32 GEMM GFLOP/s of torch on the CPU (median of ``reps`` after one warm-up)."""
    import torch

    a, b = torch.rand(n, n), torch.rand(n, n)
    torch.mm(a, b)
    ts = []
    for _ in range(reps):
        t = time.perf_counter()
        torch.mm(a, b)
        ts.append(time.perf_counter() - t)
    return 2 * n ** 3 / statistics.median(ts) / 1e9


def _native_bf16() -> bool:
    from ..backends.precision import capabilities, has_native_bf16

    return has_native_bf16(capabilities())


def _slow_bf16(cand: Candidate) -> bool:
    """torch bf16 on a CPU without bf16 arithmetic (a reference path, minutes per step)."""
    return cand.options.get("engine") == "torch" and cand.options.get("precision") == "bf16" and not _native_bf16()


def measure_gpu_peak(dtype_name: str, device_id: int = 0, n: int = 8192, reps: int = 10) -> float:
    import torch

    dtype = torch.float16 if dtype_name == "fp16" else torch.float32
    dev = torch.device("cuda", device_id)
    a, b = torch.rand(n, n, device=dev, dtype=dtype), torch.rand(n, n, device=dev, dtype=dtype)
    torch.mm(a, b)
    torch.cuda.synchronize(dev)
    ts = []
    for _ in range(reps):
        t = time.perf_counter()
        torch.mm(a, b)
        torch.cuda.synchronize(dev)
        ts.append(time.perf_counter() - t)
    return 2 * n ** 3 / statistics.median(ts) / 1e9


def _candidates(args, available: dict[str, bool]) -> list[Candidate]:
    c = [Candidate("torch eager NCHW fp32 (cpu)", "cpu", {"engine": "torch_nchw", "precision": "f32"}, baseline=True),
         Candidate("torch channels_last fp32 (cpu)", "cpu", {"engine": "torch", "precision": "f32"})]
    if available.get("ort"):
        c.append(Candidate("onnxruntime fp32 (cpu)", "cpu", {"engine": "ort", "precision": "f32"}))
    if available.get("openvino"):
        c.append(Candidate("openvino fp32 (cpu)", "cpu", {"engine": "openvino", "precision": "f32"}))
        # on a CPU without bf16 OpenVINO compiles this to f32; the row's describe/precision say so
        c.append(Candidate("openvino bf16 (cpu)", "cpu", {"engine": "openvino", "precision": "bf16"}))
    c.append(Candidate("torch channels_last bf16 (cpu)", "cpu", {"engine": "torch", "precision": "bf16"}))
    if available.get("cuda"):
        c += [Candidate("torch cuda fp32", "cuda", {}, gpu=True),
              Candidate("torch cuda fp16", "cuda", {}, fp16=True, gpu=True),
              Candidate("torch cuda fp16 + CUDA graphs", "cuda", {"cuda_graphs": True}, fp16=True, gpu=True)]
    if available.get("trt"):
        c += [Candidate("tensorrt fp16", "trt", {}, fp16=True, gpu=True),
              Candidate("tensorrt fp32", "trt", {}, gpu=True)]
    if available.get("torch_trt"):
        c.append(Candidate("torch-tensorrt fp16", "torch_trt", {}, fp16=True, gpu=True))
    if args.only:
        keep = [s.strip().lower() for s in args.only.split(",")]
        c = [x for x in c if x.baseline or any(k in x.label.lower() for k in keep)]
    return c


def _mem_available() -> int:
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 1 << 62


def _load_network(model: str):
    if model == "random":
        import torch

        from ..nets.vsr import RecurrentVSR
        from ..weights.archs import RECURRENT_VSR

        torch.manual_seed(0)
        net = RecurrentVSR(feedback=False).eval().requires_grad_(False)
        desc = RECURRENT_VSR.describe(net.state_dict())
        return "random VQD-SR (no feedback)", net, desc
    from ..weights import WeightsError, load_state_dict, resolve_model
    from ..weights.descriptors import build_network

    try:
        name, path = resolve_model(None if model == "default" else model)
        net, desc = build_network(load_state_dict(path))
    except WeightsError as e:
        raise BenchError(f"--model: {e} (or use --model random)") from e
    return name, net, desc


def _bench_steps(args, net, desc, cands, size, est: dict, peaks: dict, macs: float) -> list[Row]:
    import copy

    from .. import backends
    from ..backends import RunnerSpec

    h, w = size
    label_size = f"{h}x{w}"
    rows: dict[str, Row] = {"_peak": Row("peak", "fp32 GEMM 2048^3 (cpu)", label_size)}
    runners: dict[str, Any] = {}
    rng = np.random.default_rng(0)
    frames = [rng.random((3, h, w), dtype=np.float32) for _ in range(3)]
    for cand in cands:
        row = rows[cand.label] = Row("step", cand.label, label_size)
        prev = est.get(cand.label)
        if prev is not None:  # seconds per LR pixel from the previous size
            guess = prev * h * w
            if guess > args.max_seconds:
                row.note = f"skipped: about {guess:.0f} s/frame expected (> --max-seconds {args.max_seconds:g})"
                continue
        if _slow_bf16(cand):
            row.note = "skipped: no bf16 arithmetic on this CPU (torch's reference bf16 path: minutes per step)"
            continue
        if not cand.gpu and 6000 * h * w > _mem_available():
            row.note = "skipped: does not fit in available memory"
            continue
        spec = RunnerSpec(h, w, fp16=cand.fp16, device_id=args.device_id)
        try:
            _log(f"{label_size}: creating {cand.label}")
            r = backends.create(cand.backend, copy.deepcopy(net), desc, spec, **cand.options)
            ups = [r.upload(f) for f in frames]
            st, po = r.initial_state()
            for _ in range(args.warmup):
                out, _s = r.step(*ups, st, po)
                r.download(out)
            runners[cand.label] = (r, ups, st, po)
            row.describe = r.describe()
            row.precision = getattr(r, "precision", "")
        except Exception as e:  # a backend that cannot run here is reported, not fatal
            row.note = f"failed: {type(e).__name__}: {e}"[:200]
            _log(f"{label_size}: {cand.label}: {row.note}")
    import torch

    gemm_a, gemm_b = torch.rand(2048, 2048), torch.rand(2048, 2048)
    gemm_s = []
    native_bf16 = _native_bf16()
    bf16_n = 2048 if native_bf16 else 512  # torch's reference bf16 GEMM: about 1 GFLOP/s without bf16 arithmetic
    bf16_a, bf16_b = (torch.rand(bf16_n, bf16_n, dtype=torch.bfloat16) for _ in range(2))
    torch.mm(bf16_a, bf16_b)
    bf16_s = []
    for i in range(args.frames):
        _log(f"{label_size}: round {i + 1}/{args.frames}")
        t = time.perf_counter()  # the CPU peaks, measured in the same rounds as the candidates
        torch.mm(gemm_a, gemm_b)
        gemm_s.append(time.perf_counter() - t)
        t = time.perf_counter()
        torch.mm(bf16_a, bf16_b)
        bf16_s.append(time.perf_counter() - t)
        for label, (r, ups, st, po) in runners.items():
            t = time.perf_counter()
            out, _s = r.step(*ups, st, po)
            r.download(out)  # includes the device->host copy (synchronises GPU backends)
            rows[label].samples_ms.append((time.perf_counter() - t) * 1000)
    peaks = dict(peaks)
    peaks["cpu-fp32"] = 2 * 2048 ** 3 / statistics.median(gemm_s) / 1e9
    peaks["cpu-bf16"] = 2 * bf16_n ** 3 / statistics.median(bf16_s) / 1e9
    _log(f"{label_size}: CPU GEMM peaks during the rounds: fp32 {peaks['cpu-fp32']:.0f}, "
         f"bf16 {peaks['cpu-bf16']:.1f} GFLOP/s")
    base = None
    for cand in cands:
        row = rows[cand.label]
        if row.samples_ms:
            row.ms = statistics.median(row.samples_ms)
            row.fps = 1000 / row.ms
            est[cand.label] = row.ms / 1000 / (h * w)
            peak = (peaks.get("gpu-fp16" if cand.fp16 else "gpu-fp32") if cand.gpu
                    else peaks.get("cpu-bf16" if row.precision == "bf16" else "cpu-fp32"))
            if peak:
                row.peak_share = 2 * macs * h * w / (row.ms / 1000) / 1e9 / peak
            if cand.baseline:
                base = row.ms
    rows["_peak"].ms = statistics.median(gemm_s) * 1000
    rows["_peak"].samples_ms = [x * 1000 for x in gemm_s]
    rows["_peak"].note = f"{peaks['cpu-fp32']:.0f} GFLOP/s"
    rows["_peak"].gflops = peaks["cpu-fp32"]
    rows["_peak"].precision = "f32"
    out_rows = list(rows.values())
    out_rows.insert(1, Row("peak", f"bf16 GEMM {bf16_n}^3 (cpu)", label_size, ms=statistics.median(bf16_s) * 1000,
                           samples_ms=[x * 1000 for x in bf16_s], gflops=peaks["cpu-bf16"], precision="bf16",
                           note=f"{peaks['cpu-bf16']:.1f} GFLOP/s"
                                + ("" if native_bf16 else " (no bf16 arithmetic on this CPU: reference path)")))
    for row in rows.values():
        if row.ms and base and row.kind == "step":
            row.speedup = base / row.ms
    runners.clear()
    return out_rows


def _bench_render(args, model_name: str, model_arg: str, cands, size) -> list[Row]:
    import vsvqdsr

    try:
        upscale = vsvqdsr.Upscale
    except AttributeError:
        return [Row("render", "vsvqdsr.Upscale", f"{size[0]}x{size[1]}", note="skipped: vsvqdsr.Upscale not available")]
    import vapoursynth as vs

    core = vs.core
    h, w = size
    rows = []
    model = None if model_arg == "default" else model_arg
    for cand in cands:
        if cand.baseline or model_arg == "random" or _slow_bf16(cand):
            continue
        row = Row("render", f"Upscale: {cand.label}", f"{h}x{w}")
        try:
            clip = core.std.BlankClip(format=vs.RGBS, width=w, height=h, length=args.render + 1,
                                      color=[0.2, 0.5, 0.7])
            opts = {k: v for k, v in cand.options.items()}
            out = upscale(clip, model=model, backend=cand.backend, fp16=cand.fp16, scene_detect=False, **opts)
            out.get_frame(0)  # warm-up: first frame creates the chain
            t = time.perf_counter()
            for n in range(1, args.render + 1):
                out.get_frame(n)
            row.ms = (time.perf_counter() - t) * 1000 / args.render
            row.fps = 1000 / row.ms
        except Exception as e:
            row.note = f"failed: {type(e).__name__}: {e}"[:200]
        _log(f"render {h}x{w} {cand.label}: {row.ms and round(row.ms)} ms/frame {row.note}")
        rows.append(row)
    return rows


def _stateless_onnx(net, h: int, w: int, path) -> None:
    """The step with a zero hidden state as one ``(1, 9, h, w)`` input (prev, cur, nxt) -> SR frame:
    the form vs-mlrt runs (a stateless network over concatenated clips)."""
    import io
    import warnings

    import torch

    class Stateless(torch.nn.Module):
        def __init__(self, net) -> None:
            super().__init__()
            self.net = net

        def forward(self, x):
            prev, cur, nxt = x[:, 0:3], x[:, 3:6], x[:, 6:9]
            state, prev_out = self.net.initial_state(cur)
            return self.net.step(prev, cur, nxt, state, prev_out)[0]

    buf = io.BytesIO()
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")
        torch.onnx.export(Stateless(net.float().eval()), (torch.rand(1, 9, h, w),), buf, dynamo=False, opset_version=18,
                          input_names=["input"], output_names=["output"])
    with open(path, "wb") as f:
        f.write(buf.getvalue())


def _bench_vsmlrt(args, model_arg: str, net, size) -> list[Row]:
    """vs-mlrt's OpenVINO plugin (``core.ov``; ``--vsmlrt-ov`` loads ``libvsov.so`` first) on the same
    network exported stateless, against ``Upscale`` (cpu, precision auto) on the same frames, one
    process, frames interleaved. vs-mlrt leaves the precision to OpenVINO, as its users run it."""
    import tempfile

    import vapoursynth as vs

    import vsvqdsr

    core = vs.core
    h, w = size
    label = f"{h}x{w}"
    if args.vsmlrt_ov and not hasattr(core, "ov"):
        core.std.LoadPlugin(args.vsmlrt_ov)
    if not hasattr(core, "ov"):
        return [Row("render", "vs-mlrt ov (stateless step)", label, note="skipped: vs-mlrt's ov plugin is not loaded")]
    if model_arg == "random":
        return [Row("render", "vs-mlrt ov (stateless step)", label, note="skipped: needs a real model (Upscale)")]
    rows = [Row("render", "vs-mlrt ov (stateless step)", label), Row("render", "Upscale: cpu auto (side by side)", label)]
    n = max(2, args.render)
    with tempfile.TemporaryDirectory(prefix="vsvqdsr-vsmlrt-") as tmp:
        onnx_path = f"{tmp}/step_stateless.onnx"
        _stateless_onnx(net, h, w, onnx_path)
        clip = core.std.BlankClip(format=vs.RGBS, width=w, height=h, length=n + 1, color=[0.2, 0.5, 0.7])
        prev = clip[0] + clip[:-1]
        nxt = clip[1:] + clip[-1]
        try:
            peer = core.ov.Model([prev, clip, nxt], network_path=onnx_path, device="CPU")
            ours = vsvqdsr.Upscale(clip, model=None if model_arg == "default" else model_arg, backend="cpu",
                                   scene_detect=False)
            peer.get_frame(0)
            ours.get_frame(0)
            for i in range(1, n + 1):
                for row, node in zip(rows, (peer, ours)):
                    t = time.perf_counter()
                    node.get_frame(i)
                    row.samples_ms.append((time.perf_counter() - t) * 1000)
        except vs.Error as e:
            rows[0].note = f"failed: {e}"[:200]
            return rows[:1]
    for row in rows:
        row.ms = statistics.median(row.samples_ms)
        row.fps = 1000 / row.ms
    from ..backends.precision import capabilities, resolve

    caps = capabilities()
    rows[0].precision = "bf16" if "ov:BF16" in caps else "f32"  # OpenVINO's CPU default: bf16 where offered
    rows[1].precision = resolve("auto", "openvino", caps)
    rows[0].note = "OpenVINO's default precision"
    rows[1].note = f"{rows[1].ms / rows[0].ms:.2f}x the vs-mlrt time"
    _log(f"vs-mlrt side by side {label}: vs-mlrt {rows[0].ms:.0f} ms, Upscale {rows[1].ms:.0f} ms per frame")
    return rows


#: The CPU fp32 target of the VSR step: within this factor of the GEMM-implied limit.
CPU_TARGET_FACTOR = 1.1
#: The full ``Upscale`` render at 180x320 within this factor of the limit of the precision it ran.
RENDER_TARGET_FACTOR = 1.3
RENDER_TARGET_SIZE = "180x320"


def render_verdicts(rows: list[Row], macs: float, gemm_gflops: dict[str, dict[str, float]]) -> list[dict]:
    """Each CPU ``Upscale`` render row at :data:`RENDER_TARGET_SIZE` against the limit of the precision
    it ran, ``2 * MACs * pixels / GEMM rate`` (``gemm_gflops``: size label -> {"f32"/"bf16": GFLOP/s});
    target :data:`RENDER_TARGET_FACTOR`. One dict per row: ``size``, ``label``, ``precision``,
    ``limit_ms``, ``ms``, ``ratio``, ``target``, ``met``, ``missed_by``."""
    out = []
    for r in rows:
        if r.kind != "render" or r.size != RENDER_TARGET_SIZE or not r.ms or r.precision not in ("f32", "bf16"):
            continue
        peak = gemm_gflops.get(r.size, {}).get(r.precision)
        if not peak:
            continue
        h, w = (int(v) for v in r.size.split("x"))
        limit_ms = 2 * macs * h * w / (peak * 1e9) * 1000
        ratio = r.ms / limit_ms
        out.append({"size": r.size, "label": r.label, "precision": r.precision, "limit_ms": limit_ms,
                    "ms": r.ms, "ratio": ratio, "target": RENDER_TARGET_FACTOR, "met": ratio <= RENDER_TARGET_FACTOR,
                    "missed_by": max(0.0, ratio / RENDER_TARGET_FACTOR - 1.0)})
    return out


def graph_limit_verdicts(rows: list[Row], kind: str) -> list[dict]:
    """Per size, the fastest CPU row of an image graph (``kind`` ``"degrade"`` / ``"sisr"``) against
    the limit of the precision it ran, ``2 x conv MACs x pixels / GEMM rate`` of that precision
    (from the row's ``peak_share``). No target is set for these graphs; the ratio is reported. One
    dict per size: ``kind``, ``size``, ``label``, ``precision``, ``ms``, ``limit_ms``, ``ratio``."""
    best: dict[str, Row] = {}
    for r in rows:
        if r.kind == kind and r.ms and r.peak_share and "(cpu)" in r.label:
            if r.size not in best or r.ms < best[r.size].ms:
                best[r.size] = r
    return [{"kind": kind, "size": size, "label": r.label, "precision": r.precision, "ms": r.ms,
             "limit_ms": r.ms * r.peak_share, "ratio": 1.0 / r.peak_share} for size, r in best.items()]


def cpu_verdicts(rows: list[Row], macs: float, gemm_gflops: dict[str, float]) -> list[dict]:
    """Per LR size: the best CPU fp32 step against the fp32 limit ``2*MACs*pixels / GEMM peak``.

    ``gemm_gflops`` maps a size label (``"180x320"``) to the GEMM peak measured in that size's rounds.
    Returns one dict per size with ``limit_ms``, ``best_label``, ``best_ms``, ``ratio`` (best / limit),
    ``target`` (:data:`CPU_TARGET_FACTOR`), ``met`` and ``missed_by`` (fraction over the target, 0 if met).
    """
    out = []
    for size, peak in gemm_gflops.items():
        h, w = (int(v) for v in size.split("x"))
        cpu = [r for r in rows if r.kind == "step" and r.size == size and r.ms and "(cpu)" in r.label
               and r.label.startswith(("torch", "onnxruntime", "openvino")) and "fp32" in r.label]
        if not cpu or not peak:
            continue
        best = min(cpu, key=lambda r: r.ms)
        limit_ms = 2 * macs * h * w / (peak * 1e9) * 1000
        ratio = best.ms / limit_ms
        out.append({"size": size, "limit_ms": limit_ms, "best_label": best.label, "best_ms": best.ms,
                    "ratio": ratio, "target": CPU_TARGET_FACTOR, "met": ratio <= CPU_TARGET_FACTOR,
                    "missed_by": max(0.0, ratio / CPU_TARGET_FACTOR - 1.0)})
    return out


#: The CPU target for the degrader: this many times faster than today's torch eager path.
DEGRADE_TARGET = 3.0


def speedup_verdicts(rows: list[Row], kind: str, target: float) -> list[dict]:
    """Per size: the fastest CPU candidate of ``kind`` rows against the baseline (speed-up >= ``target``)."""
    out = []
    for size in dict.fromkeys(r.size for r in rows if r.kind == kind):
        cpu = [r for r in rows if r.kind == kind and r.size == size and r.speedup and "(cpu)" in r.label]
        if not cpu:
            continue
        best = max(cpu, key=lambda r: r.speedup)
        out.append({"kind": kind, "size": size, "best_label": best.label, "best_ms": best.ms,
                    "speedup": best.speedup, "target": target, "met": best.speedup >= target})
    return out


def cpu_identity() -> str:
    """The CPU's model name and its vector extensions that matter here (from ``/proc/cpuinfo``)."""
    name, flags = platform.processor() or platform.machine(), set()
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name") and name in ("", platform.machine()):
                    name = line.split(":", 1)[1].strip()
                elif line.startswith("flags"):
                    flags = set(line.split(":", 1)[1].split())
                    break
    except OSError:
        pass
    want = ("avx2", "fma", "avx512f", "avx512_vnni", "avx_vnni", "avx512_bf16", "amx_tile", "amx_bf16")
    return f"{name} [{' '.join(f for f in want if f in flags) or 'no AVX2'}]"


def _interleaved(fns: dict[str, Any], rows: dict[str, Row], rounds: int, label_size: str,
                 before_round=None) -> None:
    """Time ``fns`` (label -> callable taking the round number) in ``rounds`` interleaved rounds."""
    for i in range(rounds):
        _log(f"{label_size}: round {i + 1}/{rounds}")
        if before_round is not None:
            before_round(i)
        for label, fn in fns.items():
            t = time.perf_counter()
            fn(i)
            rows[label].samples_ms.append((time.perf_counter() - t) * 1000)


def graph_macs_per_pixel(module, *args) -> float:
    """Convolution multiply-adds per input pixel of ``module(*args)`` (forward hooks; ``args[0]`` is
    the image ``1,C,H,W``)."""
    import torch

    total = 0

    def hook(mod, inp, out):
        nonlocal total
        total += out.numel() * (mod.in_channels // mod.groups) * mod.kernel_size[0] * mod.kernel_size[1]

    hs = [m.register_forward_hook(hook) for m in module.modules() if isinstance(m, torch.nn.Conv2d)]
    try:
        with torch.inference_mode():
            module(*args)
    finally:
        for h in hs:
            h.remove()
    return total / (args[0].shape[-2] * args[0].shape[-1])


def _gemm_peak_fns(rows: dict[str, Row], kind: str, label_size: str) -> dict[str, Any]:
    """fp32 and bf16 GEMM timings to run in the same interleaved rounds as an image graph's rows
    (their rows are added to ``rows``; :func:`_peak_shares` turns them into GFLOP/s)."""
    import torch

    out = {}
    for prec, n in (("f32", 2048), ("bf16", 2048 if _native_bf16() else 512)):
        dtype = torch.float32 if prec == "f32" else torch.bfloat16
        a, b = torch.rand(n, n, dtype=dtype), torch.rand(n, n, dtype=dtype)
        torch.mm(a, b)
        label = f"{'fp32' if prec == 'f32' else 'bf16'} GEMM {n}^3 (cpu)"
        rows[label] = Row("peak", label, label_size, precision=prec, note=f"{kind} rounds")
        out[label] = lambda i, a=a, b=b: torch.mm(a, b)
    return out


def _peak_shares(rows: dict[str, Row], macs_per_pixel: float, pixels: int) -> None:
    """Each CPU row's share of the GEMM peak of the precision it ran (``2 x MACs x pixels / rate``)."""
    peaks = {}
    for r in rows.values():
        if r.kind == "peak" and r.ms:
            n = int(r.label.split()[2].split("^")[0])
            r.gflops = 2 * n ** 3 / (r.ms / 1000) / 1e9
            r.note = f"{r.gflops:.1f} GFLOP/s ({r.note})"
            r.speedup = None
            peaks[r.precision] = r.gflops
    for r in rows.values():
        if r.kind != "peak" and r.ms and r.precision in peaks:
            r.peak_share = 2 * macs_per_pixel * pixels / (r.ms / 1000) / 1e9 / peaks[r.precision]


def _finish(rows: dict[str, Row], baseline: str) -> list[Row]:
    base = None
    for row in rows.values():
        if row.samples_ms:
            row.ms = statistics.median(row.samples_ms)
            row.fps = 1000 / row.ms
    base = rows[baseline].ms if baseline in rows else None
    for row in rows.values():
        if row.ms and base:
            row.speedup = base / row.ms
    return list(rows.values())


def _image_candidates(args, available: dict[str, bool], engines=("openvino", "ort", "torch", "torch_nchw")
                      ) -> list[Candidate]:
    """Runner candidates of the image graphs: every CPU engine, then the GPU backends present."""
    threads = {"threads": args.threads} if args.threads else {}
    names = {"openvino": "openvino fp32 (cpu)", "ort": "onnxruntime fp32 (cpu)", "torch": "torch channels_last fp32 (cpu)",
             "torch_nchw": "torch NCHW fp32 (cpu)"}
    c = [Candidate(names[e], "cpu", {"engine": e, "precision": "f32", **threads}) for e in engines
         if e.startswith("torch") or available.get(e)]
    if "openvino" in engines and available.get("openvino"):  # compiles to f32 without bf16; its 'ran' says so
        c.append(Candidate("openvino bf16 (cpu)", "cpu", {"engine": "openvino", "precision": "bf16", **threads}))
    if "torch" in engines and _native_bf16():  # torch's bf16 is a reference path (minutes) without it
        c.append(Candidate("torch channels_last bf16 (cpu)", "cpu", {"engine": "torch", "precision": "bf16", **threads}))
    if available.get("cuda"):
        c += [Candidate("torch cuda fp32", "cuda", {}, gpu=True), Candidate("torch cuda fp16", "cuda", {}, fp16=True, gpu=True)]
    if available.get("trt"):
        c += [Candidate("tensorrt fp16", "trt", {}, fp16=True, gpu=True), Candidate("tensorrt fp32", "trt", {}, gpu=True)]
    if available.get("torch_trt"):
        c.append(Candidate("torch-tensorrt fp16", "torch_trt", {}, fp16=True, gpu=True))
    if args.only:
        keep = [k.strip().lower() for k in args.only.split(",")]
        c = [x for x in c if any(k in x.label.lower() for k in keep)]
    return c


def _make_runners(make, cands: list[Candidate], rows: dict[str, Row], label_size: str, kind: str) -> dict:
    runners = {}
    for cand in cands:
        row = rows[cand.label] = Row(kind, cand.label, label_size)
        try:
            _log(f"{label_size}: creating {kind} {cand.label}")
            runners[cand.label] = make(cand)
            row.describe = runners[cand.label].describe()
            row.precision = getattr(runners[cand.label], "precision", None) or ""
        except Exception as e:  # a backend that cannot run here is reported, not fatal
            row.note = f"failed: {type(e).__name__}: {e}"[:200]
            _log(f"{label_size}: {cand.label}: {row.note}")
    return runners


#: Label of the degrader baseline (today's path: MultiScaleVQGAN.degrade in torch eager).
DEGRADE_BASELINE = "torch eager degrade() NCHW fp32 (cpu)"


def _bench_degrade(args, available: dict[str, bool], size: tuple[int, int]) -> list[Row]:
    import torch

    from ..backends import RunnerSpec
    from ..backends.image import DegradeRunner
    from ..nets.vqgan import K_MAX, sample_k
    from ..weights import WeightsError, load_model

    try:
        net, desc, name = load_model(None if args.degrader == "default" else args.degrader, "degrader")
    except WeightsError as e:
        raise BenchError(f"--degrader: {e}") from e
    h, w = size
    label_size = f"{h}x{w}"
    rng = np.random.default_rng(0)
    frame = rng.random((3, h, w), dtype=np.float32)
    g = torch.Generator().manual_seed(0)
    draws = [[int(t[0]) for t in sample_k("paper", 1, g)] for _ in range(args.frames + args.warmup)]
    k_max = (1, 1, min(K_MAX, desc.config.n_embed))  # what Degrade builds for the paper ranges
    rows: dict[str, Row] = {DEGRADE_BASELINE: Row("degrade", DEGRADE_BASELINE, label_size,
                                                  describe=f"{name}: torch {torch.__version__}, "
                                                           f"{torch.get_num_threads()} threads")}
    x = torch.from_numpy(frame)[None]

    def eager(i: int) -> None:
        with torch.inference_mode():
            net.degrade(x, *[torch.tensor([k]) for k in draws[i]])

    cands = _image_candidates(args, available)
    runners = _make_runners(lambda c: DegradeRunner(net, RunnerSpec(h, w, fp16=c.fp16, device_id=args.device_id),
                                                    c.backend, k_max=k_max, **c.options),
                            cands, rows, label_size, "degrade")
    rows[DEGRADE_BASELINE].precision = "f32"
    fns = {DEGRADE_BASELINE: eager, **{lab: (lambda i, r=r: r.run(frame, draws[i])) for lab, r in runners.items()},
           **_gemm_peak_fns(rows, "degrade", label_size)}
    for i in range(args.warmup):
        for fn in fns.values():
            fn(args.frames + i)
    _interleaved(fns, rows, args.frames, label_size)
    runners.clear()
    from ..nets.vqgan import DegradeModule

    hp, wp = -(-h // 8) * 8, -(-w // 8) * 8
    macs = graph_macs_per_pixel(DegradeModule(net, k_max), torch.rand(1, 3, 64, 64),
                                *[torch.tensor([1])] * 3) * hp * wp / (h * w)
    out = _finish(rows, DEGRADE_BASELINE)
    _peak_shares(rows, macs, h * w)
    return out


#: Label of the SISR baseline (the torch path of HR-SR enhancement and the eval baselines).
SISR_BASELINE = "torch eager sr_image NCHW fp32 (cpu)"


def _bench_sisr(args, available: dict[str, bool], size: tuple[int, int]) -> list[Row]:
    import torch

    from ..backends import RunnerSpec
    from ..backends.image import SISR_PAD, SISRRunner
    from ..weights import WeightsError, load_model

    try:
        net, desc, name = load_model(None if args.sisr == "default" else args.sisr, "sisr")
    except WeightsError as e:
        raise BenchError(f"--sisr: {e}") from e
    h, w = size
    label_size = f"{h}x{w}"
    frame = np.random.default_rng(0).random((3, h, w), dtype=np.float32)
    rows: dict[str, Row] = {}
    base = SISRRunner(net, RunnerSpec(h, w), "cpu", tile=args.tile, engine="torch_nchw", precision="f32")
    cands = _image_candidates(args, available, engines=("openvino", "ort", "torch"))
    rows[SISR_BASELINE] = Row("sisr", SISR_BASELINE, label_size, describe=f"{name}: {base.describe()}")
    runners = _make_runners(lambda c: SISRRunner(net, RunnerSpec(h, w, fp16=c.fp16, device_id=args.device_id),
                                                 c.backend, tile=args.tile, **c.options),
                            cands, rows, label_size, "sisr")
    rows[SISR_BASELINE].precision = base.precision or ""
    fns = {SISR_BASELINE: lambda i: base.run(frame),
           **{lab: (lambda i, r=r: r.run(frame)) for lab, r in runners.items()},
           **_gemm_peak_fns(rows, "sisr", label_size)}
    for _ in range(args.warmup):
        for fn in fns.values():
            fn(0)
    _interleaved(fns, rows, args.frames, label_size)
    runners.clear()
    # the tiles' reflect margins are computed too: MACs per LR pixel of the whole frame as tiled
    tile = args.tile if args.tile > 0 else max(h, w)
    tiled = sum((min(tile, h - y) + 2 * SISR_PAD) * (min(tile, w - x) + 2 * SISR_PAD)
                for y in range(0, h, tile) for x in range(0, w, tile))
    macs = graph_macs_per_pixel(net, torch.rand(1, int(next(net.parameters()).shape[1]), 16, 16)) * tiled / (h * w)
    out = _finish(rows, SISR_BASELINE)
    _peak_shares(rows, macs, h * w)
    return out


@dataclass
class BenchResult:
    info: dict
    rows: list[Row]
    cpu_targets: list[dict] = field(default_factory=list)
    speed_targets: list[dict] = field(default_factory=list)
    render_targets: list[dict] = field(default_factory=list)
    graph_limits: list[dict] = field(default_factory=list)


def run_bench(args, sizes: list[tuple[int, int]], whats: list[str]) -> BenchResult:
    """Run the benchmark ``whats`` at ``sizes`` (options in ``args``, as the CLI parses them)."""
    import torch

    from .. import backends

    if args.frames < 1 or args.warmup < 0 or args.render < 0:
        raise BenchError("--frames must be >= 1, --warmup and --render >= 0")
    unknown = [w for w in whats if w not in WHATS]
    if unknown or not whats:
        raise BenchError(f"--what: {', '.join(unknown) or 'nothing'} not known; accepted: {', '.join(WHATS)}")
    if args.threads:
        torch.set_num_threads(args.threads)
    available = {}
    for name in backends.BACKENDS:
        try:
            available[name] = backends._available(name)
        except Exception:
            available[name] = False
    _log(f"available backends: {', '.join(k for k, v in available.items() if v)}")
    from ..backends.precision import capabilities, resolve, summary

    caps = capabilities()
    rows: list[Row] = []
    info: dict = {"torch": torch.__version__, "threads": torch.get_num_threads(),
                  "cpu": cpu_identity(), "cpu_capabilities": summary(caps),
                  "precision_auto": resolve("auto", "bench", caps), "frames": args.frames,
                  "warmup": args.warmup, "statistic": "median", "what": list(whats)}
    verdicts: list[dict] = []
    rverdicts: list[dict] = []
    if "upscale" in whats:
        model_name, net, desc = _load_network(args.model)
        cands = _candidates(args, available)
        macs = macs_per_lr_pixel(net)
        _log("measuring the CPU fp32 GEMM peak (2048^3 matmul)")
        peaks = {"cpu-fp32": measure_cpu_peak()}
        if any(c.gpu for c in cands):
            peaks["gpu-fp32"] = measure_gpu_peak("fp32", args.device_id)
            peaks["gpu-fp16"] = measure_gpu_peak("fp16", args.device_id)
        est: dict[str, float] = {}
        for size in sizes:
            rows += _bench_steps(args, net, desc, cands, size, est, peaks, macs)
            if args.render:
                rows += _bench_render(args, model_name, args.model, cands, size)
            if getattr(args, "vsmlrt_ov", None) or getattr(args, "vsmlrt", False):
                rows += _bench_vsmlrt(args, args.model, net, size)
        info.update({"model": model_name, "macs_per_lr_pixel": macs, "peak_gflops": peaks})
        ran = {(r.size, r.label): r.precision for r in rows if r.kind == "step"}
        for r in rows:  # a render ran the precision its engine ran in the step rounds (same options)
            key = (r.size, r.label[len("Upscale: "):])
            if r.kind == "render" and not r.precision and key in ran:
                r.precision = ran[key]
        gemm = {r.size: r.gflops for r in rows if r.kind == "peak" and r.gflops and r.precision == "f32"}
        verdicts = cpu_verdicts(rows, macs, gemm)
        gemm_by_prec: dict[str, dict[str, float]] = {}
        for r in rows:
            if r.kind == "peak" and r.gflops:
                gemm_by_prec.setdefault(r.size, {})[r.precision] = r.gflops
        rverdicts = render_verdicts(rows, macs, gemm_by_prec)
    speed: list[dict] = []
    if "degrade" in whats:
        for size in sizes:
            rows += _bench_degrade(args, available, size)
        speed += speedup_verdicts(rows, "degrade", DEGRADE_TARGET)
    if "sisr" in whats:
        for size in sizes:
            rows += _bench_sisr(args, available, size)
    limits = [v for kind in ("degrade", "sisr") if kind in whats for v in graph_limit_verdicts(rows, kind)]
    return BenchResult(info, rows, verdicts, speed, rverdicts, limits)
