"""The accuracy benchmark's own arithmetic: decimation, beat matching, windowed HR."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("scipy")
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "bench"))

import ppg_accuracy as bench


def test_decimating_a_camera_offset_adds_no_tone() -> None:
    # A clipped camera channel: 255 counts with a 0.01-count wobble, at 30 Hz.
    t = np.arange(0, 60, 1 / 30)
    rec = bench.Recording("flat", "welltory", 30.0, -255.0 + 0.01 * np.sin(t), np.zeros(1))
    out = bench.decimate(rec, 25.0)
    assert out.rate == 25.0 and len(out.ppg) == 1500
    # resample_poly alone makes a 5 Hz tone of about 0.17 counts out of the offset.
    inner = out.ppg[50:-50] + 255.0
    assert np.max(np.abs(inner)) < 0.012


def test_decimated_pulse_keeps_its_shape() -> None:
    t = np.arange(0, 30, 1 / 125)
    pulse = np.sin(2 * np.pi * 1.2 * t)
    out = bench.decimate(bench.Recording("p", "bidmc", 125.0, pulse, np.zeros(1)), 25.0)
    t25 = np.arange(len(out.ppg)) / 25.0
    assert np.max(np.abs(out.ppg - np.sin(2 * np.pi * 1.2 * t25))[25:-25]) < 0.01


def test_match_pairs_one_to_one_within_the_tolerance() -> None:
    ref = np.array([1.0, 2.0, 3.0, 4.0])
    est = np.array([1.04, 1.06, 2.2, 3.0, 3.95])
    assert bench.match(ref, est, 0.1) == 3  # 1.04, 3.0, 3.95; 1.06 is a double, 2.2 too far
    assert bench.match(ref, est, 0.05) == 3
    assert bench.match(ref, np.zeros(0), 0.1) == 0


def test_best_lag_finds_a_constant_delay() -> None:
    ref = np.cumsum(np.full(60, 0.8) + 0.05 * np.sin(np.arange(60)))
    assert bench.best_lag(ref, ref + 0.31, -0.2, 0.8) == pytest.approx(0.31, abs=0.005)


def test_window_hr_uses_plausible_intervals_only() -> None:
    beats = np.array([0.0, 1.0, 2.0, 3.0, 3.1, 8.0])
    # Intervals 1, 1, 1, 0.1 (too short) and 4.9 (too long): 60 bpm.
    assert bench.window_hr(beats, 0.0, 10.0) == pytest.approx(60.0)
    assert bench.window_hr(np.array([0.0, 1.0]), 0.0, 10.0) is None


def test_cross_validation_chooses_on_the_training_folds_only() -> None:
    import ppg_crossval as cv

    def row(name: str, hr: float) -> dict:
        return {"name": name, "hr_mae": hr, "f1_100": 1.0}

    # Each fold takes the tuning best on the *other* recordings: b's fold (trained on a and
    # c: 4.0 against 3.5) takes tuning 1, though b itself scores best with tuning 0.
    scored = [
        {"s": [row("a", 2.0), row("b", 1.0), row("c", 2.0)]},
        {"s": [row("a", 1.0), row("b", 3.0), row("c", 2.5)]},
    ]
    assert cv.select_per_fold(scored, ["a", "b", "c"]) == {"a": 0, "b": 1, "c": 0}
    assert cv.best_tuning(scored, {"a", "b", "c"}) == 0  # 5.0 vs 6.5
    # Ties keep the earlier tuning (the product's defaults come first).
    assert cv.best_tuning([scored[0], scored[0]], {"a"}) == 0
    # A recording with no HR estimate at all costs MISSING_HR_BPM, F1 its weight.
    missing = {"s": [{"name": "a", "hr_mae": float("nan"), "f1_100": 0.5}]}
    assert cv.objective(missing, {"a"}) == cv.MISSING_HR_BPM + 0.5 * cv.F1_WEIGHT_BPM


def test_grid_starts_with_the_product_defaults_and_holds_each_once() -> None:
    import ppg_crossval as cv

    from device.heart.beats import Tuning

    grid = cv.tunings()
    assert grid[0] == Tuning() and len(grid) == len(set(grid)) == 27
