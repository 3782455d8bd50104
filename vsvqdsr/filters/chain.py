"""Order-independent, exactly-once recurrence over a VapourSynth clip.

Semantics: output frame n is the recurrent network run over the frames of its *chain*, from the
chain's first frame up to n. A chain starts at every scene start S; with ``max_chain=N`` it is also
restarted every N frames inside a scene, each restart preceded by a warm-up of W frames whose
outputs are discarded::

    segment k of a scene covers S + kN .. S + (k+1)N - 1 and is produced by the chain that
    begins at S + kN - W (k >= 1), or at S (k = 0).

Neighbours are clamped inside the scene: the first frame of a scene uses itself as its previous
frame, the last one itself as its next frame. Nothing depends on the order or the parallelism in
which VapourSynth asks for frames, so the output is bit-identical for any access pattern.

How: two output-sized clips hold the steps of every chain.

* ``prim``: frame n is the step of the chain whose *output* n is (the filter's result);
* ``sec``:  frame n is the step of the *next* segment's warm-up chain, where n lies in a warm-up.

Each is a ``FrameEval`` whose callback runs before any input is requested and decides: the step is
in the store -> serve the stored frame without touching the chain; the previous step of the chain
is stored (or n begins the chain) -> a ``ModifyFrame`` over the inputs alone; otherwise -> a
``ModifyFrame`` that also requests the previous step of the same chain (the self-reference
``prim[n-1]`` or ``sec[n-1]``), so VapourSynth resolves the chain in order and merges duplicate
requests. The ``ModifyFrame`` callback runs the network once and stores the result. The store is an LRU of
``(chain begin, frame) -> (output frame, hidden state)`` bounded by a size in bytes (or a count);
states stay on the runner's device as the runner returns them (fp32 on the CPU, the compute dtype
on the torch CUDA backend, the engine's output dtype on TensorRT). It is the only cache of the
output frames: VapourSynth's own cache on ``prim`` is switched off, so a frame is never held twice.
In a linear render a step only needs the previous step's state, so even a 2-entry store keeps every
step to exactly one run; a larger store only saves recomputation on re-requests and random access. If an
entry a step needs was evicted in between (only under heavy random access with a small store), the
step recomputes it from the latest stored step of the chain with synchronous requests -- correct,
only slower, and counted in the stats.

Lifetime: every callback holds the chain weakly (``WeakCall``); the node :meth:`RecurrentChain.clip`
returns is the one owner, so dropping the output frees the runner, the store and device memory.

An ``_Alpha`` frame prop is scaled with the frame (:func:`~.formats.scale_alpha`, bilinear).
"""
from __future__ import annotations

import threading
import time
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

import vapoursynth as vs

from .formats import array_to_frame, copy_props, frame_to_array, scale_alpha
from .lifetime import WeakCall, owning_clip
from .scenes import SceneIndex
from ..log import get_logger

log = get_logger(__name__)

__all__ = ["ChainPlan", "StepStore", "RecurrentChain", "nbytes", "entry_nbytes"]


@dataclass(frozen=True)
class ChainPlan:
    """Where chains begin. ``max_chain=None`` means one chain per scene."""

    max_chain: int | None = None
    warmup: int = 0

    def primary(self, n: int, scene_start: int) -> int:
        """First frame of the chain that produces output frame n."""
        if self.max_chain is None:
            return scene_start
        k = (n - scene_start) // self.max_chain
        return scene_start if k == 0 else scene_start + k * self.max_chain - self.warmup

    def secondary(self, n: int, scene_start: int) -> int | None:
        """First frame of the warm-up chain running through n, if n lies in a warm-up window."""
        if self.max_chain is None or self.warmup == 0:
            return None
        k = (n - scene_start) // self.max_chain + 1
        begin = scene_start + k * self.max_chain - self.warmup
        return begin if n >= begin else None


@dataclass
class Entry:
    frame: vs.VideoFrame  # finished output frame, props included
    state: Any            # hidden state after this step (runner device object)
    out: Any              # SR output on the device (feedback networks), else None


def nbytes(obj: Any) -> int:
    """Bytes held by a stored object: a VapourSynth frame, a numpy array, a torch tensor (any device),
    or a tuple/list of them; 0 for None."""
    if obj is None:
        return 0
    if isinstance(obj, vs.VideoFrame):
        fmt = obj.format
        total = 0
        for p in range(fmt.num_planes):
            w, h = (obj.width, obj.height) if p == 0 else (obj.width >> fmt.subsampling_w,
                                                             obj.height >> fmt.subsampling_h)
            total += w * h * fmt.bytes_per_sample
        return total
    if isinstance(obj, (tuple, list)):
        return sum(nbytes(o) for o in obj)
    if hasattr(obj, "element_size") and hasattr(obj, "numel"):  # torch.Tensor
        return int(obj.numel()) * int(obj.element_size())
    return int(getattr(obj, "nbytes", 0))


