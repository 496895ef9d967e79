"""One session's steps and where the heart's swing peaks over them.

:class:`StepResult` is what one candidate rate did to the heart (an event detail
``step paced=...``). :func:`session_peak` takes a session's steps and returns a
:class:`PeakRecord`: the breathing rate where the swing peaks (the vertex of the parabola
through the best step and its neighbours), the pacer offset there and how much the
measurement weighs (``device.therapy.resonance`` folds records into a profile's estimate).
"""

from __future__ import annotations

from dataclasses import dataclass

#: Candidate rates lie within this range, breaths/min, in steps of ``STEP_BPM``.
RANGE_BPM = (4.5, 7.0)
STEP_BPM = 0.5
#: A best step at the edge of a session's steps whose neighbour swings within this factor
#: of it (the swing's noise) is a peak between the two, not a still-rising swing.
FLAT_TOP = 1.05


def fmt_bpm(value: float) -> str:
    """``value`` with at most three decimals and no trailing zeros."""
    return f"{value:.3f}".rstrip("0").rstrip(".")


# --- one step's measurement -------------------------------------------------------------------


@dataclass(frozen=True)
class StepResult:
    """What one candidate rate did to the heart (rates /min, swing bpm, power ms^2)."""

    #: The pacer's rate.
    paced_bpm: float
    #: The listener's mean breathing rate as the heart analysis estimated it.
    breathing_bpm: float
    #: Mean peak-to-trough heart-rate swing per breath.
    swing_bpm: float
    #: Mean power of the interval series at the breathing rate (half the squared amplitude).
    ibi_power_ms2: float
    #: Phase of the heart rate against the loop's count of pacer cycles, degrees (-180..180).
    phase_deg: float
    #: How steady that phase was over the step, 0 (drifting) .. 1 (locked).
    locking: float
    #: Whole breaths measured.
    cycles: int

    def detail(self) -> str:
        """The event detail ``step paced=... breathing=... swing=...`` (stored with events)."""
        return (
            f"step paced={fmt_bpm(self.paced_bpm)} breathing={fmt_bpm(self.breathing_bpm)} "
            f"swing={fmt_bpm(self.swing_bpm)} power={fmt_bpm(self.ibi_power_ms2)} "
            f"phase={self.phase_deg:.0f} locking={self.locking:.2f} cycles={self.cycles}"
        )

    @classmethod
    def parse(cls, detail: str) -> StepResult | None:
        """The step a :meth:`detail` text describes, or ``None`` for another text."""
        words = detail.split()
        if not words or words[0] != "step":
            return None
        try:
            f = dict(w.split("=", 1) for w in words[1:])
            return cls(
                float(f["paced"]),
                float(f["breathing"]),
                float(f["swing"]),
                float(f["power"]),
                float(f["phase"]),
                float(f["locking"]),
                int(f["cycles"]),
            )
        except (KeyError, ValueError):
            return None


@dataclass(frozen=True)
class PeakRecord:
    """One measured session: the peak's breathing rate, the pacer offset there, a weight."""

    rate: float
    offset: float
    weight: float
    #: True when the peak lay between two measured rates (or at the range's end).
    bracketed: bool
    #: An unbracketed peak at the slowest (``"low"``) or fastest (``"high"``) rate measured.
    edge: str = ""


def bounds(record: PeakRecord, rate: float) -> bool:
    """True when an unbracketed ``record`` agrees with ``rate``: its swing still rose at its
    slowest (``low``) or fastest (``high``) breathing, and ``rate`` lies beyond it (within
    a step: a peak found later may lie half way to that edge's neighbour)."""
    if record.edge == "low":
        return rate <= record.rate + STEP_BPM
    if record.edge == "high":
        return rate >= record.rate - STEP_BPM
    return False


def parabola_vertex(points: list[tuple[float, float]]) -> float | None:
    """The vertex of the parabola through three points (``None`` unless it opens down)."""
    (x0, y0), (x1, y1), (x2, y2) = points
    if min(x1 - x0, x2 - x1) <= 1e-6:
        return None
    # Divided differences.
    d0, d2 = (y1 - y0) / (x1 - x0), (y2 - y1) / (x2 - x1)
    curve = (d2 - d0) / (x2 - x0)
    return 0.5 * (x0 + x1) - d0 / (2.0 * curve) if curve < 0.0 else None


