"""Cutting a timeline into independently renderable chunks (pure computation; no Ray).

A chunk ``[start, end)`` is rendered by the chunked farm as the frame range ``start .. end - 1`` of
the *whole* script (``vspipe -s start -e end-1``). ``vqdsr.Upscale`` gives the same frame for any
request range, so the chunk is frame-identical to the same frames of a single-process render
whatever the boundaries are; the boundaries only decide how much work a chunk repeats:

* at a scene start a chunk repeats nothing (the recurrence restarts there anyway);
* inside a scene, with ``max_chain=N`` and warm-up ``W``, the recurrence restarts at segment
  starts ``S + kN`` after ``W`` warm-up steps from ``S + kN - W``: a chunk starting there repeats
  those ``W`` steps (their outputs are not part of the chunk);
* anywhere else a chunk would repeat the whole chain up to its start, so the planner never cuts
  there.

Frame numbers are 0-based; ranges are half-open.
"""
from __future__ import annotations

from dataclasses import dataclass

# The farm plans on Upscale's own default, so the two can never disagree.
from ..filters.scenes import default_warmup

__all__ = ["Chunk", "default_warmup", "split_points", "plan_chunks", "normalise_cuts"]


@dataclass(frozen=True)
class Chunk:
    """Output frames ``start .. end - 1``; the recurrence of its first frame begins at ``src_start``.

    ``src_start == start`` for a chunk that begins at a scene start; ``start - warmup`` for one that
    begins at a ``max_chain`` segment start inside a scene (the warm-up steps it runs and drops).
    """

    start: int
    end: int
    src_start: int

    @property
    def frames(self) -> int:
        """Output frames of the chunk."""
        return self.end - self.start

    @property
    def warmup(self) -> int:
        """Network steps run before ``start`` whose outputs are dropped."""
        return self.start - self.src_start


def normalise_cuts(cuts: list[int] | tuple[int, ...], num_frames: int) -> list[int]:
    """Sorted unique scene starts in ``[0, num_frames)``, with 0 always included.

    Raises:
        ValueError: ``num_frames < 1`` or a cut outside ``[0, num_frames)``.
    """
    if num_frames < 1:
        raise ValueError(f"plan_chunks: num_frames must be >= 1, got {num_frames}")
    bad = [c for c in cuts if not 0 <= int(c) < num_frames]
    if bad:
        raise ValueError(f"plan_chunks: scene starts {bad[:5]} lie outside 0..{num_frames - 1}")
    return sorted({0, *(int(c) for c in cuts)})


def split_points(cuts: list[int], num_frames: int, max_chain: int | None = None,
                 warmup: int | None = None) -> dict[int, int]:
    """Every frame a chunk may start at, mapped to the frame its recurrence begins at.

    Scene starts map to themselves; with ``max_chain=N`` each segment start ``S + kN`` (k >= 1)
    strictly inside a scene maps to ``S + kN - W``.
    """
    starts = normalise_cuts(cuts, num_frames)
    if max_chain is not None and max_chain < 2:
        raise ValueError(f"plan_chunks: max_chain must be >= 2 or None, got {max_chain}")
    if max_chain is not None:
        w = default_warmup(max_chain) if warmup is None else warmup
        if not 0 <= w < max_chain:
            raise ValueError(f"plan_chunks: warmup must be in [0, max_chain), got {w}")
    points: dict[int, int] = {}
    bounds = starts + [num_frames]
    for s, e in zip(bounds[:-1], bounds[1:]):
        points[s] = s
        if max_chain is not None:
            for p in range(s + max_chain, e, max_chain):
                points[p] = p - w
    return points


def plan_chunks(num_frames: int, cuts: list[int] | tuple[int, ...], min_chunk: int = 240,
                max_chain: int | None = None, warmup: int | None = None) -> list[Chunk]:
    """Cut ``0 .. num_frames - 1`` into chunks that start only at split points (see module doc).

    Greedy: each chunk ends at the first split point at least ``min_chunk`` frames after its start;
    a tail shorter than ``min_chunk`` joins the chunk before it. So every chunk has at least
    ``min_chunk`` frames unless the whole timeline is shorter, and a scene longer than ``min_chunk``
    stays one chunk unless ``max_chain`` allows splitting it.

    Args:
        num_frames: frames of the input (>= 1).
        cuts: scene starts (first frames of scenes; 0 is implied).
        min_chunk: minimum chunk length in frames (>= 1).
        max_chain: ``Upscale``'s ``max_chain`` (None: chains run whole scenes).
        warmup: ``Upscale``'s ``warmup`` (None: its default for ``max_chain``).

    Returns:
        Chunks covering the timeline in order, without gaps or overlaps.
    """
    if min_chunk < 1:
        raise ValueError(f"plan_chunks: min_chunk must be >= 1, got {min_chunk}")
    points = split_points(list(cuts), num_frames, max_chain, warmup)
    order = sorted(points)
    bounds: list[int] = [0]
    for p in order[1:]:
        if p - bounds[-1] >= min_chunk:
            bounds.append(p)
    if len(bounds) > 1 and num_frames - bounds[-1] < min_chunk:
        bounds.pop()
    bounds.append(num_frames)
    return [Chunk(a, b, points[a]) for a, b in zip(bounds[:-1], bounds[1:])]
