"""Configuration: a TOML file validated against a schema kept as data.

Search order: ``--config FILE``, ``$BEDSIDE_CONFIG``, ``/etc/bedside/config.toml``, then the
built-in defaults. Every value is checked at start; an error names the file, ``section.key``,
the value found and what is allowed, and unknown sections or keys are errors (they are
almost always typos). The same validator checks values set from the console
(``CFG SET``). :func:`load_config_lenient` is the service's fallback: it keeps every valid
key of a broken file. :func:`save_config` keeps the file's comments, order and mode.

The schema lives in :mod:`device.config.schema`, the checks in :mod:`device.config.rules`,
the comment-keeping save in :mod:`device.config.save`.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping
from pathlib import Path

from device.config.rules import (
    check_program,
    check_together,
    check_value,
    read_toml,
    split_key,
    where,
)
from device.config.schema import SCHEMA, Key, format_value
from device.exc import ConfigError

__all__ = [
    "ENV_CONFIG",
    "SCHEMA",
    "SYSTEM_CONFIG",
    "Config",
    "Key",
    "Section",
    "find_config",
    "load_config",
    "load_config_lenient",
    "parse_config",
    "parse_config_lenient",
    "parse_value_text",
    "save_config",
]

#: The system-wide configuration file read when nothing else is named.
SYSTEM_CONFIG = Path("/etc/bedside/config.toml")
#: Environment variable naming a configuration file.
ENV_CONFIG = "BEDSIDE_CONFIG"


class Section(Mapping[str, object]):
    """Read-only view of one configuration section, with attribute access."""

    __slots__ = ("_name", "_values")

    def __init__(self, name: str, values: dict[str, object]) -> None:
        self._name = name
        self._values = values

    def __getattr__(self, key: str) -> object:
        try:
            return self._values[key]
        except KeyError:
            raise AttributeError(f"no key {self._name}.{key}") from None

    def __getitem__(self, key: str) -> object:
        return self._values[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._values)

    def __len__(self) -> int:
        return len(self._values)

    def __repr__(self) -> str:
        return f"<Section [{self._name}] {self._values!r}>"


class Config:
    """A validated configuration: every key of :data:`SCHEMA` with its effective value.

    Immutable: :meth:`with_value` returns a new object. ``cfg.audio.volume_db`` and
    ``cfg.get("audio.volume_db")`` read a value; ``source`` names the file it came from
    (``None`` for the built-in defaults).
    """

    def __init__(self, values: dict[str, dict[str, object]], source: str | None = None) -> None:
        self._values = values
        self.source = source

    @classmethod
    def defaults(cls) -> Config:
        """Return the built-in defaults."""
        return cls({s: {k: key.default for k, key in keys.items()} for s, keys in SCHEMA.items()})

    def __getattr__(self, section: str) -> Section:
        if section.startswith("_"):
            raise AttributeError(section)
        try:
            return Section(section, self._values[section])
        except KeyError:
            raise AttributeError(f"no config section [{section}]") from None

    def get(self, dotted: str) -> object:
        """Return the value of ``section.key``; ``ConfigError`` if there is no such key."""
        section, key = split_key(dotted, self.source)
        return self._values[section][key]

    def items(self) -> Iterator[tuple[str, object]]:
        """Yield ``("section.key", value)`` for every key, in schema order."""
        for section, keys in SCHEMA.items():
            for key in keys:
                yield f"{section}.{key}", self._values[section][key]

    def with_value(self, dotted: str, value: object, *, file: str | None = None) -> Config:
        """Return a copy with ``section.key`` set, validated as the file's values are.

        A string ``value`` is parsed as a TOML value (``-12.5``, ``true``, ``"a b"``); a bare
        word that is not TOML is taken as a string, so ``CFG SET audio.output headphones``
        works at a terminal.
        """
        section, key = split_key(dotted, file)
        if isinstance(value, str):
            value = parse_value_text(value)
        checked = check_value(section, key, value, file)
        values = {s: dict(v) for s, v in self._values.items()}
        values[section][key] = checked
        check_together(values, file)
        if section == "therapy" and key in ("program", "programs_dir"):
            check_program(values, file)
        return Config(values, self.source)

    def to_toml(self, *, commented: bool = False, only_changed: bool = False) -> str:
        """Render as TOML; ``commented`` adds each key's meaning and allowed values."""
        lines: list[str] = []
        if commented:
            lines += [
                "# Bedside configuration. Every key is optional: a missing key takes the",
                "# default shown. Check a file with: bedside config check FILE",
                "",
            ]
        for section, keys in SCHEMA.items():
            body: list[str] = []
            for name, key in keys.items():
                value = self._values[section][name]
                if only_changed and value == key.default:
                    continue
                if commented:
                    service = " Service key (PIN)." if key.service else ""
                    body.append(f"# {key.doc} Allowed: {key.allowed()}.{service}")
                body.append(f"{name} = {format_value(value)}")
            if body:
                lines.append(f"[{section}]")
                lines += body
                lines.append("")
        return "\n".join(lines)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Config) and self._values == other._values

    def __repr__(self) -> str:
        return f"<Config from {self.source or 'built-in defaults'}>"


