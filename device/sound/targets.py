"""What the therapy asks the sound engine to play: one plain value object and its checks.

The therapy layer (timeline and closed loop) produces a :class:`SoundTargets` every
control tick; the engine ramps towards it (frequencies glide with phase kept, gains move
at a limited dB/s). :data:`CHECKS` is the one table of what each field may hold: the
engine validates every target against it, and a new voice declares its level field here
(``<voice name>_db``, checked by :class:`Level`). Nothing here touches numpy, so the
therapy layer stays light.
"""

from __future__ import annotations

import dataclasses
import math
from abc import ABC, abstractmethod
from dataclasses import dataclass, replace

ENTRAIN_KINDS = ("none", "isochronic", "monaural", "binaural")
NOISE_COLOURS = ("white", "pink", "brown")
PAD_PRESETS = ("warm", "glass", "deep", "choir")
LAYERS = ("tones", "pad", "noise", "swell")
#: Styles of the composer voice (``device/music/composer/styles.py``); ``pad`` plays no
#: composed music (the pad keeps its part: see ``device.therapy.timeline``).
COMPOSER_STYLES = ("piano", "harp", "strings", "guitar", "pad")

#: Level in dB that means "this layer is off" (ramped to silence, then not rendered).
OFF_DB = -120.0

#: Allowed ranges of the numeric targets (inclusive), in the fields' units: the one table of
#: what may be played, for the engine and program files alike (see :data:`CHECKS`).
#: Slow breathing: resonance lies at 4.5-7/min, a session arrives from at most 12/min and the
#: closed loop only paces down; inhale 30-50 % of a breath (never a held, long inhale).
PACER_RANGE = (4.5, 12.0)  # breaths/min
INHALE_RANGE = (0.3, 0.5)  # share of a breath
RATE_RANGE = (0.5, 40.0)  # Hz, entrainment beat or pulse rate
CARRIER_RANGE = (100.0, 1000.0)  # Hz
DUTY_RANGE = (0.35, 0.5)  # isochronic pulse width at half height / period
DEPTH_RANGE = (0.0, 12.0)  # dB, breath swell depth
HEART_RANGE = (25.0, 240.0)  # beats/min, the listener's heart rate
#: The lowest level a program file may write, dB (below it a layer is ``"off"``).
LEVEL_FLOOR_DB = -90.0


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
    #: Tone carrier frequency in Hz, 100-1000 (played on the pad's tuning grid, see
    #: ``device.sound.tuning``).
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
    #: Apply the isochronic envelope to the bed voices (pad, noise) as well
    #: (the speaker-friendly form).
    entrain_bed: bool = False
    #: Voice levels in dB (relative to the master level); ``<voice name>_db`` for each voice.
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
    #: Modulation index ``(max - min) / (max + min)`` of the isochronic envelope on the
    #: listener's music while ``entrain_bed`` is on, 0-0.5 (0: the music untouched; the pad
    #: and noise take the bed's own depth). Subtle by default: strings must not turn into a
    #: tremolo pedal.
    music_pulse_index: float = 0.2
    #: Low-frequency warmth 0 (flat) .. 1 (+6 dB low shelf on the music, a sub-bass under
    #: the pad at -10 dB: ``device/sound/voices/pad_sub.py``).
    warmth: float = 0.0
    #: Level of the composed music in dB (``OFF_DB``: none); <= 0.
    composer_db: float = OFF_DB
    #: Style of the composed music (instruments, mode, register: one of ``COMPOSER_STYLES``).
    composer_style: str = "piano"
    #: Energy of the composed music 0 (sleep: slow, sparse, low, dark) .. 1 (awake).
    composer_energy: float = 0.5
    #: The listener's theme (``device.music.composer.theme.theme_seed`` of the profile).
    composer_theme: int = 0
    #: The listener's heart rate in beats/min as the therapy reads it (``None``: unknown);
    #: the composer's tempo follows it.
    heart_bpm: float | None = None

    def with_changes(self, **changes: object) -> SoundTargets:
        """Return a copy with the given fields replaced."""
        return replace(self, **changes)  # type: ignore[arg-type]


class Check(ABC):
    """What one field may hold: :meth:`ok` is the fast test, :meth:`problem` the message."""

    __slots__ = ()

    @abstractmethod
    def ok(self, value: object) -> bool:
        """True when ``value`` is playable."""

    @abstractmethod
    def problem(self, value: object) -> str:
        """Why ``value`` is refused (completes ``SoundTargets.<field> = <value> ...``)."""


def _number(value: object) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value)


class Range(Check):
    """A number in ``lo..hi`` (NaN fails); ``optional`` also accepts ``None``.

    ``unit`` names what the number counts (``"Hz"``, ``"of a breath"``), for messages.
    """

    __slots__ = ("hi", "lo", "optional", "unit")

    def __init__(self, lo: float, hi: float, unit: str = "", *, optional: bool = False) -> None:
        self.lo, self.hi, self.unit, self.optional = float(lo), float(hi), unit, optional

    def ok(self, value: object) -> bool:
        """True for a number in range (or ``None`` when optional)."""
        if value is None:
            return self.optional
        v = _number(value)
        return v is not None and self.lo <= v <= self.hi

    def problem(self, value: object) -> str:
        """The allowed range."""
        off = " (or None: off)" if self.optional else ""
        unit = f" {self.unit}" if self.unit else ""
        return f"is outside {self.lo:g}..{self.hi:g}{unit}{off}"


