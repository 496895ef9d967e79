"""Whether the box's wall clock is set: most Pis have no RTC and this box has no network.

A Pi without an RTC battery boots with the time systemd last saved, or its build date
(systemd raises an older clock to that), so a box that has never been online reads a date
months or years in the past. The box still works (sessions are ordered by their store id,
the loop runs on the audio clock), but the start times it records are wrong, and the
technician must be told: the status key ``clock`` says ``set`` or ``not set``, and the
journal says so once when the box starts and once at every change.

A clock earlier than :data:`CLOCK_FLOOR` cannot be right: this release did not exist then
(the same rule as systemd's own clock epoch).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from datetime import UTC, datetime

log = logging.getLogger(__name__)

#: No clock before this moment is set (s since the epoch, UTC). Raise it at each release.
CLOCK_FLOOR = datetime(2026, 11, 1, tzinfo=UTC).timestamp()


def _iso(t: float) -> str:
    return datetime.fromtimestamp(t, UTC).strftime("%Y-%m-%d %H:%M UTC")


class WallClock:
    """The wall clock's state, logged once per change.

    :param now: the wall clock, s since the epoch (``time.time``).
    :param floor: the earliest time that can be right, s since the epoch.
    """

    def __init__(self, now: Callable[[], float] = time.time, floor: float = CLOCK_FLOOR) -> None:
        self._now = now
        self.floor = floor
        self._was_set: bool | None = None

    def is_set(self) -> bool:
        """True when the clock reads no earlier than :attr:`floor`; a change is logged once."""
        t = self._now()
        ok = t >= self.floor
        if ok != self._was_set:
            if not ok:
                log.warning(
                    "clock not set: it reads %s, before this release (%s); sessions are kept "
                    "in order but their times are wrong until the clock is set",
                    _iso(t),
                    _iso(self.floor),
                )
            elif self._was_set is not None:
                log.warning("clock set: it reads %s", _iso(t))
            self._was_set = ok
        return ok

    def status(self) -> dict[str, object]:
        """The status key ``clock``: ``"set"`` or ``"not set"``."""
        return {"clock": "set" if self.is_set() else "not set"}

    def __repr__(self) -> str:
        return f"<WallClock floor={_iso(self.floor)} set={self._was_set}>"
