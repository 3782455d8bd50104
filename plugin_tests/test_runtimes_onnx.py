"""ONNX export of the per-frame step: onnxruntime (CPU) parity with torch, both variants, and the
fp16 conversion used for TensorRT >= 11."""
from __future__ import annotations

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch

from vsvqdsr.backends.onnx_export import (OPSET, convert_to_fp16, export_step, export_step_bytes, input_names,
                                          onnx_checksum)
from vsvqdsr.backends.torch_runner import pad_to
from vsvqdsr.nets.vsr import RecurrentVSR


def _net(feedback: bool) -> RecurrentVSR:
    torch.manual_seed(1 + feedback)
    net = RecurrentVSR(feedback=feedback).eval()
    # give the biases values so that a wrong wiring of any input shows up
    with torch.no_grad():
        for m in net.modules():
            if isinstance(m, torch.nn.Conv2d):
                m.bias.uniform_(-0.05, 0.05)
    return net


def _inputs(net: RecurrentVSR, h: int, w: int, seed: int = 0) -> list[torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    hp, wp = -(-h // 4) * 4, -(-w // 4) * 4
    frames = [pad_to(torch.rand(1, 3, h, w, generator=g), hp, wp) for _ in range(3)]
    state = torch.rand(1, net.num_feat, hp, wp, generator=g) * 0.5
    extra = [torch.rand(1, 3, 4 * hp, 4 * wp, generator=g)] if net.feedback else []
    return frames + [state] + extra


@pytest.fixture(scope="module", params=[False, True], ids=["vqdsr", "animesr-feedback"])
def exported(request):
    net = _net(request.param)
    return net, export_step_bytes(net, (8, 8))


@pytest.mark.parametrize("size", [(8, 12), (10, 13)], ids=["even", "odd-padded"])
def test_onnxruntime_matches_torch(exported, size):
    net, model = exported
    sess = ort.InferenceSession(model, providers=["CPUExecutionProvider"])
    args = _inputs(net, *size)
    with torch.no_grad():
        ref_out, ref_state = net.step(*args[:4], args[4] if net.feedback else None)
    out, state = sess.run(None, {n: a.numpy() for n, a in zip(input_names(net.feedback), args)})
    assert out.shape == tuple(ref_out.shape) and state.shape == tuple(ref_state.shape)
    assert np.abs(out - ref_out.numpy()).max() < 1e-5
    assert np.abs(state - ref_state.numpy()).max() < 1e-5


def test_graph_interface(exported):
    net, model = exported
    m = onnx.load_from_string(model)
    assert m.opset_import[0].version == OPSET
    assert [i.name for i in m.graph.input] == input_names(net.feedback)
    assert [o.name for o in m.graph.output] == ["out", "new_state"]
    dims = m.graph.input[0].type.tensor_type.shape.dim
    assert dims[2].dim_param and dims[3].dim_param  # dynamic height and width
    assert onnx_checksum(model) == onnx_checksum(export_step_bytes(net, (8, 8)))  # deterministic


def test_export_step_writes_the_same_bytes_and_returns_the_path(exported, tmp_path):
    net, model = exported
    path = export_step(net, tmp_path / "sub" / "step.onnx", (8, 8))
    assert path == tmp_path / "sub" / "step.onnx"
    assert path.read_bytes() == model
    assert export_step(net, str(tmp_path / "half.onnx"), (8, 8), fp16=True).read_bytes() == convert_to_fp16(model)


def test_fp16_conversion_runs_and_stays_close(exported):
    net, model = exported
    half = convert_to_fp16(model)
    m = onnx.load_from_string(half)
    assert all(i.type.tensor_type.elem_type == onnx.TensorProto.FLOAT16 for i in m.graph.input)
    assert all(o.type.tensor_type.elem_type == onnx.TensorProto.FLOAT16 for o in m.graph.output)
    floats = [t.name for t in m.graph.initializer if t.data_type == onnx.TensorProto.FLOAT]
    resize_inputs = {n.input[2] for n in m.graph.node if n.op_type == "Resize" and len(n.input) > 2}
    assert set(floats) <= resize_inputs  # only Resize scales stay float32, as ONNX requires
    sess = ort.InferenceSession(half, providers=["CPUExecutionProvider"])
    args = _inputs(net, 8, 12)
    with torch.no_grad():
        ref_out, _ = net.step(*args[:4], args[4] if net.feedback else None)
    out, _ = sess.run(None, {n: a.numpy().astype(np.float16) for n, a in zip(input_names(net.feedback), args)})
    assert out.dtype == np.float16
    assert np.abs(out.astype(np.float32) - ref_out.numpy()).max() < 5e-3
