"""``vqdsr render``'s engine: scene-aligned chunks of many inputs rendered as Ray tasks.

For every input: probe it once (script frame count, scene starts found as ``Upscale`` finds them),
plan chunks (:func:`vsvqdsr.farm.planning.plan_chunks`), render each missing chunk as an independent
Ray task (``vspipe -s a -e b`` on the whole script piped into ffmpeg; see :mod:`.jobs`), then join
the chunks without re-encoding and mux the source's audio, subtitles and chapters.

Because ``Upscale`` gives the same frame for any request range, each chunk equals the same frames
of a single-process render of the script; chunk boundaries at scene starts (and ``max_chain``
segment starts) only keep the repeated work at zero (or ``warmup`` steps).

Files (all under ``OUTDIR``; every file appears atomically):

* ``<input stem>.mkv``: the result, written only when every chunk of that input succeeded;
* ``.vqdsr-render/<stem>-<key>/c<start>-<end>.mkv``: finished chunks, kept for resuming. ``key``
  hashes the input's SHA-256, the template, the model file and every setting that changes pixels,
  so a changed input or setting never reuses stale chunks;
* ``render-report.json``: the last run's report.

The cluster and the workers must see the same paths (one machine, or a shared filesystem).
"""
from __future__ import annotations

import hashlib
import json
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from ..filters.scenes import default_warmup
from . import jobs
from .join import join_and_mux
from .planning import Chunk, plan_chunks
from .report import ChunkRecord, RenderReport

__all__ = ["RenderSettings", "FarmError", "render", "DEFAULT_TEMPLATE", "require_ray"]

DEFAULT_TEMPLATE = Path(__file__).with_name("template.vpy")
INSTALL_HINT = "vqdsr render needs Ray: pip install 'vsvqdsr[farm]'"


class FarmError(RuntimeError):
    """A render that cannot finish; the message names the input and frame range."""


def require_ray():
    """Import Ray or raise :class:`FarmError` explaining how to install it."""
    try:
        import ray
    except ImportError:
        raise FarmError(INSTALL_HINT) from None
    return ray


@dataclass
class RenderSettings:
    """What to render and how. ``crf`` applies to x264/x265 (0..51); ffv1 is lossless.

    ``min_chunk`` (frames, >= 1) and ``max_chain`` (frames, >= 2, passed to the template as
    ``max_chain``) shape the chunks; ``retries`` is the number of extra attempts per chunk;
    ``threads`` the VapourSynth/torch threads of each job (None: cores / workers on a local
    cluster, the default elsewhere).
    """

    template: Path = DEFAULT_TEMPLATE
    encoder: str = "x264"
    crf: float = 16.0
    preset: str | None = None
    model: str | None = None
    backend: str | None = None
    max_chain: int | None = None
    min_chunk: int = 240
    retries: int = 2
    threads: int | None = None

    def validate(self) -> None:
        if not Path(self.template).is_file():
            raise FarmError(f"template {self.template} does not exist")
        if self.encoder not in jobs.ENCODERS:
            raise FarmError(f"encoder must be one of {sorted(jobs.ENCODERS)}, got {self.encoder!r}")
        if not 0 <= self.crf <= 51:
            raise FarmError(f"crf must be in 0..51, got {self.crf}")
        if self.max_chain is not None and self.max_chain < 2:
            raise FarmError(f"max_chain must be >= 2, got {self.max_chain}")
        if self.min_chunk < 1:
            raise FarmError(f"min_chunk must be >= 1, got {self.min_chunk}")
        if self.retries < 0:
            raise FarmError(f"retries must be >= 0, got {self.retries}")


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _write_json(path: Path, data: dict) -> None:
    from ..weights.loading import atomic_write_bytes  # torch: imported only where a file is written

    atomic_write_bytes(path, json.dumps(data, indent=1).encode())


@dataclass
class _Input:
    src: Path
    out: Path
    workdir: Path
    args: dict
    frames: int = 0
    cuts: list | None = None
    chunks: list | None = None

    def chunk_path(self, c: Chunk) -> Path:
        return self.workdir / f"c{c.start:07d}-{c.end:07d}.mkv"


def _error_text(e: BaseException) -> str:
    cause = getattr(e, "cause", None)
    if isinstance(cause, BaseException):
        return str(cause)
    text = str(e)
    return "\n".join(text.strip().splitlines()[-15:])


