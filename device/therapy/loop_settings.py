"""The closed loop's settings: one declaration per setting with its range and unit.

:class:`LoopSettings` holds what :class:`~device.therapy.closed_loop.ClosedLoop` may be
told (``loop_settings`` of a :class:`~device.therapy.session.TherapySession`), each checked
against :data:`RANGES` when made. Rates are breaths/min (pacer) or Hz (entrainment), times s.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields

#: Allowed range of the pacer target, breaths/min.
TARGET_RANGE_BPM = (4.5, 7.0)

#: Hard rate limit of any adapted tempo: 1 per 15 s, in units per second.
MAX_TEMPO_RATE_PER_S = 1.0 / 15.0

#: Setting -> (low, high, unit); ``None`` bounds are another setting's value (see
#: :meth:`LoopSettings.bounds`).
RANGES: dict[str, tuple[float | None, float | None, str]] = {
    "pacer_target_bpm": (*TARGET_RANGE_BPM, "/min"),
    "start_cap_bpm": (None, 12.0, "/min"),
    "lag_hold_bpm": (0.5, 4.0, "/min"),
    "lag_resume_bpm": (0.1, None, "/min"),
    "glide_bpm_per_min": (0.05, 60.0 * MAX_TEMPO_RATE_PER_S, "/min per min"),
    "entrain_hz_per_min": (0.05, 6.0, "Hz/min"),
    "coherence_high": (0.1, 16.0, ""),
    "settle_s": (10.0, 600.0, "s"),
    "quality_min": (0.0, 1.0, ""),
    "freeze_to_fallback_s": (0.0, 120.0, "s"),
    "fallback_glide_s": (1.0, 300.0, "s"),
    "recover_s": (0.0, 120.0, "s"),
    "breath_hold_s": (0.0, 300.0, "s"),
    "anchor_s": (0.0, 600.0, "s"),
    "release_after_s": (30.0, 3600.0, "s"),
    "release_fade_s": (1.0, 600.0, "s"),
}


@dataclass(frozen=True, slots=True)
class LoopSettings:
    """Settings of the closed loop; each is checked against :data:`RANGES`.

    :raises ValueError: a setting out of its range (naming it, its range and its unit).
    """

    #: Breathing target, /min (4.5-7).
    pacer_target_bpm: float = 6.0
    #: The pacer never starts above this, /min (the target .. 12).
    start_cap_bpm: float = 11.0
    #: Hold while the breathing lags the pacer by more than this, /min.
    lag_hold_bpm: float = 1.5
    #: ... and resume once it is within this, /min (at most ``lag_hold_bpm``).
    lag_resume_bpm: float = 1.0
    #: Glide rate of the pacer, /min per minute.
    glide_bpm_per_min: float = 1.0
    #: Fastest fall of the entrainment, Hz per minute.
    entrain_hz_per_min: float = 1.5
    #: Coherence counted as high.
    coherence_high: float = 1.8
    #: Coherence high this long at the target settles the pacer, s.
    settle_s: float = 60.0
    #: Lowest signal quality counted as good.
    quality_min: float = 0.6
    #: Frozen this long, the sound falls back to the plain timeline, s.
    freeze_to_fallback_s: float = 10.0
    #: ... gliding to it over this long, s.
    fallback_glide_s: float = 30.0
    #: Good signal this long resumes adaptation, s.
    recover_s: float = 10.0
    #: The breathing the gates see is the highest estimate of this long, s.
    breath_hold_s: float = 60.0
    #: A first breathing estimate within this long of the start is met, s.
    anchor_s: float = 180.0
    #: Not followed this long, the listener is let go, s.
    release_after_s: float = 300.0
    #: ... the swell fading over this long, s.
    release_fade_s: float = 60.0

    def __post_init__(self) -> None:
        for f in fields(self):
            value = float(getattr(self, f.name))
            low, high, unit = self.bounds(f.name)
            if not low <= value <= high or math.isnan(value):
                raise ValueError(f"{f.name} must be {low:g}..{high:g} {unit}, not {value!r}")
            object.__setattr__(self, f.name, value)

    def bounds(self, name: str) -> tuple[float, float, str]:
        """The range and unit of setting ``name`` (some bounds are other settings)."""
        low, high, unit = RANGES[name]
        if low is None:  # the start cap is at least the target
            low = float(self.pacer_target_bpm)
        if high is None:  # the resume lag is at most the hold lag
            high = float(self.lag_hold_bpm)
        return low, high, unit