def entry_nbytes(entry: Entry) -> int:
    """Bytes one stored step holds: its output frame, its hidden state and its device output."""
    return nbytes(entry.frame) + nbytes(entry.state) + nbytes(entry.out)


class StepStore:
    """LRU of finished steps keyed by ``(chain begin, frame)``, bounded by a count (``capacity``)
    and/or a size in bytes (``budget``, counted with :func:`entry_nbytes`). Over the bound, a step
    whose successor in its chain is stored goes first (the chain continues from the successor; the
    step itself serves nothing but a repeated request for its frame), least recently used first;
    then the least recently used of the rest, keeping at least :attr:`MIN_ENTRIES` steps whatever the
    budget, so interleaved chains can always continue. In a linear render under a tight budget this
    keeps one step, not two: the one the next step reads."""

    MIN_ENTRIES = 2

    def __init__(self, capacity: int | None = None, budget: int | None = None) -> None:
        if capacity is None and budget is None:
            raise ValueError("the step store needs a capacity or a budget")
        if capacity is not None and capacity < self.MIN_ENTRIES:
            raise ValueError("the step store needs room for at least 2 steps")
        self.capacity = capacity
        self.budget = budget
        self.nbytes = 0
        self._items: OrderedDict[tuple[int, int], tuple[Entry, int]] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: tuple[int, int]) -> Entry | None:
        with self._lock:
            item = self._items.get(key)
            if item is None:
                return None
            self._items.move_to_end(key)
            return item[0]

    #: Bytes counted per entry for the Python and VapourSynth objects around the buffers.
    OVERHEAD = 4096

    def put(self, key: tuple[int, int], entry: Entry) -> None:
        size = entry_nbytes(entry) + self.OVERHEAD
        with self._lock:
            old = self._items.pop(key, None)
            if old is not None:
                self.nbytes -= old[1]
            self._items[key] = (entry, size)
            self.nbytes += size
            while ((self.capacity is not None and len(self._items) > self.capacity)
                   or (self.budget is not None and self.nbytes > self.budget)):
                victim = self._victim()
                if victim is None:
                    break
                _, freed = self._items.pop(victim)
                self.nbytes -= freed

    def _victim(self) -> tuple[int, int] | None:
        """The step to evict (lock held): the least recently used one whose successor is stored, else
        the least recently used one while more than :attr:`MIN_ENTRIES` are stored, else None."""
        for c, k in self._items:  # least recently used first
            if (c, k + 1) in self._items:
                return (c, k)
        return next(iter(self._items)) if len(self._items) > self.MIN_ENTRIES else None

    def latest(self, chain: int, upto: int) -> tuple[int, Entry] | None:
        """The stored step of ``chain`` with the highest frame number <= ``upto``."""
        with self._lock:
            best = None
            for (c, k), (e, _) in self._items.items():
                if c == chain and k <= upto and (best is None or k > best[0]):
                    best = (k, e)
            return best

    def __len__(self) -> int:
        return len(self._items)


