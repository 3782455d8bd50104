"""CPU inference precision: selection on faked capability lists, the option on the CPU engines and
Upscale, and bf16 against f32 on a short real chain (native bf16 where the CPU has it; the gate's
bf16 emulation everywhere)."""
from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest
import vapoursynth as vs

from vsvqdsr import backends
from vsvqdsr.backends import RunnerSpec, precision
from vsvqdsr.evaluation import precision_gate

HAS_OV = importlib.util.find_spec("openvino") is not None
SAMPLE = Path(__file__).resolve().parent.parent / "examples" / "sample" / "sample.mkv"
NATIVE_BF16 = precision.has_native_bf16(precision.capabilities())

SPR = {"avx2", "fma", "avx512f", "avx512_bf16", "avx512_vnni", "amx_tile", "amx_bf16", "amx_int8", "ov:FP32", "ov:BF16"}
ZEN4 = {"avx2", "fma", "avx512f", "avx512_bf16", "avx512_vnni", "ov:FP32", "ov:BF16", "ov:INT8"}
AVX2 = {"avx2", "fma", "ov:FP32", "ov:INT8", "ov:BIN"}


@pytest.mark.parametrize("caps, expected", [(SPR, "bf16"), (ZEN4, "f32"), (AVX2, "f32"), (set(), "f32")])
def test_auto_picks_bf16_only_with_amx_bf16(caps, expected):
    assert precision.choose("auto", caps) == expected


@pytest.mark.parametrize("caps", [SPR, AVX2])
@pytest.mark.parametrize("forced", ["f32", "bf16"])
def test_explicit_precision_is_kept(caps, forced):
    assert precision.choose(forced, caps) == forced


@pytest.mark.parametrize("bad", ["int8", "fp32", "fp16", "BF16", None, 16])
def test_bad_precision_names_the_accepted_values(bad):
    with pytest.raises(ValueError, match=r"'auto', 'f32', 'bf16'"):
        precision.choose(bad, SPR)


def test_native_bf16_detection():
    assert precision.has_native_bf16(SPR) and precision.has_native_bf16(ZEN4)
    assert not precision.has_native_bf16(AVX2)
    assert precision.has_native_bf16({"ov:BF16"})


def test_auto_says_once_what_it_chose(capfd, monkeypatch):
    monkeypatch.setattr(precision, "_announced", set())
    assert precision.resolve("auto", "openvino", caps=SPR) == "bf16"
    assert precision.resolve("auto", "torch", caps=SPR) == "bf16"
    err = capfd.readouterr().err
    assert err.count("precision=auto chose 'bf16'") == 1 and "amx_bf16" in err
    assert precision.resolve("auto", "openvino", caps=AVX2) == "f32"
    assert "precision=auto chose 'f32' (no AMX-BF16 on this CPU: avx2 fma" in capfd.readouterr().err
    assert precision.resolve("f32", "openvino", caps=SPR) == "f32"
    assert capfd.readouterr().err == ""


def test_engine_without_bf16_falls_back_under_auto_and_refuses_when_forced(capfd, monkeypatch):
    monkeypatch.setattr(precision, "_announced", set())
    assert precision.resolve("auto", "ort", caps=SPR, offers=("f32",)) == "f32"
    assert "ort has no bf16 kernels" in capfd.readouterr().err
    with pytest.raises(ValueError, match="not offered by ort; accepted here: 'auto', 'f32'"):
        precision.resolve("bf16", "ort", caps=SPR, offers=("f32",))


def test_cpu_flags_are_read_from_cpuinfo(tmp_path):
    f = tmp_path / "cpuinfo"
    f.write_text("processor\t: 0\nflags\t\t: fpu avx2 amx_bf16 amx_tile\n\nprocessor\t: 1\nflags\t\t: fpu\n")
    assert precision.cpu_flags(str(f)) == {"fpu", "avx2", "amx_bf16", "amx_tile"}
    assert precision.cpu_flags(str(tmp_path / "missing")) == frozenset()