def parse_value_text(text: str) -> object:
    """Parse console or command-line text as a TOML value; a bare word is a string."""
    try:
        return read_toml(f"v = {text}", None)["v"]
    except ConfigError:
        return text


def _tables(data: dict[str, object], file: str | None) -> Iterator[tuple[str, str, object]]:
    """Yield ``(section, key, value)`` of a parsed file; unknown names are errors."""
    for section, body in data.items():
        if section not in SCHEMA:
            raise ConfigError(
                f"{where(file)}unknown section [{format_value(section, limit=40)[1:-1]}] "
                f"(sections: {', '.join(SCHEMA)})",
                file=file,
                key=section,
            )
        if not isinstance(body, dict):
            raise ConfigError(
                f"{where(file)}{section} must be a [section] table", file=file, key=section
            )
        for name, value in body.items():
            split_key(f"{section}.{name}", file)
            yield section, name, value


def parse_config(text: str, *, file: str | None = None) -> Config:
    """Validate TOML text; return the effective configuration (defaults filled in).

    Checks every key, the rules between keys and that the configured program exists and
    loads (from ``therapy.programs_dir`` or the built-ins).

    :raises ConfigError: one line naming ``section.key``, for the first problem found.
    """
    data = read_toml(text, file)
    values = Config.defaults()._values
    for section, name, value in _tables(data, file):
        values[section][name] = check_value(section, name, value, file)
    check_together(values, file)
    check_program(values, file)
    return Config(values, file)


def parse_config_lenient(text: str, *, file: str | None = None) -> tuple[Config, list[ConfigError]]:
    """Like :func:`parse_config`, but keep every valid key and replace only the bad ones.

    Returns the configuration and the errors found (empty for a good file). The output cap
    never rises because of a broken file: a cap out of range is clamped into range, and
    the volume is held at most at the cap. Text that is not TOML is read statement by
    statement, so its valid lines still count.
    """
    from device.config.lenient import lenient_values

    values, errors = lenient_values(text, file, Config.defaults()._values)
    return Config(values, file), errors


def find_config(explicit: str | None = None, env: Mapping[str, str] | None = None) -> Path | None:
    """Return the configuration file to read, following the search order, or ``None``.

    A file named explicitly (``--config`` or ``$BEDSIDE_CONFIG``) must exist.
    """
    env = os.environ if env is None else env
    for named, how in ((explicit, "--config"), (env.get(ENV_CONFIG), f"${ENV_CONFIG}")):
        if named:
            path = Path(named)
            if not path.is_file():
                raise ConfigError(
                    f"{named}: configuration file named by {how} does not exist", file=named
                )
            return path
    return SYSTEM_CONFIG if SYSTEM_CONFIG.is_file() else None


#: Largest configuration file read, in bytes (the commented default is about 6 KiB).
MAX_CONFIG_BYTES = 1 << 20


def read_config_text(path: str | os.PathLike[str]) -> str:
    """Read a configuration file as text, refusing one over :data:`MAX_CONFIG_BYTES`."""
    try:
        with open(path, "rb") as fh:
            raw = fh.read(MAX_CONFIG_BYTES + 1)
        if len(raw) > MAX_CONFIG_BYTES:
            raise ConfigError(
                f"{path}: larger than {MAX_CONFIG_BYTES // 1024} KiB: not a configuration file",
                file=str(path),
            )
        return raw.decode("utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: cannot read: {exc}", file=str(path)) from None


def load_config(explicit: str | None = None, env: Mapping[str, str] | None = None) -> Config:
    """Find, read and validate the configuration; defaults when there is no file."""
    path = find_config(explicit, env)
    if path is None:
        return Config.defaults()
    return parse_config(read_config_text(path), file=str(path))


def load_config_lenient(
    explicit: str | None = None, env: Mapping[str, str] | None = None
) -> tuple[Config, list[ConfigError]]:
    """The service's loader: never raises :class:`ConfigError`.

    Returns the configuration to run on and the errors found (empty when the file is
    good). A missing or unreadable file gives the defaults; a broken one keeps every valid
    key (:func:`parse_config_lenient`). ``Config.source`` names the file either way.
    """
    try:
        path = find_config(explicit, env)
    except ConfigError as exc:
        cfg = Config.defaults()
        cfg.source = exc.file
        return cfg, [exc]
    if path is None:
        return Config.defaults(), []
    from device.store.atomic import clean_stale_temps

    clean_stale_temps(path)  # a CFG SAVE killed mid-write left its temporary file
    try:
        text = read_config_text(path)
    except ConfigError as exc:
        cfg = Config.defaults()
        cfg.source = str(path)
        return cfg, [exc]
    return parse_config_lenient(text, file=str(path))


def save_config(cfg: Config, path: str | os.PathLike[str]) -> None:
    """Save ``cfg`` to ``path`` atomically, keeping the file's comments, order and mode.

    Refuses (``ConfigError``, nothing written) a configuration whose program does not
    exist. See :func:`device.config.save.save_config_file`.
    """
    from device.config.save import save_config_file

    check_program(cfg._values, None)
    save_config_file(cfg, Path(path))
