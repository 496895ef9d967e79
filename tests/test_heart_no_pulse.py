"""No heart in a flat line, a clipped channel or noise; none across a dropout (issue 23, 1-2).

A constant PPG gave 80 beats at 179 bpm (the filters' rounding), white noise 52-69 bpm.
What must hold: on a flat, clipped or noise-only signal no beat, no heart rate and quality 0,
in ``bedside analyze-ppg`` and in the box's live analysis (:class:`HeartAnalyzer`); where a
finger's signal goes flat or clips for a few seconds while the heart goes on, no beat inside
the dropout, no reported interval across it, and beats again within a stated time after it.
"""

from __future__ import annotations

import csv
import json
import subprocess
from pathlib import Path

import numpy as np
import pytest

from device.heart.analysis import HeartAnalyzer
from device.heart.beats import Beat, BeatDetector, Tuning
from device.heart.samples import SampleBlock
from tests.support.ppg_synthetic import beat_times, ppg

PPG_DATA = Path(__file__).resolve().parent / "data" / "ppg"
#: The MAX30102's 18-bit converter at full scale.
ADC_MAX = 262143.0
#: After a dropout the first beat reported is at most this long after the signal returns
#: (its fiducial point; it is reported the detector's latency later). Measured on BIDMC and
#: the camera recordings, 3-5 s dropouts: 2.5-4.5 s; slower on 3 of the 21 noisiest camera
#: recordings (docs/heart.md).
RESUME_S = 5.0


def flat(n: int) -> np.ndarray:
    return np.full(n, 100000.0)


def clipped(n: int, rate: float) -> np.ndarray:
    """A pulse pushed above the converter's range: what it reads is its maximum."""
    t = np.arange(n) / rate
    return np.minimum(ADC_MAX + 5000.0 + 3000.0 * np.sin(2 * np.pi * 1.1 * t), ADC_MAX)


def noise(n: int, seed: int, level: float) -> np.ndarray:
    return 120000.0 + level * np.random.default_rng(seed).standard_normal(n)


# --- bedside analyze-ppg ---------------------------------------------------------------------


