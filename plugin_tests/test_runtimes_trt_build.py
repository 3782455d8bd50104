"""The TensorRT build path against a recording stand-in for the ``tensorrt`` module.

TensorRT cannot be installed here; these tests check what this package asks of the documented
builder API (one profile with the right min/opt/max shapes per input, the fp16 flag only when
asked, the timing cache saved), that nothing reaches stdout while the builder runs (vspipe writes
video there), and that a failed parse is reported.
"""
from __future__ import annotations

import os
import sys
import types

import pytest

from vsvqdsr.backends import trt as trt_backend


def _fake_trt(version: str, calls: list, parse_ok: bool = True):
    m = types.ModuleType("tensorrt")
    m.__version__ = version

    class Sev(int):
        @property
        def name(self):
            return ["INTERNAL_ERROR", "ERROR", "WARNING", "INFO", "VERBOSE"][int(self)]

    severities = types.SimpleNamespace(INTERNAL_ERROR=Sev(0), ERROR=Sev(1), WARNING=Sev(2), INFO=Sev(3), VERBOSE=Sev(4))

    class ILogger:
        Severity = severities

        def __init__(self):
            pass

    class Profile:
        def set_shape(self, name, mn, opt, mx):
            calls.append(("shape", name, mn, opt, mx))

    class TimingCache:
        def __init__(self, data):
            calls.append(("timing_in", bytes(data)))

        def serialize(self):
            return b"TIMING"

    class Config:
        def __init__(self):
            self.cache = None

        def set_memory_pool_limit(self, pool, size):
            calls.append(("workspace", size))

        def set_flag(self, flag):
            calls.append(("flag", flag))

        def add_optimization_profile(self, p):
            calls.append(("profile",))

        def create_timing_cache(self, data):
            return TimingCache(data)

        def set_timing_cache(self, cache, ignore_mismatch):
            self.cache = cache

        def get_timing_cache(self):
            return self.cache

    class Builder:
        def __init__(self, logger):
            logger.log(ILogger.Severity.WARNING, "builder made")

        def create_network(self, flags):
            return object()

        def create_builder_config(self):
            return Config()

        def create_optimization_profile(self):
            return Profile()

        def build_serialized_network(self, network, config):
            os.write(1, b"native library chatter on fd 1\n")  # what a C library might do
            print("python-level chatter")
            return b"SERIALIZED-ENGINE"

    class OnnxParser:
        def __init__(self, network, logger):
            self.num_errors = 0 if parse_ok else 1

        def parse(self, data):
            calls.append(("parse", len(data)))
            return parse_ok

        def get_error(self, i):
            return "unsupported operator Foo"

    m.ILogger, m.Builder, m.OnnxParser = ILogger, Builder, OnnxParser
    m.BuilderFlag = types.SimpleNamespace(FP16="FP16") if version.startswith("10.") else types.SimpleNamespace()
    m.MemoryPoolType = types.SimpleNamespace(WORKSPACE="WORKSPACE")
    return m


@pytest.mark.parametrize("version,fp16_flag", [("10.13.0", True), ("11.4.1", False)])
def test_build_engine_calls(monkeypatch, tmp_path, capfd, version, fp16_flag):
    calls: list = []
    monkeypatch.setitem(sys.modules, "tensorrt", _fake_trt(version, calls))
    profile = trt_backend.Profile((16, 16), (180, 320), (184, 320))
    timing = tmp_path / "timing.cache"
    data = trt_backend.build_engine(b"onnx-bytes", profile, feedback=True, num_feat=64, scale=4,
                                    fp16_flag=fp16_flag, workspace_mb=512, timing_cache=timing)
    assert data == b"SERIALIZED-ENGINE"
    shapes = {c[1]: c[2:] for c in calls if c[0] == "shape"}
    assert shapes["cur"] == ((1, 3, 16, 16), (1, 3, 180, 320), (1, 3, 184, 320))
    assert shapes["state"] == ((1, 64, 16, 16), (1, 64, 180, 320), (1, 64, 184, 320))
    assert shapes["prev_out"] == ((1, 3, 64, 64), (1, 3, 720, 1280), (1, 3, 736, 1280))
    assert set(shapes) == {"prev", "cur", "nxt", "state", "prev_out"}
    assert (("flag", "FP16") in calls) == fp16_flag
    assert ("workspace", 512 << 20) in calls and calls.count(("profile",)) == 1
    assert timing.read_bytes() == b"TIMING"
    out = capfd.readouterr()
    assert out.out == ""  # nothing on stdout
    assert "native library chatter" in out.err and "builder made" in out.err
    # a second build starts from the saved timing cache
    trt_backend.build_engine(b"onnx-bytes", profile, feedback=True, num_feat=64, scale=4, timing_cache=timing)
    assert ("timing_in", b"TIMING") in calls


def test_fp16_flag_refused_on_trt11(monkeypatch):
    monkeypatch.setitem(sys.modules, "tensorrt", _fake_trt("11.4.1", []))
    p = trt_backend.Profile((8, 8), (8, 8), (8, 8))
    with pytest.raises(RuntimeError, match="no builder fp16 flag"):
        trt_backend.build_engine(b"x", p, feedback=False, num_feat=64, scale=4, fp16_flag=True)


def test_parse_failure_is_reported(monkeypatch):
    monkeypatch.setitem(sys.modules, "tensorrt", _fake_trt("10.13.0", [], parse_ok=False))
    p = trt_backend.Profile((8, 8), (8, 8), (8, 8))
    with pytest.raises(RuntimeError, match="unsupported operator Foo"):
        trt_backend.build_engine(b"x", p, feedback=False, num_feat=64, scale=4)


def test_torch_trt_program_round_trip_on_both_save_signatures(tmp_path):
    """The engine-cache payload of the torch_trt runners: what ``ttrt.save`` writes is what is stored,
    under either keyword for the example inputs (``arg_inputs`` in newer releases, ``inputs`` in
    older ones), and ``load_program`` hands the stored bytes back to ``ttrt.load``."""
    from vsvqdsr.backends.torch_trt import load_program, program_bytes

    class Loaded:
        def __init__(self, data):
            self.data = data

        def module(self):
            return self.data

    def make(keyword):
        seen = {}

        def save(compiled, path, output_format, **kw):
            if keyword not in kw:
                raise TypeError(f"unexpected keyword {sorted(kw)}")
            seen["example"] = kw[keyword]
            with open(path, "wb") as f:
                f.write(b"program:" + compiled + b":" + output_format.encode())

        def load(path):
            with open(path, "rb") as f:
                return Loaded(f.read())

        return types.SimpleNamespace(save=save, load=load), seen

    for keyword in ("arg_inputs", "inputs"):
        ttrt, seen = make(keyword)
        payload = program_bytes(ttrt, b"m", ("x", "y"))
        assert payload == b"program:m:exported_program" and seen["example"] == ["x", "y"]
        assert load_program(ttrt, payload, -1) == payload  # -1: torch.cuda.device switches nothing


def test_deserialize_engine_refuses_a_none_engine():
    """Both TensorRT runners load cached engines through one function; a payload TensorRT cannot
    deserialise is an error, not a None engine."""
    runtime = types.SimpleNamespace(deserialize_cuda_engine=lambda payload: None if payload == b"bad" else payload)
    assert trt_backend.deserialize_engine(runtime, b"ok", -1) == b"ok"  # -1: torch.cuda.device switches nothing
    with pytest.raises(RuntimeError, match="deserialize_cuda_engine returned None"):
        trt_backend.deserialize_engine(runtime, b"bad", -1)
