"""Export one recurrent step of :class:`~vsvqdsr.nets.vsr.RecurrentVSR` to ONNX, and convert to fp16.

The exported graph is :class:`~vsvqdsr.nets.vsr.StepModule`:

* inputs ``prev, cur, nxt`` ``(1, 3, h, w)``, ``state`` ``(1, F, h, w)`` and, for the feedback
  (AnimeSR) variant, ``prev_out`` ``(1, 3, s*h, s*w)``;
* outputs ``out`` ``(1, 3, s*h, s*w)`` and ``new_state`` ``(1, F, h, w)``.

Height and width are dynamic (``h``/``w`` must be multiples of 4 at run time; the runners pad).
The legacy TorchScript exporter is used (``dynamo=False``, opset 18): it handles this network and
its dynamic shapes (ONNX Runtime and OpenVINO match torch to about 5e-7).

:func:`convert_to_fp16` rewrites a float32 graph to float16 (weights, constants, inputs and outputs).
TensorRT >= 11 has no builder fp16 flag, so an fp16 engine is built from such a graph.
"""
from __future__ import annotations

import hashlib
import io
import os
import warnings
from pathlib import Path

import torch

from .engine_cache import atomic_write_bytes
from ..log import get_logger

log = get_logger(__name__)

__all__ = ["OPSET", "input_names", "output_names", "export_step", "export_step_bytes",
           "convert_to_fp16", "onnx_checksum", "atomic_write_bytes", "export_graph_bytes",
           "TRT_ONNX_OPS", "trt_problems"]

#: ONNX opset of every exported graph.
OPSET = 18


def input_names(feedback: bool) -> list[str]:
    """Graph input names, in ``StepRunner.step`` argument order."""
    return ["prev", "cur", "nxt", "state"] + (["prev_out"] if feedback else [])


def output_names() -> list[str]:
    return ["out", "new_state"]


def _example(net, height: int, width: int) -> tuple[torch.Tensor, ...]:
    p = next(net.parameters())
    x = torch.rand(1, 3, height, width, dtype=torch.float32, device=p.device)
    state = torch.zeros(1, net.num_feat, height, width, dtype=torch.float32, device=p.device)
    args: tuple[torch.Tensor, ...] = (x, x.clone(), x.clone(), state)
    if net.feedback:
        args += (torch.zeros(1, 3, height * net.scale, width * net.scale, dtype=torch.float32, device=p.device),)
    return args


def export_step_bytes(net, example_size: tuple[int, int] = (64, 64), dynamic: bool = True) -> bytes:
    """Export ``net``'s per-frame step to an fp32 ONNX model (serialized bytes).

    Args:
        net: a :class:`RecurrentVSR` (either variant); it is exported in fp32 on its device.
        example_size: LR ``(height, width)`` of the tracing example (multiples of 4). With
            ``dynamic=False`` this is the model's fixed size.
        dynamic: make height and width symbolic.
    """
    from ..nets.vsr import StepModule

    h, w = example_size
    if h % 4 or w % 4 or h <= 0 or w <= 0:
        raise ValueError(f"export_step: example_size must be positive multiples of 4, got {example_size}")
    was_training = net.training
    net = net.float().eval()
    names = input_names(net.feedback)
    dyn = None
    if dynamic:
        dyn = {n: {2: "h", 3: "w"} for n in names}
        dyn["new_state"] = {2: "h", 3: "w"}
        dyn["out"] = {2: "sh", 3: "sw"}
        if net.feedback:
            dyn["prev_out"] = {2: "sh", 3: "sw"}
    buf = io.BytesIO()
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")
        torch.onnx.export(StepModule(net), _example(net, h, w), buf, dynamo=False, opset_version=OPSET,
                          input_names=names, output_names=output_names(), dynamic_axes=dyn,
                          do_constant_folding=True)
    net.train(was_training)
    return buf.getvalue()


def export_graph_bytes(module: torch.nn.Module, args: tuple[torch.Tensor, ...], input_names: list[str],
                       output_names: list[str], dynamic_axes: dict[str, dict[int, str]] | None = None) -> bytes:
    """Export any image graph (the degrader, the SISR models) to fp32 ONNX bytes, the same way as
    the VSR step (legacy exporter, opset :data:`OPSET`, constants folded)."""
    was_training = module.training
    module = module.float().eval()
    buf = io.BytesIO()
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")
        torch.onnx.export(module, args, buf, dynamo=False, opset_version=OPSET, input_names=input_names,
                          output_names=output_names, dynamic_axes=dynamic_axes, do_constant_folding=True)
    module.train(was_training)
    return buf.getvalue()


def export_step(net, path: str | os.PathLike, example_size: tuple[int, int] = (64, 64),
                dynamic: bool = True, fp16: bool = False) -> Path:
    """Export to a file (atomically) and return its path; ``fp16=True`` also converts the graph to float16."""
    data = export_step_bytes(net, example_size, dynamic)
    if fp16:
        data = convert_to_fp16(data)
    atomic_write_bytes(path, data)
    return Path(path)


def onnx_checksum(data: bytes) -> str:
    """SHA-256 hex digest of a serialized model (the engine cache key uses its first 16 digits)."""
    return hashlib.sha256(data).hexdigest()


# Inputs that ONNX requires to stay float32 whatever the data type: Resize roi/scales.
_KEEP_FLOAT32_INPUTS = {"Resize": (1, 2)}


