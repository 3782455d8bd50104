"""Engine cache: keys, atomic writes, the cross-process lock and rebuilding corrupted engines.

TensorRT cannot run here; a fake builder (a function returning bytes, counting its calls) stands in
for it, which is exactly the boundary the cache sees.
"""
from __future__ import annotations

import dataclasses
import multiprocessing as mp
import os
import time
from pathlib import Path

import pytest

from vsvqdsr.backends.engine_cache import CorruptEngine, EngineCache, EngineKey, pack, unpack

KEY = EngineKey(runtime="trt", onnx_sha256="ab" * 32, min_shape=(180, 320), opt_shape=(180, 320),
                max_shape=(180, 320), precision="fp16-onnx", trt_version="11.4.1", torch_trt_version="",
                gpu_name="NVIDIA GeForce RTX 4090", compute_capability=(8, 9), extra=(("opt_level", "3"),))


@pytest.mark.parametrize("change", [
    {"onnx_sha256": "cd" * 32},
    {"min_shape": (16, 16)}, {"opt_shape": (184, 320)}, {"max_shape": (1080, 1920)},
    {"precision": "fp32"}, {"trt_version": "10.13.0"}, {"torch_trt_version": "2.9.0"},
    {"gpu_name": "NVIDIA H100 80GB HBM3"}, {"compute_capability": (9, 0)},
    {"extra": (("opt_level", "5"),)}, {"runtime": "torch_trt"},
])
def test_key_changes_with_each_component(change):
    other = dataclasses.replace(KEY, **change)
    assert other.filename() != KEY.filename()


def test_filename_is_readable_and_safe():
    name = KEY.filename()
    assert name.endswith(".engine") and "/" not in name and " " not in name
    for part in ("abababababababab", "180x320", "fp16-onnx", "trt11.4.1", "RTX-4090", "sm89"):
        assert part in name


def test_pack_unpack_detects_damage():
    blob = pack(b"engine-bytes" * 100)
    assert unpack(blob) == b"engine-bytes" * 100
    with pytest.raises(CorruptEngine):
        unpack(blob[:-5])  # truncated
    flipped = bytearray(blob)
    flipped[-1] ^= 0xFF
    with pytest.raises(CorruptEngine):
        unpack(bytes(flipped))
    with pytest.raises(CorruptEngine):
        unpack(b"garbage")


def test_build_once_then_load(tmp_path):
    cache = EngineCache(tmp_path)
    calls = []

    def build():
        calls.append(1)
        return b"ENGINE-1"

    assert cache.get_or_build(KEY, build, lambda b: b.decode()) == "ENGINE-1"
    assert cache.get_or_build(KEY, build, lambda b: b.decode()) == "ENGINE-1"
    assert len(calls) == 1
    files = sorted(p.name for p in tmp_path.iterdir())
    assert files == sorted([KEY.filename(), KEY.filename() + ".lock"])  # no temp files left


def test_failed_build_leaves_no_file(tmp_path):
    cache = EngineCache(tmp_path)

    def boom():
        raise RuntimeError("builder crashed")

    with pytest.raises(RuntimeError, match="builder crashed"):
        cache.get_or_build(KEY, boom, lambda b: b)
    assert not cache.path(KEY).exists()
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]


@pytest.mark.parametrize("damage", ["truncate", "flip", "empty", "unloadable"])
def test_corrupt_engine_is_rebuilt(tmp_path, damage):
    cache = EngineCache(tmp_path)
    cache.get_or_build(KEY, lambda: b"GOOD" * 64, lambda b: b)
    path = cache.path(KEY)
    blob = path.read_bytes()
    if damage == "truncate":
        path.write_bytes(blob[: len(blob) // 2])
    elif damage == "flip":
        path.write_bytes(blob[:-1] + bytes([blob[-1] ^ 1]))
    elif damage == "empty":
        path.write_bytes(b"")
    builds = []

    def build():
        builds.append(1)
        return b"NEW!" * 64

    def load(b: bytes):
        if damage == "unloadable" and b == b"GOOD" * 64:
            raise ValueError("runtime says: serialized engine is from another version")
        return b

    assert cache.get_or_build(KEY, build, load) == b"NEW!" * 64
    assert builds == [1]
    assert unpack(path.read_bytes()) == b"NEW!" * 64


def _worker(directory: str, log: str, barrier, q) -> None:
    from vsvqdsr.backends.engine_cache import EngineCache

    def build() -> bytes:
        with open(log, "a") as f:
            f.write(f"{os.getpid()}\n")
        time.sleep(1.0)  # a slow build: the other process must wait for it, not start its own
        return b"X" * 1_000_000

    barrier.wait()
    out = EngineCache(directory).get_or_build(KEY, build, lambda b: len(b))
    q.put(out)


def test_two_processes_build_once(tmp_path):
    ctx = mp.get_context("spawn")
    barrier, q = ctx.Barrier(2), ctx.Queue()
    log = tmp_path / "builds.log"
    procs = [ctx.Process(target=_worker, args=(str(tmp_path / "engines"), str(log), barrier, q)) for _ in range(2)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(120)
        assert p.exitcode == 0
    assert [q.get(timeout=5), q.get(timeout=5)] == [1_000_000, 1_000_000]  # both read a whole file
    assert len(log.read_text().split()) == 1  # built exactly once


def test_default_dir_from_env(tmp_path, monkeypatch):
    monkeypatch.setenv("VSVQDSR_ENGINE_DIR", str(tmp_path / "e"))
    assert EngineCache().directory == Path(tmp_path / "e")
