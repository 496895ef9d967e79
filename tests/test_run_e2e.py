"""The whole box end to end on simulated hardware, as a user runs it."""

from __future__ import annotations

import json
import signal
import subprocess
import time
import wave
from pathlib import Path

import numpy as np
import pytest

RATE = 48000
BLOCK_S = 1024 / RATE


def read_wav(path: Path) -> tuple[np.ndarray, int]:
    with wave.open(str(path)) as w:
        assert w.getnchannels() == 2 and w.getsampwidth() == 2
        rate = w.getframerate()
        data = np.frombuffer(w.readframes(w.getnframes()), "<i2").reshape(-1, 2)
    return data, rate


def rms_db(x: np.ndarray) -> float:
    return 20 * np.log10(np.sqrt(np.mean((x.astype(np.float64) / 32768) ** 2)) + 1e-12)


def run_box(bedside_cmd, cli_env, out: Path, duration: str, *extra: str):
    """``bedside run`` to a WAV at max speed with JSON status; returns the finished process."""
    return subprocess.run(
        [
            *bedside_cmd,
            "run",
            *extra,
            "--audio",
            f"wav:{out}",
            "--duration",
            duration,
            "--speed",
            "max",
            "--status",
            "json",
        ],
        env=cli_env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_two_minute_sim_run_writes_a_clean_wav_and_finds_the_heart(tmp_path, bedside_cmd, cli_env):
    out = tmp_path / "out.wav"
    proc = run_box(bedside_cmd, cli_env, out, "120", "--sim")
    assert proc.returncode == 0, proc.stderr[-2000:]
    lines = [json.loads(x) for x in proc.stdout.splitlines() if x.startswith("{")]
    assert 115 <= len(lines) <= 121
    for key in (
        "t",
        "state",
        "program",
        "hr",
        "quality",
        "contact",
        "breathing",
        "pacer",
        "entrain_hz",
        "volume_db",
        "underruns",
        "overruns",
    ):
        assert key in lines[0], key

    data, rate = read_wav(out)
    assert rate == RATE
    assert abs(len(data) / rate - 120.0) <= BLOCK_S
    peak = np.abs(data.astype(np.int32)).max()
    assert 0 < peak < 32767, "silent or clipped"
    assert peak <= 32768 * 10 ** (-6.0 / 20) + 1, "above the default -6 dBFS cap"
    # Fades in over 30 s: the sound grows from far below its level a minute in (the soft start
    # chime rings over the first seconds, so the fade is measured after it).
    early, mid, full = (rms_db(data[a * rate : (a + 1) * rate]) for a in (4, 15, 60))
    assert early < mid < full and early < full - 10, (early, mid, full)
    assert np.abs(data[:48].astype(np.int32)).max() < 100, "starts from silence"

    # An HR within 15 simulated seconds, within 5 bpm of the simulated heart.
    with_hr = [x for x in lines if x["hr"] is not None]
    assert with_hr and with_hr[0]["t"] <= 15.0
    late = [x for x in with_hr if x["t"] > 20]
    errors = [abs(x["hr"] - x["sim_hr"]) for x in late]
    assert max(errors) <= 5.0, errors


def test_sigterm_fades_out_and_leaves_a_valid_wav(tmp_path, bedside_cmd, cli_env):
    out = tmp_path / "stop.wav"
    proc = subprocess.Popen(
        [
            *bedside_cmd,
            "run",
            "--sim",
            "--audio",
            f"wav:{out}",
            "--duration",
            "600",
            "--speed",
            "1",
            "--status",
            "json",
        ],
        env=cli_env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        # Wait for the first status lines: the box is playing.
        for _ in range(3):
            assert proc.stdout.readline().startswith("{")
        sent = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=10)
        took = time.monotonic() - sent
    finally:
        proc.kill()
    assert proc.returncode == 0, proc.stderr.read()[-2000:]
    data, rate = read_wav(out)
    seconds = len(data) / rate
    # At speed 1 the audio cannot run ahead of the wall clock: after the signal there is at
    # most the 2 s stop fade (plus what was buffered) however slowly the machine ran.
    assert 3.0 <= seconds <= 3.0 + took + 2.5
    # The end is a fade to silence, not a cut.
    assert np.abs(data[-rate // 10 :].astype(np.int32)).max() < 50


@pytest.mark.parametrize(
    ("text", "key"),
    [
        ("[audio]\nvolume_db = 'loud'\n", "audio.volume_db"),
        ("[audio]\nblock_frames = 1000\n", "audio.block_frames"),
        ("[sensor]\nled_ir_ma = 60.0\n", "sensor.led_ir_ma"),
        ("[therapy]\npersonalise = 'yes'\n", "therapy.personalise"),
        ("[gpio]\npin_led = 40\n", "gpio.pin_led"),
        ("[audio]\nloudness = 3\n", "audio.loudness"),
    ],
)
def test_bad_config_exits_2_naming_the_key(tmp_path, bedside_cmd, cli_env, text, key):
    cfg = tmp_path / "bad.toml"
    cfg.write_text(text)
    proc = subprocess.run(
        [*bedside_cmd, "run", "--sim", "--audio", "null", "--duration", "1", "--config", str(cfg)],
        env=cli_env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 2
    assert key in proc.stderr and str(cfg) in proc.stderr
    assert proc.stderr.count("\n") == 1
    assert proc.stdout == ""


@pytest.mark.parametrize(
    "argv",
    [
        ["run", "--speed", "0"],
        ["run", "--audio", "mp3:x"],
        ["run", "--duration", "-5"],
        ["run", "--sim", "--program", "no-such-program", "--audio", "null"],
        ["bogus"],
    ],
)
def test_bad_usage_exits_2_with_one_line(bedside_cmd, cli_env, argv):
    proc = subprocess.run(
        [*bedside_cmd, *argv], env=cli_env, capture_output=True, text=True, timeout=60
    )
    assert proc.returncode == 2
    assert proc.stderr.startswith(("bedside: error:", "bedside run: error:"))
    assert proc.stderr.count("\n") == 1


def test_missing_real_sensor_is_reported_and_the_box_plays_open_loop(
    tmp_path, bedside_cmd, cli_env
):
    cfg = tmp_path / "pi.toml"
    # Real sensor on an I2C bus this machine does not have; no GPIO, no console port.
    cfg.write_text(
        "[sensor]\nbackend = 'max30102'\ni2c_bus = 29\n[gpio]\nbackend = 'none'\n"
        "[console]\nport = ''\n"
    )
    out = tmp_path / "open-loop.wav"
    proc = run_box(bedside_cmd, cli_env, out, "40", "--config", str(cfg))
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "pulse sensor not available" in proc.stderr and "/dev/i2c-29" in proc.stderr
    lines = [json.loads(x) for x in proc.stdout.splitlines()]
    assert all(x["sensor"] == "absent" and x["hr"] is None for x in lines)
    assert lines[-5]["state"] == "playing" and lines[-5]["pacer"] is not None
    data, rate = read_wav(out)
    assert rms_db(data[35 * rate : 36 * rate]) > -60, "the sound plays without a pulse"
