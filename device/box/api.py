"""The box as its users see it: one typed interface for the console, the buttons and the CLI.

:class:`BoxApi` is everything the technician console (:mod:`device.console.commands`), the
buttons and the command line may ask of the running box; :class:`device.box.app.Box`
implements it, and so does the tests' shared fake box. Nothing outside the box reaches
past it into the box's parts.

A request that touches the disk (a program file, the session store, the config file)
returns an :class:`OffLoop`: the checks that need the box's state run at the call, on the
loop; ``work()`` does the disk part and is safe on a worker thread (it touches no loop
state); ``apply(result)`` runs back on the loop and gives the answer. The console runs
``work`` on its worker thread, the buttons and the boot on the box's start worker; a caller
on the loop that may block calls ``run()``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Generic, Protocol, TypeVar

if TYPE_CHECKING:
    from device.box.session_start import SessionStart
    from device.config import Config
    from device.therapy.program import Program

T = TypeVar("T")


def _same(result: T) -> T:
    return result


@dataclass(frozen=True, slots=True)
class OffLoop(Generic[T]):
    """A box request in two halves: slow ``work`` off the loop, then ``apply`` on it."""

    #: The disk part: safe on any thread, touches no loop state.
    work: Callable[[], T]
    #: Back on the loop: applies the result to the box and returns the answer.
    apply: Callable[[T], T] = _same

    def run(self) -> T:
        """Both halves on the calling thread (for a caller that may block)."""
        return self.apply(self.work())


class BoxApi(Protocol):
    """The running box's public interface (times in s, levels in dB)."""

    @property
    def config(self) -> Config:
        """The running configuration (``CFG?``)."""

    def status(self) -> dict[str, object]:
        """Everything the status line and ``STATUS?`` show."""

    def prepare_session(
        self, program: str | Program | None = None, minutes: float | None = None
    ) -> OffLoop[SessionStart]:
        """Start a session (default: the configured program) in two halves: ``work`` reads
        the program (a name not found as spelt matches a program on offer case-insensitively)
        and the profile's preferences off the loop; ``apply`` starts the session and gives
        it back with its store id.

        ``StateError`` at the call (and at ``apply``) while a session plays.
        """

    def start_session(
        self, program: str | Program | None = None, minutes: float | None = None
    ) -> int | None:
        """Start a session (default: the configured program); its store id or ``None``.

        Everything :meth:`prepare_session` reads is read here, on the caller's thread (for
        the command line and tests: a caller that may block).
        """

    def stop_session(self, reason: str = "stop") -> None:
        """Fade the session out (at most 2 s), then go idle; or cancel a start being
        prepared (a button's, the boot's)."""

    def programs(self) -> OffLoop[list[Program]]:
        """The programs available (every program file is read)."""

    def set_volume_db(self, db: float) -> None:
        """Set the listener volume (ramped); ``ValueError`` above the cap or below -60."""

    def set_cap_dbfs(self, db: float) -> None:
        """Set the hard output cap; a volume above it comes down with it (one config change)."""

    def sensor_info(self) -> dict[str, object]:
        """The pulse sensor's facts (``SENSOR?``)."""

    def set_config(self, key: str, text: str) -> OffLoop[Config]:
        """Validate ``key = text`` (a program key loads the program) and apply it."""

    def save_config(self) -> OffLoop[Path]:
        """Save the running configuration; the file written."""

    def config_defaults(self) -> None:
        """Return every key to its default (not saved)."""

    def events(self, n: int = 20) -> list[dict[str, object]]:
        """The last ``n`` events, oldest first."""

    def sessions(self) -> OffLoop[list[dict[str, object]]]:
        """The sessions recorded, oldest first."""

    def export_rows(self, session_id: int) -> OffLoop[list[dict[str, object]]]:
        """The 1 Hz rows of one session (the rows buffered on the loop handed over first)."""

    def export_beats(self, session_id: int) -> OffLoop[list[dict[str, object]]]:
        """The beats of one session: ``t`` (s), ``rr_ms`` and ``ok`` (``EXPORT n RR``)."""

    def profile(self) -> OffLoop[dict[str, object]]:
        """The listener profile's learned resonance (``PROFILE?``)."""

    def selftest(self) -> OffLoop[list[tuple[str, bool, str]]]:
        """Sensor, audio, storage and clock checks: ``(name, ok, detail)`` each."""

    def rate(self, kind: str) -> None:
        """Rate what plays: ``like`` or ``skip``."""

    def music_describe(self) -> dict[str, object]:
        """``MUSIC?``: the playing track (``StateError``: no indexed music)."""

    def music_listing(self) -> list[dict[str, object]]:
        """``MUSIC LIST``: the playable tracks, numbered from 1 (``StateError``: no music)."""

    def music_play(self, n: int) -> dict[str, object]:
        """``MUSIC PLAY n``: crossfade to track ``n`` (``ValueError``: no such track)."""

    def music_scan(self) -> dict[str, object]:
        """``MUSIC SCAN``: index the music folder again in a child process, not waiting for it
        (``StateError``: no music, or a scan is running)."""

    def erase_userdata(self) -> OffLoop[dict[str, int]]:
        """Erase every personal record; the counts erased (``StateError`` while playing)."""

    def request_restart(self) -> None:
        """Fade out and exit 75 (systemd starts the service again)."""

    def request_exit(self, reason: str = "signal") -> None:
        """Fade out and end the run."""

    def emit(self, line: str) -> None:
        """Send an unsolicited ``!`` line to the console."""
