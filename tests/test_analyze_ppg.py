"""Tests of ``bedside analyze-ppg`` run as a command."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import numpy as np
import pytest

from tests.support.ppg_synthetic import beat_times, fiducials, match_count, ppg

REPO = Path(__file__).resolve().parent.parent
PPG_DATA = REPO / "tests" / "data" / "ppg"  # recordings in the repo (README there)
RATE = 50.0


def run_cli(cmd: list[str], env: dict[str, str], *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [*cmd, "analyze-ppg", *args], env=env, capture_output=True, text=True, timeout=60
    )


def write_csv(path: Path, header: str, rows: list[str]) -> Path:
    path.write_text(header + "\n" + "\n".join(rows) + "\n")
    return path


@pytest.fixture
def synthetic(tmp_path: Path) -> tuple[Path, np.ndarray]:
    duration = 60.0
    beats = beat_times(duration, 75.0, rsa_bpm=4.0)
    x = ppg(beats, RATE, duration, noise=0.02)
    t = np.arange(len(x)) / RATE
    rows = [f"{a:.3f},{v:.6f}" for a, v in zip(t, x, strict=True)]
    return write_csv(tmp_path / "pulse.csv", "time,ppg", rows), beats


def test_json_has_exactly_the_promised_keys(synthetic, bedside_cmd, cli_env) -> None:
    path, beats = synthetic
    res = run_cli(bedside_cmd, cli_env, str(path), "--rate", "50", "--json")
    assert res.returncode == 0, res.stderr
    out = json.loads(res.stdout)
    assert set(out) == {
        "beats_s",
        "hr",
        "rmssd_ms",
        "sdnn_ms",
        "rmssd_5min_ms",
        "sdnn_5min_ms",
        "rate_hz",
        "latency_s",
    }
    assert out["rate_hz"] == 50.0
    truth = fiducials(beats)
    truth = truth[truth > 1.0]
    found = np.array(out["beats_s"])
    assert match_count(truth, found, 0.06) >= len(truth) - 1
    assert len(found) <= len(truth) + 1
    seconds = [t for t, _ in out["hr"]]
    assert seconds == list(range(int(seconds[0]), int(seconds[0]) + len(seconds)))
    assert seconds[0] <= 10 and seconds[-1] == 60
    assert all(abs(bpm - 75.0) < 6.0 for _, bpm in out["hr"])
    assert 0.0 < out["latency_s"] <= 1.0
    assert out["rmssd_ms"] is not None and out["sdnn_ms"] is not None


def test_invert_reads_a_signal_that_falls_with_each_beat(tmp_path, bedside_cmd, cli_env) -> None:
    beats = beat_times(30.0, 66.0)
    x = ppg(beats, RATE, 30.0)
    up = write_csv(tmp_path / "up.csv", "ppg", [f"{v:.6f}" for v in x])
    down = write_csv(tmp_path / "down.csv", "ir", [f"{100000 - 1000 * v:.3f}" for v in x])
    a = json.loads(run_cli(bedside_cmd, cli_env, str(up), "--rate", "50", "--json").stdout)
    b = run_cli(bedside_cmd, cli_env, str(down), "--rate", "50", "--json", "--invert")
    assert b.returncode == 0, b.stderr
    np.testing.assert_allclose(json.loads(b.stdout)["beats_s"], a["beats_s"], atol=1e-3)
    # The same counts read the wrong way up give other (foot-of-pulse) beats.
    c = json.loads(run_cli(bedside_cmd, cli_env, str(down), "--rate", "50", "--json").stdout)
    assert match_count(np.array(a["beats_s"]), np.array(c["beats_s"]), 0.05) < 5


def test_summary_without_json(synthetic, bedside_cmd, cli_env) -> None:
    path, _ = synthetic
    res = run_cli(bedside_cmd, cli_env, str(path), "--rate", "50", "--column", "PPG")
    assert res.returncode == 0, res.stderr
    assert "beats:" in res.stdout and "heart rate: mean" in res.stdout
    assert "RMSSD:" in res.stdout and "ms" in res.stdout


@pytest.mark.parametrize(
    ("header", "rows", "args", "expect"),
    [
        ("time,ppg", ["0,1", "1,2"], ["--column", "pleth"], "row 1: no column 'pleth'"),
        ("time,a,b", ["0,1,2"], [], "row 1: cannot tell which column"),
        ("time,ppg", ["0,1.0", "1,2.0", "2,x7", "3,1"], [], "row 4: column 'ppg' value 'x7'"),
        ("time,ppg", ["0,1.0", "1,", "2,1"], [], "row 3: column 'ppg' value ''"),
        ("time,ppg", ["0,1.0", "1,nan"], [], "row 3: column 'ppg' value 'nan'"),
        ("time,ppg", ["0,1.0", "1"], [], "row 3: has 1 fields"),
        ("time,ppg", [], [], "row 2: no samples"),
        ("time,ppg", ["0,1.0", '1,"2.0'], [], "row 3: malformed CSV"),
    ],
)
def test_bad_files_exit_2_naming_the_row(
    tmp_path, bedside_cmd, cli_env, header, rows, args, expect
) -> None:
    path = write_csv(tmp_path / "bad.csv", header, rows)
    res = run_cli(bedside_cmd, cli_env, str(path), "--rate", "50", *args)
    assert res.returncode == 2
    assert expect in res.stderr
    assert len(res.stderr.strip().splitlines()) == 1
    assert res.stdout == ""


def test_binary_file_exits_2_naming_the_row(tmp_path, bedside_cmd, cli_env) -> None:
    path = tmp_path / "bin.csv"
    path.write_bytes(b"ppg\n1.0\n2.0\n\xff\xfe\x00\x81\n")
    res = run_cli(bedside_cmd, cli_env, str(path), "--rate", "50")
    assert res.returncode == 2 and "row 4: not UTF-8" in res.stderr


def test_header_with_byte_order_mark_is_read(tmp_path, bedside_cmd, cli_env) -> None:
    x = ppg(beat_times(20.0, 70.0), RATE, 20.0)
    path = tmp_path / "bom.csv"
    path.write_bytes(b"\xef\xbb\xbftime,PPG\n" + "".join(f"0,{v}\n" for v in x).encode())
    res = run_cli(bedside_cmd, cli_env, str(path), "--rate", "50", "--column", "PPG", "--json")
    assert res.returncode == 0, res.stderr
    assert len(json.loads(res.stdout)["beats_s"]) > 15


def test_empty_and_missing_files_exit_2(tmp_path, bedside_cmd, cli_env) -> None:
    empty = tmp_path / "empty.csv"
    empty.write_text("")
    res = run_cli(bedside_cmd, cli_env, str(empty), "--rate", "50")
    assert res.returncode == 2 and "row 1: empty file" in res.stderr
    res = run_cli(bedside_cmd, cli_env, str(tmp_path / "nope.csv"), "--rate", "50")
    assert res.returncode == 2 and "cannot read" in res.stderr


@pytest.mark.parametrize("rate", ["fast", "5", "3300", "5000"])
def test_bad_rate_is_a_usage_error(synthetic, bedside_cmd, cli_env, rate) -> None:
    path, _ = synthetic
    res = run_cli(bedside_cmd, cli_env, str(path), "--rate", rate)
    assert res.returncode == 2 and "rate" in res.stderr


def test_real_recording(bedside_cmd, cli_env) -> None:
    path = PPG_DATA / "bidmc" / "bidmc_01_Signals.csv"
    assert path.is_file(), f"PPG dev data missing: {path}"
    res = run_cli(bedside_cmd, cli_env, str(path), "--rate", "125", "--column", "PLETH", "--json")
    assert res.returncode == 0, res.stderr
    out = json.loads(res.stdout)
    ref = np.loadtxt(path.parent / "bidmc_01_ref_beats.csv", delimiter=",", skiprows=1)
    # The monitor's plethysmogram holds and wanders without a pulse from 91.8 to 99.3 s
    # (the ECG beats on): no beat is found there, and none of its 11 ECG beats is expected.
    beats = np.array(out["beats_s"])
    assert not np.any((beats > 92.0) & (beats < 99.3))
    pulse = ref[(ref < 91.6) | (ref > 99.3)]
    assert len(beats) == pytest.approx(len(pulse), rel=0.02)
    ref_bpm = 60.0 / np.mean(np.diff(ref))
    hr = np.array([bpm for _, bpm in out["hr"]])
    assert len(hr) > 450 and np.median(np.abs(hr - ref_bpm)) < 2.0


def test_time_column_gives_the_rate_and_a_disagreeing_rate_is_warned(bedside_cmd, cli_env) -> None:
    # Issue 16: BIDMC is sampled at 125 Hz; read with --rate 100 it gave 73 bpm, not 91.
    path = PPG_DATA / "bidmc" / "bidmc_01_Signals.csv"
    res = run_cli(bedside_cmd, cli_env, str(path), "--rate", "100", "--json")
    assert res.returncode == 0, res.stderr
    assert "--rate 100 Hz disagrees with the time column 'time' (125 Hz)" in res.stderr
    out = json.loads(res.stdout)
    assert out["rate_hz"] == 125.0
    ref = np.loadtxt(path.parent / "bidmc_01_ref_beats.csv", delimiter=",", skiprows=1)
    hr = np.median([bpm for _, bpm in out["hr"]])
    assert hr == pytest.approx(60.0 / np.mean(np.diff(ref)), abs=1.5)  # about 91 bpm
    plain = run_cli(bedside_cmd, cli_env, str(path), "--json")
    assert plain.returncode == 0 and plain.stderr == ""
    assert json.loads(plain.stdout) == out


def test_without_time_column_or_rate_exits_2(tmp_path, bedside_cmd, cli_env) -> None:
    path = write_csv(tmp_path / "p.csv", "ppg", ["1.0", "2.0", "1.5"])
    res = run_cli(bedside_cmd, cli_env, str(path))
    assert res.returncode == 2 and "no time column: give --rate" in res.stderr


def test_time_going_backwards_needs_rate(tmp_path, bedside_cmd, cli_env) -> None:
    path = write_csv(tmp_path / "p.csv", "time,ppg", ["0,1.0", "0.02,2.0", "0.01,1.5"])
    res = run_cli(bedside_cmd, cli_env, str(path))
    assert res.returncode == 2 and "does not increase (row 4)" in res.stderr


@pytest.mark.parametrize("rate", [2048.0, 3200.0])
def test_fast_rates_the_chip_samples_at_are_read(tmp_path, bedside_cmd, cli_env, rate) -> None:
    duration = 30.0
    beats = beat_times(duration, 72.0, rsa_bpm=3.0)
    x = ppg(beats, rate, duration, noise=0.01)
    path = write_csv(tmp_path / "fast.csv", "ppg", [f"{v:.5f}" for v in x])
    res = run_cli(bedside_cmd, cli_env, str(path), "--rate", f"{rate:g}", "--json")
    assert res.returncode == 0, res.stderr
    out = json.loads(res.stdout)
    assert out["rate_hz"] == rate and out["latency_s"] <= 1.0
    truth = fiducials(beats)
    truth = truth[truth > 1.0]
    found = np.array(out["beats_s"])
    assert match_count(truth, found, 0.05) >= len(truth) - 1
    assert len(found) <= len(truth) + 1


def test_uneven_camera_frames_in_milliseconds_are_resampled(tmp_path, bedside_cmd, cli_env) -> None:
    # A phone camera: a time column in ms, frames ~33 ms apart with jitter and a dropped frame.
    rng = np.random.default_rng(4)
    steps = rng.uniform(28.0, 38.0, 1800)
    steps[900] = 400.0
    t_ms = np.concatenate([[0.0], np.cumsum(steps)])
    duration = t_ms[-1] / 1000.0
    beats = beat_times(duration, 80.0)
    fine = ppg(beats, 1000.0, duration + 0.01, noise=0.0)
    x = 200.0 - 5.0 * fine[np.round(t_ms).astype(int)]  # camera red falls at systole
    rows = [f"{a:.0f},{v:.4f}" for a, v in zip(t_ms, x, strict=True)]
    path = write_csv(tmp_path / "cam.csv", "time,R", rows)
    res = run_cli(bedside_cmd, cli_env, str(path), "--invert", "--json")
    assert res.returncode == 0, res.stderr
    assert "uneven time steps" in res.stderr and "resampled" in res.stderr
    out = json.loads(res.stdout)
    assert 28.0 < out["rate_hz"] < 32.0
    hr = np.median([bpm for _, bpm in out["hr"]])
    assert hr == pytest.approx(80.0, abs=1.5)
    truth = fiducials(beats)
    assert match_count(truth[truth > 2.0], np.array(out["beats_s"]), 0.05) >= 0.9 * len(truth)
