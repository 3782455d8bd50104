"""Callbacks for VapourSynth nodes that do not keep their owner alive.

A Python callable handed to ``std.FrameEval``/``std.ModifyFrame`` is owned by the C node, which
Python's cycle collector cannot see into. A callback that holds the object which in turn holds that
node (directly, or through a self-referencing clip like ``prim[n-1]``) is a cycle that is never
collected: the runner, its stored hidden states and its device memory would live until the process
exits. So every callback inside a filter's graph holds its owner through :class:`WeakCall`, and the
owner is held strongly by exactly one thing: the node returned to the user (:func:`owning_clip`).
When that node and its frames are gone, the owner, its runner and its nodes are freed by reference
counting alone.
"""
from __future__ import annotations

import weakref
from typing import Any

import vapoursynth as vs

__all__ = ["WeakCall", "owning_clip"]


class WeakCall:
    """``WeakCall(obj, "method", *bound)(**kw)`` calls ``obj.method(*bound, **kw)`` through a weak
    reference; VapourSynth passes ``n`` and ``f`` as keywords."""

    __slots__ = ("_ref", "_name", "_bound")

    def __init__(self, obj: object, name: str, *bound: Any) -> None:
        self._ref = weakref.ref(obj)
        self._name = name
        self._bound = bound

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        obj = self._ref()
        if obj is None:
            raise vs.Error(f"vsvqdsr: internal callback {self._name} ran after its owner was freed "
                           "(an internal node outlived the filter's output clip)")
        return getattr(obj, self._name)(*self._bound, *args, **kwargs)


class _Keep:
    """FrameEval callback that answers with ``clip`` and owns ``owner``."""

    __slots__ = ("clip", "owner")

    def __init__(self, clip: vs.VideoNode, owner: object) -> None:
        self.clip = clip
        self.owner = owner

    def __call__(self, n: int) -> vs.VideoNode:
        return self.clip


def owning_clip(clip: vs.VideoNode, owner: object) -> vs.VideoNode:
    """``clip`` passed through a node that keeps ``owner`` alive exactly as long as that node.

    ``owner`` must not hold the returned node (that would be the cycle this avoids).
    """
    return vs.core.std.FrameEval(clip, _Keep(clip, owner), clip_src=[clip])
