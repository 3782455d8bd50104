"""GPU verification kit: everything needed to check the whole GPU path on a bare GPU machine.

A bare GPU machine has Python 3.12 and a CUDA torch but no VapourSynth, no network and room for
64 MiB of files. :mod:`.kit` gathers the wheels the check needs (``scripts/gpu_kit.sh``);
:mod:`.runner` installs them offline into a fresh venv that sees the machine's torch and runs the
steps of :mod:`.plan` one process each (``scripts/gpu_check.sh``), implemented in :mod:`.steps`;
:mod:`.summary` writes ``summary.json`` and ``summary.md``. Every module here except
:mod:`.steps` uses only the standard library, so the orchestration runs before anything is installed.
"""
