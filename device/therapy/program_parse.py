"""Parsing and validation of program TOML (the format: :mod:`device.therapy.program`).

Every mistake raises :class:`~device.exc.ProgramError` naming the file, the section and the
key, the value found and what is allowed.
"""

from __future__ import annotations

import math
import tomllib
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from device.exc import ProgramError
from device.sound.targets import OFF_DB
from device.therapy.program_model import (
    _ENDING_KEYS,
    _SECTION_KEYS,
    _TOP_KEYS,
    BOOL_TARGETS,
    CHOICE_TARGETS,
    CURVES,
    ENDING_KINDS,
    MAX_DURATION_S,
    NUMERIC_TARGETS,
    OPTION_KEYS,
    Ending,
    Program,
    Section,
    Transition,
    Value,
)


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
    """The ``index``-th ``[[section]]`` (from 0), checked."""
    if not isinstance(table, dict):
        raise w.error(f"section #{index + 1}", None, "must be a table ([[section]])")
    name = _section_name(index, table, w)
    where = f'section "{name}"'
    targets = set(NUMERIC_TARGETS) | set(CHOICE_TARGETS) | set(BOOL_TARGETS)
    _known_keys(table, _SECTION_KEYS | targets, where, w)
    duration = _duration(table, where, w, required=True)
    assert duration is not None
    transition = Transition(duration_s=0.0 if index == 0 else 30.0)
    if "transition" in table:
        transition = _transition(table["transition"], transition, duration, where, w)
    transition = Transition(min(transition.duration_s, duration), transition.curve)
    curve = _curve(table.get("curve", "linear"), where, "curve", w)
    values = {k: _target(k, v, where, w) for k, v in table.items() if k in targets}
    return Section(
        name=name, duration_s=duration, transition=transition, curve=curve, values=values
    )


def _section_name(index: int, table: dict[str, Any], w: _Where) -> str:
    """The section's ``name`` (``section-N`` by default): a non-empty string."""
    name = table.get("name", f"section-{index + 1}")
    if not isinstance(name, str) or not name:
        raise w.error(f"section #{index + 1}", "name", f"{name!r} is not a non-empty string", name)
    return name


def _transition(
    raw: object, default: Transition, duration: float, where: str, w: _Where
) -> Transition:
    """A section's ``transition`` table, checked: no longer than the section."""
    if not isinstance(raw, dict):
        raise w.error(where, "transition", "must be a table {duration_s = .., curve = ..}")
    _known_keys(raw, ("duration_s", "curve"), f"{where} transition", w)
    t_s = _seconds(raw.get("duration_s", default.duration_s), where, "transition", w)
    if t_s > duration:
        raise w.error(
            where,
            "transition",
            f"duration_s {t_s:g} is longer than the section ({duration:g} s)",
            t_s,
        )
    curve = _curve(raw.get("curve", default.curve), where, "transition.curve", w)
    return Transition(duration_s=t_s, curve=curve)


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
    if kind == "quiet-bed":
        return _quiet_bed(table, duration, curve, w)
    if kind == "wake":
        return _wake(table, duration, curve, w)
    return Ending(kind, duration, curve)


def _quiet_bed(table: dict[str, Any], duration: float, curve: str, w: _Where) -> Ending:
    """A ``quiet-bed`` ending: a transition to a quiet bed, which fades at the end."""
    where = "[ending]"
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
    values: dict[str, float | str] = {}
    for key, default_value in (("pad_db", -26.0), ("noise_db", -24.0), ("pad_brightness", 0.2)):
        number = _number(table.get(key, default_value), key, where, key, w)
        values[key] = OFF_DB if number is None else number
    colour = table.get("noise_colour", "pink")
    values["noise_colour"] = _target("noise_colour", colour, where, w)  # type: ignore[assignment]
    return Ending("quiet-bed", duration, curve, transition_s, fade_s, False, values)


