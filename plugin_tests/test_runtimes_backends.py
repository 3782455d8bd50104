"""Backends behind StepRunner: CPU engines against the torch reference, backend resolution,
clear errors without TensorRT, and GPU checks that skip cleanly without CUDA."""
from __future__ import annotations

import copy
import importlib.util

import numpy as np
import pytest
import torch

from vsvqdsr import backends
from vsvqdsr.backends import BackendUnavailable, RunnerSpec
from vsvqdsr.backends.cpu import CPURunner
from vsvqdsr.nets.vsr import RecurrentVSR
from vsvqdsr.weights.descriptors import describe

HAS_TRT = importlib.util.find_spec("tensorrt") is not None
HAS_TTRT = importlib.util.find_spec("torch_tensorrt") is not None
HAS_OV = importlib.util.find_spec("openvino") is not None
CUDA = torch.cuda.is_available()


def _model(feedback: bool):
    torch.manual_seed(3 + feedback)
    net = RecurrentVSR(feedback=feedback).eval().requires_grad_(False)
    with torch.no_grad():
        for m in net.modules():
            if isinstance(m, torch.nn.Conv2d):
                m.bias.uniform_(-0.05, 0.05)
    desc = describe(net.state_dict())  # the model layer's descriptor, not one built by hand
    return net, desc


def _frames(n: int, h: int, w: int, seed: int = 0) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    base = rng.random((3, h, w), dtype=np.float32)
    return [np.clip(base + 0.05 * i, 0, 1).astype(np.float32) for i in range(n)]


def _run_chain(runner, frames: list[np.ndarray]) -> list[np.ndarray]:
    ups = [runner.upload(f) for f in frames]
    state, prev_out = runner.initial_state()
    outs = []
    for i in range(len(ups)):
        out, state = runner.step(ups[max(i - 1, 0)], ups[i], ups[min(i + 1, len(ups) - 1)], state, prev_out)
        prev_out = out if runner.desc.feedback else None
        outs.append(runner.download(out))
    return outs


def _reference(net, desc, spec, frames):
    return _run_chain(CPURunner(copy.deepcopy(net), desc, spec, channels_last=False), frames)


ENGINES = ["ort", "torch"] + (["openvino"] if HAS_OV else [])


@pytest.mark.parametrize("feedback", [False, True], ids=["vqdsr", "animesr"])
@pytest.mark.parametrize("engine", ENGINES)
def test_cpu_engines_match_torch_reference(engine, feedback):
    net, desc = _model(feedback)
    spec = RunnerSpec(10, 13)  # padded to 12x16 and cropped back
    frames = _frames(3, 10, 13)
    ref = _reference(net, desc, spec, frames)
    runner = backends.create("cpu", copy.deepcopy(net), desc, spec, engine=engine)
    outs = _run_chain(runner, frames)
    assert runner.step_count == 3
    for o, r in zip(outs, ref):
        assert o.shape == (3, 40, 52) and o.dtype == np.float32
        assert np.abs(o - r).max() < 1e-4


def test_cpu_default_engine_and_half_host_dtype():
    net, desc = _model(False)
    spec = RunnerSpec(8, 8, host_dtype=np.float16)
    runner = backends.create("cpu", copy.deepcopy(net), desc, spec)
    assert runner.name == ("openvino" if HAS_OV else "ort")
    out = _run_chain(runner, _frames(2, 8, 8))[0]
    assert out.dtype == np.float16 and out.shape == (3, 32, 32)


def test_cpu_rejects_bad_options():
    net, desc = _model(False)
    with pytest.raises(ValueError, match="engine must be one of"):
        backends.create("cpu", net, desc, RunnerSpec(8, 8), engine="numba")
    with pytest.raises(ValueError, match="precision"):  # int8 was measured and removed (README)
        backends.create("cpu", net, desc, RunnerSpec(8, 8), precision="int8")
    with pytest.raises(BackendUnavailable, match="unknown backend"):
        backends.create("vulkan", net, desc, RunnerSpec(8, 8))


