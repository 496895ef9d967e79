"""The entrainment tone voice: four harmonic tone voices, each as a low/high ear pair.

Eight sine rows (an :class:`~device.dsp.oscillators.OscillatorBank`): rows 0-3 play
``ratio * carrier``, rows 4-7 ``ratio * carrier + beat``. Routing by form: isochronic and
none play the low rows in both ears (the isochronic envelope gates them), monaural plays
both rows in both ears (the beat is in the air), binaural plays the low rows left and the
high rows right. Forms crossfade by their weights (``device.sound.entrainment``); one
``(4, 8)`` matrix product gives L/R at the segment's start and end gains (only the low rows
are computed while no form needs the high ones).

While the pad plays, the carrier is the note of the pad's tuning nearest the one asked
for (``device.sound.tuning.carrier_on_grid``) and the low rows sit exactly on that grid, so
they never beat against the pad; the high rows beat against them (and against a pad note
on the same frequency) at exactly the requested rate.
"""

from __future__ import annotations

import math

import numpy as np

from device.dsp.oscillators import OscillatorBank
from device.dsp.ramps import Glide
from device.sound.entrainment import BINAURAL, ISOCHRONIC, MONAURAL, NONE, Entrainment
from device.sound.targets import OFF_DB, SoundTargets
from device.sound.tuning import carrier_on_grid

#: Tone voices: frequency ratios to the carrier and their relative amplitudes.
TONE_RATIOS = (1.0, 1.5, 2.0, 3.0)
TONE_AMPS = (1.0, 0.45, 0.3, 0.18)
#: Carrier glide speed (Hz/s).
CARRIER_RATE = 20.0
#: Beat glide speed (Hz/s).
BEAT_RATE = 1.0
#: Unweighted RMS per channel of the tone voice at 0 dB.
TONE_REF_RMS = 0.25


