"""Each listener's own resonance rate: measured inside sessions, learned across nights.

The breathing rate at which a person's heart swings most with their breath (the resonance
of the baroreflex loop, Vaschillo 2002) lies somewhere in 4.5-7/min and drifts over weeks.
Clinics find it by pacing a few minutes at each of 6.5, 6.0 ... 4.5/min (Shaffer & Meehan
2020); this module does the same inside ordinary sessions:

* :class:`ResonanceEstimate` is one profile's estimate: the resonance rate (as a breathing
  rate), a confidence 0-1 and the measured sessions behind it, stored with the profile's
  preferences (:meth:`ResonanceEstimate.load` / :meth:`~ResonanceEstimate.save`).
  :meth:`~ResonanceEstimate.plan` says what the next session does: step through candidate
  rates (no or an unsure estimate), pace at the estimate (confident), or pace at it with a
  narrow band around it assessed (every other confident session).
* :class:`~device.therapy.assessment.Assessment` runs that plan inside one session,
  driven by the closed loop each tick: the candidate it glides to, how long the listener
  has followed it, and per breath the heart's peak-to-trough swing, the power of the
  interval series at the breathing rate and the phase of the heart against the pacer.
* :meth:`ResonanceEstimate.update` folds a session's :class:`SessionMeasurements` in: the
  peak of the swing against the breathing rate (a parabola through the best step and its
  neighbours), recent sessions weighing more (``DECAY`` per session).

The measurement is a handful of sums per control tick (no arrays, no allocation beyond a
result per finished breath).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Protocol

from device.store.keys import RESONANCE_PREFIX
from device.therapy.resonance_peak import (
    RANGE_BPM,
    STEP_BPM,
    PeakRecord,
    StepResult,
    bounds,
    fmt_bpm,
    pooled,
    session_peak,
)

__all__ = [
    "CONFIDENT",
    "DWELL_S",
    "FIRST_BPM",
    "PLANS",
    "PREFERENCE_PREFIX",
    "RANGE_BPM",
    "STEP_BPM",
    "ResonanceEstimate",
    "SessionMeasurements",
    "SessionPlan",
    "StepResult",
    "fmt_bpm",
    "session_peak",
]

#: The first descent's first rate, breaths/min: the clinics' protocol (6.5 down to 4.5,
#: Shaffer & Meehan 2020) over the adult range; 7/min is assessed when the swing is
#: highest at 6.5.
FIRST_BPM = 6.5
#: Time the listener must follow each candidate, s; the first ``SETTLE_IN_S`` of it lets
#: breathing and heart settle and is not measured.
DWELL_S = 120.0
SETTLE_IN_S = 50.0
#: When stepping back up to the best rate, the pause at each step, s.
RETURN_PAUSE_S = 30.0
#: Whole breaths a step needs to count; samples a breath needs.
MIN_CYCLES = 3
MIN_CYCLE_SAMPLES = 6
#: Stop descending once the two steps after the best swing this share of it or less.
EARLY_STOP_SHARE = 0.85
#: Confidence from which sessions pace straight at the estimate.
CONFIDENT = 0.6
#: Weight of a session's measurement per session of age (recent sessions weigh more).
DECAY = 0.7
#: Measured sessions kept; total weight giving confidence 1 - 1/e; spread that halves it.
MAX_RECORDS = 12
WEIGHT_SCALE = 1.2
SPREAD_BPM = 0.6
#: Preference key prefix (``resonance:<profile>``).
PREFERENCE_PREFIX = RESONANCE_PREFIX
#: Plan kinds.
PLANS = ("assess", "narrow", "pace")


class PreferenceStore(Protocol):
    """What the estimate needs of the store (``device.store.sessions.Store``)."""

    def get_preference(self, key: str, default: object = None) -> Any: ...

    def set_preference(self, key: str, value: object) -> None: ...


def _grid(rate: float) -> float:
    """``rate`` rounded to the candidate grid within the range."""
    return min(RANGE_BPM[1], max(RANGE_BPM[0], round(rate / STEP_BPM) * STEP_BPM))


def _ladder(top: float) -> tuple[float, ...]:
    """Candidate rates from ``top`` down to the range's end, ``STEP_BPM`` apart."""
    n = round((top - RANGE_BPM[0]) / STEP_BPM)
    return tuple(round(top - i * STEP_BPM, 3) for i in range(n + 1))


