"""``bedside render``: an offline job straight through the engine into a WAV file."""

from __future__ import annotations

import os
import subprocess
import sys
import wave
from pathlib import Path

import numpy as np
import pytest

from device.cli.render import render_to
from device.config import load_config


def read_wav(path: Path) -> tuple[int, np.ndarray]:
    with wave.open(str(path), "rb") as w:
        rate = w.getframerate()
        data = np.frombuffer(w.readframes(w.getnframes()), np.int16).reshape(-1, 2)
    return rate, data.astype(np.float64) / 32768.0


def test_plain_timeline_renders_the_session_and_ends_silent(tmp_path: Path) -> None:
    cfg = load_config(None)
    out = tmp_path / "relax.wav"
    result = render_to(cfg, str(out), program="relax", minutes=0.5)
    rate, x = read_wav(out)
    assert len(x) == result.frames
    # 30 s of session, then the stop fade (at most 2 s; whole blocks)
    assert 30.0 <= len(x) / rate <= 32.5
    assert result.stop_reason == "time" and result.loop_state == "plain"
    rms = np.sqrt(np.mean(x[rate * 20 : rate * 28] ** 2))
    assert rms > 10 ** (-60 / 20)  # the sound plays (the 30 s fade-in is under way)
    assert np.abs(x[-rate // 10 :]).max() == 0.0  # and ends in silence
    assert np.abs(x).max() <= 10 ** (float(cfg.audio.cap_dbfs) / 20)


def test_listener_closes_the_loop_on_an_ideal_heart(tmp_path: Path) -> None:
    cfg = load_config(None)
    plain = render_to(cfg, str(tmp_path / "a.wav"), program="relax", minutes=3.0)
    loop = render_to(
        cfg, str(tmp_path / "b.wav"), program="relax", listener="compliant", minutes=3.0, seed=3
    )
    assert plain.loop_state == "plain" and not plain.closed_loop
    assert loop.closed_loop and loop.loop_state in ("adapting", "holding", "settled")
    _, a = read_wav(tmp_path / "a.wav")
    _, b = read_wav(tmp_path / "b.wav")
    assert len(a) == len(b) and not np.array_equal(a, b)  # the loop changed the sound


def test_progress_line_only_on_a_terminal(tmp_path: Path, bedside_cmd, cli_env) -> None:
    args = [*bedside_cmd, "render", "--program", "relax", "--minutes", "0.2"]
    piped = subprocess.run(
        [*args, "--out", str(tmp_path / "p.wav")],
        env=cli_env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert piped.returncode == 0, piped.stderr
    assert "rendered" in piped.stdout and "\r" not in piped.stderr
    # a terminal on stderr: the line is rewritten in place
    master, slave = os.openpty()
    proc = subprocess.Popen(
        [*args, "--out", str(tmp_path / "t.wav")],
        env=cli_env,
        stdout=subprocess.PIPE,
        stderr=slave,
    )
    os.close(slave)
    chunks = []
    while True:
        try:
            chunk = os.read(master, 4096)
        except OSError:
            break
        if not chunk:
            break
        chunks.append(chunk)
    proc.wait(timeout=300)
    os.close(master)
    text = b"".join(chunks).decode()
    assert proc.returncode == 0
    assert "\rrendering relax: " in text and "(100 %)" in text


def test_a_bad_listener_is_a_clear_error(tmp_path: Path, bedside_cmd, cli_env) -> None:
    r = subprocess.run(
        [*bedside_cmd, "render", "--listener", "compliantt", "--out", str(tmp_path / "x.wav")],
        env=cli_env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert r.returncode == 2
    assert "compliantt" in r.stderr and "Traceback" not in r.stderr


@pytest.mark.parametrize("program", ["nosuch"])
def test_an_unknown_program_is_a_clear_error(tmp_path: Path, bedside_cmd, cli_env, program) -> None:
    r = subprocess.run(
        [*bedside_cmd, "render", "--program", program, "--out", str(tmp_path / "x.wav")],
        env=cli_env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert r.returncode == 2 and program in r.stderr and "Traceback" not in r.stderr
    assert sys.executable
