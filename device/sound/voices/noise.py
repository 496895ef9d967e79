"""Coloured noise (white, pink, brown) from seamless precomputed loops, with tone control.

Each colour is synthesised once in the frequency domain (random Gaussian spectrum times
the colour's slope, so the loop is exactly periodic and joins without a seam) as two
coherent tables from the same random spectrum: a *dark* and a *bright* tilt. Mixing them
linearly is a tilt filter, so tone control costs two multiply-adds per sample. Loudness is
equalised across colours and tone settings by A-weighted power, so brown noise is not
"too quiet". Left and right read the same loop half a loop apart (uncorrelated).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from device.dsp.ramps import Glide
from device.sound.targets import NOISE_COLOURS, SoundTargets

#: Loop length in frames (2**20: about 22 s at 48 kHz; a loop much shorter than that can
#: be heard repeating as a slow "whoosh").
LOOP_FRAMES = 1 << 20
#: Frames of wrap-around after each loop (the longest segment the engine renders).
LOOP_PAD = 16384
#: Spectral slope of each colour in dB/octave.
SLOPES_DB_PER_OCT = {"white": 0.0, "pink": -3.0103, "brown": -6.0206}
#: Unweighted RMS of pink noise at neutral tone (-12 dBFS); others match its loudness.
REF_RMS = 0.25
#: Highpass corner in Hz (keeps brown noise's infinite bass out of small speakers).
HIGHPASS_HZ = 20.0
#: Depth of the tone tilt (0.5 = neutral; 0/1 = darkest/brightest).
TILT = 0.6
#: Seconds for a colour change crossfade.
COLOUR_XFADE_S = 3.0
#: Tone control speed in units per second.
TONE_RATE = 0.5


def a_weighting(f: np.ndarray) -> np.ndarray:
    """IEC 61672 A-weighting as an amplitude factor (1.0 at 1 kHz)."""
    f2 = np.asarray(f, dtype=np.float64) ** 2
    num = (12194.0**2) * f2 * f2
    den = (f2 + 20.6**2) * np.sqrt((f2 + 107.7**2) * (f2 + 737.9**2)) * (f2 + 12194.0**2)
    ra = np.divide(num, den, out=np.zeros_like(f2), where=den > 0)
    return ra * 10.0 ** (2.0 / 20.0)


@dataclass(frozen=True)
class NoiseTables:
    """Read-only noise loops for one sample rate and seed (shared between engines)."""

    #: colour -> (dark, bright) float32 loops of ``LOOP_FRAMES + pad`` frames.
    tables: dict[str, tuple[np.ndarray, np.ndarray]]
    #: colour -> A-weighted powers (dark, cross, bright) for loudness normalisation.
    powers: dict[str, tuple[float, float, float]]
    #: Unweighted-to-A-weighted reference power (pink at neutral tone).
    ref_power: float
    #: Scale giving pink at neutral tone an RMS of :data:`REF_RMS`.
    ref_scale: float
    length: int

    def gains(self, colour: str, tone: float) -> tuple[float, float]:
        """Gains for the dark and bright tables at ``tone`` (0..1), loudness-equalised."""
        pd, px, pb = self.powers[colour]
        wd, wb = 1.0 - tone, tone
        p = wd * wd * pd + 2.0 * wd * wb * px + wb * wb * pb
        k = self.ref_scale * math.sqrt(self.ref_power / p) if p > 0 else 0.0
        return wd * k, wb * k


@lru_cache(maxsize=4)
def noise_tables(sample_rate: int, seed: int, pad: int, length: int = LOOP_FRAMES) -> NoiseTables:
    """Build (once per rate, seed, pad and length) the noise loops; ``pad`` frames of wrap."""
    rng = np.random.default_rng([seed, 0x4E015E])
    f = np.fft.rfftfreq(length, 1.0 / sample_rate)
    spec = rng.standard_normal(f.size) + 1j * rng.standard_normal(f.size)
    spec[0] = 0.0
    spec[-1] = spec[-1].real
    fs = np.maximum(f, 1e-9)
    hp = (fs / HIGHPASS_HZ) ** 2 / (1.0 + (fs / HIGHPASS_HZ) ** 2)
    tilt = np.tanh(np.log2(fs / 800.0) / 2.0)
    aw2 = a_weighting(f) ** 2
    mag2 = np.abs(spec) ** 2
    tables: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    powers: dict[str, tuple[float, float, float]] = {}
    unweighted_pink = 0.0
    for colour in NOISE_COLOURS:
        h = hp * fs ** (SLOPES_DB_PER_OCT[colour] / (20.0 * math.log10(2.0)))
        h[0] = 0.0
        hd = h * (1.0 - TILT * tilt)
        hb = h * (1.0 + TILT * tilt)
        pair = []
        for hh in (hd, hb):
            x = np.fft.irfft(spec * hh, n=length)
            out = np.empty(length + pad, np.float32)
            out[:length] = x
            out[length:] = x[:pad] if pad <= length else np.resize(x, pad)
            out.setflags(write=False)
            pair.append(out)
        # Parseval: the time-domain power is proportional to the summed spectrum power
        powers[colour] = (
            float(np.sum(mag2 * hd * hd * aw2)),
            float(np.sum(mag2 * hd * hb * aw2)),
            float(np.sum(mag2 * hb * hb * aw2)),
        )
        if colour == "pink":
            neutral = np.fft.irfft(spec * h, n=length)
            unweighted_pink = float(np.sqrt(np.mean(neutral * neutral)))
        tables[colour] = (pair[0], pair[1])
    pd, px, pb = powers["pink"]
    ref_power = 0.25 * (pd + 2.0 * px + pb)
    return NoiseTables(tables, powers, ref_power, REF_RMS / unweighted_pink, length)


class NoiseBed:
    """The noise voice (a bed :class:`~device.sound.voice.Voice`): colour crossfades, tone."""

    name = "noise"
    bed = True

    def __init__(self, seed: int) -> None:
        self.seed = int(seed)
        self.sample_rate = 0
        self.tab: NoiseTables | None = None
        self.colour = "pink"
        self.old_colour = "pink"
        self.pending: str | None = None
        #: Crossfade progress from ``old_colour`` (0) to ``colour`` (1).
        self.xfade = Glide(1.0, 1.0 / COLOUR_XFADE_S)
        self.tone = Glide(0.5, TONE_RATE)
        self.pos_l = 0
        self.pos_r = 0
        self._ramp = np.zeros(0, np.float32)
        self._tmp = np.zeros(0, np.float32)

    def prepare(self, sample_rate: int, segment_frames: int) -> None:
        """Build (or share) the noise loops and allocate the mixing buffers."""
        self.sample_rate = int(sample_rate)
        self.tab = noise_tables(self.sample_rate, self.seed, max(LOOP_PAD, int(segment_frames)))
        self.pos_l = 0
        self.pos_r = self.tab.length // 2
        self._ramp = np.arange(segment_frames, dtype=np.float32)
        self._tmp = np.zeros(segment_frames, np.float32)

    def set_targets(self, targets: SoundTargets) -> None:
        """Ask for the colour (crossfaded) and the tone."""
        self.set_colour(targets.noise_colour)
        self.tone.target = targets.noise_tone

    def jump(self) -> None:
        """Jump to the asked colour and tone at once (only while nothing sounds)."""
        if self.pending is not None:
            self.colour = self.old_colour = self.pending
            self.pending = None
        self.xfade.value = self.xfade.end = 1.0
        self.tone.value = self.tone.end = self.tone.target

    def set_colour(self, colour: str) -> None:
        """Ask for a colour; it crossfades in over :data:`COLOUR_XFADE_S` seconds."""
        if colour not in NOISE_COLOURS:
            raise ValueError(f"noise colour {colour!r} is not one of {', '.join(NOISE_COLOURS)}")
        self.pending = None if colour == self.colour else colour

    def _start_pending(self) -> None:
        if self.pending is None:
            return
        if self.xfade.value >= 1.0:
            self.old_colour, self.colour = self.colour, self.pending
            self.xfade.value = self.xfade.end = 0.0
            self.pending = None
        elif self.pending == self.old_colour:
            self.old_colour, self.colour = self.colour, self.old_colour
            self.xfade.value = self.xfade.end = 1.0 - self.xfade.value
            self.pending = None

    def _plan(self, frames: int) -> tuple[float, float, float, float]:
        self._start_pending()
        seconds = frames / self.sample_rate
        self.xfade.target = 1.0
        x0, x1 = self.xfade.value, self.xfade.plan(seconds)
        t0, t1 = self.tone.value, self.tone.plan(seconds)
        return x0, x1, t0, t1

    def render(self, out: np.ndarray, frames: int, g0: float, g1: float) -> bool:
        """Add the noise for ``frames`` frames into ``out`` (2, frames), gain ``g0`` -> ``g1``.

        Returns False (and touches nothing) when the voice is silent this segment.
        """
        x0, x1, t0, t1 = self._plan(frames)
        if g0 == 0.0 and g1 == 0.0:
            self._advance(frames)
            return False
        self._slot(out, frames, self.colour, g0 * x0, g1 * x1, t0, t1)
        if x0 < 1.0:
            self._slot(out, frames, self.old_colour, g0 * (1 - x0), g1 * (1 - x1), t0, t1)
        self._advance(frames)
        return True

    def skip(self, frames: int) -> None:
        """Advance the loops, crossfade and tone by ``frames`` frames without rendering."""
        self._plan(frames)
        self._advance(frames)

    def _slot(
        self,
        out: np.ndarray,
        frames: int,
        colour: str,
        a0: float,
        a1: float,
        t0: float,
        t1: float,
    ) -> None:
        if a0 == 0.0 and a1 == 0.0:
            return
        assert self.tab is not None, "NoiseBed.prepare() was not called"
        dark, bright = self.tab.tables[colour]
        d0, b0 = self.tab.gains(colour, t0)
        d1, b1 = self.tab.gains(colour, t1)
        self._term(out[0], dark[self.pos_l : self.pos_l + frames], a0 * d0, a1 * d1, frames)
        self._term(out[0], bright[self.pos_l : self.pos_l + frames], a0 * b0, a1 * b1, frames)
        self._term(out[1], dark[self.pos_r : self.pos_r + frames], a0 * d0, a1 * d1, frames)
        self._term(out[1], bright[self.pos_r : self.pos_r + frames], a0 * b0, a1 * b1, frames)

    def _term(self, dst: np.ndarray, src: np.ndarray, g0: float, g1: float, frames: int) -> None:
        tmp = self._tmp[:frames]
        if g0 == g1:
            np.multiply(src, g0, out=tmp)
        else:
            np.multiply(self._ramp[:frames], (g1 - g0) / frames, out=tmp)
            tmp += g0
            np.multiply(tmp, src, out=tmp)
        dst += tmp

    def _advance(self, frames: int) -> None:
        assert self.tab is not None
        self.xfade.commit(1.0)
        self.tone.commit(1.0)
        n = self.tab.length
        self.pos_l = (self.pos_l + frames) % n
        self.pos_r = (self.pos_r + frames) % n
