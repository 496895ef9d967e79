"""The engine's voice stage: the list of voices, their levels, and their segment sum.

Each segment every voice of :attr:`VoiceMixer.voices` either adds its next segment into the
sum (:meth:`Voice.render`, at its level glided across the segment) or, when its gain is
zero throughout, only advances (:meth:`Voice.skip`). Bed voices get the breath swell on
their gain and, while ``entrain_bed`` is on, are summed apart and gated by the isochronic
envelope before they join the sum.
"""

from __future__ import annotations

import operator
from collections.abc import Callable

import numpy as np

from device.dsp.ramps import Glide, LevelGlide, db_to_amp
from device.sound.entrainment import Entrainment
from device.sound.master import LEVEL_RATE
from device.sound.swell import BreathSwell
from device.sound.targets import OFF_DB, SoundTargets, level_field, off_floor
from device.sound.voice import OwnPulse, Settles, Voice
from device.sound.voices.noise import NoiseBed
from device.sound.voices.pad import Pad, PadVoice
from device.sound.voices.tones import ToneVoice, gate_into

#: Depth of the isochronic envelope on the bed voices (1 = full on/off).
BED_PULSE_DEPTH = 0.7


class VoiceMixer:
    """Voices, their level glides and the ``(2, segment_frames)`` sum they render into."""

    def __init__(
        self, sample_rate: int, segment_frames: int, entrainment: Entrainment, swell: BreathSwell
    ) -> None:
        self.sample_rate = int(sample_rate)
        s = self.segment_frames = int(segment_frames)
        self._seconds = s / self.sample_rate
        self.entrainment = entrainment
        self.swell = swell
        #: The voices in mixing order and the level glide of each (same order).
        self.voices: list[Voice] = []
        self.levels: list[LevelGlide] = []
        # reads each voice's level field (made once: a name built per call would be kept
        # by the interpreter's attribute cache, growing memory)
        self._level_of: list[Callable[[SoundTargets], float]] = []
        #: The sum of the last segment rendered; ``on`` is False when nothing sounded.
        self.sum = np.zeros((2, s), np.float32)
        self.on = False
        self._bed = np.zeros((2, s), np.float32)
        self._own = np.zeros((2, s), np.float32)
        #: Per voice: the voice gates itself at its own depth (:class:`OwnPulse`).
        self._own_pulse: list[OwnPulse | None] = []
        self._gate = np.zeros(s, np.float32)
        self._tmp = np.zeros(s, np.float32)
        self._ramp = (np.arange(s, dtype=np.float64) / s).astype(np.float32)

    # --- control ----------------------------------------------------------------------

    def add(self, voice: Voice, targets: SoundTargets, *, at_level: bool) -> LevelGlide:
        """Prepare ``voice`` and add it; it starts at its level if ``at_level``, else silent."""
        field = level_field(voice.name)  # raises if the targets' table declares no level
        if voice.name in self.names:
            raise ValueError(f"a voice named {voice.name!r} is already in the engine")
        voice.prepare(self.sample_rate, self.segment_frames)
        voice.set_targets(targets)
        level_of = operator.attrgetter(field)
        glide = LevelGlide(OFF_DB, LEVEL_RATE)
        glide.target = off_floor(level_of(targets))
        if at_level:
            glide.value = glide.end = glide.target
        self.voices.append(voice)
        self._own_pulse.append(voice if isinstance(voice, OwnPulse) else None)
        self.levels.append(glide)
        self._level_of.append(level_of)
        return glide

    @property
    def names(self) -> tuple[str, ...]:
        """Names of the voices in mixing order."""
        return tuple(v.name for v in self.voices)

    def voice(self, name: str) -> Voice:
        """The voice called ``name`` (``KeyError`` if there is none)."""
        for v in self.voices:
            if v.name == name:
                return v
        raise KeyError(f"no voice named {name!r} (voices: {', '.join(self.names)})")

    def glides(self) -> list[Glide]:
        """Every glide of the voice stage the engine owns (entrainment and levels)."""
        return [*self.entrainment.glides(), *self.levels]

    def set_targets(self, t: SoundTargets) -> None:
        """Hand ``t`` to the entrainment and every voice; aim the levels."""
        self.entrainment.set_targets(t)
        for v, g, level_of in zip(self.voices, self.levels, self._level_of, strict=True):
            v.set_targets(t)
            g.target = off_floor(level_of(t))

    def jump(self) -> None:
        """Jump every glide (levels, entrainment, voices that can) to its target."""
        for g in self.glides():
            g.value = g.end = g.target
        for v in self.voices:
            if isinstance(v, Settles):
                v.jump()

    def gains_db(self, frac: float) -> dict[str, float]:
        """Voice levels in dB at fraction ``frac`` of the present segment, by voice name."""
        return {v.name: g.at(frac) for v, g in zip(self.voices, self.levels, strict=True)}

    @property
    def tones(self) -> ToneVoice | None:
        """The built-in tone voice, if present."""
        return next((v for v in self.voices if isinstance(v, ToneVoice)), None)

    @property
    def pad(self) -> Pad | None:
        """The built-in pad's chord progression, if present."""
        return next((v.pad for v in self.voices if isinstance(v, PadVoice)), None)

    @property
    def noise(self) -> NoiseBed | None:
        """The built-in noise voice, if present."""
        return next((v for v in self.voices if isinstance(v, NoiseBed)), None)

    # --- audio path -------------------------------------------------------------------

    def render(self) -> None:
        """Render the next segment of every voice into :attr:`sum` (sets :attr:`on`)."""
        s, sec = self.segment_frames, self._seconds
        ent = self.entrainment
        ent.plan(s, sec)
        sg0, sg1, _, _ = self.swell.plan(s)
        bw0, bw1 = ent.bed_w.value, ent.bed_w.end
        gate_bed = bw0 > 0.0 or bw1 > 0.0
        total, bed = self.sum, self._bed
        total.fill(0.0)
        if gate_bed:
            bed.fill(0.0)
        wrote = bed_wrote = False
        for v, g, own in zip(self.voices, self.levels, self._own_pulse, strict=True):
            a0, a1 = g.amp, db_to_amp(g.plan(sec))
            if v.bed:
                a0, a1 = a0 * sg0, a1 * sg1
            if a0 == 0.0 and a1 == 0.0:
                v.skip(s)
            elif not (v.bed and gate_bed):
                wrote |= v.render(total, s, a0, a1)
            elif own is None:
                bed_wrote |= v.render(bed, s, a0, a1)
            else:
                wrote |= self._render_own(v, own, a0, a1, bw0, bw1)
        if bed_wrote:
            self._gate_bed(bw0, bw1)
        self.on = wrote or bed_wrote

    def _gate_bed(self, w0: float, w1: float) -> None:
        """Gate the bed sum by the envelope at the bed's depth and add it to the sum."""
        env = self.entrainment.envelope()
        self._bed *= gate_into(self._gate, self._tmp, self._ramp, env, w0, w1, BED_PULSE_DEPTH)
        self.sum += self._bed

    def _render_own(
        self, v: Voice, own: OwnPulse, a0: float, a1: float, w0: float, w1: float
    ) -> bool:
        """Render ``v`` apart and gate it by the envelope at its own depth into the sum."""
        s, buf = self.segment_frames, self._own
        buf.fill(0.0)
        if not v.render(buf, s, a0, a1):
            return False
        d0, d1 = own.pulse_depths()
        env = self.entrainment.envelope()
        buf *= gate_into(self._gate, self._tmp, self._ramp, env, w0 * d0, w1 * d1, 1.0)
        self.sum += buf
        return True

    def skip(self) -> None:
        """A silent segment: every voice and glide advances, nothing is rendered."""
        s, sec = self.segment_frames, self._seconds
        self.entrainment.plan(s, sec)
        self.swell.plan(s)
        for v, g in zip(self.voices, self.levels, strict=True):
            g.plan(sec)
            v.skip(s)
        self.on = False

    def commit(self, frac: float) -> None:
        """Move the engine-owned glides to fraction ``frac`` of the segment.

        The voices themselves have already advanced by the whole segment: a fraction
        below 1 happens only when the engine restarts a segment while silent.
        """
        self.entrainment.commit(frac)
        self.swell.commit(round(frac * self.segment_frames))
        for g in self.levels:
            g.commit(frac)
