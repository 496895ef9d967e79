"""``run --service`` with a hostile config file: it falls back and reaches READY=1 (item 6)."""

from __future__ import annotations

import socket
import subprocess
from pathlib import Path

import pytest

from tests.support.config_cases import HOSTILE


@pytest.mark.parametrize(("text", "key"), HOSTILE, ids=lambda v: str(v)[:24])
def test_service_falls_back_and_sends_ready(tmp_path: Path, bedside_cmd, cli_env, text, key):
    config = tmp_path / "config.toml"
    config.write_text(text)
    sock_path = tmp_path / "notify.sock"
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(str(sock_path))
    sock.settimeout(60.0)
    env = dict(cli_env, NOTIFY_SOCKET=str(sock_path))
    argv = [*bedside_cmd, "run", "--service", "--sim", "--audio", "null", "--config", str(config)]
    argv += ["--duration", "3", "--state-dir", str(tmp_path / "state")]
    proc = subprocess.Popen(argv, env=env, stderr=subprocess.PIPE, text=True)
    try:
        messages = []
        while not any("READY=1" in m for m in messages):
            messages.append(sock.recv(4096).decode())
        _out, err = proc.communicate(timeout=120)
    finally:
        sock.close()
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0, err[-2000:]
    assert key in err  # the refused key is logged
