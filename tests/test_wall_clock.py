"""The box says when its wall clock is not set (issue 11, the lab's ``clock`` scenario).

A Pi with no RTC and no network boots with a clock months or years in the past; the status
key ``clock`` and one journal line say so, and sessions are still recorded in order.
"""

from __future__ import annotations

import io
import logging
from datetime import UTC, datetime

import pytest

import device.box.health as health_module
from device.box.app import Box, RunOptions
from device.box.wall_clock import CLOCK_FLOOR, WallClock
from device.config import Config

YEARS_AGO = datetime(2023, 3, 5, tzinfo=UTC).timestamp()


class Hands:
    """A wall clock a test sets by hand (s since the epoch)."""

    def __init__(self, t: float) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t


def test_a_clock_before_the_release_is_not_set(caplog: pytest.LogCaptureFixture) -> None:
    hands = Hands(YEARS_AGO)
    wall = WallClock(hands)
    with caplog.at_level(logging.WARNING, logger="device.box.wall_clock"):
        assert wall.status() == {"clock": "not set"}
        assert wall.status() == {"clock": "not set"}
        hands.t = CLOCK_FLOOR + 86400.0
        assert wall.status() == {"clock": "set"}
        assert wall.status() == {"clock": "set"}
    messages = [r.getMessage() for r in caplog.records]
    assert len(messages) == 2, messages  # once per change, not at every status
    assert messages[0].startswith("clock not set: it reads 2023-03-05 00:00 UTC")
    assert messages[1].startswith("clock set: it reads 2026-11-02")


def test_a_set_clock_logs_nothing(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="device.box.wall_clock"):
        assert WallClock(Hands(CLOCK_FLOOR)).is_set()
    assert caplog.records == []


def test_box_status_and_journal_say_the_clock_is_not_set(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr(health_module, "WallClock", lambda: WallClock(Hands(YEARS_AGO)))
    cfg = Config.defaults().with_value("service.auto_start", True)
    opts = RunOptions(sim=True, audio="null", speed=None, status="none", duration_s=3.0)
    journal = caplog.at_level(logging.WARNING, logger="device.box.wall_clock")
    with journal, Box(cfg, opts, status_out=io.StringIO()) as box:
        box.run()
        assert box.status()["clock"] == "not set"
        kinds = [e["kind"] for e in box.events(50)]
    assert "clock-not-set" in kinds
    said = [r for r in caplog.records if r.getMessage().startswith("clock not set")]
    assert len(said) == 1


def test_box_status_says_a_set_clock_is_set() -> None:
    cfg = Config.defaults().with_value("service.auto_start", False)
    opts = RunOptions(sim=True, audio="null", speed=None, status="none")
    with Box(cfg, opts, status_out=io.StringIO()) as box:
        assert box.status()["clock"] == "set"  # this machine's clock is after the release
