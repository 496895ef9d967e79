"""Every command formats numpy values as plain numbers (issue 16 item 11).

The box's figures come out of numpy: ``STATUS?``, ``SENSOR?`` and ``!HR`` once printed
``hr=np.float64(66.506)`` and ``bedside ctl --json`` passed that on as a string. Here a box
whose every answer is a numpy value is driven through every command of the set.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from types import SimpleNamespace
from typing import TYPE_CHECKING, cast

import numpy as np
import pytest

from device.box.api import OffLoop
from device.cli.ctl import Result, to_json
from device.console.auth import PinAuth
from device.console.commands import COMMANDS, Console
from device.console.lines import format_cell, format_value
from device.console.protocol import parse_pairs, parse_request
from tests.support.console_doubles import FakeClock, answer

if TYPE_CHECKING:
    from device.box.api import BoxApi

NUMPY_VALUES = {
    "hr": np.float64(66.50612),
    "quality": np.float32(0.9),
    "count": np.int64(3),
    "contact": np.bool_(True),
    "rmssd": np.float64("nan"),
    "cap": np.float64("inf"),
    "floor": np.float32("-inf"),
    "small": np.uint8(7),
    "led_ma": np.array([7.2, 6.4], np.float32),
    "zero_d": np.array(1.5),
}
WANT = {
    "hr": "66.506",
    "quality": "0.9",
    "count": "3",
    "contact": "true",
    "rmssd": "nan",
    "cap": "inf",
    "floor": "-inf",
    "small": "7",
    "led_ma": "7.2,6.4",
    "zero_d": "1.5",
}
#: An unquoted value: a number, a word or a comma-separated list of them.
PLAIN = re.compile(r"^[A-Za-z0-9_.:/+\-?@%,]+$")
NUMPY_REPR = re.compile(r"np\.|float(16|32|64)\(|u?int(8|16|32|64)\(|bool_|array\(")


class NumpyBox:
    """A box whose every figure is a numpy value."""

    def __init__(self) -> None:
        self.volume = np.float64(-12.0)
        self.cap = np.float64(-6.0)
        self.config: dict[str, object] = {
            "audio.volume_db": np.float64(-12.0),
            "audio.fade_in_s": np.int64(5),
        }

    def status(self) -> dict[str, object]:
        return {
            "state": np.str_("playing"),
            "program": "relax",
            "section": "settle",
            "elapsed_s": np.float64(12.25),
            "remaining_s": np.float32(587.75),
            "volume_db": self.volume,
            "cap_dbfs": self.cap,
            "level_db": np.float32(-14.2),
            "sensor": {"ok": np.bool_(False)},
            **NUMPY_VALUES,
        }

    def programs(self) -> OffLoop[list[dict[str, object]]]:
        return OffLoop(
            lambda: [{"name": "relax", "duration_s": np.float64(1800.0), "description": "calm"}]
        )

    def prepare_session(self, program: str | None, minutes: float | None) -> OffLoop[object]:
        return OffLoop(lambda: program, lambda _plan: SimpleNamespace(session_id=np.int64(4)))

    def start_session(self, program: object, minutes: float | None) -> object:
        return np.int64(4)

    def stop_session(self, reason: str) -> None:
        return None

    def set_volume_db(self, db: float) -> None:
        self.volume = np.float64(db)

    def set_cap_dbfs(self, db: float) -> None:
        self.cap = np.float64(db)

    def sensor_info(self) -> dict[str, object]:
        return {"present": np.bool_(True), "rate": np.int64(100), **NUMPY_VALUES}

    def set_config(self, key: str, text: str) -> OffLoop[dict[str, object]]:
        def apply(value: dict[str, object]) -> dict[str, object]:
            self.config.update(value)
            return self.config

        return OffLoop(lambda: {key: np.float64(float(text))}, apply)

    def save_config(self) -> OffLoop[str]:
        return OffLoop(lambda: "/tmp/x.toml")

    def config_defaults(self) -> None:
        return None

    def events(self, n: int) -> list[dict[str, object]]:
        return [{"t": np.float64(1.5), "kind": "start", "detail": NUMPY_VALUES["hr"]}] * n

    def sessions(self) -> OffLoop[list[dict[str, object]]]:
        return OffLoop(
            lambda: [{"id": np.int64(1), "mean_hr": np.float32(61.25), "ok": np.bool_(True)}]
        )

    def export_rows(self, sid: int) -> OffLoop[list[dict[str, object]]]:
        return OffLoop(
            lambda: [
                {"t": np.float64(0.0), "hr": None, "contact": np.bool_(False)},
                {"t": np.float64(1.0), "hr": np.float32(58.5), "contact": np.bool_(True)},
            ]
        )

    def profile(self) -> OffLoop[dict[str, object]]:
        return OffLoop(lambda: {"profile": "default", "resonance_bpm": np.float64(5.72)})

    def selftest(self) -> OffLoop[list[dict[str, object]]]:
        return OffLoop(
            lambda: [{"check": "audio", "ok": np.bool_(True), "detail": np.float64(0.25)}]
        )

    def rate(self, kind: str) -> None:
        return None

    def music_describe(self) -> dict[str, object]:
        return {"track": "rain.flac", "n": np.int64(1), "tempo_bpm": np.float64(68.21)}

    def music_listing(self) -> list[dict[str, object]]:
        return [{"n": np.int64(1), "name": "rain.flac", "lufs": np.float32(-14.1)}]

    def music_play(self, n: int) -> dict[str, object]:
        return {"n": np.int64(n), "name": "rain.flac"}

    def music_scan(self) -> dict[str, object]:
        return {"scanning": "/music", "tracks": np.int64(3)}

    def erase_userdata(self) -> OffLoop[dict[str, object]]:
        return OffLoop(lambda: {"sessions": np.int64(2)})

    def request_restart(self) -> None:
        return None


LINES = [
    "HELP",
    "ID?",
    "STATUS?",
    "PING",
    "ECHO OFF",
    "SESSION START relax 5",
    "SESSION STOP",
    "PROG LIST?",
    "PROG?",
    "VOL?",
    "VOL SET -20",
    "VOL CAP SET -10",
    "SENSOR?",
    "STREAM HR ON",
    "CFG? audio.volume_db",
    "CFG SET audio.fade_in_s 5",
    "CFG SAVE",
    "CFG DEFAULTS",
    "LOG? 3",
    "SESSIONS?",
    "EXPORT 1",
    "PROFILE?",
    "SELFTEST",
    "RATE LIKE",
    "MUSIC?",
    "MUSIC LIST",
    "MUSIC PLAY 1",
    "MUSIC SCAN",
    "ERASE USERDATA",
    "RESTART",
    "ERR?",
    "LOGOUT",
]
#: Commands answered through the deferred path (PIN hashing); their replies hold no figures.
DEFERRED = {"AUTH", "PIN SET"}


@pytest.fixture
def console(tmp_path: Path) -> Console:
    clock = FakeClock()
    auth = PinAuth(tmp_path, clock=clock, identity="m:1", scrypt_n=2**10)
    assert auth.login(auth.store.default_pin()) == "ok"
    # Not a BoxApi on purpose: every figure it gives is a numpy value, as the parts give them.
    return Console(cast("BoxApi", NumpyBox()), auth, clock=clock, serial="NP")


def test_format_value_prints_numpy_as_plain_numbers() -> None:
    for key, value in NUMPY_VALUES.items():
        assert format_value(value) == WANT[key], key
    assert format_cell(np.bool_(True)) == "true" and format_cell(np.float32(58.5)) == "58.5"
    assert format_cell(None) == ""


def test_every_command_prints_plain_values(console: Console) -> None:
    covered = set()
    for text in LINES:
        request = parse_request(text)
        cmd, _ = console.lookup(request)
        assert cmd is not None
        covered.add(cmd.name)
        reply = answer(console, text, 10.0)
        assert reply.code == 0, (text, reply.message)
        for line in reply.lines:
            assert not NUMPY_REPR.search(line), (text, line)
            if cmd.name == "EXPORT":
                continue
            for key, value in parse_pairs(line).items():
                quoted = f'{key}="' in line
                assert quoted or PLAIN.match(value), (text, key, value)
        if cmd.name in ("STATUS?", "SENSOR?"):
            (line,) = reply.lines
            got = parse_pairs(line)
            assert {k: got[k] for k in WANT} == WANT
    assert covered | DEFERRED == {c.name for c in COMMANDS}
    (hr,) = [x for x in console.tick(11.0) if x.startswith("!HR")]
    assert hr == "!HR t=11.0 bpm=66.506 q=0.9 contact=true"


def test_export_cells_are_plain(console: Console) -> None:
    reply = answer(console, "EXPORT 1", 1.0)
    assert list(reply.lines) == ["t,hr,contact", "0.0,,false", "1.0,58.5,true"]


def test_ctl_json_gets_numbers_as_numbers(console: Console) -> None:
    reply = console.execute(parse_request("STATUS?"), 1.0)
    (row,) = to_json(Result("STATUS?", list(reply.lines), "OK"))
    assert row["hr"] == 66.506 and row["quality"] == 0.9 and row["count"] == 3
    assert row["contact"] is True and row["rmssd"] is None and row["cap"] == "inf"
    json.dumps(row, allow_nan=False)  # valid JSON: no NaN or Infinity
    export = answer(console, "EXPORT 1", 1.0)
    rows = to_json(Result("EXPORT 1", list(export.lines), "OK"))
    assert rows == [
        {"t": 0.0, "hr": None, "contact": False},
        {"t": 1.0, "hr": 58.5, "contact": True},
    ]
