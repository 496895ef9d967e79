"""The spectrum of a tachogram: HeartMath-style coherence and the breathing rate.

The intervals are resampled at 2 Hz over the latest 64 s, detrended and Hann-windowed
(McCraty 2009); the highest peak in 0.04-0.26 Hz is the coherence peak, the strongest local
maximum in 0.06-0.5 Hz the respiratory (RSA) one.
"""

from __future__ import annotations

import math

import numpy as np

__all__ = ["COH_WINDOW_S", "breathing_rate", "coherence_spectrum"]

#: Coherence: resampling rate (Hz), window (s), transform length, peak band and width (Hz),
#: total band (Hz).
COH_RATE_HZ = 2.0
COH_WINDOW_S = 64.0
COH_PAD = 512
COH_PEAK_BAND = (0.04, 0.26)
COH_PEAK_WIDTH_HZ = 0.030
COH_TOTAL_BAND = (0.0033, 0.4)
#: Breathing peak search band in Hz (3.6-30 breaths/min) and the share of the band's power
#: the peak must hold to be believed.
BREATH_BAND = (0.06, 0.5)
BREATH_MIN_SHARE = 0.25


def coherence_spectrum(
    beat_t: np.ndarray, ibi_s: np.ndarray, end_t: float
) -> tuple[float, float | None]:
    """Coherence ratio and breathing rate (breaths/min or ``None``) of a tachogram.

    ``beat_t`` (s) are the times of beats that close plausible intervals ``ibi_s`` (s); the
    series is interpolated at 2 Hz over the 64 s ending at ``end_t``.
    """
    n = int(COH_WINDOW_S * COH_RATE_HZ)
    grid = end_t - COH_WINDOW_S + np.arange(1, n + 1) / COH_RATE_HZ
    series = np.interp(grid, beat_t, ibi_s * 1000.0)
    k = np.arange(n, dtype=float)
    slope, intercept = np.polyfit(k, series, 1)
    series = (series - (slope * k + intercept)) * np.hanning(n)
    power = np.abs(np.fft.rfft(series, COH_PAD)) ** 2
    freq = np.fft.rfftfreq(COH_PAD, 1.0 / COH_RATE_HZ)
    band = (freq >= COH_PEAK_BAND[0]) & (freq <= COH_PEAK_BAND[1])
    peak_f = freq[band][int(np.argmax(power[band]))]
    peak = float(power[np.abs(freq - peak_f) <= COH_PEAK_WIDTH_HZ / 2.0 + 1e-9].sum())
    total = float(power[(freq >= COH_TOTAL_BAND[0]) & (freq <= COH_TOTAL_BAND[1])].sum())
    rest = total - peak
    coherence = (peak / rest) ** 2 if rest > 0.0 else math.inf
    if total <= 0.0:
        coherence = 0.0
    breathing = breathing_rate(freq, power)
    return coherence, breathing


def breathing_rate(freq: np.ndarray, power: np.ndarray) -> float | None:
    """Breathing rate (breaths/min) from the respiratory peak of a tachogram's spectrum.

    The peak is the strongest *local maximum* of ``power`` inside :data:`BREATH_BAND`, refined
    by a parabola through it and its neighbours (at most half a bin either way). When the band's
    strongest bin sits at an edge with the spectrum still rising beyond it, the peak lies
    outside the band and nothing is returned: extrapolating the parabola there is what gave
    0.6 breaths/min. The answer is always inside the band (3.6-30/min) or ``None``.
    """
    lo, hi = BREATH_BAND
    bb = np.flatnonzero((freq >= lo) & (freq <= hi))
    if len(bb) == 0:
        return None
    band_power = float(power[bb].sum())
    inner = bb[(bb > 0) & (bb < len(power) - 1)]
    peaks = inner[(power[inner] >= power[inner - 1]) & (power[inner] >= power[inner + 1])]
    if band_power <= 0.0 or len(peaks) == 0:
        return None
    i = int(peaks[int(np.argmax(power[peaks]))])
    if power[i] < float(power[bb].max()):
        return None  # the band's strongest power is an edge rising out of it
    share = float(power[np.abs(freq - freq[i]) <= COH_PEAK_WIDTH_HZ / 2.0 + 1e-9].sum())
    if share / band_power < BREATH_MIN_SHARE:
        return None
    a, b, c = power[i - 1], power[i], power[i + 1]
    curve = a - 2.0 * b + c
    offset = min(max(0.5 * (a - c) / curve, -0.5), 0.5) if curve < 0.0 else 0.0
    hz = float(freq[i] + offset * (freq[1] - freq[0]))
    return 60.0 * hz if lo <= hz <= hi else None
