"""Read ncnn ``.param``/``.bin`` model files of SRVGG-style networks into torch state dicts.

Only what the Real-ESRGAN ncnn models use is supported. ``.param`` is text: a magic line
(7767517), a ``layers blobs`` count line, then one line per layer
``Type Name n_in n_out inputs... outputs... k=v ...``. ``.bin`` holds, in layer order:

* Convolution: a uint32 storage tag (``0x01306B47`` = fp16, ``0`` = fp32), the weights in
  ``[out, in, kh, kw]`` order, then (if ``5=1``) ``num_output`` fp32 biases without a tag;
* PReLU: ``0=num_slope`` fp32 slopes without a tag.

:func:`convert_srvgg` checks the graph is ``conv, PReLU, (conv, PReLU)*, conv, PixelShuffle(s),
Interp(nearest, s) of the input, add`` and that the whole ``.bin`` is consumed, byte for byte.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch

from .loading import WeightsError

__all__ = ["NcnnLayer", "parse_param", "convert_srvgg", "convert_rrdb", "FP16_TAG"]

FP16_TAG = 0x01306B47


@dataclass
class NcnnLayer:
    type: str
    name: str
    inputs: list[str]
    outputs: list[str]
    params: dict[int, str] = field(default_factory=dict)

    def int(self, key: int, default: int = 0) -> int:
        return int(self.params.get(key, default))

    def float(self, key: int, default: float = 0.0) -> float:
        return float(self.params.get(key, default))


def parse_param(text: str) -> list[NcnnLayer]:
    """Parse an ncnn ``.param`` text file into layers."""
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
    if not lines or lines[0] != "7767517":
        raise WeightsError("ncnn .param: missing magic number 7767517")
    n_layers = int(lines[1].split()[0])
    layers = []
    for ln in lines[2:2 + n_layers]:
        tok = ln.split()
        n_in, n_out = int(tok[2]), int(tok[3])
        ins = tok[4:4 + n_in]
        outs = tok[4 + n_in:4 + n_in + n_out]
        params = {}
        for kv in tok[4 + n_in + n_out:]:
            k, v = kv.split("=", 1)
            params[int(k)] = v
        layers.append(NcnnLayer(tok[0], tok[1], ins, outs, params))
    if len(layers) != n_layers:
        raise WeightsError(f"ncnn .param: expected {n_layers} layers, found {len(layers)}")
    return layers


class _Reader:
    def __init__(self, data: bytes) -> None:
        self.data = data
        self.pos = 0

    def take(self, n: int) -> bytes:
        if self.pos + n > len(self.data):
            raise WeightsError(f"ncnn .bin: truncated at byte {self.pos} (wanted {n} more, file has {len(self.data)})")
        out = self.data[self.pos:self.pos + n]
        self.pos += n
        return out

    def array(self, dtype: str, count: int) -> np.ndarray:
        return np.frombuffer(self.take(count * np.dtype(dtype).itemsize), dtype=dtype).copy()


def _read_conv(rd: "_Reader", ly: NcnnLayer) -> tuple[np.ndarray, np.ndarray]:
    """One convolution's weights ``[out, in, k, k]`` (float32) and bias from the .bin stream."""
    cout, k, size = ly.int(0), ly.int(1), ly.int(6)
    if ly.int(11, k) != k or ly.int(3, 1) != 1 or ly.int(4) != 1 or k != 3:
        raise WeightsError(f"{ly.name}: only 3x3 stride-1 pad-1 convolutions are supported")
    cin = size // (cout * k * k)
    if cin * cout * k * k != size:
        raise WeightsError(f"{ly.name}: weight size {size} is not out*in*k*k")
    tag = int(np.frombuffer(rd.take(4), "<u4")[0])
    if tag == FP16_TAG:
        w = rd.array("<f2", size).astype(np.float32)
    elif tag == 0:
        w = rd.array("<f4", size)
    else:
        raise WeightsError(f"{ly.name}: unsupported weight storage tag {tag:#x}")
    b = rd.array("<f4", cout) if ly.int(5) else np.zeros(cout, np.float32)
    return w.reshape(cout, cin, k, k), b


