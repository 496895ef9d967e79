"""The rooms' import rules of docs/architecture.md, checked on the code itself.

Every module of ``device/`` is parsed (``ast``, nothing imported) and each import of ours,
at the top or inside a function, must be one its room may make. The table below is the one
in docs/architecture.md ("Rooms"); a test checks that the two agree.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DEVICE = ROOT / "device"

#: Modules at the package root, each its own small room.
ROOT_MODULES = {"__init__", "__main__", "exc", "logsetup"}

#: The rooms the application core (and the command line above it) wires together.
_CORE = {
    "config", "console", "controls", "drivers", "heart", "music", "sched", "sim", "sound",
    "store", "therapy",
}  # fmt: skip

#: Room -> the rooms (or single modules, ``room.module``) it may import, besides itself,
#: ``device`` (the product name and version) and ``exc`` (the one exception tree).
MAY_IMPORT: dict[str, set[str]] = {
    "dsp": set(),
    "heart": {"dsp"},
    "sound": {"dsp", "music.composer"},
    "music": {
        "dsp",
        "sound.swell",
        "sound.targets",
        "sound.tuning",
        "store.permissions",
        "therapy.bandit",
    },
    "therapy": {"music.composer", "sound.targets", "store.keys"},
    "store": set(),
    "config": {"store.atomic", "store.location", "therapy.program"},
    "drivers": {"heart.samples", "config.schema"},
    "controls": {"drivers"},
    "sim": {"drivers", "heart.analysis", "sound.targets"},
    "sched": set(),
    "console": {
        "box.api",
        "box.session_start",
        "config",
        "store.atomic",
        "store.rr",
        "therapy.program",
    },
    "box": _CORE,
    "cli": (_CORE - {"controls"}) | {"box", "logsetup"},
    "__main__": {"cli"},
    "logsetup": set(),
    "exc": set(),
    "__init__": set(),
}


def room_of(path: Path) -> str:
    """The room of a module file: its folder under ``device/``, or the module at the root."""
    rel = path.relative_to(DEVICE).with_suffix("").parts
    return rel[0]


def imports_of(path: Path) -> list[tuple[int, str]]:
    """``(line, module)`` of every import of ours in ``path`` (``device.x.y`` -> ``x.y``)."""
    found: list[tuple[int, str]] = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        names: list[str] = []
        if isinstance(node, ast.ImportFrom):
            assert node.level == 0, f"{path}:{node.lineno}: relative import"
            if node.module == "device":
                names = [f"device.{a.name}" for a in node.names]
            elif node.module is not None:
                names = [node.module]
        elif isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        for name in names:
            if name == "device" or name.startswith("device."):
                found.append((node.lineno, name.removeprefix("device").lstrip(".")))
    return found


def allowed(room: str, target: str) -> bool:
    """May a module of ``room`` import ``target`` (``x.y``, without ``device.``)?"""
    if not target or target in ("PRODUCT", "__version__"):
        return True  # ``from device import PRODUCT, __version__``
    head = target.split(".")[0]
    if head in (room, "exc"):
        return True
    rules = MAY_IMPORT[room]
    return head in rules or ".".join(target.split(".")[:2]) in rules


def modules() -> list[Path]:
    return sorted(DEVICE.rglob("*.py"))


def test_every_room_has_a_rule() -> None:
    rooms = {room_of(p) for p in modules()}
    assert rooms <= set(MAY_IMPORT), f"rooms without an import rule: {rooms - set(MAY_IMPORT)}"


@pytest.mark.parametrize("path", modules(), ids=lambda p: str(p.relative_to(DEVICE)))
def test_imports_follow_the_room_table(path: Path) -> None:
    room = room_of(path)
    bad = [f"line {n}: device.{t}" for n, t in imports_of(path) if not allowed(room, t)]
    assert not bad, f"{path.relative_to(ROOT)} ({room}/) may not import: {', '.join(bad)}"


def test_signal_code_knows_no_hardware_and_the_store_computes_nothing() -> None:
    """The two rules the first re-layout found broken, spelled out."""
    for room in ("dsp", "heart", "sound"):
        assert "drivers" not in MAY_IMPORT[room]
    assert not MAY_IMPORT["store"] & {"dsp", "heart", "sound", "music"}
    assert not MAY_IMPORT["dsp"]


def test_the_checker_catches_a_broken_rule(tmp_path: Path) -> None:
    bad = tmp_path / "x.py"
    bad.write_text("def f():\n    from device.drivers.i2c import open_bus\n")
    assert imports_of(bad) == [(2, "drivers.i2c")]
    assert not allowed("heart", "drivers.i2c") and not allowed("dsp", "heart.beats")
    assert not allowed("store", "music.analysis") and allowed("box", "drivers.i2c")


def _doc_table() -> dict[str, set[str]]:
    """The "may import" column of the rooms table in docs/architecture.md."""
    text = (ROOT / "docs" / "architecture.md").read_text()
    table: dict[str, set[str]] = {}
    for line in text.splitlines():
        m = re.match(r"\| `(?:device/)?([\w]+)/?` \|[^|]*\|([^|]*)\|", line)
        if m:
            may = m.group(2)
            table[m.group(1)] = set(re.findall(r"`([\w.]+)`", may))
    return table


def test_the_docs_show_the_same_table() -> None:
    table = _doc_table()
    for room, rules in MAY_IMPORT.items():
        if room in ROOT_MODULES:
            continue
        assert room in table, f"docs/architecture.md has no row for {room}/"
        assert table[room] == rules, f"docs/architecture.md, {room}/: {table[room]} != {rules}"
