"""The data of a therapy program: sections, transitions, ending, and the targets they set.

:mod:`device.therapy.program_parse` builds these from TOML; :mod:`device.therapy.program`
finds and loads program files.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from device.sound.targets import COMPOSER_STYLES, ENTRAIN_KINDS, NOISE_COLOURS, PAD_PRESETS

#: Directory of the programs that ship with the box.
BUILTIN_DIR = Path(__file__).resolve().parent / "programs"

#: Transition and slide curve names.
CURVES = ("linear", "exponential", "S")

#: Ending kinds.
ENDING_KINDS = ("fade", "quiet-bed", "wake")

#: Numeric targets: name -> (low, high, unit, accepts "off").
NUMERIC_TARGETS: dict[str, tuple[float, float, str, bool]] = {
    "pacer_bpm": (4.5, 12.0, "breaths/min", True),
    "inhale_fraction": (0.3, 0.5, "of a breath", False),
    "entrain_hz": (0.5, 40.0, "Hz", False),
    "carrier_hz": (100.0, 1000.0, "Hz", False),
    "duty": (0.35, 0.5, "of a cycle", False),
    "pad_brightness": (0.0, 1.0, "(0 dark .. 1 bright)", False),
    "noise_tone": (0.0, 1.0, "(0 dark .. 1 bright)", False),
    "tones_db": (-90.0, 0.0, "dB", True),
    "pad_db": (-90.0, 0.0, "dB", True),
    "noise_db": (-90.0, 0.0, "dB", True),
    "swell_db": (0.0, 12.0, "dB", False),
    "music_db": (-90.0, 0.0, "dB", True),
    "music_crossfade_s": (0.5, 30.0, "s", False),
    "music_pulse_index": (0.0, 0.5, "(modulation index of the pulse on the music)", False),
    "warmth": (0.0, 1.0, "(0 flat .. 1 warm)", False),
    "composer_db": (-90.0, 0.0, "dB", True),
    "composer_energy": (0.0, 1.0, "(0 asleep .. 1 awake)", False),
}

#: Discrete targets: name -> allowed values.
CHOICE_TARGETS: dict[str, tuple[str, ...]] = {
    "entrain_kind": ENTRAIN_KINDS,
    "pad_preset": PAD_PRESETS,
    "noise_colour": NOISE_COLOURS,
    "composer_style": COMPOSER_STYLES,
}

#: Boolean targets.
BOOL_TARGETS = ("entrain_bed",)

#: Targets the personalisation may choose (the keys of a program's ``[options]`` table).
OPTION_KEYS = ("pad_preset", "noise_colour", "entrain_kind", "composer_style")

#: Longest section, transition or ending accepted, in seconds (one night).
MAX_DURATION_S = 12 * 3600.0

_SECTION_KEYS = {"name", "duration_s", "duration_min", "transition", "curve"}
_TOP_KEYS = {"name", "description", "options", "section", "ending"}
_ENDING_KEYS: dict[str, set[str]] = {
    "fade": {"kind", "duration_s", "duration_min", "curve"},
    "quiet-bed": {
        "kind",
        "duration_s",
        "duration_min",
        "transition_s",
        "fade_s",
        "pad_db",
        "noise_db",
        "noise_colour",
        "pad_brightness",
    },
    "wake": {
        "kind",
        "duration_s",
        "duration_min",
        "curve",
        "chime",
        "entrain_hz",
        "pad_brightness",
        "tones_db",
        "pad_db",
        "noise_db",
    },
}

#: Value a section target takes: a numeric slide ``(from, to)`` (``None`` = off), a choice
#: string or a bool.
Value = tuple[float | None, float | None] | str | bool


@dataclass(frozen=True, slots=True)
class Transition:
    """How the sound moves into a section: over ``duration_s`` seconds along ``curve``."""

    duration_s: float = 30.0
    curve: str = "S"


@dataclass(frozen=True, slots=True)
class Section:
    """One part of a program.

    ``values`` maps a target name to a slide ``(from, to)`` over the section (``None`` ends
    mean "off"), a choice string or a bool; names it lacks carry over from the previous
    section.
    """

    name: str
    duration_s: float
    transition: Transition
    curve: str
    values: dict[str, Value]


@dataclass(frozen=True, slots=True)
class Ending:
    """How a program ends.

    ``fade``: fade to silence over ``duration_s``. ``quiet-bed``: glide (``transition_s``)
    to a quiet pad-and-noise bed, hold it, then fade over ``fade_s`` (all inside
    ``duration_s``). ``wake``: the breath swell stops and the sound slides over ``duration_s``
    towards brighter, faster targets (``values``), with a wake chime at the end when
    ``chime`` is set.
    """

    kind: str = "fade"
    duration_s: float = 60.0
    curve: str = "S"
    transition_s: float = 60.0
    fade_s: float = 60.0
    chime: bool = False
    values: dict[str, float | str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Program:
    """A validated therapy program.

    ``duration_s`` is the whole length including the ending, in seconds; ``options`` maps an
    option key (``pad_preset``, ``noise_colour``, ``entrain_kind``) to the values the
    personalisation may choose among.
    """

    name: str
    description: str
    path: Path | None
    sections: tuple[Section, ...]
    ending: Ending
    options: dict[str, tuple[str, ...]]

    @property
    def body_s(self) -> float:
        """Length of the sections without the ending, in seconds."""
        return sum(s.duration_s for s in self.sections)

    @property
    def duration_s(self) -> float:
        """Whole length including the ending, in seconds."""
        return self.body_s + self.ending.duration_s

    def __repr__(self) -> str:
        return (
            f"<Program {self.name!r} {len(self.sections)} sections, "
            f"{self.duration_s / 60:.1f} min, ending={self.ending.kind}>"
        )
