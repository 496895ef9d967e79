"""One definition of each thing (#21 item 5): target ranges, preference keys, state directory."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from device.sound.targets import CHECKS, PACER_RANGE, Level, Range, SoundTargets, validate_targets
from device.store.keys import bandit_key, resonance_key, tracks_key
from device.store.location import state_dir, state_dirs, user_state_dir
from device.therapy.program_model import NUMERIC_TARGETS, SESSION_TARGETS

DEVICE = Path(__file__).resolve().parents[1] / "device"


def string_constants(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    return {
        n.value for n in ast.walk(tree) if isinstance(n, ast.Constant) and isinstance(n.value, str)
    }


def test_a_program_may_ask_exactly_what_the_engine_plays() -> None:
    """Program files and the engine read one table: every bound a program may write plays."""
    assert set(NUMERIC_TARGETS) <= set(CHECKS) and "program_db" in SESSION_TARGETS
    for name, (low, high, _unit, _off) in NUMERIC_TARGETS.items():
        check = CHECKS[name]
        assert isinstance(check, Range | Level)
        for ok in (low, high):
            validate_targets(SoundTargets().with_changes(**{name: ok}))
        if isinstance(check, Range):
            assert (check.lo, check.hi) == (low, high)
            with pytest.raises(ValueError, match=name):
                validate_targets(SoundTargets().with_changes(**{name: high + 1.0}))
    assert NUMERIC_TARGETS["pacer_bpm"][:2] == PACER_RANGE == (4.5, 12.0)


def test_preference_keys_are_spelt_in_one_module() -> None:
    assert (bandit_key("a"), tracks_key("a"), resonance_key("a")) == (
        "bandit:a",
        "tracks:a",
        "resonance:a",
    )
    for path in DEVICE.rglob("*.py"):
        if path.name == "keys.py" and path.parent.name == "store":
            continue
        spelt = string_constants(path) & {"bandit:", "tracks:", "resonance:"}
        assert not spelt, f"{path}: preference key prefix {spelt} outside device/store/keys.py"


def test_the_state_directory_has_one_rule(monkeypatch, tmp_path: Path) -> None:
    asked: list[bool] = []

    def conf() -> str:
        asked.append(True)
        return "/var/lib/bedside"

    monkeypatch.delenv("STATE_DIRECTORY", raising=False)
    assert list(state_dirs(str(tmp_path), conf)) == [tmp_path] and not asked
    assert state_dir(None, conf) == Path("/var/lib/bedside")
    monkeypatch.setenv("STATE_DIRECTORY", f"{tmp_path}:/other")
    assert list(state_dirs(None, conf)) == [tmp_path, Path("/var/lib/bedside")]
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path))
    assert user_state_dir() == tmp_path / "bedside"
    for path in DEVICE.rglob("*.py"):
        if path.name == "location.py":
            continue
        read = string_constants(path) & {"STATE_DIRECTORY", "XDG_STATE_HOME"}
        assert not read, f"{path} computes the state directory itself ({read})"
