#!/usr/bin/env bash
# Gather what a bare GPU machine (Python 3.12 + CUDA torch, no VapourSynth, no network) lacks for
# scripts/gpu_check.sh: --no-deps wheels for CPython 3.12 manylinux x86-64 into .gpu-kit/ (ignored by
# git), at the versions installed in .venv; then print the kit's size and the working tree's, which
# must stay well inside the 64 MiB that travel with a call. Needs the package registry.
#
#   scripts/gpu_kit.sh [--out DIR] [--from-installed]
#
# --from-installed repacks .venv's installed distributions instead (no registry needed; valid because
# .venv is CPython 3.12 on x86-64 Linux like the GPU machine).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
PY="${VSVQDSR_PYTHON:-}"
if [ -z "$PY" ]; then
    if [ -x "$ROOT/.venv/bin/python" ]; then PY="$ROOT/.venv/bin/python"; else PY=python3; fi
fi
exec "$PY" -m vsvqdsr.gpucheck kit "$@"
