"""sd_notify client: messages reach a real AF_UNIX datagram socket, as systemd's would."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from device.box.systemd import MAX_STATUS_CHARS, Notifier


@pytest.fixture
def manager(tmp_path: Path):
    """A fake service manager: a bound datagram socket and the env a child would get."""
    path = tmp_path / "notify.sock"
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(str(path))
    sock.settimeout(2.0)
    yield sock, str(path)
    sock.close()


def recv(sock: socket.socket) -> str:
    return sock.recv(4096).decode()


def test_disabled_without_notify_socket():
    n = Notifier({})
    assert not n.enabled
    assert n.ready("x") is False
    assert n.watchdog() is False
    assert n.status("idle") is False
    assert n.stopping() is False
    assert n.watchdog_period_s is None
    assert repr(n) == "<Notifier disabled>"


def test_ready_status_watchdog_stopping_reach_socket(manager):
    sock, path = manager
    n = Notifier({"NOTIFY_SOCKET": path, "WATCHDOG_USEC": "4000000"}, pid=123)
    assert n.enabled
    assert n.watchdog_period_s == 4.0
    assert n.watchdog_ping_s == 2.0
    assert n.ready("playing wind-down")
    assert recv(sock) == "READY=1\nSTATUS=playing wind-down"
    assert n.status("idle")
    assert recv(sock) == "STATUS=idle"
    assert n.watchdog()
    assert recv(sock) == "WATCHDOG=1"
    assert n.stopping("fading out")
    assert recv(sock) == "STOPPING=1\nSTATUS=fading out"
    assert n.sent == 4 and n.errors == 0


def test_status_is_one_line_and_bounded(manager):
    sock, path = manager
    n = Notifier({"NOTIFY_SOCKET": path})
    n.status("a\nb\tc  " + "x" * 500)
    got = recv(sock)
    assert got.startswith("STATUS=a b c x")
    assert "\n" not in got
    assert len(got) == len("STATUS=") + MAX_STATUS_CHARS


def test_unchanged_status_not_resent(manager):
    sock, path = manager
    n = Notifier({"NOTIFY_SOCKET": path})
    n.status("idle")
    n.status("idle")
    n.status("playing")
    assert recv(sock) == "STATUS=idle"
    assert recv(sock) == "STATUS=playing"
    assert n.sent == 2


def test_abstract_namespace_socket():
    name = f"bedside-test-{uuid.uuid4().hex}"
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind("\0" + name)
    sock.settimeout(2.0)
    try:
        n = Notifier({"NOTIFY_SOCKET": "@" + name})
        assert n.ready()
        assert recv(sock) == "READY=1"
        assert "@" + name in repr(n)
    finally:
        sock.close()


def test_watchdog_pid_of_another_process_disables_watchdog(manager):
    _, path = manager
    n = Notifier({"NOTIFY_SOCKET": path, "WATCHDOG_USEC": "2000000", "WATCHDOG_PID": "1"}, pid=99)
    assert n.watchdog_period_s is None
    assert n.watchdog() is False
    mine = Notifier(
        {"NOTIFY_SOCKET": path, "WATCHDOG_USEC": "2000000", "WATCHDOG_PID": "99"}, pid=99
    )
    assert mine.watchdog_period_s == 2.0


@pytest.mark.parametrize("usec", ["", "0", "-5", "soon"])
def test_bad_watchdog_usec_means_no_watchdog(usec):
    assert Notifier({"WATCHDOG_USEC": usec}).watchdog_period_s is None


def test_send_failure_is_counted_never_raised(tmp_path: Path):
    n = Notifier({"NOTIFY_SOCKET": str(tmp_path / "nobody-listens.sock")})
    assert n.enabled
    assert n.ready() is False
    assert n.watchdog() is False  # no watchdog configured: nothing sent, nothing counted
    assert n.errors == 1
    assert "nobody-listens.sock" in (n.last_error or "")


def test_relative_socket_path_is_ignored():
    assert not Notifier({"NOTIFY_SOCKET": "relative/path"}).enabled


def test_close_is_idempotent_and_silences(manager):
    sock, path = manager
    with Notifier({"NOTIFY_SOCKET": path}) as n:
        n.ready()
        assert recv(sock) == "READY=1"
    n.close()
    assert not n.enabled
    assert n.ready() is False


def test_sender_pid_is_the_process_itself(manager):
    """systemd with NotifyAccess=main only accepts messages whose sender is the main pid."""
    sock, path = manager
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_PASSCRED, 1)
    code = "from device.box.systemd import Notifier; Notifier().ready('child')"
    child = subprocess.Popen([sys.executable, "-c", code], env=dict(os.environ, NOTIFY_SOCKET=path))
    data, ancdata, _, _ = sock.recvmsg(4096, socket.CMSG_SPACE(12))
    child.wait(timeout=10)
    assert data == b"READY=1\nSTATUS=child"
    creds = [d for level, kind, d in ancdata if kind == socket.SCM_CREDENTIALS]
    pid = int.from_bytes(creds[0][:4], sys.byteorder)
    assert pid == child.pid


def test_overlong_socket_path_is_counted_not_raised():
    n = Notifier({"NOTIFY_SOCKET": "/" + "x" * 200})
    assert n.ready() is False and n.status("idle") is False
    assert n.errors == 2 and "too long" in (n.last_error or "")
