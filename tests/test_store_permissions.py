"""The heart data is private: state directory 0700 (0750 group bedside), sessions.db 0600 (0640)."""

from __future__ import annotations

import grp
import os
import stat
from pathlib import Path

import pytest

from device.store import permissions
from device.store.sessions import Store


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.fixture
def loose_umask():
    old = os.umask(0o022)  # a technician's shell under sudo
    yield
    os.umask(old)


@pytest.fixture
def no_group(monkeypatch):
    monkeypatch.setattr(permissions, "STORE_GROUP", "bedside-no-such-group")


def test_new_state_dir_and_store_are_owner_only(tmp_path, loose_umask, no_group):
    state = tmp_path / "var" / "lib" / "bedside"
    with Store(state / "sessions.db") as store:
        sid = store.start_session("sleep")
        store.add_rows(sid, [{"t": 0.0, "hr": 60.0}])
        store.flush()
        assert mode(state) == 0o700
        for name in ("sessions.db", "sessions.db-wal", "sessions.db-shm"):
            assert mode(state / name) == 0o600, name


def test_an_old_world_readable_store_is_tightened(tmp_path, loose_umask, no_group):
    state = tmp_path / "bedside"
    state.mkdir(mode=0o755)
    with Store(state / "sessions.db"):
        pass
    os.chmod(state / "sessions.db", 0o644)
    os.chmod(state, 0o755)
    with Store(state / "sessions.db"):
        assert mode(state) == 0o700 and mode(state / "sessions.db") == 0o600


def test_a_directory_that_is_not_the_stores_is_left_alone(tmp_path, loose_umask, no_group):
    home = tmp_path / "home"
    home.mkdir(mode=0o755)
    (home / "notes.txt").write_text("mine")
    with Store(home / "sessions.db"):
        assert mode(home) == 0o755  # not locked: it holds other files
        assert mode(home / "sessions.db") == 0o600  # the data is private all the same
    permissions.prepare_state_dir(home, owned=True)  # the Box says it is the state dir
    assert mode(home) == 0o700


def test_a_state_dir_with_only_the_pin_is_tightened(tmp_path, loose_umask, no_group):
    state = tmp_path / "bedside"
    state.mkdir(mode=0o755)
    (state / "console_pin.json").write_text("{}")
    (state / "console_pin.secret").write_bytes(b"k" * 32)
    with Store(state / "sessions.db"):
        assert mode(state) == 0o700


def test_group_bedside_gives_0750_and_0640(tmp_path, loose_umask, monkeypatch):
    group = grp.getgrgid(os.getgid()).gr_name  # a group this process is in
    monkeypatch.setattr(permissions, "STORE_GROUP", group)
    state = tmp_path / "bedside"
    with Store(state / "sessions.db") as store:
        store.start_session("sleep")
        store.flush()
        assert mode(state) == 0o750 and state.stat().st_gid == os.getgid()
        assert mode(state / "sessions.db") == 0o640


def test_caller_umask_is_read_without_changing_it():
    old = os.umask(0o027)
    try:
        assert permissions.caller_umask() == 0o027
        assert os.umask(0o027) == 0o027
    finally:
        os.umask(old)
