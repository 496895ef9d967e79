"""The contact detector on running statistics decides as the per-poll percentiles did.

``Reference`` is the detector as it was before issue 22 (a median and two percentiles of
the whole 3-s history at every poll); the running one must give the same levels and the same
verdicts, poll by poll, on a recording and on the simulated sensor, and must sort nothing
per poll.
"""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest

from device.drivers.contact import (
    CONTACT_OFF_S,
    CONTACT_ON_S,
    DC_OFF,
    DC_ON,
    DC_SATURATED,
    PI_OFF,
    PI_ON,
    ContactDetector,
)
from device.drivers.max30102 import FULL_SCALE
from device.drivers.running_stats import SampleHistory
from device.sim.max30102 import SimulatedMAX30102
from device.sim.pulse import PulseModel

DATA = Path(__file__).parent / "data" / "ppg" / "bidmc" / "bidmc_01_Signals.csv"


def _smooth(x: np.ndarray, rate_hz: float) -> np.ndarray:
    width = max(1, round(0.04 * rate_hz))
    if width == 1 or len(x) < width:
        return x
    return np.convolve(x, np.ones(width) / width, mode="same")


def reference_levels(x: np.ndarray, rate: float) -> tuple[float, float] | None:
    width = max(1, round(1.0 * rate))
    if len(x) < width + round(1.0 * rate):
        return None
    dc = float(np.median(x))
    if dc <= 0:
        return 0.0, 0.0
    trend = np.convolve(x, np.ones(width) / width, mode="valid")
    first = (width - 1) // 2
    ac = _smooth(x[first : first + len(trend)] - trend, rate)
    p2p = float(np.percentile(ac, 97) - np.percentile(ac, 3))
    return dc / FULL_SCALE, p2p / dc


class Reference:
    """The pre-issue-22 verdicts (hysteresis state machine over per-poll statistics)."""

    def __init__(self, rate: float) -> None:
        self.rate = rate
        self.contact = False
        self.since: int | None = None

    def update(self, x: np.ndarray, index: int) -> None:
        levels = reference_levels(x, self.rate)
        if levels is None:
            return
        dc, pi = levels
        recent = float(np.median(x[-max(1, round(0.25 * self.rate)) :]))
        if self.contact and recent < DC_OFF * FULL_SCALE:
            self.contact, self.since = False, None
            return
        if dc >= DC_SATURATED:
            return
        if self.contact:
            flip, hold = dc < DC_OFF or pi < PI_OFF, CONTACT_OFF_S
        else:
            flip, hold = dc >= DC_ON and pi >= PI_ON, CONTACT_ON_S
        if not flip:
            self.since = None
            return
        if self.since is None:
            self.since = index
        if dc < DC_OFF or (index - self.since) / self.rate >= hold:
            self.contact, self.since = not self.contact, None


def recorded_stream() -> tuple[np.ndarray, float]:
    """BIDMC record 01 (125 Hz) as raw counts: perfusion swept through both thresholds,
    a lifted finger for 6 s and a near-saturated stretch."""
    with DATA.open() as fh:
        pleth = np.array(
            [float(r[" PLETH"] if " PLETH" in r else r["PLETH"]) for r in csv.DictReader(fh)]
        )
    rate = 125.0
    pleth = pleth[: round(240 * rate)]
    t = np.arange(len(pleth)) / rate
    ac = (pleth - pleth.mean()) * (0.0004 + 0.012 * (0.5 + 0.5 * np.sin(2 * np.pi * t / 80.0)))
    dc = np.full(len(pleth), 0.45)
    dc[(t > 100) & (t < 106)] = 0.02  # finger lifted
    dc[(t > 170) & (t < 180)] = 0.985  # clipping
    return FULL_SCALE * dc * (1.0 - ac), rate


def test_running_levels_and_verdicts_match_the_per_poll_statistics_on_a_recording():
    x, rate = recorded_stream()
    history = SampleHistory(rate, 3.0)
    detector = ContactDetector(history)
    ref = Reference(rate)
    block = round(0.1 * rate)
    flips, last = 0, False
    for start in range(0, len(x) - block, block):
        chunk = x[start : start + block]
        history.append(chunk, 0.8 * chunk)
        detector.update(start + block, 7.0, 7.0)
        ref.update(history.ir, start + block)
        want = reference_levels(history.ir, rate)
        got = detector.levels()
        assert (want is None) == (got is None)
        if want is not None and got is not None:
            assert got == pytest.approx(want, rel=1e-9, abs=1e-12)
        assert detector.contact == ref.contact, f"at sample {start + block}"
        flips += detector.contact != last
        last = detector.contact
    assert flips >= 4  # the stream really crosses the thresholds both ways


def test_running_levels_match_on_the_simulated_sensor_across_led_steps_and_gaps():
    from device.drivers.pulse_sensor import PulseSensor

    t = [0.0]
    model = PulseModel(5)
    model.set_heart(64.0, 5.0)
    model.ir_gain, model.red_gain = 900.0, 630.0  # saturated at first: LED steps follow
    chip = SimulatedMAX30102(lambda: t[0], model)
    sensor = PulseSensor(lambda: chip, clock=lambda: t[0], sleep=lambda s: None)
    compared = 0
    for i in range(1200):
        t[0] = round(t[0] + 0.1, 9)
        if i == 400:
            model.set_contact(False)
        if i == 470:
            model.set_contact(True)
        if i == 700:
            chip.force_overflow()
        sensor.poll()
        history = sensor._history  # white box: the same history, both ways
        want = reference_levels(history.ir, sensor.rate_hz)
        got = sensor._finger.levels()
        assert (want is None) == (got is None)
        if want is not None and got is not None:
            assert got == pytest.approx(want, rel=1e-9, abs=1e-12)
            compared += 1
    assert sensor.led_steps >= 2 and compared > 900


def test_a_poll_sorts_nothing(monkeypatch):
    """Only a finger found (the Red/IR swap check, once) may take a median; no poll sorts."""
    x, rate = recorded_stream()
    history = SampleHistory(rate, 3.0)
    detector = ContactDetector(history)
    block = round(0.1 * rate)
    sorts: list[str] = []

    def counting(name):
        real = getattr(np, name)

        def counted(*args, **kwargs):
            sorts.append(name)
            return real(*args, **kwargs)

        return counted

    for name in ("median", "percentile", "quantile", "sort", "partition", "argsort"):
        monkeypatch.setattr(np, name, counting(name))
    found, polls = 0, 0
    for start in range(0, round(120 * rate), block):
        chunk = x[start : start + block]
        history.append(chunk, chunk)
        was = detector.contact
        detector.update(start + block, 7.0, 7.0)
        found += detector.contact and not was
        polls += 1
    assert found >= 1 and polls > 1000
    assert 1 <= len(sorts) <= found  # the swap check's Red median, once per finger found
