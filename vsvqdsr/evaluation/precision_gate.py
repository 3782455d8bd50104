"""Quality gate of a CPU inference precision against f32 (``vqdsr precision-gate``).

Two measurements, both with the same model and frames run once in f32 and once in the precision
under test:

* **scene**: one recurrent chain over a whole scene of real frames (default: the bundled sample's
  first scene, frames 0..83). PSNR of the RGB output (clipped to [0, 1]) against the f32 output, per
  frame; the gate is ``>= 50 dB`` at the last frame *and* on average, so a drifting hidden state
  shows (a per-step error that accumulates through the state falls frame after frame).
* **benchmark** (optional, a ``vqdsr eval`` set): every clip of every severity, uint8 output as the
  benchmark scores it; mean PSNR-Y and SSIMULACRA2 against ground truth for both precisions. The
  gate is a loss of at most 0.02 dB PSNR-Y and 0.2 SSIMULACRA2 against f32.

Where the CPU has no bf16 arithmetic (no AMX-BF16, no AVX-512 BF16), a bf16 request compiles to f32
in OpenVINO and runs through a slow reference path in torch, so the gate can *emulate* bf16
instead (``emulate``): an f32 torch runner in which every tensor a convolution reads or writes, its
weights, and the step's outputs (SR frame and hidden state) are rounded to bf16 (round to nearest
even, as the hardware converts), with f32 accumulation (as AMX and AVX-512 BF16 accumulate). That
rounds at least as often as a bf16 engine stores, so it is a pessimistic stand-in, and the result
says which path ran.
"""
from __future__ import annotations

import copy
import functools
import math
import os
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from ..log import get_logger

log = get_logger(__name__)

__all__ = ["SCENE_GATE_DB", "BENCH_GATE_PSNR_DB", "BENCH_GATE_SSIMULACRA2", "BF16EmulatedRunner", "SceneResult",
           "BenchResult", "LookupResult", "as_dict", "load_scene", "lookup_gate", "make_runner", "psnr_rgb", "run_chain",
           "scene_gate", "benchmark_gate"]

#: Minimum PSNR (dB) of the tested precision against f32, at the last frame and on average.
SCENE_GATE_DB = 50.0
#: Maximum loss against f32 on the benchmark: PSNR-Y (dB) and SSIMULACRA2 (score points).
BENCH_GATE_PSNR_DB = 0.02
BENCH_GATE_SSIMULACRA2 = 0.2


def _log(msg: str) -> None:
    log.info(f"precision-gate: {msg}")


def load_scene(path: str | os.PathLike, first: int = 0, count: int = 84) -> np.ndarray:
    """Frames ``first .. first+count-1`` of a video as ``T,3,H,W`` float32 RGB in [0, 1] (the same
    conversion ``Upscale`` applies to a YUV clip: its ``_Matrix``/range props, BT.709 default)."""
    import vapoursynth as vs

    from ..filters.formats import frame_to_array, to_float_rgb

    core = vs.core
    if not os.path.isfile(path):
        raise FileNotFoundError(f"no such video: {path}")
    clip = core.bs.VideoSource(source=str(path))
    if first < 0 or count < 1 or first + count > clip.num_frames:
        raise ValueError(f"frames {first}..{first + count - 1} are outside the clip's {clip.num_frames} frames")
    rgb = to_float_rgb(clip[first:first + count], half=False)
    return np.stack([frame_to_array(rgb.get_frame(i)) for i in range(count)]).astype(np.float32)


def _round_bf16(t):
    import torch

    return t.to(torch.bfloat16).to(torch.float32)


def _emulate_bf16_convs(module) -> None:
    """Round every convolution's weights to bf16 in place and its inputs and outputs on each call
    (f32 accumulation): bf16 convolutions emulated on a CPU without bf16 arithmetic."""
    import torch

    with torch.no_grad():
        for m in module.modules():
            if isinstance(m, torch.nn.Conv2d):
                m.weight.copy_(_round_bf16(m.weight))
                if m.bias is not None:
                    m.bias.copy_(_round_bf16(m.bias))
                m.register_forward_pre_hook(lambda _m, args: tuple(_round_bf16(a) for a in args))
                m.register_forward_hook(lambda _m, _args, out: _round_bf16(out))