def convert_to_fp16(model: bytes) -> bytes:
    """Convert a float32 ONNX model to float16 throughout (I/O included) and return its bytes.

    Float initializers and ``Constant`` tensors become float16, except those feeding inputs the
    ONNX standard types as float32 (``Resize`` ``roi``/``scales``); ``Cast(to=FLOAT)`` becomes
    ``Cast(to=FLOAT16)``; graph inputs/outputs are declared float16. Values beyond the fp16 range
    are clipped to +-65504.
    """
    import numpy as np
    import onnx
    from onnx import TensorProto, numpy_helper

    m = onnx.load_from_string(model)
    g = m.graph
    keep: set[str] = set()
    for node in g.node:
        for idx in _KEEP_FLOAT32_INPUTS.get(node.op_type, ()):
            if idx < len(node.input) and node.input[idx]:
                keep.add(node.input[idx])

    def to_half(t: onnx.TensorProto) -> onnx.TensorProto:
        arr = numpy_helper.to_array(t)
        arr = np.clip(arr, -65504.0, 65504.0).astype(np.float16)
        return numpy_helper.from_array(arr, t.name)

    for i, init in enumerate(g.initializer):
        if init.data_type == TensorProto.FLOAT and init.name not in keep:
            g.initializer[i].CopyFrom(to_half(init))
    for node in g.node:
        if node.op_type == "Constant" and node.output[0] not in keep:
            for a in node.attribute:
                if a.name == "value" and a.t.data_type == TensorProto.FLOAT:
                    a.t.CopyFrom(to_half(a.t))
        elif node.op_type == "Cast":
            for a in node.attribute:
                if a.name == "to" and a.i == TensorProto.FLOAT:
                    a.i = TensorProto.FLOAT16
    for vi in list(g.input) + list(g.output):
        if vi.type.tensor_type.elem_type == TensorProto.FLOAT:
            vi.type.tensor_type.elem_type = TensorProto.FLOAT16
    del g.value_info[:]  # stale float32 annotations; shape inference re-derives them
    onnx.checker.check_model(m)
    return m.SerializeToString()


#: ONNX operators of our exported graphs that TensorRT's ONNX parser supports (onnx-tensorrt's
#: operator support matrix), with the restriction checked by :func:`trt_problems` where it has one.
TRT_ONNX_OPS: dict[str, str] = {
    "Add": "", "Cast": "", "Clip": "", "Concat": "", "Constant": "", "ConstantOfShape": "",
    "Conv": "weights W must be an initializer", "DepthToSpace": "", "Div": "", "Gather": "", "Identity": "",
    "InstanceNormalization": "scale and B must be initializers", "LeakyRelu": "", "MatMul": "", "Mul": "",
    "Expand": "", "Pad": "", "Pow": "", "PRelu": "", "ReduceMean": "axes must be a constant",
    "ReduceSum": "axes must be a constant", "Relu": "", "Reshape": "",
    "Resize": "modes nearest/linear, coordinate transforms half_pixel, pytorch_half_pixel, "
              "tf_half_pixel_for_nn, asymmetric, align_corners",
    "Shape": "", "Sigmoid": "", "Slice": "axes must be an initializer", "Softmax": "", "Sqrt": "",
    "Squeeze": "axes must be a constant", "Sub": "", "TopK": "K must be an initializer, at most 3840",
    "Transpose": "", "Unsqueeze": "axes must be a constant",
}
_TRT_RESIZE_MODES = {"nearest", "linear"}
_TRT_RESIZE_COORDS = {"half_pixel", "pytorch_half_pixel", "tf_half_pixel_for_nn", "asymmetric", "align_corners"}
_TRT_TOPK_MAX = 3840


def trt_problems(model: bytes) -> list[str]:
    """What in a serialized ONNX graph TensorRT's parser would refuse (empty list: nothing).

    Checks every node against :data:`TRT_ONNX_OPS` and its restriction: constant inputs where
    required (initializers or ``Constant`` outputs), TopK's K <= 3840, Resize modes. No TensorRT
    is needed; this is the check up to the engine boundary.
    """
    import onnx
    from onnx import numpy_helper

    g = onnx.load_from_string(model).graph
    const = {t.name: numpy_helper.to_array(t) for t in g.initializer}
    for node in g.node:
        if node.op_type == "Constant":
            for a in node.attribute:
                if a.name == "value":
                    const[node.output[0]] = numpy_helper.to_array(a.t)
    problems = []

    def need_const(node, idx: int, what: str) -> None:
        if idx < len(node.input) and node.input[idx] and node.input[idx] not in const:
            problems.append(f"{node.op_type} {node.name}: {what} is not a constant")

    for node in g.node:
        op = node.op_type
        if op not in TRT_ONNX_OPS:
            problems.append(f"{op} {node.name}: operator not in TensorRT's ONNX support list")
            continue
        attrs = {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}
        if op == "TopK":
            need_const(node, 1, "K")
            k = const.get(node.input[1])
            if k is not None and int(k.reshape(-1)[0]) > _TRT_TOPK_MAX:
                problems.append(f"TopK {node.name}: K = {int(k.reshape(-1)[0])} > {_TRT_TOPK_MAX}")
        elif op == "Conv":
            need_const(node, 1, "W")
        elif op == "InstanceNormalization":
            need_const(node, 1, "scale")
            need_const(node, 2, "B")
        elif op == "Slice":
            need_const(node, 3, "axes")
        elif op in ("Squeeze", "Unsqueeze", "ReduceMean", "ReduceSum"):
            need_const(node, 1, "axes")
        elif op == "Resize":
            mode = attrs.get("mode", b"nearest")
            coord = attrs.get("coordinate_transformation_mode", b"half_pixel")
            mode, coord = (v.decode() if isinstance(v, bytes) else v for v in (mode, coord))
            if mode not in _TRT_RESIZE_MODES or coord not in _TRT_RESIZE_COORDS:
                problems.append(f"Resize {node.name}: mode {mode} / {coord} not supported by TensorRT")
    return problems


def _log(msg: str) -> None:
    log.info(msg)
