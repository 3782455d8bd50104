"""``vqdsr bench``: time every available backend in one run (a benchmark, not a test).

For each LR size, every candidate runner is created and warmed up, then timed in interleaved
rounds (one step of each candidate per round, so a change in machine load hits all candidates
alike); the median per candidate is reported as ms/frame and fps, with the speed-up against torch
eager NCHW fp32 (measured in the same run) and the share of the machine's measured peak
(fp32 GEMM GFLOP/s on the CPU; fp16/fp32 GEMM on the GPU for GPU rows). Optionally a full
``vsvqdsr.Upscale`` render of N frames (``--render N``) per backend. Progress goes to stderr, the
table to stdout, ``--json PATH`` writes the same rows.
"""
from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import time
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from .main import CLIError

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


def _log(msg: str) -> None:
    print(f"vqdsr bench: {msg}", file=sys.stderr, flush=True)


def _parse_sizes(text: str) -> list[tuple[int, int]]:
    if text == "all":
        return list(ALL_SIZES)
    out = []
    for part in text.split(","):
        try:
            h, w = (int(v) for v in part.lower().split("x"))
        except ValueError:
            raise CLIError(f"--sizes: {part!r} is not HEIGHTxWIDTH (e.g. 180x320) or 'all'") from None
        if h < 4 or w < 4:
            raise CLIError(f"--sizes: {part!r} is too small (at least 4x4)")
        out.append((h, w))
    return out


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
    c = [Candidate("torch eager NCHW fp32 (cpu)", "cpu", {"engine": "torch_nchw"}, baseline=True),
         Candidate("torch channels_last fp32 (cpu)", "cpu", {"engine": "torch"})]
    if available.get("ort"):
        c.append(Candidate("onnxruntime fp32 (cpu)", "cpu", {"engine": "ort"}))
    if available.get("openvino"):
        c.append(Candidate("openvino fp32 (cpu)", "cpu", {"engine": "openvino"}))
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


def _load_network(model: str):
    if model == "random":
        import torch

        from ..nets.vsr import RecurrentVSR
        from ..weights.descriptors import ModelDescriptor

        torch.manual_seed(0)
        net = RecurrentVSR(feedback=False).eval().requires_grad_(False)
        desc = ModelDescriptor(arch="recurrent-vsr", variant="vqdsr", feedback=False, num_feat=64,
                               num_block=(5, 3, 2), scale=4, size_multiple=4, fp16=True,
                               num_params=sum(p.numel() for p in net.parameters()))
        return "random VQD-SR (no feedback)", net, desc
    from ..weights import WeightsError, load_state_dict, resolve_model
    from ..weights.descriptors import build_network

    try:
        name, path = resolve_model(None if model == "default" else model)
        net, desc = build_network(load_state_dict(path))
    except WeightsError as e:
        raise CLIError(f"--model: {e} (or use --model random)") from e
    return name, net, desc


def _mem_available() -> int:
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 1 << 62


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
        except Exception as e:  # a backend that cannot run here is reported, not fatal
            row.note = f"failed: {type(e).__name__}: {e}"[:200]
            _log(f"{label_size}: {cand.label}: {row.note}")
    import torch

    gemm_a, gemm_b = torch.rand(2048, 2048), torch.rand(2048, 2048)
    gemm_s = []
    for i in range(args.frames):
        _log(f"{label_size}: round {i + 1}/{args.frames}")
        t = time.perf_counter()  # the CPU peak, measured in the same rounds as the candidates
        torch.mm(gemm_a, gemm_b)
        gemm_s.append(time.perf_counter() - t)
        for label, (r, ups, st, po) in runners.items():
            t = time.perf_counter()
            out, _s = r.step(*ups, st, po)
            r.download(out)  # includes the device->host copy (synchronises GPU backends)
            rows[label].samples_ms.append((time.perf_counter() - t) * 1000)
    peaks = dict(peaks)
    peaks["cpu-fp32"] = 2 * 2048 ** 3 / statistics.median(gemm_s) / 1e9
    _log(f"{label_size}: CPU fp32 GEMM peak during the rounds: {peaks['cpu-fp32']:.0f} GFLOP/s")
    base = None
    for cand in cands:
        row = rows[cand.label]
        if row.samples_ms:
            row.ms = statistics.median(row.samples_ms)
            row.fps = 1000 / row.ms
            est[cand.label] = row.ms / 1000 / (h * w)
            peak = peaks.get("gpu-fp16" if cand.fp16 else "gpu-fp32") if cand.gpu else peaks.get("cpu-fp32")
            if peak:
                row.peak_share = 2 * macs * h * w / (row.ms / 1000) / 1e9 / peak
            if cand.baseline:
                base = row.ms
    rows["_peak"].ms = statistics.median(gemm_s) * 1000
    rows["_peak"].samples_ms = [x * 1000 for x in gemm_s]
    rows["_peak"].note = f"{peaks['cpu-fp32']:.0f} GFLOP/s"
    rows["_peak"].gflops = peaks["cpu-fp32"]
    for row in rows.values():
        if row.ms and base and row.kind == "step":
            row.speedup = base / row.ms
    runners.clear()
    return list(rows.values())


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
        if cand.baseline or model_arg == "random":
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