@functools.lru_cache(maxsize=1)
def _emulated_class():
    import torch

    from ..backends.cpu import CPURunner

    class BF16EmulatedRunner(CPURunner):
        """f32 torch with bf16 rounding of every convolution's input, weights and output and of the
        step's outputs; f32 accumulation (see the module docstring)."""

        name = "bf16-emulated"

        def __init__(self, net, desc, spec) -> None:
            super().__init__(net, desc, spec, channels_last=True, precision="f32")
            _emulate_bf16_convs(self.net)
            self.precision = "bf16 (emulated)"

        def upload(self, frame):
            return _round_bf16(super().upload(frame))

        @torch.inference_mode()
        def step(self, prev, cur, nxt, state, prev_out):
            out, state = super().step(prev, cur, nxt, state, prev_out)
            return _round_bf16(out), _round_bf16(state)

        def describe(self) -> str:
            return f"bf16 emulated in f32 torch ({torch.__version__}, {torch.get_num_threads()} threads)"

    return BF16EmulatedRunner


def __getattr__(name: str):  # the runner class needs torch and the backends: build it on first use
    if name == "BF16EmulatedRunner":
        return _emulated_class()
    raise AttributeError(name)


def make_runner(net, desc, height: int, width: int, precision: str, engine: str = "openvino",
                emulate: bool = False, threads: int | None = None):
    """A CPU runner for ``precision`` (``emulate=True``: the bf16-emulating torch runner)."""
    from .. import backends
    from ..backends import RunnerSpec

    spec = RunnerSpec(height, width)
    net = copy.deepcopy(net)
    if emulate:
        if precision != "bf16":
            raise ValueError(f"emulation is for bf16 only, not {precision!r}")
        if threads:
            import torch
            torch.set_num_threads(int(threads))
        return _emulated_class()(net, desc, spec)
    opts: dict[str, Any] = {"engine": engine, "precision": precision}
    if threads:
        opts["threads"] = threads
    return backends.create("cpu", net, desc, spec, **opts)


def run_chain(runner, frames: np.ndarray) -> Iterator[np.ndarray]:
    """One recurrent chain over ``T,3,H,W`` frames (neighbours clamped at the ends, as ``Upscale``
    does inside a scene); yields each ``3,4H,4W`` float32 output."""
    ups = [runner.upload(f) for f in frames]
    state, prev_out = runner.initial_state()
    last = len(ups) - 1
    for i in range(len(ups)):
        out, state = runner.step(ups[max(i - 1, 0)], ups[i], ups[min(i + 1, last)], state, prev_out)
        prev_out = out if runner.desc.feedback else None
        yield runner.download(out).astype(np.float32, copy=False)


def psnr_rgb(a: np.ndarray, b: np.ndarray) -> float:
    """PSNR (dB, peak 1) of two float RGB frames after clipping both to [0, 1]; inf when equal."""
    d = np.clip(a, 0, 1).astype(np.float64) - np.clip(b, 0, 1).astype(np.float64)
    mse = float(np.mean(d * d))
    return math.inf if mse == 0 else 10 * math.log10(1.0 / mse)


@dataclass
class SceneResult:
    precision: str
    ran: str            # describe() of the runner under test
    reference: str      # describe() of the f32 runner
    frames: int
    psnr_db: list = field(default_factory=list)  # per frame
    last_db: float = 0.0
    mean_db: float = 0.0
    min_db: float = 0.0
    ms_per_frame: dict = field(default_factory=dict)
    gate_db: float = SCENE_GATE_DB
    passed: bool = False

    def lines(self) -> list[str]:
        p = self.psnr_db
        probes = sorted({0, 9, 19, 39, 59, len(p) - 1} & set(range(len(p))))
        return [f"scene ({self.frames} frames): {self.precision} against f32: last frame {self.last_db:.2f} dB, "
                f"mean {self.mean_db:.2f} dB, min {self.min_db:.2f} dB (gate >= {self.gate_db:g} dB last and "
                f"mean): {'PASS' if self.passed else 'FAIL'}",
                "  per frame: " + ", ".join(f"#{i} {p[i]:.2f}" for i in probes),
                f"  tested: {self.ran}; reference: {self.reference}",
                "  ms/frame: " + ", ".join(f"{k} {v:.0f}" for k, v in self.ms_per_frame.items())]