def test_openvino_compile_config_carries_a_concrete_precision():
    from vsvqdsr.backends.openvino import compile_config

    assert compile_config(3)["INFERENCE_PRECISION_HINT"] == "f32"  # the function's default
    assert compile_config(3, "bf16") == {"INFERENCE_PRECISION_HINT": "bf16", "PERFORMANCE_HINT": "LATENCY",
                                         "INFERENCE_NUM_THREADS": 3}
    with pytest.raises(ValueError, match="'f32' or 'bf16', got 'auto'"):
        compile_config(3, "auto")


@pytest.mark.skipif(not HAS_OV, reason="openvino is not installed")
def test_openvino_image_graph_f32_matches_torch():
    import torch

    from vsvqdsr.backends.onnx_export import export_graph_bytes
    from vsvqdsr.backends.openvino import OpenVINOGraph, compiled_precision

    conv = torch.nn.Conv2d(3, 4, 3, padding=1).eval()
    onnx = export_graph_bytes(conv, (torch.rand(1, 3, 8, 8),), ["x"], ["y"], {"x": {2: "h", 3: "w"}, "y": {2: "h", 3: "w"}})
    g = OpenVINOGraph(onnx, threads=1, precision="f32")
    assert g.config["INFERENCE_PRECISION_HINT"] == "f32"  # asked for, not only what this CPU compiles to
    x = np.random.default_rng(0).random((1, 3, 8, 8), dtype=np.float32)
    (y,) = g.run({"x": x})
    with torch.no_grad():
        ref = conv(torch.from_numpy(x)).numpy()
    assert np.abs(y - ref).max() < 1e-5
    (compiled,) = g._compiled.values()
    assert compiled_precision(compiled) == "f32"


def test_this_machine_selection_follows_its_flags():
    caps = precision.capabilities()
    assert precision.resolve("auto", caps=caps) == ("bf16" if "amx_bf16" in caps else "f32")


def _tiny():
    import torch

    from vsvqdsr.nets.vsr import RecurrentVSR
    from vsvqdsr.weights.descriptors import ModelDescriptor

    torch.manual_seed(0)
    net = RecurrentVSR(num_feat=8, num_block=(2, 1, 1)).eval().requires_grad_(False)
    desc = ModelDescriptor(arch="recurrent-vsr", variant="vqdsr", feedback=False, num_feat=8, num_block=(2, 1, 1),
                           scale=4, size_multiple=4, fp16=True, num_params=sum(p.numel() for p in net.parameters()))
    return net, desc


@pytest.mark.parametrize("engine", ["torch", "ort"] + (["openvino"] if HAS_OV else []))
def test_describe_shows_the_precision_that_runs(engine):
    net, desc = _tiny()
    r = backends.create("cpu", net, desc, RunnerSpec(16, 16), engine=engine, precision="f32")
    assert r.precision == "f32" and ", f32" in r.describe()


@pytest.mark.skipif(not HAS_OV, reason="openvino is not installed")
def test_openvino_reports_what_the_compiled_model_runs(capfd):
    net, desc = _tiny()
    r = backends.create("cpu", net, desc, RunnerSpec(16, 16), engine="openvino", precision="bf16")
    assert r.requested == "bf16"
    if NATIVE_BF16:
        assert r.precision == "bf16"
    else:  # OpenVINO compiles a bf16 request to f32 on a CPU without bf16, and the runner says so
        assert r.precision == "f32" and "(bf16 requested)" in r.describe()
        assert "precision 'bf16' requested, the compiled model runs 'f32'" in capfd.readouterr().err


def test_upscale_rejects_a_bad_precision():
    clip = vs.core.std.BlankClip(format=vs.RGBS, width=16, height=16, length=2)
    for bad in ("int8", "half"):
        with pytest.raises(vs.Error, match=r"^Upscale: backend 'cpu': precision must be one of 'auto', 'f32', 'bf16'"):
            import vsvqdsr
            vsvqdsr.Upscale(clip, backend="cpu", precision=bad)
    with pytest.raises(vs.Error, match="Upscale: .*'bf16' is not offered by ort"):
        vsvqdsr.Upscale(clip, backend="cpu", engine="ort", precision="bf16")