def analyze(tmp_path: Path, cmd: list[str], env: dict[str, str], x: np.ndarray) -> dict:
    path = tmp_path / "ppg.csv"
    path.write_text("ppg\n" + "\n".join(f"{v:.6f}" for v in x) + "\n")
    res = subprocess.run(
        [*cmd, "analyze-ppg", str(path), "--rate", "100", "--json"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert res.returncode == 0, res.stderr
    return json.loads(res.stdout)


@pytest.mark.parametrize(
    "kind",
    ["flat", "clipped", "noise-0-1", "noise-1-1000", "noise-2-0.001", "noise-3-30"],
)
def test_analyze_ppg_finds_no_heart_without_a_pulse(tmp_path, bedside_cmd, cli_env, kind) -> None:
    n = 3000  # 30 s at 100 Hz, as in the issue
    if kind == "flat":
        x = flat(n)
    elif kind == "clipped":
        x = clipped(n, 100.0)
    else:
        _, seed, level = kind.split("-")
        x = noise(n, int(seed), float(level))
    out = analyze(tmp_path, bedside_cmd, cli_env, x)
    assert out["beats_s"] == [] and out["hr"] == []
    assert out["rmssd_ms"] is None and out["sdnn_ms"] is None


def test_analyze_ppg_says_so_in_words(tmp_path, bedside_cmd, cli_env) -> None:
    path = tmp_path / "flat.csv"
    path.write_text("ppg\n" + "100000\n" * 3000)
    res = subprocess.run(
        [*bedside_cmd, "analyze-ppg", str(path), "--rate", "100"],
        env=cli_env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert res.returncode == 0, res.stderr
    assert "beats: 0 " in res.stdout and "heart rate: withheld" in res.stdout


# --- the box's live analysis -----------------------------------------------------------------


def feed(an: HeartAnalyzer, ir: np.ndarray, red: np.ndarray | None = None, chunk: int = 10):
    """Feed 0.1 s reads; every snapshot taken after each."""
    red = ir if red is None else red
    beats: list[Beat] = []
    states = []
    for i in range(0, len(ir), chunk):
        beats += an.feed(SampleBlock(i, an.rate_hz, ir[i : i + chunk], red[i : i + chunk]))
        states.append(an.snapshot())
    return beats, states


def assert_no_heart(beats, states) -> None:
    assert beats == []
    assert all(s.quality == 0.0 and s.hr_bpm is None and s.hr_beat_bpm is None for s in states)
    assert all(s.rmssd_ms is None and s.breathing_bpm is None for s in states)
    assert states[-1].beats == 0


@pytest.mark.parametrize("rate", [25.0, 50.0, 100.0])
def test_live_analysis_flat_and_clipped_channels_are_no_heart(rate: float) -> None:
    n = int(60 * rate)
    assert_no_heart(*feed(HeartAnalyzer(rate), flat(n)))
    assert_no_heart(*feed(HeartAnalyzer(rate), clipped(n, rate)))
    # Both channels at the converter's limit: no channel to move to.
    top = np.full(n, ADC_MAX)
    assert_no_heart(*feed(HeartAnalyzer(rate), top, top))


@pytest.mark.parametrize("rate", [25.0, 50.0, 100.0])
@pytest.mark.parametrize("seed", [0, 1, 2, 3])
@pytest.mark.parametrize("level", [0.01, 3.0, 300.0, 30000.0])
def test_live_analysis_white_noise_of_any_level_is_no_heart(rate, seed, level) -> None:
    x = noise(int(60 * rate), seed, level)
    assert_no_heart(*feed(HeartAnalyzer(rate), x))


def test_the_detector_alone_finds_nothing_in_noise_or_a_flat_line() -> None:
    for rate in (20.0, 30.0, 125.0, 400.0):
        for x in (
            np.zeros(int(40 * rate)),
            np.random.default_rng(9).standard_normal(int(40 * rate)),
        ):
            det = BeatDetector(rate)
            found = det.process(x) + det.flush()
            assert found == [] and det.quality == 0.0


def test_a_noisy_pulse_is_still_a_pulse() -> None:
    # The gate takes white noise out, not pulses in it: noise of 0.2 pulse heights. (The
    # first beat, before 1.5 s of signal, is not reported: too little to tell.)
    rate = 50.0
    beats = beat_times(60.0, 70.0)
    an = HeartAnalyzer(rate)
    found, states = feed(an, 120000.0 - 3000.0 * ppg(beats, rate, 60.0, noise=0.2))
    assert len(found) >= len(beats) - 3
    assert states[-1].hr_bpm == pytest.approx(70.0, abs=2.0)


# --- a dropout in a real recording -----------------------------------------------------------


def bidmc(n: int) -> np.ndarray:
    with (PPG_DATA / "bidmc" / f"bidmc_{n:02d}_Signals.csv").open() as f:
        rows = list(csv.reader(f))
    col = [h.strip() for h in rows[0]].index("PLETH")
    return np.array([float(r[col]) for r in rows[1:]])


def camera(subject: int, rate: float = 30.0) -> np.ndarray:
    data = np.loadtxt(
        PPG_DATA / "welltory" / f"subject_{subject:02d}" / "PPG.csv", delimiter=",", skiprows=1
    )
    t = data[:, 0] / 1000.0
    return np.interp(np.arange(0.0, t[-1], 1.0 / rate), t, -data[:, 1])  # red falls at systole


def detect(x: np.ndarray, rate: float, tuning: Tuning | None = None) -> list[Beat]:
    det = BeatDetector(rate, tuning)
    out: list[Beat] = []
    for i in range(0, len(x), 32):
        out += det.process_beats(x[i : i + 32])
    return out


def with_dropout(x: np.ndarray, rate: float, t0: float, dur: float, kind: str) -> np.ndarray:
    y = x.copy()
    a, b = int(t0 * rate), int((t0 + dur) * rate)
    # Flat: the light holds its last value; clipped: the converter sits at its limit.
    y[a:b] = y[a] if kind == "flat" else x.max() + 0.2 * (x.max() - x.min())
    return y


@pytest.mark.parametrize("kind", ["flat", "clipped"])
@pytest.mark.parametrize(
    ("source", "rate", "t0", "dur"),
    [
        ("bidmc_02", 125.0, 200.0, 4.0),
        ("bidmc_03", 125.0, 41.3, 3.0),
        ("subject_06", 30.0, 30.0, 5.0),
        ("subject_16", 30.0, 41.3, 3.0),
    ],
)
def test_no_beat_and_no_interval_across_a_dropout_and_beats_resume(
    source: str, rate: float, t0: float, dur: float, kind: str
) -> None:
    x = bidmc(int(source[-2:])) if source.startswith("bidmc") else camera(int(source[-2:]))
    t1 = t0 + dur
    clean = np.array([b.t for b in detect(x, rate)])
    beats = detect(with_dropout(x, rate, t0, dur, kind), rate)
    t = np.array([b.t for b in beats])
    assert not np.any((t > t0) & (t < t1)), "a beat inside the dropout"
    spans = [b for b in beats if b.ibi is not None and b.t - b.ibi < t1 and b.t > t0]
    assert spans == [], "an interval across the dropout"
    after = t[t >= t1]
    assert len(after) and after[0] - t1 <= RESUME_S
    # Once back, the beats are those of the undisturbed recording: none made of the return.
    back = after[after < t1 + 30.0]
    assert all(np.min(np.abs(clean - v)) < 0.03 for v in back)
    assert len(back) >= np.sum((clean >= after[0]) & (clean < t1 + 30.0)) - 1
    # And before it, nothing changed.
    np.testing.assert_allclose(t[t < t0 - 1.0], clean[clean < t0 - 1.0])


def test_live_analysis_withholds_the_rate_during_a_dropout_and_shows_it_after() -> None:
    rate = 125.0
    x = bidmc(2)[: int(120 * rate)]
    counts = 100000.0 - 20000.0 * with_dropout(x, rate, 60.0, 4.0, "clipped")
    an = HeartAnalyzer(rate)
    beats, states = feed(an, counts, chunk=25)
    during = [s for s in states if 60.5 <= s.t <= 64.0]
    assert all(s.quality == 0.0 and s.hr_bpm is None for s in during)
    assert not any(60.0 < b.t < 64.0 for b in beats)
    assert all(b.ibi is None or not (b.t - b.ibi < 64.0 and b.t > 60.0) for b in beats)
    assert any(s.hr_bpm is not None for s in states if 64.0 < s.t < 64.0 + 15.0)
    # The session's successive differences never pair an interval before it with one after.
    late = [s.hr_bpm for s in states if s.t > 80.0 and s.hr_bpm is not None]
    assert late and max(late) - min(late) < 6.0


def test_the_monitors_own_dropout_in_bidmc_01_holds_no_beat() -> None:
    # BIDMC 01's plethysmogram holds and wanders without a pulse from 91.8 to 99.3 s while
    # the ECG beats on (a real dropout, not an injected one; it holds more flat runs and
    # steps before the pulse is back, and is slower to resume: 5.3 s).
    t = np.array([b.t for b in detect(bidmc(1), 125.0)])
    assert not np.any((t > 92.0) & (t < 99.3))
    assert np.any((t > 99.3) & (t < 99.3 + 6.0))


def decimate_by_5(x: np.ndarray) -> np.ndarray:
    """125 -> 25 Hz through an anti-alias low-pass (41-tap Hamming-windowed sinc at 10 Hz), as
    a front end sampling at 25 sps would: a held value no longer reads as identical samples."""
    n = np.arange(41) - 20.0
    h = np.sinc(2.0 * 10.0 / 125.0 * n) * np.hamming(41)
    offset = float(np.mean(x))
    return np.convolve(x - offset, h / h.sum(), mode="same")[::5] + offset


@pytest.mark.parametrize("threshold", [0.25, 0.15])
def test_bidmc_01s_dropout_at_25_hz_holds_no_beat_and_no_interval_across_it(
    threshold: float,
) -> None:
    # At 25 Hz the monitor's hold (91.8-99.3 s) wanders by a few thousandths instead of
    # holding one value: no flat run. The beats stop there (no candidate is a pulse), and
    # that alone says the pulse was lost: none is reported until the signal is rhythmic
    # again, so the hold's steps (94.7-99.4 s on main) and the weak upstrokes of the
    # returning signal are no beats. 0.15 is the threshold every cross-validation fold chose.
    beats = detect(decimate_by_5(bidmc(1)), 25.0, Tuning(threshold_share=threshold))
    t = np.array([b.t for b in beats])
    assert not np.any((t > 92.0) & (t < 99.3)), "a beat inside the dropout"
    spans = [b for b in beats if b.ibi is not None and b.t - b.ibi < 99.3 and b.t > 92.0]
    assert spans == [], "an interval across the dropout"
    assert np.any((t > 99.3) & (t < 99.3 + 6.0))
    # Before it, every beat is the undisturbed detector's at 125 Hz.
    full = np.array([b.t for b in detect(bidmc(1), 125.0)])
    early = t[(t > 5.0) & (t < 91.0)]
    assert len(early) >= np.sum((full > 5.0) & (full < 91.0)) - 1
    assert all(np.min(np.abs(full - v)) < 0.03 for v in early)


def test_beats_stopped_by_movement_rejection_resume_without_waiting_for_the_rhythm() -> None:
    # At threshold 0.15 and 125 Hz, BIDMC 01's weak upstrokes after its dropout pull the
    # reference down, so the strong ones (104.6-105.9 s) read as movement and the beats stop
    # for 3 s. The pulse was there all along: the next beat (106.48 s) is reported at once,
    # not after a rhythm check (which would drop it: a lost pulse is a stop without movement).
    det = BeatDetector(125.0, Tuning(threshold_share=0.15))
    x = bidmc(1)[: 112 * 125]
    t = np.array([b.t for i in range(0, len(x), 32) for b in det.process_beats(x[i : i + 32])])
    assert det.artefacts > 0
    assert not np.any((t > 103.5) & (t < 106.3)), "the stop this test is about"
    assert np.any(np.abs(t - 106.48) < 0.05)
