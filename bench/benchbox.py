"""What the console benchmarks share: a socat pty pair, the box's environment, a clean stop."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def pty_pair(tmp: Path) -> tuple[subprocess.Popen[bytes], str, str]:
    """Start socat joining two ptys linked as ``tmp/box-tty`` and ``tmp/tech-tty``.

    Exits with status 2 and a one-line hint when socat is not installed.
    """
    socat = shutil.which("socat")
    if socat is None:
        print("socat is needed (apt-get install socat)", file=sys.stderr)
        raise SystemExit(2)
    box_tty, tech_tty = str(tmp / "box-tty"), str(tmp / "tech-tty")
    pair = subprocess.Popen(
        [socat, f"pty,raw,echo=0,link={box_tty}", f"pty,raw,echo=0,link={tech_tty}"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    while not (os.path.exists(box_tty) and os.path.exists(tech_tty)):
        time.sleep(0.01)
    return pair, box_tty, tech_tty


def box_env(tmp: Path, config: Path, **extra: str) -> dict[str, str]:
    """The box's environment: this checkout first, its own config and state, no systemd."""
    env = dict(os.environ, BEDSIDE_CONFIG=str(config), XDG_STATE_HOME=str(tmp / "xdg"), **extra)
    env.pop("NOTIFY_SOCKET", None)
    env["PYTHONPATH"] = str(REPO) + os.pathsep + env.get("PYTHONPATH", "")
    return env


def stop(box: subprocess.Popen[bytes], pair: subprocess.Popen[bytes]) -> None:
    """SIGTERM the box (killed after 10 s), then end the pty pair."""
    box.send_signal(signal.SIGTERM)
    try:
        box.wait(10)
    except subprocess.TimeoutExpired:
        box.kill()
    pair.terminate()
    pair.wait(5)