def _real_chain(frames: int = 8):
    from vsvqdsr.weights import load_state_dict, resolve_model
    from vsvqdsr.weights.descriptors import build_network

    net, desc = build_network(load_state_dict(resolve_model(None)[1]))
    scene = precision_gate.load_scene(SAMPLE, 0, frames)[:, :, 40:104, 96:192]  # the boy's head
    return net, desc, np.ascontiguousarray(scene)


#: Tolerance of bf16 against f32 on the short chain: the quality gate's 50 dB, every frame.
BF16_MIN_DB = 50.0


@pytest.mark.skipif(not (NATIVE_BF16 and HAS_OV), reason="the CPU has no bf16 arithmetic (no AMX-BF16 / AVX-512 BF16)")
def test_native_bf16_matches_f32_on_a_real_chain():
    net, desc, scene = _real_chain()
    res = precision_gate.scene_gate(net, desc, scene, "bf16", engine="openvino")
    assert "bf16" in res.ran and min(res.psnr_db) >= BF16_MIN_DB, res.lines()


def test_emulated_bf16_matches_f32_on_a_real_chain():
    net, desc, scene = _real_chain()
    res = precision_gate.scene_gate(net, desc, scene, "bf16", emulate=True, reference_engine="torch")
    assert res.ran.startswith("bf16 emulated") and res.reference.startswith("cpu (torch")
    # bf16 rounding is visible (not a silent f32 run) and within the tolerance on every frame
    assert BF16_MIN_DB <= min(res.psnr_db) and max(res.psnr_db) < 90, res.lines()
    assert res.passed


def test_render_verdict_uses_the_limit_of_the_precision_that_ran():
    from vsvqdsr.cli.bench import Row, render_verdicts

    macs, h, w = 1.1e6, 180, 320
    peaks = {"180x320": {"f32": 100.0, "bf16": 400.0}}
    lim32 = 2 * macs * h * w / 100e9 * 1000
    rows = [Row("render", "Upscale: openvino fp32 (cpu)", "180x320", ms=1.2 * lim32, precision="f32"),
            Row("render", "Upscale: openvino bf16 (cpu)", "180x320", ms=1.2 * lim32, precision="bf16"),
            Row("render", "Upscale: openvino fp32 (cpu)", "270x480", ms=1.0, precision="f32"),  # not the target size
            Row("step", "openvino fp32 (cpu)", "180x320", ms=1.0, precision="f32")]
    v32, v16 = render_verdicts(rows, macs, peaks)
    assert v32["met"] and abs(v32["ratio"] - 1.2) < 1e-9 and v32["target"] == 1.3
    assert v16["precision"] == "bf16" and not v16["met"] and abs(v16["ratio"] - 4.8) < 1e-9


def test_bench_rows_carry_the_precision(tmp_path, capsys):
    import json

    from vsvqdsr.cli.main import main

    out = tmp_path / "b.json"
    assert main(["bench", "--sizes", "8x12", "--frames", "1", "--model", "random", "--only", "openvino",
                 "--json", str(out)]) == 0
    rows = {r["label"]: r for r in json.loads(out.read_text())["rows"]}
    assert rows["fp32 GEMM 2048^3 (cpu)"]["precision"] == "f32" and rows["torch eager NCHW fp32 (cpu)"]["precision"] == "f32"
    bf16_peak = next(r for r in rows.values() if r["label"].startswith("bf16 GEMM"))
    assert bf16_peak["gflops"] > 0 and bf16_peak["precision"] == "bf16"
    if HAS_OV:  # what OpenVINO really compiled a bf16 request to
        assert rows["openvino bf16 (cpu)"]["precision"] == ("bf16" if NATIVE_BF16 else "f32")
    assert "precision=auto here: " + ("bf16" if "amx_bf16" in precision.capabilities() else "f32") in capsys.readouterr().out


