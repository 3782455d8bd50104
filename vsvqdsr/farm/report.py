"""The final report of a render: frames, wall time, per-worker throughput, retries."""
from __future__ import annotations

from collections import defaultdict
from dataclasses import asdict, dataclass, field

__all__ = ["ChunkRecord", "RenderReport"]


@dataclass
class ChunkRecord:
    """One chunk of one input: ``attempts`` = runs started (0 when resumed from disk)."""

    input: str
    start: int
    end: int
    warmup: int
    resumed: bool = False
    attempts: int = 0
    seconds: float = 0.0
    worker: str = ""
    errors: list[str] = field(default_factory=list)

    @property
    def frames(self) -> int:
        return self.end - self.start


@dataclass
class RenderReport:
    """Everything a run did; :meth:`summary` is the human-readable form."""

    workers: int = 0
    wall_seconds: float = 0.0
    probe_seconds: float = 0.0
    chunks: list[ChunkRecord] = field(default_factory=list)
    outputs: dict[str, str] = field(default_factory=dict)

    @property
    def retries(self) -> int:
        return sum(max(0, c.attempts - 1) for c in self.chunks)

    @property
    def rendered_frames(self) -> int:
        return sum(c.frames for c in self.chunks if not c.resumed)

    def per_worker(self) -> dict[str, dict]:
        """worker -> chunks, frames, busy seconds, frames per busy second."""
        acc: dict[str, dict] = defaultdict(lambda: {"chunks": 0, "frames": 0, "seconds": 0.0})
        for c in self.chunks:
            if c.resumed:
                continue
            a = acc[c.worker]
            a["chunks"] += 1
            a["frames"] += c.frames
            a["seconds"] += c.seconds
        for a in acc.values():
            a["fps"] = a["frames"] / a["seconds"] if a["seconds"] > 0 else 0.0
        return dict(acc)

    def to_dict(self) -> dict:
        return {"workers": self.workers, "wall_seconds": self.wall_seconds,
                "probe_seconds": self.probe_seconds, "rendered_frames": self.rendered_frames,
                "fps": self.rendered_frames / self.wall_seconds if self.wall_seconds > 0 else 0.0,
                "retries": self.retries, "per_worker": self.per_worker(), "outputs": self.outputs,
                "chunks": [{**asdict(c), "frames": c.frames} for c in self.chunks]}

    def summary(self) -> str:
        d = self.to_dict()
        resumed = sum(1 for c in self.chunks if c.resumed)
        lines = [f"rendered {d['rendered_frames']} frames in {len(self.chunks) - resumed} chunks "
                 f"({resumed} resumed from disk) in {self.wall_seconds:.1f} s "
                 f"= {d['fps']:.2f} frames/s overall; retries: {self.retries}"]
        for w, a in sorted(d["per_worker"].items()):
            lines.append(f"  worker {w}: {a['chunks']} chunks, {a['frames']} frames, "
                         f"{a['seconds']:.1f} s busy, {a['fps']:.2f} frames/s")
        for src, out in self.outputs.items():
            lines.append(f"  {src} -> {out}")
        return "\n".join(lines)
