"""Therapy programs: TOML files that say what a session plays over time.

A program is a list of sections played one after the other, then an ending::

    name = "wind-down"
    description = "20 min: breathing 10 -> 6/min, alpha to theta, pad darkening, 2-min fade"

    [options]                      # what the personalisation may choose among (optional)
    pad_preset = ["warm", "deep", "glass"]

    [[section]]
    name = "settle"
    duration_min = 5               # or duration_s
    transition = { duration_s = 20, curve = "S" }   # how the sound moves into this section
    curve = "linear"               # shape of this section's own from -> to slides
    pacer_bpm = [10, 8.5]          # from -> to over the section; a single number holds
    entrain_hz = [10, 8]
    pad_preset = "warm"

    [ending]
    kind = "fade"                  # "fade" | "quiet-bed" | "wake"
    duration_s = 120

A section that does not name a target keeps the value the previous section ended on (the
first section starts from :class:`~device.dsp.targets.SoundTargets` defaults). Levels take a
number in dB or ``"off"``; ``pacer_bpm = "off"`` switches the breath swell off. Every
mistake (bad TOML, unknown key, wrong type, value out of range) raises
:class:`~device.exc.ProgramError` naming the file, the section and the key, the value found
and what is allowed.
"""

from __future__ import annotations

import logging
import math
import tomllib
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from device.dsp.targets import ENTRAIN_KINDS, NOISE_COLOURS, OFF_DB, PAD_PRESETS
from device.exc import ProgramError

log = logging.getLogger(__name__)

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
    "warmth": (0.0, 1.0, "(0 flat .. 1 warm)", False),
}

#: Discrete targets: name -> allowed values.
CHOICE_TARGETS: dict[str, tuple[str, ...]] = {
    "entrain_kind": ENTRAIN_KINDS,
    "pad_preset": PAD_PRESETS,
    "noise_colour": NOISE_COLOURS,
}

#: Boolean targets.
BOOL_TARGETS = ("entrain_bed",)

#: Targets the personalisation may choose (the keys of a program's ``[options]`` table).
OPTION_KEYS = ("pad_preset", "noise_colour", "entrain_kind")

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


# --- parsing ----------------------------------------------------------------------------------


class _Where:
    """Names the place of a value for error messages: file, section, key."""

    def __init__(self, file: str) -> None:
        self.file = file

    def error(
        self, where: str, key: str | None, message: str, value: object = None
    ) -> ProgramError:
        place = f"{self.file}: {where}" if where else self.file
        text = f"{place}: {key}: {message}" if key else f"{place}: {message}"
        dotted = key if not where else f"{where}.{key}" if key else where
        return ProgramError(text, file=self.file, key=dotted, value=value)


def _is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _duration(table: dict[str, Any], where: str, w: _Where, *, required: bool) -> float | None:
    has_s, has_min = "duration_s" in table, "duration_min" in table
    if has_s and has_min:
        raise w.error(where, "duration_s", "give duration_s or duration_min, not both")
    if not (has_s or has_min):
        if required:
            raise w.error(where, "duration_s", "missing (give duration_s or duration_min)")
        return None
    key = "duration_s" if has_s else "duration_min"
    return _seconds(table[key], where, key, w, scale=1.0 if has_s else 60.0, allow_zero=False)


def _seconds(
    value: object, where: str, key: str, w: _Where, *, scale: float = 1.0, allow_zero: bool = True
) -> float:
    if not _is_number(value):
        raise w.error(where, key, f"{value!r} is not a number of seconds", value)
    seconds = float(value) * scale  # type: ignore[arg-type]
    low_ok = seconds >= 0.0 if allow_zero else seconds > 0.0
    if not (low_ok and seconds <= MAX_DURATION_S) or math.isnan(seconds):
        unit = "min" if scale == 60.0 else "s"
        bound = "0" if allow_zero else "more than 0"
        raise w.error(
            where,
            key,
            f"{value} is out of range (allowed {bound} .. {MAX_DURATION_S / scale:g} {unit})",
            value,
        )
    return seconds


def _curve(value: object, where: str, key: str, w: _Where) -> str:
    if value not in CURVES:
        raise w.error(where, key, f"{value!r} is not a curve (allowed {', '.join(CURVES)})", value)
    return str(value)


def _number(value: object, name: str, where: str, key: str, w: _Where) -> float | None:
    """One numeric target value: a number within its range, or ``"off"`` where allowed."""
    low, high, unit, can_off = NUMERIC_TARGETS[name]
    if can_off and value == "off":
        return None
    if not _is_number(value) or math.isnan(float(value)):  # type: ignore[arg-type]
        allowed = f"a number {low:g} .. {high:g} {unit}" + (' or "off"' if can_off else "")
        raise w.error(where, key, f"{value!r} is not allowed (allowed {allowed})", value)
    number = float(value)  # type: ignore[arg-type]
    if not low <= number <= high:
        raise w.error(
            where, key, f"{value} is out of range (allowed {low:g} .. {high:g} {unit})", value
        )
    return number


