#!/usr/bin/env bash
# Check the whole GPU path on a bare GPU machine in one call (docs/runtimes.md, "GPU check"):
#
#   scripts/gpu_check.sh [OUTDIR] [--dry-run | --rehearse] [--kit DIR] [--budget SECONDS]
#
# Installs .gpu-kit/ (scripts/gpu_kit.sh) offline into a fresh venv that sees this machine's CUDA
# torch, runs every step in its own process (a failed step is reported, the next one runs), writes
# OUTDIR/summary.json, OUTDIR/summary.md and step logs (default out/gpu-check) and prints the
# summary. --dry-run runs only what needs no GPU (kit, venv, imports, a CPU smoke render) and lists
# the GPU steps it skipped; --rehearse runs the GPU steps on the CPU over a tiny crop (tries the
# steps without a GPU, figures meaningless). Python: $VSVQDSR_PYTHON, else the first python3.12,
# python3 or python >= 3.12 that imports torch. Exit status 1 when a step failed.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
ok312() { "$1" -c 'import sys; sys.exit(sys.version_info < (3, 12))' >/dev/null 2>&1; }
PY=""
for c in ${VSVQDSR_PYTHON:-} python3.12 python3 python; do
    command -v "$c" >/dev/null 2>&1 && ok312 "$c" || continue
    [ -z "$PY" ] && PY="$c"
    if "$c" -c 'import torch' >/dev/null 2>&1; then PY="$c"; break; fi
done
[ -n "$PY" ] || { echo "gpu_check: no Python >= 3.12 found (set VSVQDSR_PYTHON)" >&2; exit 2; }
exec "$PY" -m vsvqdsr.gpucheck run "$@"
