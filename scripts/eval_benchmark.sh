#!/usr/bin/env bash
# The full quality benchmark: build the set once (if missing), then score the baselines, every
# installed VSR model and any checkpoints given as arguments. Cached results are reused, so adding a
# checkpoint later only computes that checkpoint.
#
# Usage: scripts/eval_benchmark.sh [CHECKPOINT.safetensors ...]
# Environment: EVAL_SET (default eval_set), OUT (default out/eval), THREADS (default 2),
#              METHODS (default: vqdsr eval's defaults), EXTRA (more `vqdsr eval` options).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
PY="${PYTHON:-$ROOT/.venv/bin/python}"
EVAL_SET="${EVAL_SET:-eval_set}"
OUT="${OUT:-out/eval}"
THREADS="${THREADS:-2}"
if [ ! -f "$EVAL_SET/benchmark.json" ]; then
  "$PY" -m vsvqdsr.cli.main eval build --out "$EVAL_SET" --threads "$THREADS"
fi
args=("$EVAL_SET" --out "$OUT" --threads "$THREADS")
# shellcheck disable=SC2206
[ -n "${METHODS:-}" ] && args+=(--methods $METHODS)
[ "$#" -gt 0 ] && args+=(--checkpoint "$@")
# shellcheck disable=SC2206
[ -n "${EXTRA:-}" ] && args+=($EXTRA)
exec "$PY" -m vsvqdsr.cli.main eval "${args[@]}"
