"""The console's serial port, opened through pyserial (imported only when a port is used).

Any pyserial URL works too (``loop://``, ``socket://``, ``rfc2217://``), which is how tests
and a technician's laptop reach the console without a UART.
"""

from __future__ import annotations

import errno
import os
from collections.abc import Callable
from typing import Any

from device.exc import SerialPortError


def open_serial(port: str, baud: int = 115200) -> Any:
    """Open ``port`` at ``baud`` 8N1, non-blocking, exclusive where the OS allows.

    :raises SerialPortError: the port does not exist, is busy or is not permitted (the
        message says what to check).
    """
    try:
        import serial
    except ImportError as exc:  # pragma: no cover - pyserial is a runtime dependency
        raise SerialPortError(f"pyserial is not installed: {exc}") from exc
    try:
        if "://" in port:
            ser = serial.serial_for_url(port, baudrate=baud, timeout=0, write_timeout=0)
        else:
            ser = serial.Serial(
                port,
                baudrate=baud,
                bytesize=8,
                parity="N",
                stopbits=1,
                timeout=0,
                write_timeout=0,
                exclusive=True,
            )
    except (serial.SerialException, OSError, ValueError) as exc:
        raise SerialPortError(f"cannot open serial port {port}: {open_problem(exc)}") from exc
    return ser


def open_problem(exc: BaseException) -> str:
    """Why a port did not open, once: pyserial nests the OS error in its own message
    ("could not open port X: [Errno 2] No such file or directory: 'X'")."""
    errno_ = getattr(exc, "errno", None)
    if isinstance(errno_, int):
        if errno_ == errno.ENOENT:
            return "no such device (is the UART enabled, or the USB adapter plugged in?)"
        if errno_ in (errno.EACCES, errno.EPERM):
            return "permission denied (is the service user in group dialout?)"
        if errno_ == errno.EBUSY:
            return "busy (another program has it open: a getty or a terminal?)"
        return os.strerror(errno_).lower()
    return str(exc)


def serial_opener(port: str, baud: int = 115200) -> Callable[[], Any]:
    """Return a callable that opens ``port`` (called again to reopen after an unplug)."""

    def opener() -> Any:
        return open_serial(port, baud)

    opener.port = port  # type: ignore[attr-defined]
    return opener
