"""The contract between the engine and its voices (tones, pad, noise, music ...).

A voice is anything that makes sound from :class:`~device.sound.targets.SoundTargets`. The
engine keeps a list of voices and, once per segment, asks each to *add* its next
``frames`` frames into a channel-major ``(2, segment_frames)`` float32 buffer. The engine
owns everything between a voice and the speaker: the voice's level (the target field
``<name>_db``, glided at a bounded dB/s and given to :meth:`Voice.render` as the linear gains
``g0`` -> ``g1`` across the segment), the breath swell and the bed's isochronic envelope
(for ``bed`` voices), then the user volume, program level, fades, chimes and the limiter.

Each segment a voice gets exactly one call: :meth:`Voice.render` when its gain is above
zero somewhere in the segment, else :meth:`Voice.skip`. Both advance the voice by
``frames`` frames: every frame rendered is played (fades and a lowered cap re-shape the
output after the voices, they never re-render them).

Shared parts a voice may need (the entrainment envelope, the breath swell) come in a
:class:`VoiceContext` that the engine gives to the voice factories in
``device/sound/voices/__init__.py``; see ``docs/sound.md`` for a worked example.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol, runtime_checkable

import numpy as np

from device.sound.targets import SoundTargets

if TYPE_CHECKING:
    from device.sound.entrainment import Entrainment
    from device.sound.swell import BreathSwell


class Voice(Protocol):
    """One sound source of the engine."""

    #: Level key: ``SoundTargets.<name>_db`` is this voice's level (declared in
    #: ``device.sound.targets.CHECKS``).
    name: str
    #: True: part of the bed (the breath swell applies; the isochronic envelope applies
    #: when ``entrain_bed``).
    bed: bool

    def prepare(self, sample_rate: int, segment_frames: int) -> None:
        """Preallocate everything for segments of up to ``segment_frames`` frames."""

    def set_targets(self, targets: SoundTargets) -> None:
        """Take the new targets (control side, outside the audio path; already validated)."""

    def render(self, out: np.ndarray, frames: int, g0: float, g1: float) -> bool:
        """ADD the next ``frames`` frames into ``out[:, :frames]`` with gain ``g0`` -> ``g1``.

        ``out`` is channel-major ``(2, s)`` float32; the gain is linear across the segment.
        Returns True if anything was written. Never allocates, blocks, logs or raises.
        """

    def skip(self, frames: int) -> None:
        """A silent segment: advance phase and time by ``frames`` frames without rendering."""


@runtime_checkable
class OwnPulse(Protocol):
    """A bed voice that takes the isochronic envelope at its own depth (the listener's music,
    whose modulation is a target of its own), not at the bed's."""

    def pulse_depths(self) -> tuple[float, float]:
        """Envelope depth (0 none .. 1 full on/off) at the start and end of this segment;
        called once per rendered segment, in the audio path."""
        ...


@runtime_checkable
class Settles(Protocol):
    """A voice whose glides can jump to their targets at once (used only while silent).

    Optional: ``set_targets(..., immediate=True)`` on a silent engine calls :meth:`jump` on
    every voice that has it, so a session starts on its own sound instead of gliding there.
    """

    def jump(self) -> None:
        """Jump every glide of the voice to its target."""


@dataclass(frozen=True, slots=True)
class VoiceContext:
    """What the engine shares with the voices it builds (read-only for them)."""

    #: Output sample rate in Hz and the engine's segment length in frames.
    sample_rate: int
    segment_frames: int
    #: ``speaker`` or ``headphones``.
    output: str
    #: Seed of every random choice of a voice (detune jitter, noise tables).
    seed: int
    #: Entrainment form weights and the isochronic envelope, planned per segment.
    entrainment: Entrainment
    #: The breath swell, planned per segment before the voices render.
    swell: BreathSwell


#: A voice factory: builds one voice for an engine.
VoiceFactory = Callable[[VoiceContext], Voice]
