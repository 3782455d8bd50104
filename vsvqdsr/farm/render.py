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
from ..log import get_logger, progress_enabled
from . import jobs
from .cuts import format_cuts
from .join import join_and_mux
from .planning import Chunk, plan_chunks
from .report import ChunkRecord, RenderReport

log = get_logger(__name__)

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


def _check_inputs(inputs: list[str | os.PathLike]) -> list[Path]:
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
    return srcs


def _write_text(path: Path, text: str) -> None:
    from ..weights.loading import atomic_write_bytes  # torch: imported only where a file is written

    atomic_write_bytes(path, text.encode())


@dataclass(frozen=True)
class _Setup:
    """What a render call fixes before Ray starts: its folders, the job wrapper, the encoder
    arguments and the hashes that key the chunk folders."""

    outdir: Path
    state: Path
    wrapper: Path
    template_hash: str
    enc: list[str]
    model_hash: str | None


def _prepare(outdir: str | os.PathLike, settings: RenderSettings) -> _Setup:
    out = Path(outdir)
    out.mkdir(parents=True, exist_ok=True)
    state = out / ".vqdsr-render"
    state.mkdir(exist_ok=True)
    template_hash = _sha256(Path(settings.template))
    wrapper = jobs.write_wrapper(settings.template, state / f"wrapper-{template_hash[:16]}.vpy")
    enc = jobs.encoder_args(settings.encoder, settings.crf, settings.preset)
    model_hash = None
    if settings.model and Path(settings.model).is_file():
        model_hash = _sha256(Path(settings.model))
    return _Setup(out, state, wrapper, template_hash, enc, model_hash)