def convert_rrdb(param_text: str, bin_data: bytes) -> tuple[dict[str, torch.Tensor], dict[str, int]]:
    """Convert an ncnn RRDBNet x4 (Real-ESRGAN x4plus family) into :class:`~vsvqdsr.nets.rrdb.RRDBNet` weights.

    Checks: ``1 + 15 n + 5`` 3x3 convolutions, LeakyReLU(0.2) fused (``9=2``) exactly on the dense
    convs 1-4, the up/hr convs, two nearest x2 ``Interp`` layers, the RDB/RRDB adds scaled by
    (0.2, 1), and the whole ``.bin`` consumed. Returns ``(state dict, config)``.
    """
    layers = parse_param(param_text)
    convs = [ly for ly in layers if ly.type == "Convolution"]
    n_blocks, rem = divmod(len(convs) - 6, 15)
    if rem or n_blocks < 1:
        raise WeightsError(f"ncnn model has {len(convs)} convolutions; an RRDBNet x4 has 15 n + 6")
    interps = [ly for ly in layers if ly.type == "Interp"]
    if len(interps) != 2 or any(ly.int(0) != 1 or ly.float(1) != 2 or ly.float(2) != 2 for ly in interps):
        raise WeightsError("ncnn RRDBNet must upsample with two nearest x2 Interp layers")
    adds = [ly for ly in layers if ly.type == "Eltwise"]
    if len(adds) != 4 * n_blocks or any(ly.params.get(-23301) != "2,2.000000e-01,1.000000e+00" for ly in adds):
        raise WeightsError("ncnn RRDBNet residual adds are not 0.2 * branch + identity")
    names = ["conv_first"]
    for b in range(n_blocks):
        names += [f"body.{b}.rdb{r}.conv{c}" for r in (1, 2, 3) for c in range(1, 6)]
    names += ["conv_body", "conv_up1", "conv_up2", "conv_hr", "conv_last"]
    lrelu = {n for n in names if n[-5:] in ("conv1", "conv2", "conv3", "conv4")} | {"conv_up1", "conv_up2", "conv_hr"}
    rd = _Reader(bin_data)
    sd: dict[str, torch.Tensor] = {}
    for name, ly in zip(names, convs):
        act = ly.int(9) == 2 and ly.params.get(-23310) == "1,2.000000e-01"
        if act != (name in lrelu) or (not act and ly.int(9) != 0):
            raise WeightsError(f"{ly.name} ({name}): unexpected activation {ly.params.get(9)}")
        w, bias = _read_conv(rd, ly)
        sd[f"{name}.weight"] = torch.from_numpy(w)
        sd[f"{name}.bias"] = torch.from_numpy(bias)
    if rd.pos != len(bin_data):
        raise WeightsError(f"ncnn .bin: {len(bin_data) - rd.pos} bytes left over after the last layer")
    num_feat = convs[0].int(0)
    cfg = {"in_ch": int(sd["conv_first.weight"].shape[1]), "out_ch": convs[-1].int(0), "num_feat": num_feat,
           "num_block": n_blocks, "num_grow": convs[1].int(0)}
    return sd, cfg


def convert_srvgg(param_text: str, bin_data: bytes) -> tuple[dict[str, torch.Tensor], dict[str, int]]:
    """Convert an SRVGG ncnn model into an :class:`~vsvqdsr.nets.srvgg.SRVGGCompact` state dict.

    Returns ``(state dict, config)`` with config keys ``in_ch, out_ch, num_feat, num_conv, scale``.
    Raises :class:`WeightsError` if the graph is not the expected shape or bytes are left over.
    """
    layers = [ly for ly in parse_param(param_text) if ly.type not in ("Input", "Split")]
    convs = [ly for ly in layers if ly.type == "Convolution"]
    kinds = [ly.type for ly in layers]
    n = len(convs)
    expect = ["Convolution", "PReLU"] * (n - 1) + ["Convolution", "PixelShuffle", "Interp", "BinaryOp"]
    if n < 2 or kinds != expect:
        raise WeightsError(f"ncnn model is not an SRVGG x-scale network (layers: {' '.join(kinds)})")
    shuffle, interp, add = layers[-3], layers[-2], layers[-1]
    scale = shuffle.int(0)
    if interp.int(0) != 1 or interp.float(1) != scale or interp.float(2) != scale:
        raise WeightsError(f"ncnn model's residual is not a nearest x{scale} upsampling of the input "
                           f"(Interp params {interp.params})")
    if add.int(0) != 0 or interp.outputs[0] not in add.inputs or shuffle.outputs[0] not in add.inputs:
        raise WeightsError("ncnn model does not add the upsampled input to the pixel-shuffled output")
    rd = _Reader(bin_data)
    sd: dict[str, torch.Tensor] = {}
    in_ch = None
    idx = 0
    for ly in layers:
        if ly.type == "Convolution":
            cout, k, size = ly.int(0), ly.int(1), ly.int(6)
            if ly.int(1, 0) != ly.int(11, k) or ly.int(3, 1) != 1 or ly.int(4) != 1:
                raise WeightsError(f"{ly.name}: only 3x3 stride-1 pad-1 convolutions are supported")
            cin = size // (cout * k * k)
            if cin * cout * k * k != size:
                raise WeightsError(f"{ly.name}: weight size {size} is not out*in*k*k")
            in_ch = in_ch if in_ch is not None else cin
            tag = int(np.frombuffer(rd.take(4), "<u4")[0])
            if tag == FP16_TAG:
                w = rd.array("<f2", size).astype(np.float32)
            elif tag == 0:
                w = rd.array("<f4", size)
            else:
                raise WeightsError(f"{ly.name}: unsupported weight storage tag {tag:#x}")
            sd[f"body.{idx}.weight"] = torch.from_numpy(w.reshape(cout, cin, k, k))
            if ly.int(5):
                sd[f"body.{idx}.bias"] = torch.from_numpy(rd.array("<f4", cout))
            else:
                sd[f"body.{idx}.bias"] = torch.zeros(cout)
            idx += 1
        elif ly.type == "PReLU":
            sd[f"body.{idx}.weight"] = torch.from_numpy(rd.array("<f4", ly.int(0)))
            idx += 1
    if rd.pos != len(bin_data):
        raise WeightsError(f"ncnn .bin: {len(bin_data) - rd.pos} bytes left over after the last layer")
    num_feat = convs[0].int(0)
    out_ch = convs[-1].int(0) // (scale * scale)
    cfg = {"in_ch": int(in_ch or 3), "out_ch": out_ch, "num_feat": num_feat, "num_conv": n - 2, "scale": scale}
    return sd, cfg
