"""Who this box is: the machine identity behind ``ID?`` and the per-device default PIN.

On a Raspberry Pi the SoC serial number (``Serial`` in ``/proc/cpuinfo``) names the board;
elsewhere ``/etc/machine-id`` (written once at first boot) does. Both are read, never
written.
"""

from __future__ import annotations

import re
import socket
from dataclasses import dataclass
from pathlib import Path

MACHINE_ID_FILES = (Path("/etc/machine-id"), Path("/var/lib/dbus/machine-id"))
CPUINFO = Path("/proc/cpuinfo")


@dataclass(frozen=True, slots=True)
class Identity:
    """The identity of one box."""

    #: Stable identity text the default PIN is derived from (never shown on the console).
    secret_id: str
    #: Short serial shown by ``ID?`` (the Pi's serial, or a digest of the machine id).
    serial: str


def read_identity(
    machine_id_files: tuple[Path, ...] = MACHINE_ID_FILES, cpuinfo: Path = CPUINFO
) -> Identity:
    """Read this machine's identity; falls back to the host name when nothing else exists."""
    pi_serial = _pi_serial(cpuinfo)
    machine_id = ""
    for path in machine_id_files:
        try:
            machine_id = path.read_text(encoding="ascii").strip()
        except (OSError, UnicodeDecodeError):
            continue
        if machine_id:
            break
    if pi_serial:
        return Identity(f"pi:{pi_serial}:{machine_id}", pi_serial[-8:].upper())
    if machine_id:
        return Identity(f"machine:{machine_id}", machine_id[:8].upper())
    host = socket.gethostname()
    return Identity(f"host:{host}", re.sub(r"[^A-Za-z0-9]", "", host)[:12] or "UNKNOWN")


def _pi_serial(cpuinfo: Path) -> str:
    try:
        text = cpuinfo.read_text(encoding="ascii", errors="replace")
    except OSError:
        return ""
    match = re.search(r"^Serial\s*:\s*([0-9a-fA-F]+)\s*$", text, re.MULTILINE)
    if not match or not match.group(1).strip("0"):
        return ""
    return match.group(1).lower()
