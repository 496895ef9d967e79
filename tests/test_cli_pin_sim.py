"""A technician finds the simulated box's state and PIN; no PIN is made up for a folder
that holds no box (#23.9)."""

from __future__ import annotations

import io
import os
from pathlib import Path

import pytest

from device.box.app import Box, RunOptions
from device.cli import main
from device.config import Config
from device.console.auth import PinStore
from device.console.identity import read_identity

needs_root = pytest.mark.skipif(os.geteuid() != 0, reason="bedside pin runs as root only")


def test_a_sim_run_says_where_its_state_is(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "xdg"))
    state = tmp_path / "state"
    status = main(["run", "--sim", "--audio", "null", "--speed", "max", "--duration", "1",
                   "--status", "none", "--state-dir", str(state)])  # fmt: skip
    assert status == 0
    err = capsys.readouterr().err
    assert f"simulated box: state in {state} (kept)" in err


def test_a_sim_box_with_a_console_prints_its_pin(tmp_path: Path) -> None:
    from device.cli.run import sim_notice

    cfg = Config.defaults().with_value("service.auto_start", False)
    opts = RunOptions(sim=True, audio="null", speed=None, status="none", serial="loop://")
    with Box(cfg, opts, status_out=io.StringIO()) as box:
        line = sim_notice(box, show_pin=True)
        logged = sim_notice(box, show_pin=False)
        assert box.state_dir is not None
        pin = PinStore(box.state_dir, read_identity().secret_id).default_pin()
    assert f"state in {box.state_dir} (a temporary folder, removed at exit)" in line
    assert f"console service PIN {pin}" in line
    # Where stderr is a log, not a terminal, the PIN stays out: it says how to get it.
    assert pin not in logged
    assert f"bedside pin show-default --state-dir {box.state_dir}" in logged


@needs_root
@pytest.mark.parametrize("command", ["show-default", "reset-default"])
def test_pin_refuses_a_folder_that_does_not_exist_and_creates_nothing(
    tmp_path: Path, command: str, capsys: pytest.CaptureFixture[str]
) -> None:
    typo = tmp_path / "typo-dir"
    assert main(["pin", command, "--state-dir", str(typo)]) == 2
    err = capsys.readouterr()
    assert not typo.exists()
    assert "PIN:" not in err.out
    assert err.err.startswith(f"bedside pin {command}: error: no box keeps its state in {typo}")


@needs_root
def test_pin_refuses_a_folder_that_holds_no_box(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["pin", "show-default", "--state-dir", str(tmp_path)]) == 2
    assert list(tmp_path.iterdir()) == []
    assert "holds no box's state" in capsys.readouterr().err
