"""The beat detector's constants and records: where each value comes from is said beside it
(docs/heart.md tabulates them); :class:`Tuning` holds the ones chosen on recordings.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["Beat", "Tuning"]

#: Band-pass corners in Hz: below the slowest heart rate's fundamental (30 bpm is 0.5 Hz) yet
#: above most breathing wander; above the harmonics that shape the upstroke at 180 bpm (the
#: low-pass corner is :attr:`Tuning.lowpass_hz`, 6 Hz by default).
HIGHPASS_HZ = 0.3
#: Frequency (Hz) at which the filter delay is taken out of the reported times: the slope
#: maximum is formed mostly by the 2nd-4th harmonic of a resting pulse.
DELAY_REF_HZ = 2.5
#: Total delay from a beat's fiducial point to its report, s (the contract allows 1.0).
LATENCY_S = 0.9
#: Plausible inter-beat interval, s (200 to 30 bpm).
IBI_MIN_S = 0.3
IBI_MAX_S = 2.0
#: Largest relative change of an interval against the recent median (the "20 % rule"), or
#: against the local trend of the last valid intervals.
IBI_RULE = 0.2
#: Refractory window around a beat: a share of the recent interval
#: (:attr:`Tuning.refractory_share`), clamped, s.
REFRACTORY_MIN_S = 0.3
REFRACTORY_MAX_S = 0.6
#: A candidate must reach a share of the reference slope (median of recent beats):
#: :attr:`Tuning.threshold_share`.
#: Slopes above this many times the reference are movement, not pulse.
ARTEFACT_RATIO = 4.0
#: Beats whose slopes form the reference, and how many it takes to leave start-up.
REFERENCE_BEATS = 5
STARTUP_BEATS = 3
#: Without a beat for this long (s, or this many recent intervals) the reference restarts.
RESTART_S = 3.0
RESTART_INTERVALS = 3.0
#: After beats stop, the old reference still bounds the new one from below: it halves every
#: this many seconds, down to this share of its value.
FALLBACK_HALF_LIFE_S = 1.0
FALLBACK_FLOOR = 0.03
#: Samples after a start or a gap that are not searched (filter settling), s.
SETTLE_S = 0.3
#: Rhythm estimate (autocorrelation of the band-passed signal, :mod:`device.heart.rhythm`):
#: window, s; how much shorter than its period the recent intervals may be.
RHYTHM_WINDOW_S = 5.0
RHYTHM_DISAGREE = 0.3
#: A beat needs a pulse: the band-passed power over the last seconds (up to the end of the
#: look-ahead) must be this many times what white noise of the level measured above the band
#: would put there (:func:`~device.heart.rhythm.pulse_to_noise`): 1 + the in-band SNR. White
#: noise of any level gives 1 (at most 2.7 over 1.5-5 s at 25-125 Hz); the development
#: recordings give 7.7 (the noisiest camera recording at 25 Hz) to 10^5 (BIDMC).
PULSE_SNR = 4.5
#: The shortest stretch (s) it is measured over: a beat's look-ahead after the filters settle.
PULSE_WINDOW_MIN_S = 1.5
#: After a flat run (the finger's light clipped or gone while the heart goes on), beats are
#: reported again once the signal is rhythmic: at a beat whose interval agrees within
#: :data:`IBI_RULE` with the period the band-passed signal repeats at, where its
#: autocorrelation reaches ``LOCK_CORR``, or that closes ``LOCK_INTERVALS`` intervals in a
#: row within :data:`IBI_RULE` of their median. Until then beats are found but not reported,
#: so no interval spans the run and the steps of the returning signal are not beats.
LOCK_CORR = 0.4
LOCK_INTERVALS = 3
#: Identical raw samples in a row that make a flat run (a flat line, or a channel clipped at
#: the converter's limit): this long, s, and at least this many samples. The LED control's
#: hold after a current step lasts 0.2 s; real recordings hold a value for at most 0.1 s
#: (BIDMC's flat tops) outside the monitor's own dropouts.
FLAT_S = 0.4
FLAT_MIN_SAMPLES = 5
#: Intervals that make up the quality index.
QUALITY_BEATS = 8


@dataclass(frozen=True, slots=True)
class Tuning:
    """The detector's constants that are chosen on recordings (not given by physiology, the
    latency contract or a published method).

    ``bench/ppg_crossval.py`` chooses them from a grid by the training loss over every
    recording in the repository; the defaults were its choice on all of them (and in 20 of 24
    leave-one-recording-out folds) before the pulse gate of issue 23.1; with the gate it
    prefers a threshold share of 0.15 in every fold (docs/heart.md: left to a follow-up).
    """

    #: Share of the reference slope a candidate must reach (qppg's adaptive threshold).
    threshold_share: float = 0.25
    #: Refractory window as a share of the expected interval (clamped to 0.3-0.6 s).
    refractory_share: float = 0.6
    #: Low-pass corner of the band-pass, Hz.
    lowpass_hz: float = 6.0

    def __post_init__(self) -> None:
        if not 0.05 <= self.threshold_share <= 0.9:
            raise ValueError(f"threshold_share must be 0.05-0.9, got {self.threshold_share!r}")
        if not 0.2 <= self.refractory_share <= 0.9:
            raise ValueError(f"refractory_share must be 0.2-0.9, got {self.refractory_share!r}")
        if not 2.0 <= self.lowpass_hz <= 15.0:
            raise ValueError(f"lowpass_hz must be 2-15 Hz, got {self.lowpass_hz!r}")


@dataclass(frozen=True, slots=True)
class Beat:
    """One detected beat."""

    #: Time of the fiducial point (steepest upstroke), s since stream index 0.
    t: float
    #: Interval from the previous beat found, s (reported or not: the beats found while the
    #: rhythm was being confirmed are not reported); ``None`` for the first beat after a
    #: start, a gap or a flat run.
    ibi: float | None
    #: The interval is plausible (0.3-2.0 s and within 20 % of the recent median or of the
    #: local trend).
    valid: bool
    #: Upstroke slope (signal units per second) after the band-pass.
    slope: float
