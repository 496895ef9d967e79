#!/usr/bin/env bash
# Set up everything the box and its tests need on Debian 12 / Raspberry Pi OS (bookworm):
# the Debian packages, a virtualenv in .venv, and the package with its dev extras.
# Idempotent: a second run only checks. Uses sudo for apt when not run as root.
# Quiet when it succeeds (one line per step it takes); when a step fails, that step's whole
# output is shown, then one line naming the step.
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON=${PYTHON:-python3}
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
LOG=$(mktemp)
trap 'rm -f "$LOG"' EXIT

# Run "$@" with its output kept in $LOG; on failure show it and stop with what failed.
quietly() {
    local what=$1
    shift
    if ! "$@" >"$LOG" 2>&1; then
        cat "$LOG" >&2
        echo "setup: error: $what failed (its output is above)" >&2
        exit 1
    fi
}

# portaudio19-dev builds PyAudio; socat, picocom and tmux drive the console tests; sox and
# systemd serve the audio and service tests; python3-venv makes the environment;
# libfluidsynth3 and fluid-soundfont-gm (FluidR3 GM, MIT) play the composer's music.
PKGS="python3-venv python3-dev portaudio19-dev gcc socat picocom tmux sox systemd libfluidsynth3 fluid-soundfont-gm"
missing=""
for p in $PKGS; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done
if [ -n "$missing" ]; then
    echo "setup: installing Debian packages:$missing"
    quietly "apt-get update" $SUDO apt-get update -qq
    quietly "apt-get install$missing" $SUDO env DEBIAN_FRONTEND=noninteractive \
        apt-get install -y -qq --no-install-recommends $missing
fi

"$PYTHON" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else 1)' || {
    echo "setup: Python 3.11 or newer is needed ($PYTHON is $("$PYTHON" --version 2>&1))" >&2
    exit 1
}
[ -x .venv/bin/python ] || quietly "making the virtualenv .venv" "$PYTHON" -m venv .venv
if ! .venv/bin/python -c 'import device, numpy, serial, smbus2, pytest, hypothesis, pyaudio' 2>/dev/null \
   || [ pyproject.toml -nt .venv/.installed ]; then
    echo "setup: installing the package into .venv"
    quietly "pip install --upgrade pip" .venv/bin/python -m pip install -q --upgrade pip
    quietly "pip install -e '.[dev]'" .venv/bin/python -m pip install -q -e '.[dev]'
    touch .venv/.installed
fi
echo "setup: ready ($(.venv/bin/python --version))"