def _target(name: str, value: object, where: str, w: _Where) -> Value:
    if name in NUMERIC_TARGETS:
        if isinstance(value, list):
            if len(value) != 2:
                raise w.error(
                    where, name, f"{value!r} must be one value or [from, to] (two values)", value
                )
            return (
                _number(value[0], name, where, name, w),
                _number(value[1], name, where, name, w),
            )
        number = _number(value, name, where, name, w)
        return (number, number)
    if name in CHOICE_TARGETS:
        allowed = CHOICE_TARGETS[name]
        if value not in allowed:
            raise w.error(
                where, name, f"{value!r} is not allowed (allowed {', '.join(allowed)})", value
            )
        return str(value)
    if name in BOOL_TARGETS:
        if not isinstance(value, bool):
            raise w.error(where, name, f"{value!r} is not allowed (allowed true, false)", value)
        return value
    raise AssertionError(name)  # pragma: no cover - callers check the key first


def _known_keys(table: dict[str, Any], allowed: Iterable[str], where: str, w: _Where) -> None:
    allowed_set = set(allowed)
    for key in table:
        if key not in allowed_set:
            raise w.error(
                where, key, f"unknown key (allowed {', '.join(sorted(allowed_set))})", None
            )


def _section(index: int, table: object, w: _Where) -> Section:
    where = f"section #{index + 1}"
    if not isinstance(table, dict):
        raise w.error(where, None, "must be a table ([[section]])")
    name = table.get("name", f"section-{index + 1}")
    if not isinstance(name, str) or not name:
        raise w.error(where, "name", f"{name!r} is not a non-empty string", name)
    where = f'section "{name}"'
    targets = set(NUMERIC_TARGETS) | set(CHOICE_TARGETS) | set(BOOL_TARGETS)
    _known_keys(table, _SECTION_KEYS | targets, where, w)
    duration = _duration(table, where, w, required=True)
    assert duration is not None
    transition = Transition(duration_s=0.0 if index == 0 else 30.0)
    if "transition" in table:
        raw = table["transition"]
        if not isinstance(raw, dict):
            raise w.error(where, "transition", "must be a table {duration_s = .., curve = ..}")
        _known_keys(raw, ("duration_s", "curve"), f"{where} transition", w)
        t_s = _seconds(raw.get("duration_s", transition.duration_s), where, "transition", w)
        if t_s > duration:
            raise w.error(
                where,
                "transition",
                f"duration_s {t_s:g} is longer than the section ({duration:g} s)",
                t_s,
            )
        curve = _curve(raw.get("curve", transition.curve), where, "transition.curve", w)
        transition = Transition(duration_s=t_s, curve=curve)
    transition = Transition(min(transition.duration_s, duration), transition.curve)
    curve = _curve(table.get("curve", "linear"), where, "curve", w)
    values = {k: _target(k, v, where, w) for k, v in table.items() if k in targets}
    return Section(
        name=name, duration_s=duration, transition=transition, curve=curve, values=values
    )


def _ending(table: object, w: _Where) -> Ending:
    where = "[ending]"
    if table is None:
        return Ending()
    if not isinstance(table, dict):
        raise w.error(where, None, "must be a table")
    kind = table.get("kind", "fade")
    if kind not in ENDING_KINDS:
        raise w.error(
            where, "kind", f"{kind!r} is not allowed (allowed {', '.join(ENDING_KINDS)})", kind
        )
    _known_keys(table, _ENDING_KEYS[kind], where, w)
    default = {"fade": 60.0, "quiet-bed": 600.0, "wake": 180.0}[kind]
    duration = _duration(table, where, w, required=False) or default
    curve = _curve(table.get("curve", "S"), where, "curve", w)
    values: dict[str, float | str] = {}
    if kind == "quiet-bed":
        transition_s = _seconds(table.get("transition_s", 60.0), where, "transition_s", w)
        fade_s = _seconds(table.get("fade_s", 60.0), where, "fade_s", w)
        if transition_s + fade_s > duration:
            raise w.error(
                where,
                "fade_s",
                f"transition_s + fade_s ({transition_s + fade_s:g} s) is longer than "
                f"the ending ({duration:g} s)",
                fade_s,
            )
        for key, default_value in (("pad_db", -26.0), ("noise_db", -24.0), ("pad_brightness", 0.2)):
            number = _number(table.get(key, default_value), key, where, key, w)
            values[key] = OFF_DB if number is None else number
        colour = table.get("noise_colour", "pink")
        values["noise_colour"] = _target("noise_colour", colour, where, w)  # type: ignore[assignment]
        return Ending(kind, duration, curve, transition_s, fade_s, False, values)
    if kind == "wake":
        chime = table.get("chime", True)
        if not isinstance(chime, bool):
            raise w.error(where, "chime", f"{chime!r} is not allowed (allowed true, false)", chime)
        for key, default_value in (("entrain_hz", 10.0), ("pad_brightness", 0.7)):
            number = _number(table.get(key, default_value), key, where, key, w)
            assert number is not None
            values[key] = number
        for key in ("tones_db", "pad_db", "noise_db"):
            if key in table:
                number = _number(table[key], key, where, key, w)
                values[key] = OFF_DB if number is None else number
        return Ending(kind, duration, curve, 0.0, 0.0, chime, values)
    return Ending(kind, duration, curve)