def test_precision_gate_cli_scene_and_benchmark(tmp_path, capsys):
    import json

    from vsvqdsr.training.synthetic import make_clip_frames
    from vsvqdsr.cli.main import main
    from vsvqdsr.evaluation.build import build_set

    root = tmp_path / "set"
    build_set(root, {"c0": make_clip_frames(3, 64, seed=0)}, {"c0": {"package": "synthetic"}}, severities=("light",))
    out = tmp_path / "gate.json"
    rc = main(["precision-gate", "--precision", "bf16", "--emulate", "on", "--frames", "2", "--clip", str(SAMPLE),
               "--bench", str(root), "--json", str(out)])
    text = capsys.readouterr().out
    rep = json.loads(out.read_text())
    assert rep["emulated"] and rep["scene"]["frames"] == 2 and len(rep["scene"]["psnr_db"]) == 2
    (row,) = rep["benchmark"]["rows"]
    assert row["severity"] == "light" and row["clips"] == 1 and 10 < row["psnr_y_f32"] < 60
    # the gate's verdicts follow the numbers, and the exit status follows the verdicts
    assert rep["scene"]["passed"] == (min(rep["scene"]["last_db"], rep["scene"]["mean_db"]) >= 50)
    assert rep["benchmark"]["passed"] == (row["psnr_y_f32"] - row["psnr_y"] <= 0.02
                                          and row["ssimulacra2_f32"] - row["ssimulacra2"] <= 0.2)
    assert rc == (0 if rep["scene"]["passed"] and rep["benchmark"]["passed"] else 1)
    assert "scene (2 frames): bf16 against f32" in text and "benchmark: bf16 against f32" in text


def test_precision_gate_cli_errors(capsys, tmp_path):
    from vsvqdsr.cli.main import main

    assert main(["precision-gate", "--precision", "int8"]) == 2
    assert "--precision must be one of 'auto', 'f32', 'bf16'" in capsys.readouterr().err
    assert main(["precision-gate", "--precision", "bf16", "--clip", "/nonexistent.mkv"]) == 2
    assert "--clip: no such video" in capsys.readouterr().err
    existing = tmp_path / "gate.json"
    existing.write_text("{}")
    assert main(["precision-gate", "--precision", "bf16", "--json", str(existing)]) == 2
    assert "--json " + str(existing) + " exists; pass --force" in capsys.readouterr().err
    assert existing.read_text() == "{}"
    if not NATIVE_BF16:
        assert main(["precision-gate", "--precision", "bf16", "--emulate", "off"]) == 2
        assert "no bf16 arithmetic" in capsys.readouterr().err


# --- the image graphs: Degrade and the SISR models --------------------------------------------


@pytest.fixture(scope="module")
def lite():
    from vsvqdsr.weights import load_model

    return load_model("degrade-lite", "degrader")[0]


def _small_sisr():
    import torch

    from vsvqdsr.nets.srvgg import SRVGGCompact

    torch.manual_seed(0)
    return SRVGGCompact(num_feat=8, num_conv=2).eval()


@pytest.mark.parametrize("caps, expected", [(SPR, "bf16"), (AVX2, "f32")])
def test_image_graphs_follow_the_same_selection(monkeypatch, caps, expected):
    """The graph engines resolve 'auto' with the VSR step's rule: faked AMX present / absent."""
    from vsvqdsr.backends.graph import TorchGraph
    from vsvqdsr.backends.image import sisr_graph

    monkeypatch.setattr(precision, "capabilities", lambda: frozenset(caps))
    g = TorchGraph(sisr_graph(_small_sisr()), "cpu", precision="auto")
    assert g.precision == expected and f", {expected}, " in g.describe()


@pytest.mark.skipif(not HAS_OV, reason="openvino is not installed")
def test_openvino_graph_asks_for_the_resolved_precision(monkeypatch, capfd):
    from vsvqdsr.backends.graph import graph_onnx
    from vsvqdsr.backends.image import sisr_graph
    from vsvqdsr.backends.openvino import OpenVINOGraph

    onnx = graph_onnx(sisr_graph(_small_sisr()), (8, 8))
    monkeypatch.setattr(precision, "capabilities", lambda: frozenset(SPR))
    g = OpenVINOGraph(onnx, threads=1, precision="auto")
    assert g.requested == "bf16" and g.config["INFERENCE_PRECISION_HINT"] == "bf16"
    monkeypatch.setattr(precision, "capabilities", lambda: frozenset(AVX2))
    assert OpenVINOGraph(onnx, threads=1).config["INFERENCE_PRECISION_HINT"] == "f32"
    g.run({"x": np.zeros((1, 3, 8, 8), np.float32)})
    (compiled,) = g._compiled.values()
    from vsvqdsr.backends.openvino import compiled_precision

    assert g.precision == compiled_precision(compiled) == ("bf16" if NATIVE_BF16 else "f32")
    if not NATIVE_BF16:
        assert "(bf16 requested)" in g.describe()
        assert "precision 'bf16' requested, the graph runs 'f32'" in capfd.readouterr().err


