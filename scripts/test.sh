#!/usr/bin/env bash
# Set up the same environment as the demo, then run the test suite (extra args go to pytest).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
"$ROOT/scripts/setup_env.sh"
export PATH="$ROOT/.venv/bin:$PATH"
exec python -m pytest plugin_tests -q -p no:cacheprovider "$@"
