"""The box's record of what happens: 1 Hz rows, events and ratings, handed to the store.

:class:`Recorder` sits between the running box and :class:`~device.store.sessions.Store`.
It keeps the last events in memory (for ``LOG?``), buffers the rows of the session playing
and hands them over once a second, and turns every storage failure into a *storage fault*
(logged once per new text, shown in the status) instead of an exception: the sound never
stops because the card is full. Without a store (no writable state directory) it records
nothing and says why.
"""

from __future__ import annotations

import copy
import logging
import time
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from device.exc import StorageError

if TYPE_CHECKING:
    from device.store.sessions import Store

log = logging.getLogger(__name__)

#: Events kept in memory for ``LOG?``.
EVENTS_KEPT = 500


@dataclass
class Event:
    """One event: loop time ``t`` (s), kind, detail and the wall-clock time it happened."""

    t: float
    kind: str
    detail: str
    wall: float = field(default_factory=time.time)


class Recorder:
    """Rows, events and ratings of the running box, recorded in ``store`` when there is one.

    :param store: the session store, or ``None`` when there is none.
    :param clock: loop time in seconds (the time of an event without one given).
    :param emit: sends an unsolicited console line (``!EVENT kind detail``).
    :param error: why there is no store (when ``store`` is ``None``).
    """

    def __init__(
        self,
        store: Store | None,
        clock: Callable[[], float],
        emit: Callable[[str], None],
        *,
        error: str | None = None,
    ) -> None:
        self.store = store
        self._clock = clock
        self._emit = emit
        #: Text of the present storage fault, or ``None`` while the store works.
        self.storage_error: str | None = None
        #: The store's id of the session playing (``None``: none, or it is not recorded).
        self.session_id: int | None = None
        self._events: deque[Event] = deque(maxlen=EVENTS_KEPT)
        self._rows: list[dict[str, object]] = []
        #: Preferences this box saved (they may still wait for the card), by key.
        self._saved: dict[str, object] = {}
        if error is not None:
            self.fault(error)

    # -- faults -----------------------------------------------------------------------------

    def fault(self, text: str) -> None:
        """Note a storage fault (logged when its text is new; the sound goes on)."""
        if self.storage_error != text:
            log.error("storage fault: %s (sound goes on; sessions are not recorded)", text)
        self.storage_error = text

    def require(self) -> Store:
        """The store, for reads and erasure.

        :raises StorageError: there is no store.
        """
        if self.store is None:
            raise StorageError(self.storage_error or "no session store")
        return self.store

    # -- sessions ---------------------------------------------------------------------------

    def start_session(self, program: str, profile: str) -> int | None:
        """Open a session record; return its id (``None`` when it cannot be recorded)."""
        self.session_id = None
        self._rows = []
        if self.store is not None:
            try:
                self.session_id = self.store.start_session(program, profile)
            except StorageError as exc:
                self.fault(str(exc))
        return self.session_id

    def end_session(
        self,
        reason: str,
        preferences: Mapping[str, object],
        hrv: Mapping[str, float | None] | None = None,
    ) -> None:
        """Hand over the last rows, close the session record (with its HRV summary in ms)
        and save ``preferences``."""
        self.flush_rows()
        if self.store is not None and self.session_id is not None:
            self._saved.update(preferences)
            try:
                self.store.end_session(self.session_id, reason, hrv)
                for key, value in preferences.items():
                    self.store.set_preference(key, value)
            except StorageError as exc:
                self.fault(str(exc))
        self.session_id = None

    def preference(self, key: str) -> object:
        """A stored preference, or ``None`` (also when the store fails)."""
        if self.store is None:
            return None
        try:
            return self.store.get_preference(key)
        except StorageError as exc:
            self.fault(str(exc))
            return None

    def preferences_job(
        self, keys: Sequence[str]
    ) -> Callable[[], tuple[dict[str, object], str | None]]:
        """A read of the preferences ``keys`` for a worker thread (call this on the loop).

        Values this box saved are taken now (the card may not hold them yet); the returned
        function reads the others through :meth:`Store.reader` on its own thread and gives
        ``(values, fault)``: a key not stored maps to ``None``, and ``fault`` is the text of a
        storage failure (pass it to :meth:`fault` back on the loop), else ``None``.
        """
        store = self.store
        known = {k: copy.deepcopy(self._saved[k]) for k in keys if k in self._saved}
        wanted = [k for k in keys if k not in known]

        def work() -> tuple[dict[str, object], str | None]:
            values: dict[str, object] = dict.fromkeys(keys)
            values.update(known)
            if store is None or not wanted:
                return values, None
            try:
                with store.reader() as reader:
                    for key in wanted:
                        values[key] = reader.get_preference(key)
            except StorageError as exc:
                return values, str(exc)
            return values, None

        return work

    # -- rows -------------------------------------------------------------------------------

    def add_row(self, row: dict[str, object]) -> None:
        """Hand one 1 Hz row of the session playing to the store's writer at once.

        At once, not at the next :meth:`tick`: a power cut then loses at most the row
        interval (the lab's power scenario: 1 s), not that plus up to a second of buffering.
        """
        if self.session_id is not None:
            self._rows.append(row)
            self._hand_over()

    def add_beats(self, beats: Sequence[tuple[float, float | None, bool]]) -> None:
        """Hand the session's beats ``(session s, interval ms or None, plausible)`` to the
        store's writer (a storage fault is recorded, never raised)."""
        if self.store is None or self.session_id is None or not beats:
            return
        try:
            self.store.add_beats(self.session_id, beats)
        except StorageError as exc:
            self.fault(str(exc))

    def flush_rows(self) -> None:
        """Hand the buffered rows to the store now (before an export or the session end)."""
        if self.store is not None and self._rows and self.session_id is not None:
            rows, self._rows = self._rows, []
            try:
                self.store.add_rows(self.session_id, rows)
            except StorageError as exc:
                self.fault(str(exc))
        self._rows = []

    def tick(self, retention_days: int) -> None:
        """Once a second: hand over any rows left, prune old sessions once a day."""
        self._hand_over()
        if self.store is not None:
            self.store.prune_daily(retention_days)

    def _hand_over(self) -> None:
        if self.store is not None and self._rows:
            rows, self._rows = self._rows, []
            try:
                self.store.add_rows(self.session_id, rows)
                self.storage_error = None
            except StorageError as exc:
                self.fault(str(exc))

    # -- events and ratings -----------------------------------------------------------------

    def event(self, kind: str, detail: str, *, t: float | None = None) -> None:
        """Record an event (memory, journal, store) and send it to the console."""
        t = self._clock() if t is None else t
        self._events.append(Event(t, kind, detail))
        log.info("event %s %s", kind, detail)
        if self.store is not None and self.session_id is not None:
            try:
                self.store.add_event(self.session_id, t, kind, detail)
            except StorageError as exc:
                self.fault(str(exc))
        self._emit(f"!EVENT {kind} {detail}".rstrip())

    def events(self, n: int = 20) -> list[dict[str, object]]:
        """The last ``n`` events, oldest first."""
        out = list(self._events)[-n:] if n > 0 else []
        return [{"t": round(e.t, 3), "kind": e.kind, "detail": e.detail} for e in out]

    def rating(self, kind: str) -> None:
        """Record a like or skip of the session playing."""
        if self.store is not None and self.session_id is not None:
            try:
                self.store.add_rating(self.session_id, kind)
            except StorageError as exc:
                self.fault(str(exc))

    def erase(self) -> dict[str, int]:
        """Erase every personal record (store and memory); return what was erased.

        :raises StorageError: there is no store, or erasing failed.
        """
        counts = self.require().erase_userdata()
        self.forget_events()
        return counts

    def forget_events(self) -> None:
        """Forget the events and preferences kept in memory (the store's user data was erased)."""
        self._events.clear()
        self._saved.clear()

    def close(self) -> None:
        """Close the store (it finishes its queued writes). Idempotent."""
        if self.store is not None:
            self.store.close()

    def __repr__(self) -> str:
        state = "no store" if self.store is None else ("fault" if self.storage_error else "ok")
        return f"<Recorder {state} session={self.session_id} events={len(self._events)}>"