def pooled(old: tuple[StepResult, ...], new: tuple[StepResult, ...]) -> tuple[StepResult, ...]:
    """An unfinished ladder's steps with a session's new ones (new ones win at a rate)."""
    rates = {round(r.paced_bpm, 2) for r in new}
    return tuple(r for r in old if round(r.paced_bpm, 2) not in rates) + tuple(new)


def session_peak(steps: tuple[StepResult, ...]) -> PeakRecord | None:
    """The swing's peak over a session's steps (``None`` with fewer than two rates).

    The steps lie on the listener's breathing rates as the heart analysis estimated them
    (the heart swings with the breathing, not with the pacer); the peak is the vertex of
    the parabola through the best step and its neighbours. At the end of the
    range it may lie beyond the slowest (or fastest) breathing: the parabola through the
    three end steps is trusted at most half a step beyond it, within the range.
    """
    steps = tuple(sorted(steps, key=lambda r: r.breathing_bpm))
    if len({round(r.paced_bpm, 2) for r in steps}) < 2:
        return None
    xs = [r.breathing_bpm for r in steps]
    swings = [r.swing_bpm for r in steps]
    points = list(zip(xs, swings, strict=True))
    b = max(range(len(steps)), key=swings.__getitem__)
    offset = xs[b] - steps[b].paced_bpm
    if 0 < b < len(steps) - 1:
        return _interior(xs[b - 1 : b + 2], points[b - 1 : b + 2], offset, swings)
    near = 1 if b == 0 else len(steps) - 2
    ends = (points[:3] if b == 0 else points[-3:]) if len(steps) >= 3 else None
    if swings[near] * FLAT_TOP >= swings[b]:
        return _flat_edge(xs[b], xs[near], ends, offset, swings)
    return _edge(b, steps[b].paced_bpm, xs[b], ends, offset, swings)


def _interior(
    xs: list[float], points: list[tuple[float, float]], offset: float, swings: list[float]
) -> PeakRecord:
    """The best step between two others: the parabola's vertex, within half a step."""
    x0, x1, x2 = xs
    top = parabola_vertex(points)
    rate = x1 if top is None else min(max(top, 0.5 * (x0 + x1)), 0.5 * (x1 + x2))
    return PeakRecord(rate, offset, _rise_weight(swings), True, "")


def _flat_edge(
    x_best: float,
    x_near: float,
    ends: list[tuple[float, float]] | None,
    offset: float,
    swings: list[float],
) -> PeakRecord:
    """Best at the edge, but its neighbour swings as much within the noise: the peak lies
    between the two (the parabola's vertex there, else half way)."""
    low, high = sorted((x_best, x_near))
    top = None if ends is None else parabola_vertex(ends)
    rate = 0.5 * (low + high) if top is None else min(max(top, low), high)
    return PeakRecord(rate, offset, _rise_weight(swings), True)


def _edge(
    b: int,
    paced: float,
    rate: float,
    ends: list[tuple[float, float]] | None,
    offset: float,
    swings: list[float],
) -> PeakRecord:
    """Best at the edge (index ``b``, paced at ``paced``, breathing ``rate``).

    A peak at the range's end is as good as any (the pacer goes no further), trusted up to
    half a step beyond it; a descent cut short on a still-rising swing only bounds the rate.
    """
    at_limit = paced <= RANGE_BPM[0] + 0.01 or paced >= RANGE_BPM[1] - 0.01
    weight, bracketed = (0.9, True) if at_limit else (0.4, False)
    edge = "" if at_limit else ("low" if b == 0 else "high")
    top = None if ends is None else parabola_vertex(ends)
    if at_limit and top is not None:
        reach = 0.5 * STEP_BPM
        if b == 0 and top < rate:
            rate = max(top, rate - reach, RANGE_BPM[0])
        elif b > 0 and top > rate:
            rate = min(top, rate + reach, RANGE_BPM[1])
    return PeakRecord(rate, offset, weight * _rise_weight(swings), bracketed, edge)


def _rise_weight(swings: list[float]) -> float:
    """A flat curve says little: full weight from a 5 % rise to the peak."""
    top = max(swings)
    return 0.0 if top <= 0.0 else min(1.0, (top - min(swings)) / top / 0.05)
