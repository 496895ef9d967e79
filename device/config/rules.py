"""Validation of configuration text and values: every error is one line naming ``section.key``.

:func:`read_toml` turns text into tables whatever it holds (a byte-order mark, a
5000-digit number, 50,000 nested arrays all give a :class:`~device.exc.ConfigError`
naming the line and key, never a traceback); :func:`check_value` checks one value against
:data:`~device.config.schema.SCHEMA`; :func:`check_together` checks the rules that tie keys
together (the MAX30102's sample-rate and pulse-width table, its FIFO, volume under cap);
:func:`check_program` checks that the configured program exists and is valid, and that the
programs directory is readable by the service user.
"""

from __future__ import annotations

import grp
import math
import os
import pwd
import re
import tomllib
from collections.abc import Callable
from pathlib import Path

from device.config.schema import (
    MAX_VALUE_TEXT,
    PULSE_WIDTHS_AT_RATE_US,
    SCHEMA,
    Key,
    format_value,
)
from device.exc import ConfigError, ProgramError

#: Sample rates (Hz, after the chip's averaging) the heart analysis accepts: those of
#: ``device.heart.beats.BeatDetector`` (not imported: checking a file needs no numpy).
ANALYSIS_RATE_HZ = (20.0, 1000.0)

#: The user the service runs as (``User=`` in systemd/bedside.service).
SERVICE_USER = "bedside"
#: Longest program name (a file stem in a programs directory), in characters.
MAX_PROGRAM_NAME = 64
#: Longest text value (a path, a device name), in characters.
MAX_TEXT = 4096

Values = dict[str, dict[str, object]]

_AT_LINE = re.compile(r"\(at line (\d+), column \d+\)")
_HEADER = re.compile(r"^\s*\[\s*([^\]\s]+)\s*\]")
_KEY_LINE = re.compile(r"^\s*([A-Za-z0-9_-]+)\s*=")


def where(file: str | None) -> str:
    """The ``FILE: `` prefix of a message (nothing for a value typed at the console)."""
    return f"{file}: " if file else ""


def read_toml(text: str, file: str | None) -> dict[str, object]:
    """Parse TOML ``text`` (a leading UTF-8 byte-order mark is ignored).

    :raises ConfigError: one line naming the line and, where it can be found, the
        ``section.key`` at fault: for bad TOML, numbers too long to convert and nesting
        too deep for the parser.
    """
    if text.startswith("\ufeff"):
        text = text[1:]
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        found = _AT_LINE.search(str(exc))
        line = int(found.group(1)) if found else None
        problem = plain_toml_problem(_AT_LINE.sub("", str(exc)).strip())
    except RecursionError:
        line = _first_failing_line(text, RecursionError)
        problem = "arrays or tables nested too deeply"
    except ValueError:
        # tomllib converts with int(), which refuses more than sys.get_int_max_str_digits().
        line = _first_failing_line(text, ValueError)
        problem = "a number with too many digits"
    key = _key_at(text, line)
    at = f"line {line}: " if line else ""
    raise ConfigError(
        f"{where(file)}{at}{key + ': ' if key else ''}not valid TOML: {problem}",
        file=file,
        key=key,
    ) from None


_DECLARED_TWICE = re.compile(r"Cannot declare \((.*)\) twice")


def plain_toml_problem(problem: str) -> str:
    """tomllib's message in the config's words (its tuples of key parts become ``[a.b]``)."""
    found = _DECLARED_TWICE.match(problem)
    if found:
        parts = re.findall(r"'((?:[^'\\]|\\.)*)'", found.group(1))
        table = ".".join(parts) or found.group(1)
        return f"the table [{table}] appears twice: put all its keys under one [{table}]"
    if problem.startswith("Cannot overwrite a value"):
        return "a key is set twice: keep one of the two lines"
    return problem


def _first_failing_line(text: str, kind: type[BaseException]) -> int | None:
    """The first line whose prefix of the file raises ``kind`` (the statement at fault)."""
    lines = text.splitlines(keepends=True)

    def fails(n: int) -> bool:
        try:
            tomllib.loads("".join(lines[:n]))
        except kind:
            return True
        except (tomllib.TOMLDecodeError, RecursionError, ValueError):
            return False
        return False

    if not lines or not fails(len(lines)):
        return None
    low, high = 0, len(lines)  # fails(high) is true; fails(low) is false
    while high - low > 1:
        mid = (low + high) // 2
        if fails(mid):
            high = mid
        else:
            low = mid
    return high


def _key_at(text: str, line: int | None) -> str | None:
    """``section.key`` of the statement at ``line`` (1-based), read back from the text."""
    if line is None:
        return None
    lines = text.lstrip("\ufeff").splitlines()[:line]
    key: str | None = None
    for raw in reversed(lines):
        header = _HEADER.match(raw)
        if header:
            section = header.group(1).strip("[]")
            return f"{section}.{key}" if key else section
        found = _KEY_LINE.match(raw)
        if found and key is None:
            key = found.group(1)
    return key