def _options(table: object, w: _Where) -> dict[str, tuple[str, ...]]:
    where = "[options]"
    if table is None:
        return {}
    if not isinstance(table, dict):
        raise w.error(where, None, "must be a table")
    _known_keys(table, OPTION_KEYS, where, w)
    options: dict[str, tuple[str, ...]] = {}
    for key, raw in table.items():
        if not isinstance(raw, list) or not raw:
            raise w.error(where, key, f"{raw!r} must be a non-empty list of choices", raw)
        for value in raw:
            _target(key, value, where, w)
        if len(set(raw)) != len(raw):
            raise w.error(where, key, f"{raw!r} lists a choice twice", raw)
        if key == "entrain_kind" and "none" in raw:
            raise w.error(where, key, '"none" cannot be chosen (leave the key out instead)', raw)
        options[key] = tuple(raw)
    return options


def parse_program(text: str, *, file: str = "<program>", name: str | None = None) -> Program:
    """Parse and validate program TOML ``text``; ``file`` is used in error messages."""
    w = _Where(file)
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ProgramError(f"{file}: not valid TOML: {exc}", file=file) from None
    _known_keys(data, _TOP_KEYS, "", w)
    prog_name = data.get("name", name)
    if not isinstance(prog_name, str) or not prog_name:
        raise w.error("", "name", f"{prog_name!r} is not a non-empty string", prog_name)
    description = data.get("description", "")
    if not isinstance(description, str):
        raise w.error("", "description", f"{description!r} is not a string", description)
    raw_sections = data.get("section")
    if not isinstance(raw_sections, list) or not raw_sections:
        raise w.error("", "section", "a program needs at least one [[section]]")
    sections = tuple(_section(i, s, w) for i, s in enumerate(raw_sections))
    names = [s.name for s in sections]
    for section_name in names:
        if names.count(section_name) > 1:
            raise w.error(
                f'section "{section_name}"', "name", "two sections have this name", section_name
            )
    return Program(
        name=prog_name,
        description=description,
        path=None if file.startswith("<") else Path(file),
        sections=sections,
        ending=_ending(data.get("ending"), w),
        options=_options(data.get("options"), w),
    )


def read_program(path: Path | str) -> Program:
    """Read and validate one program file (its name defaults to the file's stem)."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ProgramError(f"{path}: cannot read program: {exc}", file=str(path)) from None
    return parse_program(text, file=str(path), name=path.stem)


def _search_dirs(dirs: Iterable[Path | str]) -> list[Path]:
    out = [Path(d) for d in dirs]
    if BUILTIN_DIR not in out:
        out.append(BUILTIN_DIR)
    return out


def load_program(name_or_path: str | Path, dirs: Iterable[Path | str] = ()) -> Program:
    """Load a program by name (searched in ``dirs``, then the built-ins) or by file path.

    A user program in ``dirs`` with a built-in's name replaces the built-in. Raises
    :class:`~device.exc.ProgramError` when the program is missing or invalid.
    """
    text = str(name_or_path)
    as_path = Path(text)
    if isinstance(name_or_path, Path) or "/" in text or text.endswith(".toml"):
        if not as_path.is_file():
            raise ProgramError(f"{text}: no such program file", file=text)
        return read_program(as_path)
    search = _search_dirs(dirs)
    for directory in search:
        candidate = directory / f"{text}.toml"
        if candidate.is_file():
            return read_program(candidate)
    known = sorted({p.stem for d in search if d.is_dir() for p in d.glob("*.toml")})
    raise ProgramError(
        f"no program named {text!r} (known: {', '.join(known) or 'none'})", key="program"
    )


def list_programs(
    dirs: Iterable[Path | str] = (), errors: list[ProgramError] | None = None
) -> list[Program]:
    """Every valid program in ``dirs`` and the built-ins, sorted by name.

    A user program shadows a built-in of the same name. Invalid files are skipped (and
    logged); pass a list as ``errors`` to receive their :class:`ProgramError`\\ s.
    """
    seen: dict[str, Program] = {}
    for directory in _search_dirs(dirs):
        if not directory.is_dir():
            continue
        for path in sorted(directory.glob("*.toml")):
            try:
                program = read_program(path)
            except ProgramError as exc:
                log.warning("skipping program: %s", exc)
                if errors is not None:
                    errors.append(exc)
                continue
            seen.setdefault(program.name, program)
    return [seen[name] for name in sorted(seen)]