@pytest.mark.skipif(not HAS_OV, reason="openvino is not installed")
def test_degrader_lookup_is_marked_f32_for_openvino(lite):
    """Under bf16 the degrader graph's TopK, the distance MatMul before it and the codebook Gathers
    after it carry OpenVINO's 'precise' attribute (read back from IR as DisablePrecisionConversion),
    and OpenVINO's own compression pass honours it: the codebook stays f32, the convolutions do not."""
    import openvino as ov
    import openvino._offline_transformations as ot

    from vsvqdsr.backends.graph import graph_onnx
    from vsvqdsr.backends.image import degrade_graph
    from vsvqdsr.backends.openvino import keep_f32, read_onnx

    g = degrade_graph(lite, (1, 1, 9))
    assert g.keep_f32_ops == {"TopK"}
    core = ov.Core()
    model, n = keep_f32(core, read_onnx(core, graph_onnx(g)), g.keep_f32_ops)
    marked = {op.get_friendly_name() for op in model.get_ordered_ops()
              if any(k.startswith("DisablePrecisionConversion") for k in op.get_rt_info().keys())}
    types = {op.get_friendly_name(): op.get_type_name() for op in model.get_ordered_ops()}
    kinds = {types[m] for m in marked}
    assert len(marked) == n and {"TopK", "MatMul", "Gather"} <= kinds and "Convolution" not in kinds
    assert sum(t == "TopK" for t in types.values()) == sum(types[m] == "TopK" for m in marked) == 3
    m2 = model.clone()
    ot.compress_model_transformation(m2)
    e = lite.codebook.embedding.weight.detach().numpy()
    consts = [op for op in m2.get_ordered_ops() if op.get_type_name() == "Constant"]
    codebook = [c for c in consts if tuple(c.get_output_shape(0)) == e.shape]
    assert codebook and all(str(c.get_output_element_type(0)) == "<Type: 'float32'>" for c in codebook)
    conv_w = [c for c in consts if len(c.get_output_shape(0)) == 4]
    assert conv_w and all(str(c.get_output_element_type(0)) == "<Type: 'float16'>" for c in conv_w)


@pytest.mark.parametrize("engine", ["ort", "torch"] + (["openvino"] if HAS_OV else []))
def test_degrade_and_sisr_runners_carry_the_precision(lite, engine):
    from vsvqdsr.backends.image import DegradeRunner, SISRRunner

    d = DegradeRunner(lite, RunnerSpec(16, 24), "cpu", k_max=(1, 1, 3), engine=engine, precision="f32", threads=1)
    s = SISRRunner(_small_sisr(), RunnerSpec(12, 12), "cpu", tile=0, engine=engine, precision="f32", threads=1)
    for r in (d, s):
        assert r.precision == "f32" and ", f32, " in r.describe()
    y = d.run(np.random.default_rng(0).random((3, 16, 24), dtype=np.float32), (1, 1, 2))
    assert y.shape == (3, 16, 24)


def test_torch_graph_bf16_keeps_the_degrader_lookup_exact(lite):
    """torch bf16 is autocast over the f32 module; the lookup turns it off: for the same features,
    the entries equal the f32 lookup's (bf16 operands would change them)."""
    import torch

    from vsvqdsr.nets.vqgan import DegradeModule

    dm = DegradeModule(lite, 9)
    z = torch.randn(1, lite.config.embed_dim, 12, 20) * 0.5
    k = torch.tensor([9])
    ref = dm.lookup(z, k)
    with torch.autocast("cpu", torch.bfloat16):
        got = dm.lookup(z, k)
    assert torch.equal(got, ref)