class ToneVoice:
    """The carrier tones (a :class:`~device.sound.voice.Voice`), routed by entrainment form."""

    name = "tones"
    bed = False

    def __init__(self, entrainment: Entrainment) -> None:
        self.entrainment = entrainment
        self.carrier = Glide(200.0, CARRIER_RATE)
        self.beat = Glide(10.0, BEAT_RATE)
        self._ratios = np.array(TONE_RATIOS)
        amps = np.array(TONE_AMPS)
        self._amp = amps * (TONE_REF_RMS / math.sqrt(float(np.sum(amps**2)) / 2.0))
        self._gt = np.zeros((4, 8), np.float32)
        self.bank: OscillatorBank | None = None
        self._acc = np.zeros((4, 0), np.float32)
        self._sum = np.zeros((2, 0), np.float32)
        self._ramp = np.zeros(0, np.float32)
        self._gate = np.zeros(0, np.float32)
        self._tmp = np.zeros(0, np.float32)

    def prepare(self, sample_rate: int, segment_frames: int) -> None:
        """Allocate the oscillator bank and mixing buffers."""
        s = segment_frames
        self.bank = OscillatorBank(8, s, sample_rate)
        self._sample_rate = sample_rate
        self._acc = np.zeros((4, s), np.float32)
        self._sum = np.zeros((2, s), np.float32)
        self._ramp = (np.arange(s, dtype=np.float64) / s).astype(np.float32)
        self._gate = np.zeros(s, np.float32)
        self._tmp = np.zeros(s, np.float32)
        self.jump()

    def set_targets(self, targets: SoundTargets) -> None:
        """Aim carrier and beat at ``targets`` (the form's weights live in the entrainment)."""
        kind = self.entrainment.render_kind(targets.entrain_kind)
        # the composer plays on the pad's tuning too (device/music/composer/harmony.py)
        pad_on = targets.pad_db > OFF_DB or targets.composer_db > OFF_DB
        c = targets.carrier_hz
        self.carrier.target = carrier_on_grid(c, targets.pad_preset) if pad_on else c
        self.beat.target = targets.entrain_hz if kind in ("monaural", "binaural") else 0.0

    def jump(self) -> None:
        """Jump carrier and beat to their targets at once (only while nothing sounds)."""
        for g in (self.carrier, self.beat):
            g.value = g.end = g.target
        if self.bank is not None:
            self._freqs(self.carrier.value, self.beat.value, self.bank.freq)
            self.bank.freq_end[:] = self.bank.freq

    def _freqs(self, carrier: float, beat: float, dst: np.ndarray) -> None:
        dst[:4] = self._ratios * carrier
        dst[4:] = self._ratios * carrier + beat

    def _plan(self, frames: int) -> None:
        assert self.bank is not None, "ToneVoice.prepare() was not called"
        seconds = frames / self._sample_rate
        self._freqs(self.carrier.plan(seconds), self.beat.plan(seconds), self.bank.freq_end)

    def _commit(self, frames: int) -> None:
        assert self.bank is not None
        self.bank.commit(frames)
        self.carrier.commit(1.0)
        self.beat.commit(1.0)

    def _gains(self, row: int, amp: float, w: list[float]) -> None:
        # rows: lo voices 0-3, hi voices 4-7
        plain = w[NONE] + w[ISOCHRONIC]
        a = self._amp * amp
        g = self._gt
        g[row, :4] = a * (plain + 0.5 * w[MONAURAL] + w[BINAURAL])
        g[row + 1, :4] = a * (plain + 0.5 * w[MONAURAL])
        g[row, 4:] = a * (0.5 * w[MONAURAL])
        g[row + 1, 4:] = a * (0.5 * w[MONAURAL] + w[BINAURAL])

    def render(self, out: np.ndarray, frames: int, g0: float, g1: float) -> bool:
        """Add the tones into ``out[:, :frames]`` with gain ``g0`` -> ``g1``."""
        self._plan(frames)
        assert self.bank is not None
        ent = self.entrainment
        self._gains(0, g0, ent.w0)
        self._gains(2, g1, ent.w1)
        glide = self.carrier.moving or self.beat.moving
        beats = ent.w0[MONAURAL] + ent.w0[BINAURAL] + ent.w1[MONAURAL] + ent.w1[BINAURAL] > 0.0
        hi = 8 if beats else 4
        bank = self.bank.render(frames, 0, hi, glide=glide)
        acc = self._acc[:, :frames]
        # einsum, not matmul: BLAS would split this small product over threads that spin
        # (25x the CPU on a shared core), and the audio process cannot rely on its env
        np.einsum("ij,jk->ik", self._gt[:, :hi], bank, out=acc)
        d = acc[2:4]
        np.subtract(d, acc[0:2], out=d)
        np.multiply(d, self._ramp[:frames], out=d)
        iso0, iso1 = ent.w0[ISOCHRONIC], ent.w1[ISOCHRONIC]
        if iso0 > 0.0 or iso1 > 0.0:
            # the gate is one gain per sample for every row: apply it after mixing
            tone = self._sum[:, :frames]
            np.add(acc[0:2], d, out=tone)
            tone *= gate_into(self._gate, self._tmp, self._ramp, ent.envelope(), iso0, iso1, 1.0)
            out[:, :frames] += tone
        else:
            out[:, :frames] += acc[0:2]
            out[:, :frames] += d
        self._commit(frames)
        return True

    def skip(self, frames: int) -> None:
        """Advance phases and glides by ``frames`` frames without rendering."""
        self._plan(frames)
        assert self.bank is not None
        self.bank.skip(frames)
        self._commit(frames)


def gate_into(
    gate: np.ndarray,
    tmp: np.ndarray,
    ramp: np.ndarray,
    env: np.ndarray,
    w0: float,
    w1: float,
    depth: float,
) -> np.ndarray:
    """gate = 1 - depth*w(n)*(1 - env), with w ramping w0 -> w1 across the segment.

    ``gate``, ``tmp`` and ``ramp`` (0 .. 1 across the segment) are preallocated buffers at
    least as long as ``env``; returns the view of ``gate`` as long as ``env``.
    """
    n = len(env)
    g = gate[:n]
    np.subtract(1.0, env, out=g)
    if w0 == w1:
        g *= depth * w0
    else:
        t = tmp[:n]
        np.multiply(ramp[:n], depth * (w1 - w0), out=t)
        t += depth * w0
        g *= t
    np.subtract(1.0, g, out=g)
    return g