class Level(Check):
    """A level in dB at most ``hi`` (``-inf`` and anything at or below ``OFF_DB`` is off).

    ``floor`` is the lowest level a program file may write (or ``"off"``); the engine takes
    any lower level as off.
    """

    __slots__ = ("floor", "hi")

    unit = "dB"

    def __init__(self, hi: float = 0.0, floor: float = LEVEL_FLOOR_DB) -> None:
        self.hi, self.floor = float(hi), float(floor)

    def ok(self, value: object) -> bool:
        """True for a level that is not NaN and not above ``hi``."""
        v = _number(value)
        return v is not None and v <= self.hi  # NaN compares False

    def problem(self, value: object) -> str:
        """The allowed levels."""
        return f"dB is not a level at most {self.hi:g} dB"


class Choice(Check):
    """One of a fixed tuple of names."""

    __slots__ = ("choices",)

    def __init__(self, choices: tuple[str, ...]) -> None:
        self.choices = choices

    def ok(self, value: object) -> bool:
        """True for one of the names."""
        return value in self.choices

    def problem(self, value: object) -> str:
        """The allowed names."""
        return f"is not one of {', '.join(self.choices)}"


class Flag(Check):
    """A bool."""

    __slots__ = ()

    def ok(self, value: object) -> bool:
        """True for ``True`` or ``False``."""
        return isinstance(value, bool)

    def problem(self, value: object) -> str:
        """The allowed values."""
        return "is not True or False"


#: The one table of field -> check: every field of :class:`SoundTargets` has exactly one.
CHECKS: dict[str, Check] = {
    "pacer_bpm": Range(*PACER_RANGE, "breaths/min", optional=True),
    "inhale_fraction": Range(*INHALE_RANGE, "of a breath"),
    "entrain_kind": Choice(ENTRAIN_KINDS),
    "entrain_hz": Range(*RATE_RANGE, "Hz"),
    "carrier_hz": Range(*CARRIER_RANGE, "Hz"),
    "duty": Range(*DUTY_RANGE, "of a cycle"),
    "pad_preset": Choice(PAD_PRESETS),
    "pad_brightness": Range(0.0, 1.0, "(0 dark .. 1 bright)"),
    "noise_colour": Choice(NOISE_COLOURS),
    "noise_tone": Range(0.0, 1.0, "(0 dark .. 1 bright)"),
    "entrain_bed": Flag(),
    "tones_db": Level(),
    "pad_db": Level(),
    "noise_db": Level(),
    "swell_db": Range(*DEPTH_RANGE, "dB"),
    "program_db": Level(),
    "music_db": Level(),
    "music_crossfade_s": Range(0.5, 30.0, "s"),
    "music_pulse_index": Range(0.0, 0.5, "(modulation index of the pulse on the music)"),
    "warmth": Range(0.0, 1.0, "(0 flat .. 1 warm)"),
    "composer_db": Level(),
    "composer_style": Choice(COMPOSER_STYLES),
    "composer_energy": Range(0.0, 1.0, "(0 asleep .. 1 awake)"),
    "composer_theme": Range(0, 2**32 - 1),
    "heart_bpm": Range(*HEART_RANGE, "beats/min", optional=True),
}
_FIELDS = tuple(f.name for f in dataclasses.fields(SoundTargets))
if set(CHECKS) != set(_FIELDS):  # a field without a check (or a check without a field)
    raise ImportError(f"CHECKS and SoundTargets differ: {sorted(set(CHECKS) ^ set(_FIELDS))}")
_ITEMS = tuple(CHECKS.items())


def validate_targets(targets: object) -> None:
    """Raise ``ValueError`` naming the first field of ``targets`` that cannot be played."""
    if not isinstance(targets, SoundTargets):
        raise TypeError(f"set_targets needs a SoundTargets, not {type(targets).__name__}")
    for name, check in _ITEMS:
        value = getattr(targets, name)
        if not check.ok(value):
            raise ValueError(f"SoundTargets.{name} = {value!r} {check.problem(value)}")


def level_field(voice_name: str) -> str:
    """The :class:`SoundTargets` field holding the level of voice ``voice_name``.

    Raises ``ValueError`` if the table declares no such level (a voice registered
    without its entry in :data:`CHECKS`).
    """
    field = f"{voice_name}_db"
    if not isinstance(CHECKS.get(field), Level):
        raise ValueError(
            f"voice {voice_name!r} has no level: add {field} to SoundTargets and CHECKS"
            " (device/sound/targets.py)"
        )
    return field


def off_floor(level_db: float) -> float:
    """A level in dB with anything at or below ``OFF_DB`` (``-inf`` too) as ``OFF_DB``."""
    return max(float(level_db), OFF_DB) if not math.isnan(level_db) else OFF_DB
