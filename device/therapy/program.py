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
first section starts from :class:`~device.sound.targets.SoundTargets` defaults). Levels take a
number in dB or ``"off"``; ``pacer_bpm = "off"`` switches the breath swell off. Every
mistake (bad TOML, unknown key, wrong type, value out of range) raises
:class:`~device.exc.ProgramError` naming the file, the section and the key, the value found
and what is allowed.
"""

from __future__ import annotations

import logging
import os
import stat
from collections.abc import Iterable
from pathlib import Path

from device.exc import ProgramError
from device.therapy.program_model import (
    BOOL_TARGETS,
    BUILTIN_DIR,
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
from device.therapy.program_parse import parse_program

__all__ = [
    "BOOL_TARGETS",
    "BUILTIN_DIR",
    "CHOICE_TARGETS",
    "CURVES",
    "ENDING_KINDS",
    "MAX_DURATION_S",
    "MAX_PROGRAM_BYTES",
    "NUMERIC_TARGETS",
    "OPTION_KEYS",
    "Ending",
    "Program",
    "Section",
    "Transition",
    "Value",
    "list_programs",
    "load_program",
    "parse_program",
    "read_program",
]

log = logging.getLogger(__name__)


#: Largest program file read, in bytes (the built-ins are under 3 KiB). A bigger file is
#: refused before it is read, so a console ``SESSION START /some/big/file`` costs nothing.
MAX_PROGRAM_BYTES = 64 * 1024
#: Longest program name (the file's stem), in characters.
MAX_NAME_CHARS = 64


def read_program(path: Path | str) -> Program:
    """Read and validate one program file (its name defaults to the file's stem).

    Only a regular file of at most :data:`MAX_PROGRAM_BYTES` is read (never a device or a
    pipe, which could block or never end); anything else is a :class:`ProgramError`. A
    variant (``like = "wind-down"``) takes its base from the same directory.
    """
    path = Path(path)

    def base_text(name: str) -> str:
        _check_name(name)
        if "/" in name or name.startswith("."):  # a name, never a path out of the directory
            raise ProgramError(f"{path}: like = {name!r} is not a program name", file=str(path))
        return _read_text(path.parent / f"{name}.toml")

    return parse_program(_read_text(path), file=str(path), name=path.stem, base_text=base_text)


def _read_text(path: Path) -> str:
    """The text of a program file, read as :func:`read_program` says."""
    try:
        # O_NONBLOCK: opening a FIFO must not wait for a writer.
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
        with os.fdopen(fd, "rb") as fh:
            st = os.fstat(fh.fileno())
            if not stat.S_ISREG(st.st_mode):
                raise ProgramError(f"{path}: not a regular file", file=str(path))
            if st.st_size > MAX_PROGRAM_BYTES:
                raise _too_big(path)
            raw = fh.read(MAX_PROGRAM_BYTES + 1)
        if len(raw) > MAX_PROGRAM_BYTES:
            raise _too_big(path)
        text = raw.decode("utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ProgramError(f"{path}: cannot read program: {exc}", file=str(path)) from None
    return text


def _too_big(path: Path) -> ProgramError:
    return ProgramError(
        f"{path}: program file is larger than {MAX_PROGRAM_BYTES // 1024} KiB: refused",
        file=str(path),
    )


def _search_dirs(dirs: Iterable[Path | str]) -> list[Path]:
    out = [Path(d) for d in dirs]
    if BUILTIN_DIR not in out:
        out.append(BUILTIN_DIR)
    return out


def _is_file(path: Path) -> bool:
    """``path.is_file()``, false also where the answer is an error (a directory we may not
    search, a name too long)."""
    try:
        return path.is_file()
    except OSError:
        return False


def _stems(directory: Path) -> list[str]:
    try:
        return [p.stem for p in directory.glob("*.toml")] if directory.is_dir() else []
    except OSError:
        return []


def load_program(name_or_path: str | Path, dirs: Iterable[Path | str] = ()) -> Program:
    """Load a program by name (searched in ``dirs``, then the built-ins) or by file path.

    A user program in ``dirs`` with a built-in's name replaces the built-in. Raises
    :class:`~device.exc.ProgramError` when the program is missing or invalid, its name
    is longer than :data:`MAX_NAME_CHARS` or its file larger than :data:`MAX_PROGRAM_BYTES`.
    """
    text = str(name_or_path)
    if "\0" in text:
        raise ProgramError(f"{text!r}: a program name cannot hold a NUL", key="program")
    as_path = Path(text)
    if isinstance(name_or_path, Path) or "/" in text or text.endswith(".toml"):
        if not _is_file(as_path):
            raise ProgramError(f"{text[:200]}: no such program file", file=text)
        return read_program(as_path)
    _check_name(text)
    return _find_program(text, _search_dirs(dirs))


def _check_name(text: str) -> None:
    """Raise :class:`ProgramError` unless ``text`` is 1 to :data:`MAX_NAME_CHARS` long."""
    if not text or len(text) > MAX_NAME_CHARS:
        raise ProgramError(
            f"{text[:MAX_NAME_CHARS]!r}...: a program name has 1 to {MAX_NAME_CHARS} characters"
            if text
            else "a program name cannot be empty",
            key="program",
        )


def _find_program(name: str, search: list[Path]) -> Program:
    """The program ``name`` from the first of ``search`` holding it; an error listing the
    known names when none does."""
    for directory in search:
        candidate = directory / f"{name}.toml"
        if _is_file(candidate):
            return read_program(candidate)
    known = sorted({stem for d in search for stem in _stems(d)})
    raise ProgramError(
        f"no program named {name!r} (known: {', '.join(known) or 'none'})", key="program"
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
        for path in sorted(directory / f"{stem}.toml" for stem in _stems(directory)):
            try:
                program = read_program(path)
            except ProgramError as exc:
                log.warning("skipping program: %s", exc)
                if errors is not None:
                    errors.append(exc)
                continue
            seen.setdefault(program.name, program)
    return [seen[name] for name in sorted(seen)]
