"""What the therapy asks the sound engine to play: one plain value object.

The therapy layer (timeline and closed loop) produces a :class:`SoundTargets` every
control tick; the engine ramps towards it (frequencies glide with phase kept, gains move
at a limited dB/s). Nothing here touches numpy, so the therapy layer stays light.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

ENTRAIN_KINDS = ("none", "isochronic", "monaural", "binaural")
NOISE_COLOURS = ("white", "pink", "brown")
PAD_PRESETS = ("warm", "glass", "deep", "choir")
LAYERS = ("tones", "pad", "noise", "swell")

#: Level in dB that means "this layer is off" (ramped to silence, then not rendered).
OFF_DB = -120.0


@dataclass(frozen=True, slots=True)
class SoundTargets:
    """Targets for the sound engine, every field in physical units.

    Levels are in dB relative to the engine's master level (which the user volume and
    the hard cap bound); ``OFF_DB`` or lower turns a layer off.
    """

    #: Breath pacer in breaths/min for the breath swell; ``None`` switches the swell off.
    pacer_bpm: float | None = 10.0
    #: Inhale share of one breath (0.4 = inhale : exhale of 1 : 1.5).
    inhale_fraction: float = 0.4
    #: Entrainment form: ``none``, ``isochronic``, ``monaural`` or ``binaural``.
    entrain_kind: str = "isochronic"
    #: Entrainment (beat or pulse) rate in Hz, 0.5-40.
    entrain_hz: float = 10.0
    #: Tone carrier frequency in Hz, 100-1000.
    carrier_hz: float = 200.0
    #: Isochronic duty cycle, 0.35-0.5.
    duty: float = 0.45
    #: Ambient pad preset name (one of ``PAD_PRESETS``).
    pad_preset: str = "warm"
    #: Pad brightness 0 (dark) .. 1 (bright).
    pad_brightness: float = 0.5
    #: Noise colour: ``white``, ``pink`` or ``brown``.
    noise_colour: str = "pink"
    #: Noise tone control 0 (dark) .. 1 (bright).
    noise_tone: float = 0.5
    #: Apply the isochronic envelope to the pad and noise bed as well (speaker-friendly form).
    entrain_bed: bool = False
    #: Layer levels in dB (relative to the master level).
    tones_db: float = -24.0
    pad_db: float = -14.0
    noise_db: float = -20.0
    #: Depth of the breath swell in dB (loudness dip between breaths).
    swell_db: float = 6.0
    #: Program-level gain in dB (endings and quiet beds ramp this; never above 0).
    program_db: float = 0.0
    #: Level of the listener's music in dB (``OFF_DB``: no music); <= 0.
    music_db: float = OFF_DB
    #: Equal-power crossfade between music tracks in seconds, 0.5-30.
    music_crossfade_s: float = 6.0
    #: Low-frequency warmth 0 (flat) .. 1 (+6 dB low shelf on the music).
    warmth: float = 0.0

    def with_changes(self, **changes: object) -> SoundTargets:
        """Return a copy with the given fields replaced."""
        return replace(self, **changes)  # type: ignore[arg-type]