@pytest.mark.skipif(CUDA, reason="a CUDA device is present: auto would pick a GPU backend")
def test_auto_picks_cpu_here_and_says_so(capfd):
    net, desc = _model(False)
    backends._announced.clear()
    r = backends.create("auto", net, desc, RunnerSpec(8, 8))
    backends.create("auto", net, desc, RunnerSpec(8, 8))
    err = capfd.readouterr()
    assert backends.resolve_auto() == "cpu" and r.name in ("openvino", "ort", "cpu")
    assert err.err.count("backend=auto chose 'cpu'") == 1 and err.out == ""


@pytest.mark.skipif(HAS_TRT, reason="TensorRT is installed")
@pytest.mark.parametrize("name", ["trt", "torch_trt"])
def test_trt_missing_says_how_to_install(name):
    net, desc = _model(False)
    with pytest.raises(BackendUnavailable, match=r"pip install 'vsvqdsr\[trt\]'"):
        backends.create(name, net, desc, RunnerSpec(8, 8, fp16=True))
    assert backends._available(name) is False


@pytest.mark.skipif(CUDA, reason="a CUDA device is present")
def test_cuda_without_gpu_is_unavailable():
    net, desc = _model(False)
    with pytest.raises(BackendUnavailable, match="no CUDA device"):
        backends.create("cuda", net, desc, RunnerSpec(8, 8))


@pytest.mark.gpu
@pytest.mark.skipif(not CUDA, reason="needs a CUDA GPU")
@pytest.mark.parametrize("fp16,graphs", [(False, False), (True, False), (True, True)])
def test_cuda_matches_cpu(fp16, graphs):
    net, desc = _model(True)
    spec = RunnerSpec(18, 30, fp16=fp16, num_streams=2)
    frames = _frames(4, 18, 30)
    ref = _reference(net, desc, RunnerSpec(18, 30), frames)
    outs = _run_chain(backends.create("cuda", copy.deepcopy(net), desc, spec, cuda_graphs=graphs), frames)
    tol = 2e-2 if fp16 else 1e-3
    for o, r in zip(outs, ref):
        assert np.abs(o.astype(np.float32) - r).max() < tol


@pytest.mark.gpu
@pytest.mark.skipif(not (CUDA and HAS_TRT), reason="needs a CUDA GPU and TensorRT")
@pytest.mark.parametrize("fp16", [False, True])
def test_trt_engine_matches_cpu_and_is_cached(tmp_path, fp16):
    net, desc = _model(False)
    spec = RunnerSpec(18, 30, fp16=fp16)
    frames = _frames(3, 18, 30)
    ref = _reference(net, desc, RunnerSpec(18, 30), frames)
    r1 = backends.create("trt", copy.deepcopy(net), desc, spec, engine_dir=tmp_path)
    outs = _run_chain(r1, frames)
    for o, r in zip(outs, ref):
        assert np.abs(o - r).max() < (2e-2 if fp16 else 2e-3)
    mtime = r1.engine_path.stat().st_mtime_ns
    backends.create("trt", copy.deepcopy(net), desc, spec, engine_dir=tmp_path)
    assert r1.engine_path.stat().st_mtime_ns == mtime  # loaded, not rebuilt


def test_options_are_checked_and_auto_drops_foreign_ones(capfd):
    net, desc = _model(False)
    with pytest.raises(ValueError, match="does not take option.*engine_dir"):
        backends.create("cuda", net, desc, RunnerSpec(8, 8), engine_dir="/tmp/x")
    if not CUDA:
        r = backends.create("auto", net, desc, RunnerSpec(8, 8), fp16_mode="onnx", engine="torch")
        assert r.name == "cpu"  # the cpu option was kept, the trt one dropped with a note
        assert "ignores fp16_mode" in capfd.readouterr().err
