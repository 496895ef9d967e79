"""The box's sd_notify messages never block its loop, even when nobody reads them."""

from __future__ import annotations

import socket
import threading
from pathlib import Path

from device.box.systemd import Notifier


def test_a_manager_that_does_not_read_never_blocks_the_sender(tmp_path: Path) -> None:
    path = tmp_path / "notify.sock"
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(str(path))  # bound, never read: the queue fills after a few datagrams
    try:
        n = Notifier({"NOTIFY_SOCKET": str(path), "WATCHDOG_USEC": "2000000"}, pid=1)
        done = threading.Event()

        def send() -> None:
            for i in range(500):
                n.status(f"playing t={i}s")
            done.set()

        thread = threading.Thread(target=send, daemon=True)
        thread.start()
        # A blocking send would hang at the queue limit (net.unix.max_dgram_qlen, 10 or so).
        assert done.wait(30), "sd_notify blocked on a full socket"
        assert n.sent >= 1 and n.errors >= 1  # the full queue was counted, not waited for
        assert n.sent + n.errors == 500
    finally:
        sock.close()