def scene_gate(net, desc, frames: np.ndarray, precision: str, engine: str = "openvino", emulate: bool = False,
               threads: int | None = None, reference_engine: str | None = None) -> SceneResult:
    """PSNR of ``precision`` against f32 over one recurrent chain through ``frames`` (``T,3,H,W``)."""
    t, _, h, w = frames.shape
    runners = {"f32": make_runner(net, desc, h, w, "f32", reference_engine or engine, threads=threads),
               precision: make_runner(net, desc, h, w, precision, engine, emulate, threads)}
    res = SceneResult(precision=precision, ran=runners[precision].describe(), reference=runners["f32"].describe(),
                      frames=t)
    chains = {k: run_chain(r, frames) for k, r in runners.items()}
    spent = dict.fromkeys(runners, 0.0)
    for i in range(t):
        outs = {}
        for k, ch in chains.items():  # interleaved: load changes hit both alike
            t0 = time.perf_counter()
            outs[k] = next(ch)
            spent[k] += time.perf_counter() - t0
        res.psnr_db.append(psnr_rgb(outs[precision], outs["f32"]))
        if i % 10 == 9:
            _log(f"scene frame {i + 1}/{t}: {res.psnr_db[-1]:.2f} dB")
    res.last_db = res.psnr_db[-1]
    finite = [x for x in res.psnr_db if math.isfinite(x)]
    res.mean_db = float(np.mean(finite)) if len(finite) == len(res.psnr_db) else math.inf
    res.min_db = min(res.psnr_db)
    res.ms_per_frame = {k: 1000 * v / t for k, v in spent.items()}
    res.passed = res.last_db >= SCENE_GATE_DB and res.mean_db >= SCENE_GATE_DB
    return res


@dataclass
class BenchResult:
    precision: str
    ran: str
    rows: list = field(default_factory=list)  # per severity: psnr_y / ssimulacra2 for f32 and tested
    passed: bool = False

    def lines(self) -> list[str]:
        w = max([8, *(len(str(r["severity"])) for r in self.rows)])  # old-analogue is 12 wide
        out = [f"benchmark: {self.precision} against f32, mean over clips (gate: loss <= {BENCH_GATE_PSNR_DB} dB "
               f"PSNR-Y and <= {BENCH_GATE_SSIMULACRA2} SSIMULACRA2): {'PASS' if self.passed else 'FAIL'}",
               f"  {'severity':<{w}} {'PSNR-Y f32':>10} {'tested':>8} {'delta':>7}  {'SSIM2 f32':>9} {'tested':>8} {'delta':>7}"]
        for r in self.rows:
            out.append(f"  {r['severity']:<{w}} {r['psnr_y_f32']:10.3f} {r['psnr_y']:8.3f} {r['psnr_y'] - r['psnr_y_f32']:+7.3f}"
                       f"  {r['ssimulacra2_f32']:9.3f} {r['ssimulacra2']:8.3f} "
                       f"{r['ssimulacra2'] - r['ssimulacra2_f32']:+7.3f}")
        out.append(f"  tested: {self.ran}")
        return out


def _to_u8(x: np.ndarray) -> np.ndarray:
    return np.clip(np.rint(np.transpose(x, (1, 2, 0)) * 255.0), 0, 255).astype(np.uint8)


def benchmark_gate(net, desc, bench_root: str | os.PathLike, precision: str, engine: str = "openvino",
                   emulate: bool = False, threads: int | None = None, severities: Sequence[str] | None = None,
                   progress: Callable[[str], None] = _log) -> BenchResult:
    """PSNR-Y and SSIMULACRA2 against ground truth, f32 and ``precision``, on a ``vqdsr eval`` set."""
    from .dataset import load_set
    from .metrics import psnr_y, ssimulacra2

    bench = load_set(bench_root)
    sevs = list(severities or bench.severities)
    res = BenchResult(precision=precision, ran="")
    runners: dict[tuple, dict] = {}
    for sev in sevs:
        scores: dict[str, dict[str, list]] = {"f32": {"p": [], "s": []}, precision: {"p": [], "s": []}}
        clips = [c for c in bench.clips if c.severity == sev]
        for clip in clips:
            lr = clip.load_lr().astype(np.float32).transpose(0, 3, 1, 2) / 255.0
            gt = clip.load_gt()
            key = lr.shape[2:]
            if key not in runners:  # one pair of runners per LR size
                runners.clear()
                runners[key] = {"f32": make_runner(net, desc, *key, "f32", engine, threads=threads),
                                precision: make_runner(net, desc, *key, precision, engine, emulate, threads)}
                res.ran = runners[key][precision].describe()
            for k, r in runners[key].items():
                sr = np.stack([_to_u8(o) for o in run_chain(r, lr)])
                scores[k]["p"].append(psnr_y(sr, gt))
                scores[k]["s"].append(ssimulacra2(sr, gt))
            progress(f"benchmark {sev}/{clip.name}: PSNR-Y f32 {scores['f32']['p'][-1]:.3f}, "
                     f"{precision} {scores[precision]['p'][-1]:.3f}")
        res.rows.append({"severity": sev, "clips": len(clips),
                         "psnr_y_f32": float(np.mean(scores["f32"]["p"])),
                         "psnr_y": float(np.mean(scores[precision]["p"])),
                         "ssimulacra2_f32": float(np.mean(scores["f32"]["s"])),
                         "ssimulacra2": float(np.mean(scores[precision]["s"]))})
    res.passed = all(r["psnr_y_f32"] - r["psnr_y"] <= BENCH_GATE_PSNR_DB
                     and r["ssimulacra2_f32"] - r["ssimulacra2"] <= BENCH_GATE_SSIMULACRA2 for r in res.rows)
    return res


