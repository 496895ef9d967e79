"""The box as its users see it: one typed interface for the console, the buttons and the CLI.

:class:`BoxApi` is everything the technician console (:mod:`device.console.commands`), the
buttons and the command line may ask of the running box; :class:`device.app.Box`
implements it, and so does the tests' shared fake box. Nothing outside the box reaches
past it into the box's parts.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from device.config import Config
    from device.therapy.program import Program


class BoxApi(Protocol):
    """The running box's public interface (times in s, levels in dB)."""

    @property
    def config(self) -> Config:
        """The running configuration (``CFG?``)."""

    def status(self) -> dict[str, object]:
        """Everything the status line and ``STATUS?`` show."""

    def start_session(self, program: str | None = None, minutes: float | None = None) -> int | None:
        """Start a session (default: the configured program); its store id or ``None``."""

    def stop_session(self, reason: str = "stop") -> None:
        """Fade the session out (at most 2 s), then go idle."""

    def programs(self) -> list[Program]:
        """The programs available."""

    def set_volume_db(self, db: float) -> None:
        """Set the listener volume (ramped); ``ValueError`` above the cap or below -60."""

    def set_cap_dbfs(self, db: float) -> None:
        """Set the hard output cap; the volume follows it down."""

    def sensor_info(self) -> dict[str, object]:
        """The pulse sensor's facts (``SENSOR?``)."""

    def set_config(self, key: str, text: str) -> None:
        """Validate and apply ``key = text`` to the running configuration."""

    def save_config(self) -> Path:
        """Save the running configuration; the file written."""

    def config_defaults(self) -> None:
        """Return every key to its default (not saved)."""

    def events(self, n: int = 20) -> list[dict[str, object]]:
        """The last ``n`` events, oldest first."""

    def sessions(self) -> list[dict[str, object]]:
        """The sessions recorded, oldest first."""

    def export_rows(self, session_id: int) -> list[dict[str, object]]:
        """The 1 Hz rows of one session."""

    def selftest(self) -> list[tuple[str, bool, str]]:
        """Sensor, audio, storage and clock checks: ``(name, ok, detail)`` each."""

    def rate(self, kind: str) -> None:
        """Rate what plays: ``like`` or ``skip``."""

    def erase_userdata(self) -> dict[str, int]:
        """Erase every personal record; the counts erased."""

    def request_restart(self) -> None:
        """Fade out and exit 75 (systemd starts the service again)."""

    def request_exit(self, reason: str = "signal") -> None:
        """Fade out and end the run."""

    def emit(self, line: str) -> None:
        """Send an unsolicited ``!`` line to the console."""
