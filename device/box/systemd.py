"""Tell systemd how the box is doing (sd_notify(3)), with no library beyond the stdlib.

Under a ``Type=notify`` unit systemd passes ``$NOTIFY_SOCKET`` (a filesystem path, or an
abstract socket name starting with ``@``) and, when ``WatchdogSec=`` is set,
``$WATCHDOG_USEC`` (and ``$WATCHDOG_PID``). The box sends ``READY=1`` once sound flows,
``STATUS=...`` with its state, ``WATCHDOG=1`` every half watchdog period while healthy and
``STOPPING=1`` when it fades out for a stop. Outside systemd every call is a no-op.

Nothing here raises: a failed send is counted in :attr:`Notifier.errors` and remembered in
:attr:`Notifier.last_error`, because the sound must never stop over a status message.
"""

from __future__ import annotations

import contextlib
import os
import socket
from collections.abc import Mapping

#: Longest STATUS= text sent; systemd shows one line, and a datagram must stay small.
MAX_STATUS_CHARS = 200


def _socket_address(value: str) -> str:
    # sd_notify(3): a leading '@' names a socket in the abstract namespace (leading NUL).
    if value.startswith("@"):
        return "\0" + value[1:]
    return value


class Notifier:
    """Send sd_notify messages to the service manager, or do nothing outside one.

    :param env: the environment to read ``NOTIFY_SOCKET``, ``WATCHDOG_USEC`` and
        ``WATCHDOG_PID`` from (``os.environ`` when ``None``).
    :param pid: this process's id, compared with ``WATCHDOG_PID`` (``os.getpid()`` when
        ``None``).
    """

    def __init__(self, env: Mapping[str, str] | None = None, *, pid: int | None = None) -> None:
        env = os.environ if env is None else env
        self._address: str | None = None
        raw = env.get("NOTIFY_SOCKET", "")
        if raw and (raw.startswith("/") or raw.startswith("@")):
            self._address = _socket_address(raw)
        self.watchdog_period_s: float | None = _watchdog_period(
            env, os.getpid() if pid is None else pid
        )
        self._sock: socket.socket | None = None
        #: Messages that could not be sent.
        self.errors = 0
        #: Text of the last send failure, or ``None``.
        self.last_error: str | None = None
        #: Messages sent successfully.
        self.sent = 0
        self._last_status: str | None = None
        self._closed = False

    @property
    def enabled(self) -> bool:
        """True when running under a service manager that listens for notifications."""
        return self._address is not None and not self._closed

    @property
    def watchdog_ping_s(self) -> float | None:
        """How often to call :meth:`watchdog`, in seconds: half the watchdog period."""
        return None if self.watchdog_period_s is None else self.watchdog_period_s / 2.0

    def notify(self, message: str) -> bool:
        """Send one raw message (``KEY=VALUE`` lines); True if the manager received it."""
        if not self.enabled:
            return False
        assert self._address is not None
        try:
            if self._sock is None:
                self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC)
            # Never blocks the audio loop: a manager that does not read costs a counted error.
            self._sock.sendto(
                message.encode("utf-8", "replace"), socket.MSG_DONTWAIT, self._address
            )
        except OSError as exc:
            self.errors += 1
            self.last_error = f"sd_notify to {self._address!r} failed: {exc}"
            self._drop_socket()
            return False
        self.sent += 1
        return True

    def ready(self, status: str | None = None) -> bool:
        """Report start-up finished (``READY=1``), optionally with a status text."""
        message = "READY=1"
        if status is not None:
            message += "\nSTATUS=" + _one_line(status)
            self._last_status = _one_line(status)
        return self.notify(message)

    def status(self, text: str) -> bool:
        """Report a one-line status (``STATUS=``); unchanged texts are not re-sent."""
        line = _one_line(text)
        if line == self._last_status:
            return self.enabled
        ok = self.notify("STATUS=" + line)
        if ok:
            self._last_status = line
        return ok

    def watchdog(self) -> bool:
        """Ping the watchdog (``WATCHDOG=1``). Call only while the loop is healthy."""
        if self.watchdog_period_s is None:
            return False
        return self.notify("WATCHDOG=1")

    def stopping(self, status: str | None = None) -> bool:
        """Report that the service is shutting down (``STOPPING=1``)."""
        message = "STOPPING=1"
        if status is not None:
            message += "\nSTATUS=" + _one_line(status)
        return self.notify(message)

    def _drop_socket(self) -> None:
        if self._sock is not None:
            with contextlib.suppress(OSError):
                self._sock.close()
            self._sock = None

    def close(self) -> None:
        """Close the socket; further calls do nothing. Idempotent."""
        self._drop_socket()
        self._closed = True

    def __enter__(self) -> Notifier:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        if not self.enabled:
            return "<Notifier disabled>"
        where = self._address.replace("\0", "@") if self._address else "?"
        wd = "off" if self.watchdog_period_s is None else f"{self.watchdog_period_s:g}s"
        return f"<Notifier socket={where} watchdog={wd} sent={self.sent} errors={self.errors}>"


def _one_line(text: str) -> str:
    line = " ".join(str(text).split())
    return line[:MAX_STATUS_CHARS]


def _watchdog_period(env: Mapping[str, str], pid: int) -> float | None:
    raw = env.get("WATCHDOG_USEC", "")
    if not raw:
        return None
    try:
        usec = int(raw)
    except ValueError:
        return None
    if usec <= 0:
        return None
    watchdog_pid = env.get("WATCHDOG_PID", "")
    if watchdog_pid:
        try:
            if int(watchdog_pid) != pid:
                # The watchdog belongs to another process (for example our parent).
                return None
        except ValueError:
            return None
    return usec / 1_000_000
