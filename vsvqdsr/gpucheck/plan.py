"""The steps of the GPU check, in the order they run."""
from __future__ import annotations

from dataclasses import dataclass

__all__ = ["Step", "STEPS", "SAMPLE", "SAMPLE_FRAMES", "SCENE2", "by_name"]

#: The bundled sample (320x180, 126 frames, a hard cut at frame 84) and its second scene.
SAMPLE = "examples/sample/sample.mkv"
SAMPLE_FRAMES = 126
SCENE2 = (84, 126)


@dataclass(frozen=True)
class Step:
    """``gpu``: runs only where torch sees a CUDA device (skipped by ``--dry-run``).
    ``timeout``: seconds the step's process may run (less when the run's budget is nearly spent).
    ``launcher``: run by the orchestrator itself, before the venv exists."""

    name: str
    title: str
    gpu: bool
    timeout: int
    launcher: bool = False


STEPS: tuple[Step, ...] = (
    Step("kit", "kit folder matches its manifest", False, 60, launcher=True),
    Step("venv", "fresh venv (--system-site-packages), kit and project installed offline", False, 240, launcher=True),
    Step("imports", "imports, plugins, requirements, models, vspipe, torch/CUDA", False, 120),
    Step("cpu-smoke", "vspipe renders frames 0-1 of a 96x64 crop of the sample with Upscale on the CPU", False, 180),
    Step("gpu-tests", "pytest -m gpu (the gpu-marked tests)", True, 240),
    Step("cpu-reference", "CPU render of the whole sample with vspipe (reference for the GPU steps)", True, 240),
    Step("parity", "Upscale cuda vs cpu on scene 2 (frames 84-125): fp32/fp16, with/without CUDA graphs",
         True, 180),
    Step("vspipe", "vspipe render of the sample with backend=cuda (fp32, fp16) vs the CPU render: PSNR",
         True, 180),
    Step("exactly-once", "cuda: default requests vs -r 1 vs ranges give the same bytes, each step once",
         True, 180),
    Step("bench", "vqdsr bench GPU rows at 180x320, 480x720, 1080x1920", True, 300),
    Step("streams", "Upscale cuda fp16 with num_streams 1 and 2, two scenes requested in parallel", True, 180),
    Step("degrade", "Degrade on cuda vs cpu: same ranks, PSNR, order independence, speed", True, 150),
    Step("tensorrt", "Upscale backend=trt fp32/fp16 vs the CPU render (only if import tensorrt works)",
         True, 300),
)


def by_name(name: str) -> Step:
    for s in STEPS:
        if s.name == name:
            return s
    raise KeyError(f"unknown step {name!r}; steps: {', '.join(s.name for s in STEPS)}")
