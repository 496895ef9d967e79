"""Entrainment state shared by the voices: form weights, pulse rate and the pulse envelope.

The form (``none``, ``isochronic``, ``monaural``, ``binaural``) crossfades over
:data:`KIND_XFADE_S`: each form has a weight that glides between 0 and 1. ``binaural`` on
a speaker is played as ``monaural`` (it needs one ear per channel). The isochronic envelope
(:class:`~device.sound.isochronic.PulseEnvelope`) is rendered at most once per segment, on
first use, by whichever voice (or the engine's bed gate) asks for it.
"""

from __future__ import annotations

import numpy as np

from device.dsp.ramps import Glide
from device.sound.isochronic import PulseEnvelope
from device.sound.targets import ENTRAIN_KINDS, SoundTargets

OUTPUTS = ("speaker", "headphones")
#: Seconds to crossfade from one entrainment form to another.
KIND_XFADE_S = 2.0
#: Beat / pulse rate glide speed (Hz/s).
BEAT_RATE = 1.0
#: Index of each form in the weight lists.
NONE, ISOCHRONIC, MONAURAL, BINAURAL = range(4)


class Entrainment:
    """Form weights, pulse rate/duty and the isochronic envelope of the present segment."""

    def __init__(self, output: str) -> None:
        if output not in OUTPUTS:
            raise ValueError(f"output {output!r} is not one of {', '.join(OUTPUTS)}")
        self.output = output
        #: Weight of each form (crossfaded), in ENTRAIN_KINDS order.
        self.kind_w = [
            Glide(1.0 if k == "isochronic" else 0.0, 1.0 / KIND_XFADE_S) for k in ENTRAIN_KINDS
        ]
        #: Weight of the envelope on the bed voices (``entrain_bed``).
        self.bed_w = Glide(0.0, 1.0 / KIND_XFADE_S)
        self.rate = Glide(10.0, BEAT_RATE)
        self.duty = Glide(0.45, 0.05)
        #: Form weights at the start and end of the planned segment.
        self.w0 = [0.0] * len(ENTRAIN_KINDS)
        self.w1 = [0.0] * len(ENTRAIN_KINDS)
        #: The form being played (``binaural`` becomes ``monaural`` on a speaker).
        self.kind = "isochronic"
        self.pulse: PulseEnvelope | None = None
        self._frames = 0
        self._rate_mid = 10.0
        self._env_ready = False

    def glides(self) -> list[Glide]:
        """Every glide of the entrainment state."""
        return [*self.kind_w, self.bed_w, self.rate, self.duty]

    def prepare(self, sample_rate: int, segment_frames: int) -> None:
        """Allocate the envelope for segments of ``segment_frames`` frames."""
        self.pulse = PulseEnvelope(segment_frames, sample_rate)

    def render_kind(self, kind: str) -> str:
        """The form actually played for a requested ``kind`` on this output."""
        if kind == "binaural" and self.output != "headphones":
            return "monaural"
        return kind

    def set_targets(self, t: SoundTargets) -> None:
        """Aim the weights, rate and duty at ``t`` (control side)."""
        self.kind = kind = self.render_kind(t.entrain_kind)
        for k, g in zip(ENTRAIN_KINDS, self.kind_w, strict=True):
            g.target = 1.0 if k == kind else 0.0
        self.rate.target = t.entrain_hz
        self.duty.target = t.duty
        self.bed_w.target = 1.0 if (t.entrain_bed and kind != "none") else 0.0

    def plan(self, frames: int, seconds: float) -> None:
        """Plan the next segment of ``frames`` frames (``seconds`` long)."""
        for i, g in enumerate(self.kind_w):
            self.w0[i] = g.value
            self.w1[i] = g.plan(seconds)
        self.bed_w.plan(seconds)
        self._rate_mid = 0.5 * (self.rate.value + self.rate.plan(seconds))
        self.duty.plan(seconds)
        self._frames = frames
        self._env_ready = False

    def envelope(self) -> np.ndarray:
        """The isochronic envelope (0..1) of the planned segment, rendered on first use."""
        assert self.pulse is not None, "Entrainment.prepare() was not called"
        if not self._env_ready:
            self.pulse.set_shape(self.duty.end, self._rate_mid)
            self.pulse.render(self._frames, self._rate_mid)
            self._env_ready = True
        return self.pulse.out[: self._frames]

    def commit(self, frac: float) -> None:
        """Advance to fraction ``frac`` of the planned segment (the pulse phase with it)."""
        assert self.pulse is not None, "Entrainment.prepare() was not called"
        if not self._env_ready:
            self.pulse.skip(self._frames, self._rate_mid)
        self.pulse.commit(round(frac * self._frames))
        for g in self.glides():
            g.commit(frac)