def split_key(dotted: str, file: str | None) -> tuple[str, str]:
    """Split ``section.key``; :class:`ConfigError` if the schema has no such key."""
    section, _, key = dotted.partition(".")
    if section not in SCHEMA:
        raise ConfigError(
            f"{where(file)}unknown section [{_short(section)}] in {_short(dotted)!r} "
            f"(sections: {', '.join(SCHEMA)})",
            file=file,
            key=dotted,
        )
    if key not in SCHEMA[section]:
        raise ConfigError(
            f"{where(file)}unknown key {_short(dotted)!r} (keys in [{section}]: "
            f"{', '.join(SCHEMA[section])})",
            file=file,
            key=dotted,
        )
    return section, key


def _short(text: str) -> str:
    return format_value(text, limit=MAX_VALUE_TEXT)[1:-1] if len(text) > 40 else text


def check_value(section: str, name: str, value: object, file: str | None) -> object:
    """Check a value against its schema :class:`~device.config.schema.Key`; return it."""
    key = SCHEMA[section][name]
    dotted = f"{section}.{name}"

    def fail(why: str | None = None) -> ConfigError:
        return ConfigError(
            f"{where(file)}{dotted} = {format_value(value, limit=MAX_VALUE_TEXT)} is not "
            f"allowed: expected {why or key.allowed()}",
            file=file,
            key=dotted,
            value=value,
        )

    try:
        value = _typed(key, value)
    except _Refused as refused:
        raise fail(refused.why) from None
    if not _in_range(key, value):
        raise fail()
    return value


class _Refused(Exception):
    """A value of the wrong type (``why``: what is expected, when more than the key says)."""

    def __init__(self, why: str | None = None) -> None:
        super().__init__(why)
        self.why = why


def _typed(key: Key, value: object) -> object:
    """``value`` as ``key``'s type (an int of a float key as a float). :raises _Refused:"""
    if key.kind is float:
        return _finite(value)
    if key.kind is str:
        if not isinstance(value, str):
            raise _Refused
        if len(value) > MAX_TEXT or any(ord(c) < 0x20 or ord(c) == 0x7F for c in value):
            raise _Refused(f"{key.allowed()} of at most {MAX_TEXT} printable characters")
    elif not _SAME_KIND.get(key.kind, lambda v: True)(value):
        raise _Refused
    return value


#: Whether a value is of a bool or an int key's type (a bool is no int here).
_SAME_KIND: dict[type, Callable[[object], bool]] = {
    bool: lambda v: isinstance(v, bool),
    int: lambda v: isinstance(v, int) and not isinstance(v, bool),
}


def _finite(value: object) -> float:
    """A finite number as a float (not a bool). :raises _Refused:"""
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise _Refused
    try:
        number = float(value)
    except OverflowError:
        raise _Refused from None
    if not math.isfinite(number):
        raise _Refused
    return number


def _in_range(key: Key, value: object) -> bool:
    """True when ``value`` is one of ``key``'s choices and within its min and max."""
    if key.choices is not None and value not in key.choices:
        return False
    if key.min is not None and value < key.min:  # type: ignore[operator]
        return False
    return not (key.max is not None and value > key.max)  # type: ignore[operator]