def test_degrade_precision_errors(lite):
    import vsvqdsr

    clip = vs.core.std.BlankClip(format=vs.RGBS, width=16, height=16, length=1)
    for bad in ("int8", "fp32", 16):
        with pytest.raises(vs.Error, match=r"^Degrade: precision must be one of 'auto', 'f32', 'bf16', got"):
            vsvqdsr.Degrade(clip, model="degrade-lite", backend="cpu", precision=bad)
    with pytest.raises(vs.Error, match=r"^Degrade: precision 'bf16' is not offered by ort; accepted here: 'auto', 'f32'"):
        vsvqdsr.Degrade(clip, model="degrade-lite", backend="cpu", engine="ort", precision="bf16")
    out = vsvqdsr.Degrade(clip, model="degrade-lite", backend="cpu", engine="ort", precision="f32")
    assert out.get_frame(0).props["VQDSR_KTop"] == 1


def test_enhance_hr_precision(tmp_path, capsys, monkeypatch):
    from vsvqdsr.cli.main import main
    from vsvqdsr.training import enhance

    seen = {}
    monkeypatch.setattr(enhance, "enhance_dir", lambda *a, **kw: seen.update(kw) or 0)
    (tmp_path / "in").mkdir()
    assert main(["enhance-hr", str(tmp_path / "in"), str(tmp_path / "o"), "--device", "cpu", "--precision", "int8"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--precision must be one of 'auto', 'f32', 'bf16', got 'int8'" in err[0]
    assert main(["enhance-hr", str(tmp_path / "in"), str(tmp_path / "o"), "--device", "cpu", "--precision", "f32"]) == 0
    assert seen["precision"] == "f32"
    seen.clear()
    assert main(["enhance-hr", str(tmp_path / "in"), str(tmp_path / "o2"), "--device", "cpu"]) == 0
    assert "precision" not in seen  # auto: the engines' default


def test_eval_sisr_baseline_takes_the_precision(monkeypatch):
    from vsvqdsr.backends import image
    from vsvqdsr.evaluation import methods

    seen = {}

    class Spy:
        def __init__(self, net, spec, backend, tile=0, **options):
            seen.update(options, backend=backend)

        def run(self, img):
            return np.zeros((3, img.shape[1] * 4, img.shape[2] * 4), np.float32)

    monkeypatch.setattr(image, "SISRRunner", Spy)
    monkeypatch.setattr("vsvqdsr.weights.load_model", lambda *a, **kw: (_small_sisr(), None, "x"))
    lr = np.zeros((1, 4, 4, 3), np.uint8)
    methods._sisr(methods.Method("m", "sisr", Path("/x"), settings={"tile": 0, "precision": "f32"}), lr)
    assert seen == {"precision": "f32", "backend": "cpu"}
    seen.clear()
    methods._sisr(methods.Method("m", "sisr", Path("/x"), settings={"tile": 0}), lr)
    assert seen == {"backend": "cpu"}


def test_degrader_lookup_under_emulated_bf16(lite):
    """The lookup kept f32 changes no more entries than a bf16 lookup would, and far fewer at the
    deep ranks (where bf16-rounded distances tie); the rates are stated in docs/degrade.md."""
    scene = precision_gate.load_scene(SAMPLE, 0, 1)[:, :, 40:104, 96:192]
    res = precision_gate.lookup_gate(lite, np.ascontiguousarray(scene), ranks=(1, 50))
    f32, b16 = res.changed["f32 lookup"], res.changed["bf16 lookup"]
    for branch in ("top", "middle", "bottom"):
        assert f32[branch][1] <= b16[branch][1] + 0.01
        assert f32[branch][50] < b16[branch][50]
    assert 0 < f32["bottom"][1] < 0.5, res.lines()


def test_image_bench_rows_carry_ran_and_peak_share(tmp_path, capsys):
    import json

    from vsvqdsr.cli.main import main

    out = tmp_path / "b.json"
    assert main(["bench", "--what", "sisr", "--sizes", "16x24", "--frames", "1", "--warmup", "0", "--only", "onnx",
                 "--json", str(out)]) == 0
    rows = {r["label"]: r for r in json.loads(out.read_text())["rows"] if r["kind"] in ("sisr", "peak")}
    ort_row = rows["onnxruntime fp32 (cpu)"]
    assert ort_row["precision"] == "f32" and ort_row["peak_share"] > 0
    peaks = {r["precision"]: r for r in rows.values() if r["kind"] == "peak"}
    assert set(peaks) == {"f32", "bf16"} and all(p["gflops"] > 0 for p in peaks.values())
    (lim,) = json.loads(out.read_text())["graph_limits"]
    best = min((r for r in rows.values() if r["kind"] == "sisr"), key=lambda r: r["ms"])  # ORT or the torch baseline
    assert lim["kind"] == "sisr" and lim["label"] == best["label"] and lim["precision"] == "f32"
    assert abs(lim["ratio"] * best["peak_share"] - 1) < 1e-9 and abs(lim["limit_ms"] - lim["ms"] / lim["ratio"]) < 1e-9
    assert f"sisr limit 16x24: best CPU {best['label']}" in capsys.readouterr().out


def test_graph_limit_verdict_uses_the_precision_each_row_ran():
    from vsvqdsr.evaluation.speed import Row, graph_limit_verdicts

    rows = [Row("degrade", "torch eager degrade() NCHW fp32 (cpu)", "8x8", ms=100.0, peak_share=0.01, precision="f32"),
            Row("degrade", "openvino bf16 (cpu)", "8x8", ms=10.0, peak_share=0.05, precision="bf16"),
            Row("degrade", "tensorrt fp16", "8x8", ms=1.0, peak_share=0.5),
            Row("peak", "fp32 GEMM 2048^3 (cpu)", "8x8", ms=1.0, precision="f32")]
    (v,) = graph_limit_verdicts(rows, "degrade")
    assert v["label"] == "openvino bf16 (cpu)" and v["precision"] == "bf16" and abs(v["ratio"] - 20) < 1e-9
    assert abs(v["limit_ms"] - 0.5) < 1e-9


@pytest.mark.skipif(not HAS_OV, reason="openvino is not installed")
def test_openvino_degrader_bf16_request_runs_the_marked_graph(lite, capfd):
    """A bf16 request builds the marked graph (lookup f32, through IR); it runs, says what ran, and
    where the CPU has no bf16 it is the f32 graph bit for bit."""
    from vsvqdsr.backends.image import DegradeRunner

    x = np.random.default_rng(1).random((3, 24, 40), dtype=np.float32)
    f32 = DegradeRunner(lite, RunnerSpec(24, 40), "cpu", k_max=(1, 1, 9), engine="openvino", precision="f32", threads=1)
    b16 = DegradeRunner(lite, RunnerSpec(24, 40), "cpu", k_max=(1, 1, 9), engine="openvino", precision="bf16", threads=1)
    assert b16.engine.kept_f32 > 0 and f32.engine.kept_f32 == 0
    y32, y16 = f32.run(x, (1, 1, 5)), b16.run(x, (1, 1, 5))
    assert b16.precision == ("bf16" if NATIVE_BF16 else "f32")
    if NATIVE_BF16:
        assert "lookup nodes f32" in b16.describe() and np.abs(y16 - y32).mean() < 0.02
    else:
        assert np.array_equal(y16, y32) and "(bf16 requested)" in b16.describe()


def test_bench_table_columns_line_up_for_long_severity_names():
    from vsvqdsr.evaluation.precision_gate import BenchResult

    row = {"psnr_y_f32": 30.0, "psnr_y": 29.99, "ssimulacra2_f32": 10.0, "ssimulacra2": 9.98}
    res = BenchResult("bf16", "bf16 (emulated)", [dict(row, severity="light"), dict(row, severity="old-analogue")])
    head, light, old = res.lines()[1:4]
    assert len(light) == len(old) == len(head)  # the widest name sets the column
    assert light.index("30.000") == old.index("30.000") == head.index("PSNR-Y f32") + len("PSNR-Y f32") - 6
