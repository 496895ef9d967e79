#!/usr/bin/env bash
# Set up everything the box and its tests need on Debian 12 / Raspberry Pi OS (bookworm):
# the Debian packages, a virtualenv in .venv, and the package with its dev extras.
# Idempotent: a second run only checks. Uses sudo for apt when not run as root.
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON=${PYTHON:-python3}
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"

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
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends $missing >/dev/null
fi

"$PYTHON" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else 1)' || {
    echo "setup: Python 3.11 or newer is needed ($PYTHON is $("$PYTHON" --version 2>&1))" >&2
    exit 1
}
[ -x .venv/bin/python ] || "$PYTHON" -m venv .venv
if ! .venv/bin/python -c 'import device, numpy, serial, smbus2, pytest, hypothesis, pyaudio' 2>/dev/null \
   || [ pyproject.toml -nt .venv/.installed ]; then
    echo "setup: installing the package into .venv"
    .venv/bin/python -m pip install -q --upgrade pip
    .venv/bin/python -m pip install -q -e '.[dev]'
    touch .venv/.installed
fi
echo "setup: ready ($(.venv/bin/python --version))"