class RecurrentChain:
    """Builds the output clip of a recurrent runner over ``rgb`` (see the module docstring).

    Args:
        rgb: float RGB input (its props are copied to the output).
        runner: a :class:`~vsvqdsr.backends.base.StepRunner` for rgb's size.
        scenes: scene starts of ``rgb``.
        plan: chain restarts.
        capacity: steps kept in the store (None: bounded by ``budget`` alone).
        extra_props: props added to every output frame.
        stats: optional dict updated live with ``steps``, ``served``, ``fallback_steps``,
            ``stored`` (steps held in the store) and ``stored_mb`` (their size); ``runner`` is the
            runner's description (engine, precision, tiles).
        budget: bytes the store may hold (frames, states and device outputs together).
    """

    #: A request that must first run at least this many steps of its chain is logged on stderr.
    CATCHUP_LOG_STEPS = 32
    #: At most one catch-up line per this many seconds.
    CATCHUP_LOG_INTERVAL = 5.0

    def __init__(self, rgb: vs.VideoNode, runner, scenes: SceneIndex, plan: ChainPlan, capacity: int | None,
                 extra_props: dict[str, Any], stats: dict | None = None, budget: int | None = None) -> None:
        core = vs.core
        self.rgb = rgb
        self.runner = runner
        self.scenes = scenes
        self.plan = plan
        self.store = StepStore(capacity, budget)
        self.extra_props = dict(extra_props)
        self.feedback = bool(runner.desc.feedback)
        self.stats = stats if stats is not None else {}
        self.stats.update(steps=0, served=0, fallback_steps=0, stored=0, stored_mb=0.0, runner=runner.describe())
        self._stats_lock = threading.Lock()
        self._warned_fields = False
        self._frontier: dict[int, int] = {}  # chain begin -> highest frame decided (done or in flight)
        self._last_catchup_log = float("-inf")
        n_frames = rgb.num_frames
        scale = runner.scale
        self.base = core.std.BlankClip(rgb, width=rgb.width * scale, height=rgb.height * scale, keep=True)
        base = self.base
        if n_frames > 1:
            rgb_prev = rgb[0] + rgb[:-1]
            rgb_next = rgb[1:] + rgb[-1]
        else:
            rgb_prev = rgb_next = rgb
        inputs = [base, rgb_prev, rgb, rgb_next, scenes.cuts_next]

        def node(role: str, dep: vs.VideoNode | None) -> vs.VideoNode:
            clips = inputs + ([dep] if dep is not None else [])
            return core.std.ModifyFrame(base, clips, WeakCall(self, "_compute", role))

        # Without a dependency: chain starts, and steps whose previous state is already stored.
        self._nodep = {"prim": node("prim", None), "sec": node("sec", None)}
        self.prim = core.std.FrameEval(base, WeakCall(self, "_decide", "prim"), prop_src=[scenes.info])
        self.sec = core.std.FrameEval(base, WeakCall(self, "_decide", "sec"), prop_src=[scenes.info])
        if n_frames > 1:
            prim_prev = base[0] + self.prim[:-1]
            sec_prev = base[0] + self.sec[:-1]
            self._from = {("prim", "prim"): node("prim", prim_prev), ("prim", "sec"): node("prim", sec_prev),
                          ("sec", "sec"): node("sec", sec_prev)}
            self._prev = [prim_prev, sec_prev]
        else:
            self._from = {}
            self._prev = []

    def clip(self) -> vs.VideoNode:
        """The output clip. It alone owns this chain (its runner, store and nodes): once it and its
        frames are gone, everything is freed. Keep no reference to it on this object."""
        # The step store is this chain's cache; VapourSynth's own caches on ``prim`` (switched on once
        # the owning node consumes it too) and on the nodes between the steps would keep full-size
        # frames alive after the store has let them go.
        for node in (self.prim, self.sec, *self._nodep.values(), *self._from.values(), *self._prev):
            vs.core.std.SetVideoCache(node, 0)
        return owning_clip(self.prim, self)

    # -- bookkeeping -------------------------------------------------------------------------------
    def _bump(self, key: str | None = None) -> None:
        """Count one ``key`` event (if given) and refresh the step/store figures."""
        with self._stats_lock:
            if key is not None:
                self.stats[key] += 1
            self.stats["steps"] = self.runner.step_count
            self.stats["stored"] = len(self.store)
            self.stats["stored_mb"] = round(self.store.nbytes / 2 ** 20, 1)

    def _check_fields(self, n: int, f_cur: vs.VideoFrame) -> None:
        """Warn once on stderr when an input frame is field-based (interlaced)."""
        field = f_cur.props.get("_FieldBased", 0)
        if not isinstance(field, int) or field <= 0 or self._warned_fields:
            return
        with self._stats_lock:
            if self._warned_fields:
                return
            self._warned_fields = True
        order = {1: "bottom field first", 2: "top field first"}.get(int(field), "field-based")
        log.warning(f"Upscale: frame {n} has _FieldBased={int(field)} ({order}): the input is interlaced, and "
                    "the network expects progressive frames (combing is upscaled as detail); deinterlace or "
                    "inverse-telecine first, or set _FieldBased=0 if the frames are progressive (warned once)")

    def _chain(self, role: str, n: int, start: int) -> int | None:
        return self.plan.primary(n, start) if role == "prim" else self.plan.secondary(n, start)

    # -- the decision: runs before any input of frame n is requested ------------------------------
    def _decide(self, role: str, n: int, f: vs.VideoFrame) -> vs.VideoNode:
        start = self.scenes.start(n)
        chain = self._chain(role, n, start)
        if chain is None:  # not in a warm-up window: never needed, answer with a blank frame
            return self.base
        entry = self.store.get((chain, n))
        if entry is not None:
            self._bump("served")
            frame = entry.frame
            return vs.core.std.ModifyFrame(self.base, self.base, lambda n, f: frame)
        if n == chain or self.store.get((chain, n - 1)) is not None:
            return self._nodep[role]
        dep_role = "prim" if role == "prim" and self.plan.primary(n - 1, start) == chain else "sec"
        self._note_catchup(chain, n, start)
        return self._from[(role, dep_role)]

    def _note_catchup(self, chain: int, n: int, start: int) -> None:
        """Say on stderr (rate-limited) when frame n must first run many steps nobody has started:
        a previewer's seek deep into a scene is otherwise minutes without a sign of life."""
        with self._stats_lock:
            high = self._frontier.get(chain, chain - 1)
            if n > high:
                self._frontier[chain] = n
        if n <= high + 1:  # the previous step is done or already on its way (linear render, prefetch)
            return
        found = self.store.latest(chain, n - 1)
        needs = n - max(high, found[0] if found is not None else chain - 1)
        if needs < self.CATCHUP_LOG_STEPS:
            return
        now = time.monotonic()
        with self._stats_lock:
            if now - self._last_catchup_log < self.CATCHUP_LOG_INTERVAL:
                return
            self._last_catchup_log = now
        where = "scene start" if chain == start else "chain start"
        log.info(f"Upscale: frame {n} needs {needs} steps from {where} {chain} (the recurrence is resolved in "
                 "order; max_chain bounds this, see docs/preview.md)")

    # -- the step: inputs (and the previous step of the chain) are ready --------------------------
    def _compute(self, role: str, n: int, f: list[vs.VideoFrame]) -> vs.VideoFrame:
        fs = f
        start = self.scenes.start(n)
        chain = self._chain(role, n, start)
        if chain is None:
            return fs[0]
        done = self.store.get((chain, n))
        if done is not None:
            return done.frame
        if n == chain:
            state, prev_out = self.runner.initial_state()
        else:
            prev = self.store.get((chain, n - 1)) or self._recompute(chain, n - 1, start)
            state, prev_out = prev.state, prev.out
        cut_next = bool(fs[4].props["C"])
        return self._step(chain, n, start, state, prev_out, fs[0], fs[1], fs[2], fs[3], cut_next).frame

    def _step(self, chain: int, n: int, start: int, state: Any, prev_out: Any, f_base: vs.VideoFrame,
              f_prev: vs.VideoFrame, f_cur: vs.VideoFrame, f_next: vs.VideoFrame, cut_next: bool) -> Entry:
        self._check_fields(n, f_cur)
        up = self.runner.upload
        cur = up(frame_to_array(f_cur))
        prev = cur if n == start else up(frame_to_array(f_prev))
        nxt = cur if cut_next else up(frame_to_array(f_next))
        out, state = self.runner.step(prev, cur, nxt, state, prev_out)
        frame = array_to_frame(self.runner.download(out), f_base)
        copy_props(frame, f_cur, {**self.extra_props, "VQDSR_ChainStart": chain})
        alpha = f_cur.props.get("_Alpha")
        if isinstance(alpha, vs.VideoFrame):
            frame.props["_Alpha"] = scale_alpha(alpha, frame.width, frame.height)
        entry = Entry(frame, state, out if self.feedback else None)
        self.store.put((chain, n), entry)
        self._bump()
        return entry

    def _recompute(self, chain: int, upto: int, start: int) -> Entry:
        """Rebuild step ``upto`` of ``chain`` after its entry was evicted (synchronous requests)."""
        found = self.store.latest(chain, upto)
        k, entry = found if found is not None else (chain - 1, None)
        last = self.rgb.num_frames - 1
        for i in range(k + 1, upto + 1):
            if entry is None:
                state, prev_out = self.runner.initial_state()
            else:
                state, prev_out = entry.state, entry.out
            cut_next = i == last or bool(self.scenes.cuts.get_frame(i + 1).props["C"])
            f_cur = self.rgb.get_frame(i)
            f_prev = f_cur if i == start else self.rgb.get_frame(i - 1)
            f_next = f_cur if cut_next else self.rgb.get_frame(i + 1)
            entry = self._step(chain, i, start, state, prev_out, self.base.get_frame(i), f_prev, f_cur, f_next,
                               cut_next)
            self._bump("fallback_steps")
        assert entry is not None
        return entry
