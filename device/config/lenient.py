"""The service's fallback reading of a broken configuration file: keep what is good.

A box must play even when its file is broken, but it must not forget what a technician
set: a lowered output cap above all. :func:`lenient_values` keeps every valid key of the
file and replaces only the bad ones, and collects one :class:`~device.exc.ConfigError`
per problem. Rules:

* a bad key takes its default, except ``audio.cap_dbfs``: a number out of range is clamped
  into range, so a broken file never raises the cap above what it asked for where the
  box allows it;
* ``audio.volume_db`` above the cap is held at the cap (the cap wins, never the volume);
* a sensor timing the chip forbids takes the default timing;
* a program that does not load takes the default program;
* text that is not TOML is read statement by statement, so its valid lines still count.
"""

from __future__ import annotations

import tomllib
from typing import Any

from device.config.rules import (
    _HEADER,
    _KEY_LINE,
    check_program,
    check_together,
    check_value,
    read_toml,
    split_key,
    where,
)
from device.config.schema import SCHEMA
from device.exc import ConfigError

Values = dict[str, dict[str, object]]

#: The sensor keys that together set its timing (reset as one when they disagree).
SENSOR_TIMING = ("sample_rate_sps", "averaging", "pulse_width_us", "poll_interval_s")


def lenient_values(
    text: str, file: str | None, defaults: Values
) -> tuple[Values, list[ConfigError]]:
    """Effective values of ``text`` over ``defaults`` and the errors found (see module doc)."""
    errors: list[ConfigError] = []
    data: dict[str, object]
    try:
        data = read_toml(text, file)
    except ConfigError as exc:
        errors.append(exc)
        data = dict(_salvage(text))
    values = {s: dict(v) for s, v in defaults.items()}
    for section, body in data.items():
        if not isinstance(body, dict):
            errors.append(
                ConfigError(
                    f"{where(file)}{section} must be a [section] table", file=file, key=section
                )
            )
            continue
        for name, value in body.items():
            try:
                split_key(f"{section}.{name}", file)
                values[section][name] = check_value(section, name, value, file)
            except ConfigError as exc:
                errors.append(exc)
                if (section, name) == ("audio", "cap_dbfs"):
                    values[section][name] = _clamped_cap(value, values[section][name])
    _settle_together(values, defaults, file, errors)
    try:
        check_program(values, file)
    except ConfigError as exc:
        errors.append(exc)
        values["therapy"]["program"] = defaults["therapy"]["program"]
        if exc.key == "therapy.programs_dir":
            values["therapy"]["programs_dir"] = defaults["therapy"]["programs_dir"]
    return values, errors


def _clamped_cap(value: object, fallback: object) -> object:
    key = SCHEMA["audio"]["cap_dbfs"]
    if isinstance(value, bool) or not isinstance(value, int | float):
        return fallback
    try:
        number = float(value)
    except OverflowError:
        number = float("-inf") if value < 0 else float("inf")
    if number != number:  # NaN says nothing about the level wanted
        return fallback
    assert key.min is not None and key.max is not None
    return min(max(number, key.min), key.max)


def _settle_together(
    values: Values, defaults: Values, file: str | None, errors: list[ConfigError]
) -> None:
    """Replace keys until the rules between keys hold (each rule's key at most twice)."""
    for _ in range(2 * len(SENSOR_TIMING) + 2):
        try:
            check_together(values, file)
            return
        except ConfigError as exc:
            errors.append(exc)
            section, _, name = str(exc.key).partition(".")
            if (section, name) == ("audio", "volume_db"):
                values["audio"]["volume_db"] = values["audio"]["cap_dbfs"]
            elif values[section][name] != defaults[section][name]:
                values[section][name] = defaults[section][name]
            else:
                for key in SENSOR_TIMING:
                    values["sensor"][key] = defaults["sensor"][key]
    check_together(values, file)  # the defaults of the timing pass with any audio setting


def _salvage(text: str) -> dict[str, dict[str, object]]:
    """The statements of non-TOML text that parse on their own line, by section.

    A key given twice keeps its first value, except the cap, which keeps the lowest.
    """
    data: dict[str, dict[str, object]] = {}
    section: str | None = None
    for raw in text.lstrip("\ufeff").splitlines():
        if _HEADER.match(raw):
            section = _header_section(raw)
            continue
        if section is None or not _KEY_LINE.match(raw):
            continue
        parsed = _parse_line(raw)
        if parsed is not None:
            _keep_first(data.setdefault(section, {}), section, parsed)
    return data


def _parse_line(raw: str) -> dict[str, Any] | None:
    """One line parsed as TOML on its own, or ``None`` if it does not parse."""
    try:
        return tomllib.loads(raw)
    except (tomllib.TOMLDecodeError, RecursionError, ValueError):
        return None


def _header_section(raw: str) -> str | None:
    """The section a ``[header]`` line opens, or ``None`` for one we cannot read (its keys
    are not trusted then)."""
    parsed = _parse_line(raw)
    if parsed is None:
        return None
    names = list(parsed)
    return names[0] if len(names) == 1 and not parsed[names[0]] else None


def _keep_first(body: dict[str, object], section: str, parsed: dict[str, Any]) -> None:
    """Add the salvaged ``parsed`` keys to ``body``: the first value of a key stays, except
    the cap, which keeps the lowest."""
    for name, value in parsed.items():
        if name not in body:
            body[name] = value
        elif (section, name) == ("audio", "cap_dbfs"):
            body[name] = _lowest(body[name], value)


def _lowest(a: object, b: object) -> object:
    numbers = [v for v in (a, b) if isinstance(v, int | float) and not isinstance(v, bool)]
    return min(numbers) if numbers else a