def check_together(values: Values, file: str | None) -> None:
    """Rules that tie keys together (each still names the key at fault)."""
    sensor, audio = values["sensor"], values["audio"]
    sps, width = int(sensor["sample_rate_sps"]), int(sensor["pulse_width_us"])  # type: ignore[call-overload]
    averaging = int(sensor["averaging"])  # type: ignore[call-overload]
    lo, hi = ANALYSIS_RATE_HZ
    if not lo <= sps / averaging <= hi:
        # The beat detector refuses the rate the box would feed it, and the box would run
        # without a heart (device/heart/beats.py; `analyze-ppg` averages groups for files).
        choices = SCHEMA["sensor"]["sample_rate_sps"].choices or ()
        fits = [str(r) for r in choices if lo <= int(r) / averaging <= hi]  # type: ignore[call-overload]
        raise ConfigError(
            f"{where(file)}sensor.sample_rate_sps = {sps} is not allowed with "
            f"sensor.averaging = {averaging}: the heart analysis takes {lo:g}-{hi:g} "
            f"samples/s after averaging, not {sps / averaging:g}; expected "
            f"sensor.sample_rate_sps {', '.join(fits)}",
            file=file,
            key="sensor.sample_rate_sps",
            value=sps,
        )
    allowed = PULSE_WIDTHS_AT_RATE_US[sps]
    if width not in allowed:
        # The chip cannot finish a pulse of this width within one sample period
        # (data sheet Table 11); it would be refused when the sensor is opened.
        raise ConfigError(
            f"{where(file)}sensor.pulse_width_us = {width} is not allowed with "
            f"sensor.sample_rate_sps = {sps}: the MAX30102 allows "
            f"{', '.join(map(str, allowed))} µs at {sps} samples/s (data sheet Table 11)",
            file=file,
            key="sensor.pulse_width_us",
            value=width,
        )
    # The MAX30102 FIFO holds 32 samples; a poll can come up to one audio block late, and the
    # FIFO must not fill in between (or samples are lost every poll).
    rate = sps / averaging
    fill_s = 32 / rate
    block_s = int(audio["block_frames"]) / int(audio["sample_rate"])  # type: ignore[call-overload]
    poll_s = float(sensor["poll_interval_s"])  # type: ignore[arg-type]
    if poll_s + block_s > 0.9 * fill_s:
        raise ConfigError(
            f"{where(file)}sensor.poll_interval_s = {format_value(poll_s)} is not allowed: with "
            f"audio.block_frames = {audio['block_frames']} polls may come "
            f"{poll_s + block_s:.3f} s apart, but the sensor FIFO fills in {fill_s:.3f} s at "
            f"{rate:g} samples/s; expected at most {max(0.0, 0.9 * fill_s - block_s):.3f}",
            file=file,
            key="sensor.poll_interval_s",
            value=sensor["poll_interval_s"],
        )
    vol, cap = audio["volume_db"], audio["cap_dbfs"]
    if vol > cap:  # type: ignore[operator]
        raise ConfigError(
            f"{where(file)}audio.volume_db = {format_value(vol)} is not allowed: expected at "
            f"most audio.cap_dbfs ({format_value(cap)})",
            file=file,
            key="audio.volume_db",
            value=vol,
        )


def check_program(values: Values, file: str | None) -> None:
    """The programs directory is readable by the service user and the program loads from it.

    A directory that does not exist is allowed (only the built-ins are then offered).
    """
    directory = str(values["therapy"]["programs_dir"])
    check_programs_dir(Path(directory), file)
    name = str(values["therapy"]["program"])
    is_path = "/" in name or name.endswith(".toml")
    if not name or (not is_path and len(name) > MAX_PROGRAM_NAME):
        raise ConfigError(
            f"{where(file)}therapy.program = {format_value(name, limit=MAX_VALUE_TEXT)} is not "
            f"allowed: expected a program name of 1 to {MAX_PROGRAM_NAME} characters "
            "or a path to a program file",
            file=file,
            key="therapy.program",
            value=name,
        )
    from device.therapy.program import load_program

    try:
        load_program(name, [directory])
    except ProgramError as exc:
        raise ConfigError(
            f"{where(file)}therapy.program = {format_value(name, limit=MAX_VALUE_TEXT)} is not "
            f"allowed: {exc}",
            file=file,
            key="therapy.program",
            value=name,
        ) from None


def check_programs_dir(directory: Path, file: str | None) -> None:
    """:class:`ConfigError` naming ``therapy.programs_dir`` if the service user cannot list it."""

    def fail(why: str) -> ConfigError:
        return ConfigError(
            f"{where(file)}therapy.programs_dir = {format_value(str(directory))} is not "
            f"allowed: {why}",
            file=file,
            key="therapy.programs_dir",
            value=str(directory),
        )

    try:
        is_dir = directory.is_dir()
        exists = is_dir or directory.exists()
    except OSError as exc:
        raise fail(f"cannot look at it: {exc.strerror or exc}") from None
    if not exists:
        return
    if not is_dir:
        raise fail("it is not a directory")
    if not readable_by(directory, SERVICE_USER):
        raise fail(f"the service user ({SERVICE_USER}) cannot read it")


def readable_by(directory: Path, user: str) -> bool:
    """Whether ``user`` may list ``directory`` and open its files (by the permission bits).

    Without such a user on this system the question is asked for the current user.
    """
    try:
        account = pwd.getpwnam(user)
    except KeyError:
        return os.access(directory, os.R_OK | os.X_OK)
    if account.pw_uid == 0:
        return True
    groups = {account.pw_gid} | {g.gr_gid for g in grp.getgrall() if user in g.gr_mem}
    path = directory.resolve()
    for place, need in [(p, 0o1) for p in reversed(path.parents)] + [(path, 0o5)]:
        try:
            st = place.stat()
        except OSError:
            return False
        if _bits_for(st, account.pw_uid, groups) & need != need:
            return False
    return True


def _bits_for(st: os.stat_result, uid: int, groups: set[int]) -> int:
    """The permission bits of ``st`` that apply to user ``uid`` in ``groups`` (in the low
    three bits: owner's, group's or others')."""
    if st.st_uid == uid:
        return st.st_mode >> 6
    if st.st_gid in groups:
        return st.st_mode >> 3
    return st.st_mode
