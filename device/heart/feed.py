"""The pulse as the box uses it: the sensor polled, the heart analysed, stale data withheld.

:class:`HeartFeed` polls the pulse sensor (real, absent or over the simulator), feeds its
blocks to a :class:`~device.heart.analysis.HeartAnalyzer` and hands the status, the store and
the therapy one :class:`~device.heart.analysis.HeartState` that is true *now*: when the sensor is
gone, dark or silent for more than :data:`STALE_S` of loop time, the state says no contact,
no heart rate, quality 0, instead of the analysis' last figures. Between sessions the
sensor is put in standby and each session starts a fresh analysis.
"""

from __future__ import annotations

import dataclasses
from collections import deque
from typing import Protocol

from device.heart.analysis import HeartAnalyzer, HeartState
from device.heart.samples import SampleBlock

#: Loop seconds without a sample after which the heart data count as gone (<= 2 s promised).
STALE_S = 1.0


class PulseInput(Protocol):
    """What the box needs of a pulse sensor (the MAX30102 driver, or none)."""

    rate_hz: float

    @property
    def present(self) -> bool:
        """True while a working sensor is connected."""

    @property
    def standby(self) -> bool:
        """True while the sensor is dark between sessions."""

    def set_standby(self, on: bool) -> None:
        """Darken the sensor between sessions, or wake it."""

    def poll(self) -> SampleBlock | None:
        """The samples gathered since the last poll (never raises)."""

    def info(self) -> dict[str, object]:
        """Facts for ``SENSOR?``."""

    def close(self) -> None:
        """Release the sensor."""


def withheld(state: HeartState) -> HeartState:
    """``state`` with every figure withheld: no contact, no heart rate, quality 0."""
    return dataclasses.replace(
        state,
        hr_bpm=None,
        hr_beat_bpm=None,
        rmssd_ms=None,
        sdnn_ms=None,
        rmssd_session_ms=None,
        sdnn_session_ms=None,
        coherence=None,
        breathing_bpm=None,
        quality=0.0,
        contact=False,
    )


#: Most beats kept between two :meth:`HeartFeed.take_beats` (a few minutes of a fast heart).
MAX_BEATS_KEPT = 512


class SessionHeart(Protocol):
    """The heart a session reads: the box's sensor and analysis (:class:`~device.heart.feed.
    HeartFeed`), or a simulated listener's ideal heart in a render."""

    def update(self, now: float) -> HeartState:
        """The heart state of this control tick at loop time ``now``, s."""
        ...

    def snapshot(self, now: float) -> HeartState:
        """The heart state at loop time ``now``, s."""
        ...

    def standby(self, on: bool) -> None:
        """Dark between sessions (a fresh analysis then), or awake for one."""
        ...

    def hrv_summary(self) -> dict[str, float | None]:
        """The session's HRV in ms: ``rmssd_ms``, ``sdnn_ms`` and the last 5 minutes'."""
        ...

    def take_beats(self) -> list[tuple[float, float | None, bool]]:
        """The beats found since the last call ``(loop time s, interval ms or None,
        plausible)``, oldest first, and forget them (the session's RR record)."""
        ...


class HeartFeed:
    """The sensor and the heart analysis of the running box.

    :param sensor: the pulse sensor (``present`` may be False: it is looked for again).
    :param stale_s: loop seconds without samples after which the data count as gone.
    """

    def __init__(self, sensor: PulseInput, *, stale_s: float = STALE_S) -> None:
        self.sensor = sensor
        self.stale_s = stale_s
        self.analyzer = HeartAnalyzer(sensor.rate_hz)
        self._last_data_t: float | None = None
        self._state: HeartState | None = None
        #: Beats found since :meth:`take_beats`: ``(loop time s, interval ms or None,
        #: plausible)``, at most :data:`MAX_BEATS_KEPT` (the oldest go first).
        self._beats: deque[tuple[float, float | None, bool]] = deque(maxlen=MAX_BEATS_KEPT)

    def poll(self, now: float) -> None:
        """Read the sensor and feed what it gave to the analysis (loop time ``now``, s)."""
        block = self.sensor.poll()
        if block is not None and len(block):
            beats = self.analyzer.feed(block)
            self._last_data_t = now
            if beats:
                # A beat's loop time: the block's last sample arrived now.
                end = (block.start_index + len(block) - 1) / block.rate_hz
                for b in beats:
                    ms = None if b.ibi is None else b.ibi * 1000.0
                    self._beats.append((now - (end - b.t), ms, bool(b.valid)))

    def take_beats(self) -> list[tuple[float, float | None, bool]]:
        """The beats found since the last call ``(loop time s, interval ms or None,
        plausible)``, oldest first, and forget them."""
        beats = list(self._beats)
        self._beats.clear()
        return beats

    def fresh(self, now: float) -> bool:
        """True while the sensor is present and sent samples in the last ``stale_s``."""
        if not self.sensor.present or self.sensor.standby or self._last_data_t is None:
            return False
        return now - self._last_data_t <= self.stale_s

    def snapshot(self, now: float) -> HeartState:
        """The heart state at loop time ``now``; withheld when the data are stale."""
        state = self.analyzer.snapshot()
        return state if self.fresh(now) else withheld(state)

    def update(self, now: float) -> HeartState:
        """Take the snapshot of this control tick (what :attr:`state` shows until the next)."""
        self._state = self.snapshot(now)
        return self._state

    def state(self, now: float) -> HeartState:
        """The state of the last control tick, or a snapshot when there was none yet.

        Stale data are withheld even between ticks.
        """
        state = self._state if self._state is not None else self.analyzer.snapshot()
        return state if self.fresh(now) else withheld(state)

    def hrv_summary(self) -> dict[str, float | None]:
        """The session's HRV in ms: whole (``rmssd_ms``, ``sdnn_ms``) and the last 5 minutes."""
        rmssd, sdnn = self.analyzer.session_hrv()
        rmssd_5, sdnn_5 = self.analyzer.short_term_hrv()
        return {
            "rmssd_ms": rmssd,
            "sdnn_ms": sdnn,
            "rmssd_5min_ms": rmssd_5,
            "sdnn_5min_ms": sdnn_5,
        }

    def standby(self, on: bool) -> None:
        """Sensor dark between sessions (a fresh analysis then), or awake for one."""
        if on:
            self.sensor.set_standby(True)
            self.analyzer = HeartAnalyzer(self.sensor.rate_hz)
            self._beats.clear()
            self._state = None
            self._last_data_t = None
        elif self.sensor.standby:
            self.sensor.set_standby(False)

    def info(self, now: float) -> dict[str, object]:
        """What ``SENSOR?`` shows: the driver's facts plus the analysis' contact and quality."""
        info = dict(self.sensor.info())
        h = self.state(now)
        info["contact"] = h.contact
        info["quality"] = round(h.quality, 3)
        return info

    def status_word(self) -> str:
        """``standby``, ``present`` or ``absent``."""
        if self.sensor.standby:
            return "standby"
        return "present" if self.sensor.present else "absent"

    def close(self) -> None:
        """Release the sensor."""
        self.sensor.close()

    def __repr__(self) -> str:
        return f"<HeartFeed {self.status_word()} {self.sensor!r}>"