def _band(centre: float) -> tuple[float, ...]:
    """Three rates ``STEP_BPM`` apart around ``centre``, moved inside the range."""
    low = max(RANGE_BPM[0], min(centre - STEP_BPM, RANGE_BPM[1] - 2 * STEP_BPM))
    return (round(low + 2 * STEP_BPM, 3), round(low + STEP_BPM, 3), round(low, 3))


# --- a session's plan and its assessment -------------------------------------------------------


@dataclass(frozen=True)
class SessionPlan:
    """What a session does about the resonance rate.

    ``kind``: ``assess`` (step down through ``candidates``), ``narrow`` (step through a band
    of three around the estimate) or ``pace`` (``candidates`` is the one rate, paced and
    measured). ``pace_bpm``: the pacer rate the estimate calls for (``None`` without one).
    """

    kind: str
    candidates: tuple[float, ...]
    pace_bpm: float | None = None


@dataclass(frozen=True)
class SessionMeasurements:
    """What a session measured: its plan's kind and a result per candidate rate followed."""

    kind: str
    steps: tuple[StepResult, ...]


# --- the estimate across nights -----------------------------------------------------------------


class ResonanceEstimate:
    """One profile's resonance rate (breaths/min), learned from the sessions' measurements.

    ``resonance_bpm`` is a breathing rate; ``pace_bpm`` the pacer rate that brought this
    listener's breathing there (a listener who follows only partly breathes a little
    faster than the pacer). Both are ``None`` until a session measured two or more rates.
    """

    def __init__(self, profile: str = "default") -> None:
        self.profile = str(profile)
        self._records: list[PeakRecord] = []
        #: Sessions whose measurements moved the estimate.
        self.sessions_measured = 0
        #: Confident sessions paced at the estimate since its last narrow check.
        self.paced_since_check = 0
        #: The steps of a descent not finished yet (cut short on a still-rising swing):
        #: the next session carries it on below them and the peak is found over both.
        self.ladder: tuple[StepResult, ...] = ()
        #: False after a narrow band whose swing was highest at its edge: the estimate is
        #: not confirmed, and the next session carries that band on instead of pacing.
        self.confirmed = True

    # --- the figures ----------------------------------------------------------------------

    def _weights(self) -> list[tuple[PeakRecord, float]]:
        """The records the rate comes from, with their decayed weights.

        Descents cut short on a still-rising swing only bound the rate from above: while
        no session found a peak, the latest of them stands alone.
        """
        n = len(self._records)
        weighted = [
            (r, r.weight * DECAY ** (n - 1 - i)) for i, r in enumerate(self._records) if r.bracketed
        ]
        if not weighted and self._records:
            weighted = [(self._records[-1], self._records[-1].weight)]
        return weighted

    @property
    def resonance_bpm(self) -> float | None:
        """The resonance rate, breaths/min (``None`` before any measurement)."""
        weighted = self._weights()
        total = sum(w for _, w in weighted)
        return sum(r.rate * w for r, w in weighted) / total if total > 0.0 else None

    @property
    def pace_bpm(self) -> float | None:
        """The pacer rate to breathe at the resonance, breaths/min, within 4.5-7."""
        weighted = self._weights()
        total = sum(w for _, w in weighted)
        if total <= 0.0:
            return None
        pace = sum((r.rate - r.offset) * w for r, w in weighted) / total
        return min(RANGE_BPM[1], max(RANGE_BPM[0], pace))

    @property
    def confidence(self) -> float:
        """How sure the estimate is, 0..1: more, more recent and agreeing sessions.

        ``1 - exp(-W / WEIGHT_SCALE)`` of the decayed weights ``W`` of the sessions that
        support it (every peak found, and a descent cut short that bounds the rate where
        the estimate lies: one whose swing still rose at its slowest rate, below the
        estimate, contradicts it and supports nothing), times ``exp(-(e / SPREAD_BPM)^2)``
        of the standard error ``e`` of the weighted mean: the weighted spread of the rates
        behind it times ``sqrt(sum w^2) / sum w``.
        """
        rate = self.resonance_bpm
        if rate is None:
            return 0.0
        n = len(self._records)
        support = sum(
            r.weight * DECAY ** (n - 1 - i)
            for i, r in enumerate(self._records)
            if r.bracketed or bounds(r, rate)
        )
        weighted = self._weights()
        total = sum(w for _, w in weighted)
        spread = math.sqrt(sum(w * (r.rate - rate) ** 2 for r, w in weighted) / total)
        error = spread * math.sqrt(sum(w * w for _, w in weighted)) / total
        return (1.0 - math.exp(-support / WEIGHT_SCALE)) * math.exp(-((error / SPREAD_BPM) ** 2))

    # --- the next session -------------------------------------------------------------------

    def plan(self) -> SessionPlan:
        """What the next session does: assess, pace, or pace with a narrow band assessed.

        No estimate: step down from ``FIRST_BPM`` (6.5/min, as the clinics' protocol does).
        A descent or narrow band not finished (its swing still rising at its slowest rate,
        or at its fastest one below 7/min): carried on from the next rate beyond (before
        any pacing at the estimate), the steps of both sessions taken together. An unsure
        estimate: three rates around it. A confident one: pace at it, and every other
        session assess three rates around it.
        """
        pace = self.pace_bpm
        confident = pace is not None and self.confidence >= CONFIDENT
        if self.ladder and not (confident and self.confirmed):
            return SessionPlan("assess", self._carried_rates(), pace)
        if pace is not None and confident:
            if self.paced_since_check < 1:
                return SessionPlan("pace", (pace,), pace)
            return SessionPlan("narrow", _band(pace), pace)
        if pace is None:
            return SessionPlan("assess", _ladder(FIRST_BPM), None)
        if not any(r.bracketed for r in self._records):
            return SessionPlan("assess", _ladder(_grid(pace)), pace)
        return SessionPlan("assess", _band(_grid(pace)), pace)

    def _carried_rates(self) -> tuple[float, ...]:
        """The rates that carry an unfinished ladder on: best at its fastest rate, the rates
        above it (down to it); else the descent on from the rate below its slowest step."""
        record = session_peak(self.ladder)
        if record is not None and record.edge == "high":
            high = max(r.paced_bpm for r in self.ladder)
            return _ladder(RANGE_BPM[1])[: max(1, round((RANGE_BPM[1] - high) / STEP_BPM))]
        low = min(r.paced_bpm for r in self.ladder)
        return _ladder(_grid(low - STEP_BPM))

    def update(self, measured: SessionMeasurements) -> bool:
        """Fold in a session's measurements; True when the estimate (or its schedule) moved."""
        if measured.kind == "pace":
            if not measured.steps:
                return False
            self.paced_since_check += 1
            return True
        steps = measured.steps
        if measured.kind == "assess":
            steps = pooled(self.ladder, steps)
        record = session_peak(steps)
        if measured.kind in ("assess", "narrow") and steps:
            self._carry_ladder(measured.kind, steps, record)
        if record is None:
            return bool(measured.steps) and measured.kind == "assess"
        self._records = [*self._records, self._joined(record)][-MAX_RECORDS:]
        self.sessions_measured += 1
        if measured.kind == "narrow":
            self.paced_since_check = 0
        return True

    def _carry_ladder(
        self, kind: str, steps: tuple[StepResult, ...], record: PeakRecord | None
    ) -> None:
        """Keep an unfinished ladder's steps for the next session.

        Still rising at its slowest step (or one rate only): the descent goes on; best at
        its fastest step below 7/min: the rates above it are assessed. A narrow band that
        ends so does not confirm the estimate: it is carried on too.
        """
        low = min(r.paced_bpm for r in steps)
        going_on = (record is None or record.edge == "low") and low > RANGE_BPM[0] + 0.01
        self.ladder = steps if going_on or (record is not None and record.edge == "high") else ()
        self.confirmed = kind == "assess" or not self.ladder

    def _joined(self, record: PeakRecord) -> PeakRecord:
        """``record``, bracketed when the last descent ended on a rising swing and this one
        falls from there (within a step): the peak lies between the two sessions."""
        last = self._records[-1] if self._records else None
        if (
            record.edge == "high"
            and last is not None
            and last.edge == "low"
            and abs(record.rate - last.rate) <= STEP_BPM
        ):
            return PeakRecord(record.rate, record.offset, 0.9, True)
        return record

    # --- storage ------------------------------------------------------------------------------

    def to_state(self) -> dict[str, Any]:
        """A JSON-serialisable state (what :meth:`save` stores)."""
        return {
            "version": 1,
            "sessions_measured": self.sessions_measured,
            "paced_since_check": self.paced_since_check,
            "records": [[r.rate, r.offset, r.weight, r.bracketed, r.edge] for r in self._records],
            "ladder": [r.detail() for r in self.ladder],
            "confirmed": self.confirmed,
        }

    @classmethod
    def from_state(cls, state: object, profile: str = "default") -> ResonanceEstimate:
        """The estimate a :meth:`to_state` value describes (a fresh one for anything else)."""
        est = cls(profile)
        if not isinstance(state, dict) or state.get("version") != 1:
            return est
        try:
            records = [
                PeakRecord(float(a), float(b), float(c), bool(d), str(e))
                for a, b, c, d, e in state["records"]
            ]
            measured, paced = int(state["sessions_measured"]), int(state["paced_since_check"])
            ladder = tuple(StepResult.parse(str(d)) for d in state.get("ladder", ()))
            confirmed = bool(state.get("confirmed", True))
        except (KeyError, TypeError, ValueError):
            return est
        ok = all(
            RANGE_BPM[0] - 1.0 <= r.rate <= RANGE_BPM[1] + 1.0 and 0.0 <= r.weight <= 1.0
            for r in records
        )
        if ok:
            est._records = records[-MAX_RECORDS:]
            est.sessions_measured, est.paced_since_check = max(0, measured), max(0, paced)
            est.ladder = tuple(r for r in ladder if r is not None)
            est.confirmed = confirmed
        return est

    @classmethod
    def load(cls, store: PreferenceStore, profile: str = "default") -> ResonanceEstimate:
        """The profile's estimate from the store (fresh when none is stored).

        :raises device.exc.StorageError: the store cannot be read.
        """
        return cls.from_state(store.get_preference(PREFERENCE_PREFIX + str(profile)), profile)

    def save(self, store: PreferenceStore) -> None:
        """Store the estimate with the profile's preferences (the store writes it later)."""
        store.set_preference(PREFERENCE_PREFIX + self.profile, self.to_state())

    def summary(self) -> dict[str, Any]:
        """``profile``, ``resonance_bpm``, ``resonance_confidence``, ``sessions_measured``,
        ``pace_bpm`` and ``next_session`` (the next session's plan kind)."""
        rate, pace = self.resonance_bpm, self.pace_bpm
        return {
            "profile": self.profile,
            "resonance_bpm": None if rate is None else round(rate, 2),
            "resonance_confidence": round(self.confidence, 3),
            "sessions_measured": self.sessions_measured,
            "pace_bpm": None if pace is None else round(pace, 2),
            "next_session": self.plan().kind,
        }

    def __repr__(self) -> str:
        rate = self.resonance_bpm
        shown = "unknown" if rate is None else f"{rate:.2f}/min"
        return (
            f"<ResonanceEstimate {self.profile!r} {shown} confidence={self.confidence:.2f} "
            f"sessions={self.sessions_measured}>"
        )