def as_dict(result) -> dict:
    return asdict(result)


@dataclass
class LookupResult:
    """How often the degrader's top-k lookup picks another codebook entry under bf16 than under f32.

    ``changed[mode][branch][rank]``: the fraction of tokens whose rank-``rank`` entry differs from
    f32's, over all frames; ``mode`` ``"f32 lookup"`` is the engines' graph (bf16 convolutions, the
    distances, TopK and Gathers in f32), ``"bf16 lookup"`` the same with the distances computed from
    bf16 operands and stored in bf16 (what the lookup would do if it were not kept f32).
    """

    frames: int
    tokens: dict[str, int]
    ranks: tuple[int, ...]
    changed: dict[str, dict[str, dict[int, float]]]

    def lines(self) -> list[str]:
        out = [f"degrader lookup over {self.frames} frames, tokens per branch "
               + ", ".join(f"{b} {n}" for b, n in self.tokens.items())]
        for mode, per in self.changed.items():
            out.append(f"  {mode}: entries changed against f32: " + "; ".join(
                f"{b} " + ", ".join(f"rank {k} {100 * v:.3f} %" for k, v in ranks.items()) for b, ranks in per.items()))
        return out


def lookup_gate(net, frames: np.ndarray, ranks: Sequence[int] = (1, 50)) -> LookupResult:
    """Codebook entries chosen with emulated bf16 convolutions against f32 (see :class:`LookupResult`).

    ``net``: a :class:`~vsvqdsr.nets.vqgan.MultiScaleVQGAN`; ``frames``: ``T,3,H,W`` in [0, 1] (H, W
    multiples of 8). bf16 is emulated as for the VSR step: every convolution's input, weights and
    output rounded to bf16, f32 accumulation.
    """
    import torch

    from ..nets.vqgan import DegradeModule

    k_max = min(max(ranks), net.config.n_embed)
    ranks = tuple(k for k in ranks if k <= k_max)
    ref = DegradeModule(net, k_max).eval()
    emu = DegradeModule(net, k_max).eval()
    _emulate_bf16_convs(emu)

    def order(dm, z, bf16_lookup: bool):
        d = z.shape[1]
        zf = z.permute(0, 2, 3, 1).reshape(-1, d)
        e = dm.net.codebook.embedding.weight
        if bf16_lookup:
            zf, e = _round_bf16(zf), _round_bf16(e)
        dist = zf.pow(2).sum(1, keepdim=True) + e.pow(2).sum(1) - 2.0 * zf @ e.t()
        if bf16_lookup:
            dist = _round_bf16(dist)
        return dist.topk(k_max, dim=1, largest=False, sorted=True).indices

    names = ("top", "middle", "bottom")
    modes = ("f32 lookup", "bf16 lookup")
    diff = {m: {b: {k: 0 for k in ranks} for b in names} for m in modes}
    tokens = {b: 0 for b in names}
    with torch.inference_mode():
        for f in frames:
            x = torch.from_numpy(np.ascontiguousarray(f, dtype=np.float32))[None] * 2.0 - 1.0
            zs_ref, zs_emu = ref.net.encode(x), emu.net.encode(x)
            for b, z_ref, z_emu in zip(names, zs_ref, zs_emu):
                o_ref = order(ref, z_ref, False)
                tokens[b] += o_ref.shape[0]
                for m in modes:
                    o = order(emu, z_emu, m == "bf16 lookup")
                    for k in ranks:
                        diff[m][b][k] += int((o[:, k - 1] != o_ref[:, k - 1]).sum())
    changed = {m: {b: {k: diff[m][b][k] / tokens[b] for k in ranks} for b in names} for m in modes}
    return LookupResult(frames=len(frames), tokens=tokens, ranks=ranks, changed=changed)