def _wake(table: dict[str, Any], duration: float, curve: str, w: _Where) -> Ending:
    """A ``wake`` ending: brighter, faster, a chime at the end (unless ``chime = false``)."""
    where = "[ending]"
    chime = table.get("chime", True)
    if not isinstance(chime, bool):
        raise w.error(where, "chime", f"{chime!r} is not allowed (allowed true, false)", chime)
    values: dict[str, float | str] = {}
    for key, default_value in (("entrain_hz", 10.0), ("pad_brightness", 0.7)):
        number = _number(table.get(key, default_value), key, where, key, w)
        assert number is not None
        values[key] = number
    for key in ("tones_db", "pad_db", "noise_db"):
        if key in table:
            number = _number(table[key], key, where, key, w)
            values[key] = OFF_DB if number is None else number
    return Ending("wake", duration, curve, 0.0, 0.0, chime, values)


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


def _sections(raw_sections: object, w: _Where) -> tuple[Section, ...]:
    """The program's ``[[section]]`` tables, checked: at least one, no two of one name."""
    if not isinstance(raw_sections, list) or not raw_sections:
        raise w.error("", "section", "a program needs at least one [[section]]")
    sections = tuple(_section(i, s, w) for i, s in enumerate(raw_sections))
    names = [s.name for s in sections]
    for section_name in names:
        if names.count(section_name) > 1:
            raise w.error(
                f'section "{section_name}"', "name", "two sections have this name", section_name
            )
    return sections


def _toml(text: str, file: str) -> dict[str, Any]:
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ProgramError(f"{file}: not valid TOML: {exc}", file=file) from None


def _variant(data: dict[str, Any], base_text: Callable[[str], str] | None, w: _Where) -> dict:
    """A ``like = "base"`` program: the base's tables with this file's on top.

    Top-level keys this file sets replace the base's; ``[options]`` is merged key by key.
    Only one level: a base is a whole program, so a timeline is written once.
    """
    like = data["like"]
    if not isinstance(like, str) or not like:
        raise w.error("", "like", f"{like!r} is not a program name", like)
    if base_text is None:
        raise w.error("", "like", "a variant must be a program file beside its base", like)
    base = _toml(base_text(like), f"{like}.toml")
    if "like" in base:
        raise w.error("", "like", f"{like!r} is itself a variant; name a whole program", like)
    merged = {k: v for k, v in base.items() if k not in ("name", "description")}
    merged.update({k: v for k, v in data.items() if k not in ("like", "options")})
    options = base.get("options", {})
    extra = data.get("options", {})
    if isinstance(options, dict) and isinstance(extra, dict):
        merged["options"] = {**options, **extra}
    elif "options" in data:
        merged["options"] = extra  # not a table: _options names the mistake
    return merged


def parse_program(
    text: str,
    *,
    file: str = "<program>",
    name: str | None = None,
    base_text: Callable[[str], str] | None = None,
) -> Program:
    """Parse and validate program TOML ``text``; ``file`` is used in error messages.

    :param base_text: the TOML text of another program by name, for a variant
        (``like = "wind-down"``); without it a variant is an error.
    """
    w = _Where(file)
    data = _toml(text, file)
    _known_keys(data, _TOP_KEYS, "", w)
    if "like" in data:
        data = _variant(data, base_text, w)
    prog_name = data.get("name", name)
    if not isinstance(prog_name, str) or not prog_name:
        raise w.error("", "name", f"{prog_name!r} is not a non-empty string", prog_name)
    description = data.get("description", "")
    if not isinstance(description, str):
        raise w.error("", "description", f"{description!r} is not a string", description)
    sections = _sections(data.get("section"), w)
    return Program(
        name=prog_name,
        description=description,
        path=None if file.startswith("<") else Path(file),
        sections=sections,
        ending=_ending(data.get("ending"), w),
        options=_options(data.get("options"), w),
    )
