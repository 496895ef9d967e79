"""``CFG SAVE``: write the running configuration into its file, keeping what a person wrote.

The file's comments, key order, blank lines and permission bits survive a save (tomlkit
round-trips TOML with its trivia; it is imported only here, when saving, because its import
costs about 14 ms on a PC and several times that on a Pi, and a start does not need it).
Only values that differ from the file change; keys the file does not have are added (when
they differ from the defaults) to their section; keys the schema does not know, which the
box refused when it read the file, are dropped so that the saved file passes
``config check``. The write is atomic (:func:`device.store.atomic.atomic_write_text`).
"""

from __future__ import annotations

import contextlib
import os
import stat
from pathlib import Path
from typing import TYPE_CHECKING, Any

from device.config.schema import SCHEMA, Key
from device.exc import ConfigError
from device.store.atomic import atomic_write_text

if TYPE_CHECKING:
    from device.config import Config

#: Permission bits of a configuration file that did not exist before.
NEW_FILE_MODE = 0o644


def save_config_file(cfg: Config, path: Path) -> None:
    """Write ``cfg`` into ``path`` (see the module doc); the old file's mode is kept."""
    import tomlkit

    old_text: str | None
    try:
        st = path.stat()
        old_text = path.read_text(encoding="utf-8").lstrip("\ufeff")
    except FileNotFoundError:
        st, old_text = None, None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: cannot read before saving: {exc}", file=str(path)) from None
    doc: Any
    try:
        doc = tomlkit.parse(old_text) if old_text is not None else tomlkit.document()
    except Exception:  # tomlkit raises its own ParseError and also ValueError/RecursionError
        doc = tomlkit.document()  # a file that is not TOML has nothing to keep
    _merge(doc, cfg, tomlkit)
    mode = stat.S_IMODE(st.st_mode) if st is not None else NEW_FILE_MODE
    atomic_write_text(path, tomlkit.dumps(doc), mode=mode)
    if st is not None:
        with contextlib.suppress(OSError):
            if (st.st_uid, st.st_gid) != (os.getuid(), os.getgid()) and os.getuid() == 0:
                os.chown(path, st.st_uid, st.st_gid)


def _merge(doc: Any, cfg: Config, tomlkit: Any) -> None:
    """Bring ``doc`` to ``cfg``'s values, changing as little of the text as possible."""
    for name in [n for n in doc if n not in SCHEMA or not isinstance(doc[n], dict)]:
        del doc[name]
    for section, keys in SCHEMA.items():
        _merge_section(doc, section, keys, cfg, tomlkit)


def _merge_section(doc: Any, section: str, keys: dict[str, Key], cfg: Config, tomlkit: Any) -> None:
    """Bring one section of ``doc`` to ``cfg``: unknown keys dropped, each key kept, set or
    added (a key at its default is not added; the table is made when the first one is)."""
    table = doc.get(section)
    for name in [n for n in (table or {}) if n not in keys]:
        del table[name]
    for name, key in keys.items():
        value = cfg.get(f"{section}.{name}")
        if table is not None and name in table:
            _keep_or_set(table, name, value)
        elif value != key.default:
            if table is None:
                table = tomlkit.table()
                doc.add(section, table)
            table.add(name, value)


def _keep_or_set(table: Any, name: str, value: object) -> None:
    """Set ``table[name]`` to ``value`` unless it holds it already (its text is kept then)."""
    if table.item(name).unwrap() != value:
        table[name] = value