class _Run:
    """One ``render`` call on a connected Ray cluster: the inputs' work folders, the probes, the chunk
    plan, the task loop with retries, and the joins."""

    def __init__(self, ray, settings: RenderSettings, setup: _Setup, address: str | None,
                 on_chunk_done: Callable[[ChunkRecord], None] | None) -> None:
        self.ray, self.settings, self.setup, self.on_chunk_done = ray, settings, setup, on_chunk_done
        resources = ray.cluster_resources()
        gpus = int(resources.get("GPU", 0))
        task_opts = {"num_cpus": 1, "num_gpus": 1} if gpus else {"num_cpus": 1}
        threads = settings.threads
        if threads is None and address is None and not gpus:
            threads = max(1, (os.cpu_count() or 1) // max(1, int(resources.get("CPU", 1))))
        self.threads = threads
        self.report = RenderReport(workers=gpus or int(resources.get("CPU", 0)))
        self.probe_remote = ray.remote(max_retries=0)(jobs.probe_input).options(**task_opts)
        self.chunk_remote = ray.remote(max_retries=0)(jobs.render_chunk).options(**task_opts)
        self.items: list[_Input] = []
        self.running: dict = {}
        self.remaining: dict[int, int] = {}

    def add_input(self, src: Path) -> None:
        """Its work folder is keyed by everything that changes its pixels; stale temporaries go."""
        st, setup = self.settings, self.setup
        key_data = {"input": _sha256(src), "template": setup.template_hash, "model": st.model,
                    "model_sha256": setup.model_hash, "backend": st.backend,
                    "max_chain": st.max_chain, "encoder": setup.enc, "version": 1}
        key = hashlib.sha256(json.dumps(key_data, sort_keys=True).encode()).hexdigest()[:16]
        wd = setup.state / f"{src.stem}-{key}"
        wd.mkdir(exist_ok=True)
        for stale in list(wd.glob(".*.tmp*")) + list(wd.glob("*.running")):
            stale.unlink(missing_ok=True)
        args = {"src": str(src.resolve()), "model": st.model, "backend": st.backend,
                "max_chain": st.max_chain, "threads": self.threads}
        self.items.append(_Input(src, setup.outdir / f"{src.stem}.mkv", wd, args))

    def probe(self) -> None:
        """Frame count and scene starts of every input, once (cached per key: the input's bytes
        decide the result)."""
        t_probe = time.monotonic()
        pending = {}
        for it in self.items:
            cache = it.workdir / "probe.json"
            if cache.exists():
                data = json.loads(cache.read_text())
                it.frames, it.cuts = data["frames"], data["cuts"]
            else:
                pending[self.probe_remote.remote(str(self.setup.wrapper), it.args)] = it
        for ref, it in pending.items():
            try:
                data = self.ray.get(ref)
            except self.ray.exceptions.RayError as e:
                raise FarmError(f"{it.src}: probing failed: {_error_text(e)}") from None
            it.frames, it.cuts = data["frames"], data["cuts"]
            _write_json(it.workdir / "probe.json", data)
        self.report.probe_seconds = time.monotonic() - t_probe

    def plan(self) -> tuple[list[tuple[_Input, ChunkRecord, Chunk]], int, int]:
        """Chunk every input; returns the chunks still to render, the total and the resumed frames."""
        st = self.settings
        warm = default_warmup(st.max_chain) if st.max_chain else 0
        total, done_frames = 0, 0
        todo: list[tuple[_Input, ChunkRecord, Chunk]] = []
        for it in self.items:
            it.chunks = plan_chunks(it.frames, it.cuts, st.min_chunk, st.max_chain, warm)
            for c in it.chunks:
                rec = ChunkRecord(str(it.src), c.start, c.end, c.warmup)
                self.report.chunks.append(rec)
                total += c.frames
                if it.chunk_path(c).exists():
                    rec.resumed = True
                    done_frames += c.frames
                else:
                    todo.append((it, rec, c))
        return todo, total, done_frames

    def submit(self, it: _Input, rec: ChunkRecord, c: Chunk) -> None:
        rec.attempts += 1
        args = {**it.args, "cuts": format_cuts(it.cuts)}
        ref = self.chunk_remote.remote(str(self.setup.wrapper), args, c.start, c.end, str(it.chunk_path(c)),
                                       self.setup.enc, self.threads)
        self.running[ref] = (it, rec, c)

    def finish_input(self, it: _Input) -> None:
        """Join an input's chunks and mux its source streams (skipped when an earlier run did)."""
        if it.out.exists() and (it.workdir / "done").exists():
            self.report.outputs[str(it.src)] = str(it.out)
            return
        try:
            join_and_mux([it.chunk_path(c) for c in it.chunks], it.src, it.out, it.frames)
        except jobs.JobError as e:
            raise FarmError(f"{it.src}: joining frames 0..{it.frames - 1} failed; no output written: {e}") from None
        _write_text(it.workdir / "done", str(it.out))
        self.report.outputs[str(it.src)] = str(it.out)

    def _failed(self, it: _Input, rec: ChunkRecord, c: Chunk, e: BaseException) -> None:
        """Resubmit a failed chunk while it has retries left, else stop the render."""
        rec.errors.append(_error_text(e))
        if rec.attempts <= self.settings.retries:
            log.warning(f"render: {it.src} frames {c.start}..{c.end - 1} failed (attempt {rec.attempts}), "
                        f"retrying: {rec.errors[-1].splitlines()[0] if rec.errors[-1] else ''}")
            self.submit(it, rec, c)
            return
        raise FarmError(f"{it.src}: frames {c.start}..{c.end - 1} failed after {rec.attempts} "
                        f"attempt(s); no output written for this input. Last error:\n"
                        f"{rec.errors[-1]}") from None

    def _loop(self, bar) -> None:
        for it in self.items:
            if self.remaining[id(it)] == 0:
                self.finish_input(it)
        while self.running:
            ready, _ = self.ray.wait(list(self.running), num_returns=1)
            ref = ready[0]
            it, rec, c = self.running.pop(ref)
            try:
                res = self.ray.get(ref)
            except self.ray.exceptions.RayError as e:
                self._failed(it, rec, c, e)
                continue
            rec.seconds = res["seconds"]
            rec.worker = f"{res['host']}:{res['pid']}"
            bar.update(c.frames)
            self.remaining[id(it)] -= 1
            if self.on_chunk_done is not None:
                self.on_chunk_done(rec)
            if self.remaining[id(it)] == 0:
                self.finish_input(it)

    def execute(self, todo: list[tuple[_Input, ChunkRecord, Chunk]], bar) -> None:
        """Render every chunk of ``todo`` and join each input once all its chunks are on disk."""
        for t in todo:
            self.submit(*t)
        self.remaining = {id(it): sum(1 for c in it.chunks if not it.chunk_path(c).exists()) for it in self.items}
        try:
            self._loop(bar)
        except BaseException:
            for ref in self.running:
                self.ray.cancel(ref, force=True)
            # ray.cancel only asks: a chunk task may still finish its rename into the work folder
            # after this. Wait until every cancelled task has ended, so that once render() raises no
            # chunk appears behind the caller's back (a resumed run then sees a settled folder).
            if self.running:
                self.ray.wait(list(self.running), num_returns=len(self.running), timeout=120)
            raise
        finally:
            bar.close()


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
    srcs = _check_inputs(inputs)
    setup = _prepare(outdir, settings)

    started_ray = False
    if not ray.is_initialized():
        kw: dict = {"include_dashboard": False, "logging_level": "WARNING", "log_to_driver": False}
        if address is None:
            kw["num_cpus"] = workers or os.cpu_count() or 1
        ray.init(address=address, **kw)
        started_ray = True
    try:
        run = _Run(ray, settings, setup, address, on_chunk_done)
        for s in srcs:
            run.add_input(s)
        run.probe()
        todo, total, done_frames = run.plan()
        from tqdm import tqdm

        bar = tqdm(total=total, initial=done_frames, unit="frame", desc="vqdsr render",
                   disable=not (progress and progress_enabled()), file=sys.stderr,
                   dynamic_ncols=True)
        run.execute(todo, bar)
        run.report.wall_seconds = time.monotonic() - t_start
        _write_json(setup.outdir / "render-report.json", run.report.to_dict())
        return run.report
    finally:
        if started_ray:
            ray.shutdown()