#: The CPU fp32 target of issue #4: a step within this factor of the GEMM-implied limit.
CPU_TARGET_FACTOR = 1.1


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


def _verdict_lines(verdicts: list[dict]) -> list[str]:
    lines = []
    for v in verdicts:
        state = ("MET" if v["met"] else
                 f"MISSED by {100 * v['missed_by']:.1f} % (needs <= {v['target'] * v['limit_ms']:.1f} ms)")
        lines.append(f"cpu fp32 target {v['size']}: best {v['best_label']} {v['best_ms']:.1f} ms = "
                     f"{v['ratio']:.2f}x the GEMM-implied limit {v['limit_ms']:.1f} ms "
                     f"(target <= {v['target']:.1f}x): {state}")
    return lines


def _fmt(v, spec):
    width = int(spec.split(".")[0]) if spec[0].isdigit() else 0
    return "-".rjust(width) if v is None else format(v, spec)


def _table(rows: list[Row]) -> str:
    head = f"{'kind':<6} {'size':>9} {'backend':<36} {'ms/frame':>9} {'fps':>7} {'vs NCHW':>8} {'% peak':>7}  note"
    lines = [head, "-" * len(head)]
    for r in rows:
        share = None if r.peak_share is None else 100 * r.peak_share
        lines.append(f"{r.kind:<6} {r.size:>9} {r.label:<36} {_fmt(r.ms, '9.1f')} {_fmt(r.fps, '7.2f')} "
                     f"{_fmt(r.speedup, '7.2f') + ('x' if r.speedup else ''):>8} {_fmt(share, '6.1f'):>7}  {r.note}")
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    import torch

    from .. import backends

    sizes = _parse_sizes(args.sizes)
    if args.frames < 1 or args.warmup < 0 or args.render < 0:
        raise CLIError("--frames must be >= 1, --warmup and --render >= 0")
    if args.threads:
        torch.set_num_threads(args.threads)
    model_name, net, desc = _load_network(args.model)
    available = {}
    for name in backends.BACKENDS:
        try:
            available[name] = backends._available(name)
        except Exception:
            available[name] = False
    _log(f"model {model_name}; available backends: {', '.join(k for k, v in available.items() if v)}")
    cands = _candidates(args, available)
    macs = macs_per_lr_pixel(net)
    _log("measuring the CPU fp32 GEMM peak (2048^3 matmul)")
    peaks = {"cpu-fp32": measure_cpu_peak()}
    if any(c.gpu for c in cands):
        peaks["gpu-fp32"] = measure_gpu_peak("fp32", args.device_id)
        peaks["gpu-fp16"] = measure_gpu_peak("fp16", args.device_id)
    rows: list[Row] = []
    est: dict[str, float] = {}
    for size in sizes:
        rows += _bench_steps(args, net, desc, cands, size, est, peaks, macs)
        if args.render:
            rows += _bench_render(args, model_name, args.model, cands, size)
    info = {"model": model_name, "macs_per_lr_pixel": macs, "peak_gflops": peaks,
            "torch": torch.__version__, "threads": torch.get_num_threads(), "cpu": platform.processor() or platform.machine(),
            "frames": args.frames, "warmup": args.warmup, "statistic": "median"}
    print(f"model: {model_name}; {macs / 1e6:.3f} M MACs per LR pixel; peak fp32 GEMM "
          f"{peaks['cpu-fp32']:.0f} GFLOP/s (CPU, {torch.get_num_threads()} threads)"
          + "".join(f"; {k} {v:.0f} GFLOP/s" for k, v in peaks.items() if k.startswith("gpu")))
    print(f"median of {args.frames} timed steps after {args.warmup} warm-up step(s); candidates interleaved per round")
    print(_table(rows))
    gemm = {r.size: r.gflops for r in rows if r.kind == "peak" and r.gflops}
    verdicts = cpu_verdicts(rows, macs, gemm)
    for line in _verdict_lines(verdicts):
        print(line)
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"info": info, "rows": [asdict(r) for r in rows], "cpu_targets": verdicts}, f, indent=1)
        _log(f"wrote {args.json}")
    return 0


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("bench", help="time every available backend (step and Upscale render)",
                       description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--sizes", default="180x320",
                   help="comma-separated LR sizes HEIGHTxWIDTH, or 'all' (180x320,270x480,480x720,540x960,"
                        "1080x1920); default 180x320")
    p.add_argument("--frames", type=int, default=6, help="timed steps per candidate (median reported); default 6")
    p.add_argument("--warmup", type=int, default=1, help="untimed warm-up steps per candidate; default 1")
    p.add_argument("--render", type=int, default=0,
                   help="also time a full vsvqdsr.Upscale render of N frames per backend (0: off)")
    p.add_argument("--model", default="default", help="installed model name or file, 'default' or 'random'")
    p.add_argument("--only", default=None, help="comma-separated substrings of backend labels to keep (baseline always runs)")
    p.add_argument("--max-seconds", type=float, default=8.0,
                   help="skip a candidate at a size when its extrapolated step time exceeds this; default 8")
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's choice)")
    p.add_argument("--device-id", type=int, default=0, help="GPU index for GPU backends")
    p.add_argument("--json", default=None, metavar="PATH", help="also write the results as JSON")
    p.set_defaults(func=run)
