"""Measure a music file once: duration, integrated loudness (ITU-R BS.1770) and tempo.

The file is decoded by libsndfile (``soundfile``) in chunks and both measures are built in
the same pass with bounded memory (a ten-minute track never sits in memory as float64, as
it would in pyloudnorm, which copies the whole signal): K-weighting by the two BS.1770
biquads (the RBJ designs pyloudnorm uses, so the figures agree with it), 400 ms gating
blocks with 75 % overlap, the -70 LUFS absolute and -10 LU relative gates; and a
spectral-flux onset envelope at 100 frames/s whose autocorrelation gives the beat period.
scipy's ``sosfilt`` runs the K-weighting (this runs in ``bedside music scan``, never in the
audio process, so scipy's start-up cost does not matter there).
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from device.dsp.biquad import Biquad
from device.exc import InputFileError

#: Extensions the library indexes (libsndfile reads all of them).
EXTENSIONS = (".wav", ".flac", ".ogg", ".oga", ".mp3")
#: Loudness of digital silence (below the absolute gate), LUFS.
SILENCE_LUFS = -70.0
#: Onset envelope frame rate (about), frames per second.
ONSET_FPS = 100
#: Tempo search range in BPM.
TEMPO_RANGE = (40.0, 200.0)
#: Below this autocorrelation peak a track has no clear beat.
MIN_BEAT_CONFIDENCE = 0.2
#: Fastest beat a pattern is split into (faster pulses are subdivisions), BPM.
BEAT_MAX_BPM = 150.0
_CHUNK_S = 10.0
_GATE_BLOCKS = 4  # a 400 ms gating block is four 100 ms steps


@dataclass(frozen=True, slots=True)
class Analysis:
    """What one scan of a file measured.

    ``tempo_bpm`` is ``None`` when the track has no clear beat (``tempo_confidence`` below
    :data:`MIN_BEAT_CONFIDENCE`); the confidence is the normalised autocorrelation of the
    onset envelope at the beat period (0 none .. 1 a metronome).
    """

    duration_s: float
    sample_rate: int
    channels: int
    lufs: float
    peak: float
    tempo_bpm: float | None
    tempo_confidence: float
    #: Onsets (note and drum events) a minute over the audible part.
    onsets_per_min: float = 0.0
    #: Loudest 3-s stretch above ``lufs``, LU.
    surge_lu: float = 0.0
    #: Magnitude-weighted spectral centroid (below 8 kHz), Hz.
    centroid_hz: float = 0.0
    #: Where the track becomes audible and stops being so, s (``features.audible_span``).
    audible_start_s: float = 0.0
    audible_end_s: float = 0.0


def _high_shelf(gain_db: float, q: float, fc: float, rate: float) -> Biquad:
    a = 10.0 ** (gain_db / 40.0)
    w0 = 2.0 * math.pi * fc / rate
    cw, alpha = math.cos(w0), math.sin(w0) / (2.0 * q)
    sa = 2.0 * math.sqrt(a) * alpha
    a0 = (a + 1) - (a - 1) * cw + sa
    return Biquad(
        a * ((a + 1) + (a - 1) * cw + sa) / a0,
        -2 * a * ((a - 1) + (a + 1) * cw) / a0,
        a * ((a + 1) + (a - 1) * cw - sa) / a0,
        2 * ((a - 1) - (a + 1) * cw) / a0,
        ((a + 1) - (a - 1) * cw - sa) / a0,
    )


def k_weighting(rate: float) -> np.ndarray:
    """BS.1770 K-weighting at ``rate`` Hz as scipy second-order sections (shelf, high-pass)."""
    rows = []
    for s in (_high_shelf(4.0, math.sqrt(0.5), 1500.0, rate), Biquad.highpass(38.0, rate, 0.5)):
        rows.append([s.b0, s.b1, s.b2, 1.0, s.a1, s.a2])
    return np.array(rows)


class LoudnessMeter:
    """Integrated loudness of a stream fed in chunks of shape (frames, channels); its 100 ms
    K-weighted energies stay available (:meth:`steps`) for the audible span and surges."""

    def __init__(self, rate: int, channels: int) -> None:
        self.rate = rate
        self._sos = k_weighting(rate)
        self._zi = np.zeros((channels, 2, 2))
        self._step = round(0.1 * rate)
        weights = [1.0, 1.0, 1.0, 1.41, 1.41]
        self._w = np.array([weights[c] if c < 5 else 1.0 for c in range(channels)])
        self._carry = np.zeros(0)
        self._steps: list[np.ndarray] = []

    def feed(self, chunk: np.ndarray) -> None:
        """Filter one chunk and bank its 100 ms energies."""
        from scipy.signal import sosfilt

        sq = np.zeros(chunk.shape[0])
        for c in range(chunk.shape[1]):
            y, self._zi[c] = sosfilt(self._sos, chunk[:, c].astype(np.float64), zi=self._zi[c])
            sq += self._w[c] * y * y
        sq = np.concatenate([self._carry, sq])
        n = len(sq) // self._step
        self._steps.append(sq[: n * self._step].reshape(n, self._step).sum(axis=1))
        self._carry = sq[n * self._step :]

    def steps(self) -> np.ndarray:
        """Summed K-weighted energy of every whole 100 ms step so far."""
        return np.concatenate(self._steps) if self._steps else np.zeros(0)

    @property
    def step_frames(self) -> int:
        """Frames in one 100 ms step."""
        return self._step

    def integrated(self) -> float:
        """Gated integrated loudness in LUFS (:data:`SILENCE_LUFS` for silence or < 400 ms)."""
        steps = self.steps()
        if len(steps) < _GATE_BLOCKS:
            return SILENCE_LUFS
        kernel = np.ones(_GATE_BLOCKS)
        z = np.convolve(steps, kernel, mode="valid") / (_GATE_BLOCKS * self._step)
        with np.errstate(divide="ignore"):
            lk = -0.691 + 10.0 * np.log10(z)
        gated = z[lk >= -70.0]
        if gated.size == 0:
            return SILENCE_LUFS
        rel = -0.691 + 10.0 * math.log10(float(gated.mean())) - 10.0
        gated = z[(lk > rel) & (lk > -70.0)]
        if gated.size == 0:
            return SILENCE_LUFS
        return max(SILENCE_LUFS, -0.691 + 10.0 * math.log10(float(gated.mean())))


class OnsetEnvelope:
    """Spectral-flux onset strength at about :data:`ONSET_FPS` frames/s from mono chunks.

    The signal is first decimated to 16-24 kHz by averaging (onsets live below 8 kHz), which
    quarters the FFT work of a 48 kHz file; ``fps`` is the exact frame rate.
    """

    def __init__(self, rate: int) -> None:
        self.decimate = max(1, rate // 16000)
        low = rate / self.decimate
        self.hop = round(low / ONSET_FPS)
        self.fps = low / self.hop
        self.size = 1 << max(8, round(math.log2(0.023 * low)))
        self._window = np.hanning(self.size).astype(np.float32)
        self._carry = np.zeros(self.size - self.hop, np.float32)
        self._raw = np.zeros(0, np.float32)
        self._last: np.ndarray | None = None
        self._parts: list[np.ndarray] = []
        self._freqs = np.fft.rfftfreq(self.size, 1.0 / low).astype(np.float32)
        self._mag_f = 0.0
        self._mag = 0.0

    @property
    def centroid_hz(self) -> float:
        """Magnitude-weighted spectral centroid of everything fed (loud frames weigh more)."""
        return self._mag_f / self._mag if self._mag > 0.0 else 0.0

    def feed(self, mono: np.ndarray) -> None:
        """Add the flux frames this chunk completes."""
        d = self.decimate
        raw = np.concatenate([self._raw, mono.astype(np.float32)])
        m = len(raw) // d
        self._raw = raw[m * d :]
        low = raw[0 : m * d : d].copy()
        for k in range(1, d):  # strided sums: far cheaper than a mean over a short axis
            low += raw[k : m * d : d]
        low *= 1.0 / d
        x = np.concatenate([self._carry, low])
        n = (len(x) - self.size) // self.hop + 1
        if n <= 0:
            self._carry = x
            return
        frames = np.lib.stride_tricks.sliding_window_view(x, self.size)[:: self.hop][:n]
        mag = np.abs(np.fft.rfft(frames * self._window, axis=1)).astype(np.float32)
        self._mag_f += float((mag @ self._freqs).sum())
        self._mag += float(mag.sum())
        np.log1p(1000.0 * mag, out=mag)
        first = mag[:1] if self._last is None else self._last[None, :]
        flux = np.maximum(mag - np.vstack([first, mag[:-1]]), 0.0).sum(axis=1)
        self._last = mag[-1]
        self._parts.append(flux)
        self._carry = x[n * self.hop :]

    def envelope(self) -> np.ndarray:
        """The whole onset envelope so far."""
        return np.concatenate(self._parts) if self._parts else np.zeros(0)


def _peak_near(ac: np.ndarray, centre: float, width: int) -> float:
    lo = max(1, int(centre) - width)
    hi = min(len(ac) - 2, int(centre) + width + 1)
    if hi <= lo:
        return centre
    i = lo + int(np.argmax(ac[lo:hi]))
    a, b, c = ac[i - 1], ac[i], ac[i + 1]
    den = a - 2 * b + c
    # a nearly flat top makes the parabola's vertex fly off: it never leaves the peak's frame
    return i + (float(np.clip(0.5 * (a - c) / den, -0.5, 0.5)) if den < 0 else 0.0)


def _ac_at(ac: np.ndarray, lag: float) -> float:
    """Largest autocorrelation within one frame of ``lag`` (periods fall between frames)."""
    i = round(lag)
    return float(ac[max(0, i - 1) : min(len(ac), i + 2)].max())


def _comb(ac: np.ndarray, lag: float, periods: int = 4) -> float:
    """Mean autocorrelation at the first ``periods`` multiples of ``lag`` that fit."""
    vals = [_ac_at(ac, k * lag) for k in range(1, periods + 1) if k * lag < len(ac) - 1]
    return sum(vals) / len(vals) if vals else 0.0


def estimate_tempo(env: np.ndarray, fps: float) -> tuple[float | None, float]:
    """Tempo in BPM (``None`` without a clear beat) and its confidence from an onset envelope.

    The envelope loses its 1 s local mean and is blurred by 20 ms; its autocorrelation (by
    FFT) is normalised; the beat period is the lag in :data:`TEMPO_RANGE` whose first four
    multiples correlate best on average (a lag of 1.5 or 2.5 beats matches only some of
    them), and it is refined at its highest multiple that fits (the error of a lag read at
    ``k`` periods shrinks ``k`` times).
    """
    win = max(1, round(fps))
    if len(env) < 4 * win:
        return None, 0.0
    e = env - np.convolve(env, np.ones(win) / win, mode="same")
    # a 20 ms Gaussian blur: an onset between two frames no longer lands in one or the
    # other, so the beat's autocorrelation peaks stay whole at every multiple
    taps = np.arange(-6, 7)
    blur = np.exp(-0.5 * (taps / (0.02 * fps)) ** 2)
    e = np.convolve(e, blur / blur.sum(), mode="same")
    e -= e.mean()
    n = len(e)
    spec = np.fft.rfft(e, 2 * n)
    ac = np.fft.irfft(spec * np.conj(spec))[:n]
    if ac[0] <= 0:
        return None, 0.0
    ac /= ac[0] * (n - np.arange(n)) / n  # unbiased: long lags are not penalised
    lo = math.ceil(60.0 * fps / TEMPO_RANGE[1])
    hi = min(math.floor(60.0 * fps / TEMPO_RANGE[0]), n // 3)
    if hi <= lo:
        return None, 0.0
    # the beat period is the lag whose multiples all correlate (a comb over 4 periods):
    # a lag of 1.5 or 3 beats correlates at some multiples only, the beat at all of them
    scores = [_comb(ac, lag) for lag in range(lo, hi + 1)]
    lag0 = lo + int(np.argmax(scores))
    best = scores[lag0 - lo]
    # the beat, not the bar: a faster pulse that explains the slow one as well is the beat
    # (three times faster always; twice while the beat stays at most BEAT_MAX_BPM), so a
    # march's two-beat pattern is read at its 120 BPM, not at a "calm" 60
    for d in (3, 2):
        sub = round(lag0 / d)
        fits = 60.0 * fps * d / lag0 <= BEAT_MAX_BPM
        if sub >= lo and (d == 3 or fits) and _comb(ac, lag0 / d) >= 0.8 * best:
            lag0 = sub
            break
    confidence = float(np.clip(_ac_at(ac, lag0), 0.0, 1.0))
    lag = _peak_near(ac, lag0, 1)
    k = 1
    while k < 16 and (k + 1) * lag < min(n // 2, 16 * lag0):
        k += 1
        refined = _peak_near(ac, k * lag, 2) / k
        if abs(refined - lag) < 0.5:
            lag = refined
    if confidence < MIN_BEAT_CONFIDENCE:
        return None, confidence
    return float(60.0 * fps / lag), confidence


def decode_problem(path: str | Path, exc: BaseException) -> str:
    """Why ``path`` did not decode, in words that fit: libsndfile says "File does not exist"
    of a file that is there but holds no audio it can read (a damaged or renamed file)."""
    if isinstance(exc, FileNotFoundError) or not os.path.exists(path):
        return "the file does not exist"
    if os.path.isfile(path) and "does not exist" in str(exc):
        return "not audio libsndfile can read (damaged, empty or another format): re-encode it"
    return str(exc)


def analyse(path: str | Path) -> Analysis:
    """Decode ``path`` once and measure it; :class:`InputFileError` if it cannot be decoded."""
    import soundfile as sf

    try:
        with sf.SoundFile(str(path)) as f:
            rate, channels = f.samplerate, f.channels
            meter = LoudnessMeter(rate, channels)
            onset = OnsetEnvelope(rate)
            frames = 0
            peak = 0.0
            chunk = max(1, round(_CHUNK_S * rate))
            while True:
                block = f.read(chunk, dtype="float32", always_2d=True)
                if len(block) == 0:
                    break
                frames += len(block)
                peak = max(peak, float(np.abs(block).max()))
                meter.feed(block)
                mono = block[:, 0].copy()
                for c in range(1, channels):
                    mono += block[:, c]
                onset.feed(mono)
    except (sf.LibsndfileError, RuntimeError, OSError) as exc:
        raise InputFileError(f"{path}: cannot decode: {decode_problem(path, exc)}") from exc
    if frames == 0:
        raise InputFileError(f"{path}: no audio frames")
    return _analysis(frames / rate, rate, channels, peak, meter, onset)


def _analysis(
    duration_s: float,
    rate: int,
    channels: int,
    peak: float,
    meter: LoudnessMeter,
    onset: OnsetEnvelope,
) -> Analysis:
    from device.music import features as mf

    env = onset.envelope()
    tempo, confidence = estimate_tempo(env, onset.fps)
    lufs = meter.integrated()
    levels = mf.step_levels(meter.steps(), meter.step_frames)
    start, end = mf.audible_span(levels, lufs, duration_s)
    return Analysis(
        duration_s=duration_s,
        sample_rate=rate,
        channels=channels,
        lufs=lufs,
        peak=peak,
        tempo_bpm=tempo,
        tempo_confidence=confidence,
        onsets_per_min=mf.per_minute(mf.onset_times(env, onset.fps), start, end),
        surge_lu=mf.surge_lu(levels, lufs),
        centroid_hz=onset.centroid_hz,
        audible_start_s=start,
        audible_end_s=end,
    )
