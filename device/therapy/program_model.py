"""The data of a therapy program: sections, transitions, ending, and the targets they set.

:mod:`device.therapy.program_parse` builds these from TOML; :mod:`device.therapy.program`
finds and loads program files.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from device.sound.targets import CHECKS, Choice, Flag, Level, Range

#: Directory of the programs that ship with the box.
BUILTIN_DIR = Path(__file__).resolve().parent / "programs"

#: Transition and slide curve names.
CURVES = ("linear", "exponential", "S")

#: Ending kinds.
ENDING_KINDS = ("fade", "quiet-bed", "wake")

#: Targets a program file may not set: the session's own program level (endings ramp it),
#: the composer's theme (a session draws it) and the listener's heart rate (measured).
SESSION_TARGETS = ("program_db", "composer_theme", "heart_bpm")

_PROGRAM_CHECKS = {k: c for k, c in CHECKS.items() if k not in SESSION_TARGETS}

#: Numeric targets: name -> (low, high, unit, accepts "off"), from the one table of what may
#: be played (:data:`device.sound.targets.CHECKS`): a level from its floor, ``"off"`` below.
NUMERIC_TARGETS: dict[str, tuple[float, float, str, bool]] = {
    **{
        k: (c.lo, c.hi, c.unit, c.optional)
        for k, c in _PROGRAM_CHECKS.items()
        if isinstance(c, Range)
    },
    **{
        k: (c.floor, c.hi, c.unit, True) for k, c in _PROGRAM_CHECKS.items() if isinstance(c, Level)
    },
}

#: Discrete targets: name -> allowed values.
CHOICE_TARGETS: dict[str, tuple[str, ...]] = {
    k: c.choices for k, c in _PROGRAM_CHECKS.items() if isinstance(c, Choice)
}

#: Boolean targets.
BOOL_TARGETS = tuple(k for k, c in _PROGRAM_CHECKS.items() if isinstance(c, Flag))

#: Targets the personalisation may choose (the keys of a program's ``[options]`` table).
OPTION_KEYS = ("pad_preset", "noise_colour", "entrain_kind", "composer_style")

#: Longest section, transition or ending accepted, in seconds (one night).
MAX_DURATION_S = 12 * 3600.0

_SECTION_KEYS = {"name", "duration_s", "duration_min", "transition", "curve"}
_TOP_KEYS = {"name", "description", "like", "options", "section", "ending"}
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