def render(inputs: list[str | os.PathLike], outdir: str | os.PathLike, settings: RenderSettings,
           workers: int | None = None, address: str | None = None, progress: bool = True,
           on_chunk_done: Callable[[ChunkRecord], None] | None = None) -> RenderReport:
    """Render ``inputs`` into ``outdir`` (see the module docstring).

    Args:
        inputs: video files; output ``outdir/<stem>.mkv`` each (stems must differ).
        outdir: created if missing.
        settings: see :class:`RenderSettings`.
        workers: CPUs of the local cluster started when Ray is not running yet and ``address`` is
            None (default: all cores); jobs take one CPU each, or one GPU each where the cluster
            has GPUs.
        address: join this Ray cluster (``ray.init(address=...)``).
        progress: a tqdm bar over all frames on stderr.
        on_chunk_done: called in the driver after each chunk is on disk.

    Raises:
        FarmError: bad arguments, or a chunk that failed ``1 + retries`` times (nothing is written
            for its input; finished chunks stay for resuming).
    """
    settings.validate()
    ray = require_ray()
    t_start = time.monotonic()
    srcs = [Path(p) for p in inputs]
    if not srcs:
        raise FarmError("no inputs given")
    for s in srcs:
        if not s.is_file():
            raise FarmError(f"input {s} does not exist")
    stems = [s.stem for s in srcs]
    dup = {x for x in stems if stems.count(x) > 1}
    if dup:
        raise FarmError(f"inputs would write the same output name(s) {sorted(dup)}; rename them")
    outdir = Path(outdir)
    outdir.mkdir(parents=True, exist_ok=True)
    state = outdir / ".vqdsr-render"
    state.mkdir(exist_ok=True)

    template_hash = _sha256(Path(settings.template))
    wrapper = jobs.write_wrapper(settings.template, state / f"wrapper-{template_hash[:16]}.vpy")
    enc = jobs.encoder_args(settings.encoder, settings.crf, settings.preset)
    model_hash = None
    if settings.model and Path(settings.model).is_file():
        model_hash = _sha256(Path(settings.model))

    started_ray = False
    if not ray.is_initialized():
        kw: dict = {"include_dashboard": False, "logging_level": "WARNING", "log_to_driver": False}
        if address is None:
            kw["num_cpus"] = workers or os.cpu_count() or 1
        ray.init(address=address, **kw)
        started_ray = True
    try:
        resources = ray.cluster_resources()
        gpus = int(resources.get("GPU", 0))
        task_opts = {"num_cpus": 1, "num_gpus": 1} if gpus else {"num_cpus": 1}
        threads = settings.threads
        if threads is None and address is None and not gpus:
            threads = max(1, (os.cpu_count() or 1) // max(1, int(resources.get("CPU", 1))))
        report = RenderReport(workers=gpus or int(resources.get("CPU", 0)))
        probe_remote = ray.remote(max_retries=0)(jobs.probe_input).options(**task_opts)
        chunk_remote = ray.remote(max_retries=0)(jobs.render_chunk).options(**task_opts)

        items: list[_Input] = []
        for s in srcs:
            key_data = {"input": _sha256(s), "template": template_hash, "model": settings.model,
                        "model_sha256": model_hash, "backend": settings.backend,
                        "max_chain": settings.max_chain, "encoder": enc, "version": 1}
            key = hashlib.sha256(json.dumps(key_data, sort_keys=True).encode()).hexdigest()[:16]
            wd = state / f"{s.stem}-{key}"
            wd.mkdir(exist_ok=True)
            for stale in list(wd.glob(".*.tmp*")) + list(wd.glob("*.running")):
                stale.unlink(missing_ok=True)
            args = {"src": str(s.resolve()), "model": settings.model, "backend": settings.backend,
                    "max_chain": settings.max_chain, "threads": threads}
            items.append(_Input(s, outdir / f"{s.stem}.mkv", wd, args))

        # 1. probe every input once (cached per key: the input's bytes decide the result)
        t_probe = time.monotonic()
        pending = {}
        for it in items:
            cache = it.workdir / "probe.json"
            if cache.exists():
                data = json.loads(cache.read_text())
                it.frames, it.cuts = data["frames"], data["cuts"]
            else:
                pending[probe_remote.remote(str(wrapper), it.args)] = it
        for ref, it in pending.items():
            try:
                data = ray.get(ref)
            except ray.exceptions.RayError as e:
                raise FarmError(f"{it.src}: probing failed: {_error_text(e)}") from None
            it.frames, it.cuts = data["frames"], data["cuts"]
            _write_json(it.workdir / "probe.json", data)
        report.probe_seconds = time.monotonic() - t_probe

        # 2. plan and submit every missing chunk
        from tqdm import tqdm

        warm = default_warmup(settings.max_chain) if settings.max_chain else 0
        total = 0
        todo: list[tuple[_Input, ChunkRecord, Chunk]] = []
        done_frames = 0
        for it in items:
            it.chunks = plan_chunks(it.frames, it.cuts, settings.min_chunk, settings.max_chain, warm)
            for c in it.chunks:
                rec = ChunkRecord(str(it.src), c.start, c.end, c.warmup)
                report.chunks.append(rec)
                total += c.frames
                if it.chunk_path(c).exists():
                    rec.resumed = True
                    done_frames += c.frames
                else:
                    todo.append((it, rec, c))
        bar = tqdm(total=total, initial=done_frames, unit="frame", desc="vqdsr render",
                   disable=not progress, file=sys.stderr, dynamic_ncols=True)

        def submit(it: _Input, rec: ChunkRecord, c: Chunk):
            rec.attempts += 1
            args = {**it.args, "cuts": ",".join(map(str, it.cuts))}
            return chunk_remote.remote(str(wrapper), args, c.start, c.end, str(it.chunk_path(c)), enc, threads)

        running = {submit(*t): t for t in todo}
        remaining = {id(it): sum(1 for c in it.chunks if not it.chunk_path(c).exists()) for it in items}

        def finish_input(it: _Input) -> None:
            if it.out.exists() and (it.workdir / "done").exists():
                report.outputs[str(it.src)] = str(it.out)
                return
            try:
                join_and_mux([it.chunk_path(c) for c in it.chunks], it.src, it.out, it.frames)
            except jobs.JobError as e:
                raise FarmError(f"{it.src}: joining frames 0..{it.frames - 1} failed; no output written: {e}") from None
            (it.workdir / "done").write_text(str(it.out))
            report.outputs[str(it.src)] = str(it.out)

        try:
            for it in items:
                if remaining[id(it)] == 0:
                    finish_input(it)
            while running:
                ready, _ = ray.wait(list(running), num_returns=1)
                ref = ready[0]
                it, rec, c = running.pop(ref)
                try:
                    res = ray.get(ref)
                except ray.exceptions.RayError as e:
                    rec.errors.append(_error_text(e))
                    if rec.attempts <= settings.retries:
                        print(f"vqdsr render: {it.src} frames {c.start}..{c.end - 1} failed "
                              f"(attempt {rec.attempts}), retrying: {rec.errors[-1].splitlines()[0] if rec.errors[-1] else ''}",
                              file=sys.stderr)
                        running[submit(it, rec, c)] = (it, rec, c)
                        continue
                    raise FarmError(f"{it.src}: frames {c.start}..{c.end - 1} failed after {rec.attempts} "
                                    f"attempt(s); no output written for this input. Last error:\n"
                                    f"{rec.errors[-1]}") from None
                rec.seconds = res["seconds"]
                rec.worker = f"{res['host']}:{res['pid']}"
                bar.update(c.frames)
                remaining[id(it)] -= 1
                if on_chunk_done is not None:
                    on_chunk_done(rec)
                if remaining[id(it)] == 0:
                    finish_input(it)
        except BaseException:
            for ref in running:
                ray.cancel(ref, force=True)
            # ray.cancel only asks: a chunk task may still finish its rename into the work folder
            # after this. Wait until every cancelled task has ended, so that once render() raises no
            # chunk appears behind the caller's back (a resumed run then sees a settled folder).
            if running:
                ray.wait(list(running), num_returns=len(running), timeout=120)
            raise
        finally:
            bar.close()
        report.wall_seconds = time.monotonic() - t_start
        _write_json(outdir / "render-report.json", report.to_dict())
        return report
    finally:
        if started_ray:
            ray.shutdown()
