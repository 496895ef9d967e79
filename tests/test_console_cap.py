"""The cap brings the volume down with it, in the Box itself (issue 16, smaller ones).

``VOL CAP SET``, ``CFG SET audio.cap_dbfs`` and ``Box.set_cap_dbfs`` once failed when the cap
went below the present volume (the config refuses a volume above the cap); now the Box
lowers the volume in the same config update, and a refused cap changes nothing.
"""

from __future__ import annotations

import io
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from device.box.app import Box, RunOptions
from device.config import Config
from device.console.auth import PinAuth
from device.console.commands import Console
from device.exc import ConfigError
from tests.support.console_doubles import answer


@pytest.fixture
def box(tmp_path: Path) -> Iterator[Box]:
    cfg = Config.defaults().with_value("service.auto_start", False)
    opts = RunOptions(sim=True, audio="null", speed=None, status="none")
    with Box(cfg, opts, status_out=io.StringIO()) as b:
        yield b


@pytest.fixture
def console(box: Box, tmp_path: Path) -> Console:
    auth = PinAuth(tmp_path, clock=time.monotonic, identity="m:1", scrypt_n=2**10)
    assert auth.login(auth.store.default_pin()) == "ok"
    return Console(box, auth, serial="T")


def levels(box: Box) -> tuple[object, object, float, float]:
    cfg = box.config
    return (
        cfg.get("audio.volume_db"),
        cfg.get("audio.cap_dbfs"),
        box.engine.volume_db,
        box.engine.cap_dbfs,
    )


def test_box_cap_below_the_volume_lowers_the_volume(box: Box) -> None:
    box.set_volume_db(-20.0)
    assert levels(box) == (-20.0, -6.0, -20.0, -6.0)
    box.set_cap_dbfs(-30.0)
    assert levels(box) == (-30.0, -30.0, -30.0, -30.0)
    box.set_cap_dbfs(-10.0)  # a cap going up leaves the volume where it is
    assert levels(box) == (-30.0, -10.0, -30.0, -10.0)


def test_a_refused_cap_changes_nothing(box: Box) -> None:
    box.set_volume_db(-20.0)
    with pytest.raises(ConfigError, match=r"audio\.cap_dbfs"):
        box.set_cap_dbfs(-50.0)
    assert levels(box) == (-20.0, -6.0, -20.0, -6.0)


@pytest.mark.parametrize("line", ["VOL CAP SET -30", "CFG SET audio.cap_dbfs -30"])
def test_console_cap_commands_behave_the_same(box: Box, console: Console, line: str) -> None:
    box.set_volume_db(-20.0)
    reply = answer(console, line)
    assert reply.code == 0, reply.message
    assert levels(box) == (-30.0, -30.0, -30.0, -30.0)
    assert answer(console, "CFG DEFAULTS").code == 0
    assert levels(box) == (-12.0, -6.0, -12.0, -6.0)
