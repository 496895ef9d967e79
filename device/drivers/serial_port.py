"""The console's serial port, opened through pyserial (imported only when a port is used).

Any pyserial URL works too (``loop://``, ``socket://``, ``rfc2217://``), which is how tests
and a technician's laptop reach the console without a UART.
"""

from __future__ import annotations

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
        hint = ""
        text = str(exc)
        if "Permission denied" in text:
            hint = " (is the service user in group dialout?)"
        elif "No such file" in text or "could not open" in text:
            hint = " (is the UART enabled, or the USB adapter plugged in?)"
        raise SerialPortError(f"cannot open serial port {port}: {exc}{hint}") from exc
    return ser


def serial_opener(port: str, baud: int = 115200) -> Callable[[], Any]:
    """Return a callable that opens ``port`` (called again to reopen after an unplug)."""

    def opener() -> Any:
        return open_serial(port, baud)

    opener.port = port  # type: ignore[attr-defined]
    return opener
