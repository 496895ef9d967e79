"""``bedside run --sim --program my-music`` plays the listener's indexed music folder."""

from __future__ import annotations

import json
import subprocess
import wave
from pathlib import Path

import numpy as np

from tests.support.music_tracks import write
from tests.test_run_e2e import run_box

RATE = 48000
#: Each track's tone, Hz: well above the pad and the entrainment carrier.
TONES = {"low.wav": 1000.0, "mid.flac": 1250.0, "high.ogg": 1500.0}


def write_tracks(folder: Path) -> None:
    folder.mkdir()
    t = np.arange(70 * 44100) / 44100  # a track must outlast its crossfade by a minute
    for name, hz in TONES.items():
        tone = 0.3 * np.sin(2 * np.pi * hz * t) + 0.1 * np.sin(2 * np.pi * hz * 1.5 * t)
        write(folder / name, np.stack([tone, tone], axis=1).astype(np.float32), 44100)


def indexed_library(
    tmp_path: Path, bedside_cmd: list[str], cli_env: dict[str, str]
) -> tuple[Path, Path]:
    """A music folder of the test tracks, indexed by ``bedside music scan``: (music, state)."""
    music, state = tmp_path / "music", tmp_path / "state"
    write_tracks(music)
    state.mkdir()
    scan = subprocess.run(
        [*bedside_cmd, "music", "scan", str(music), "--state-dir", str(state)],
        env=cli_env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert scan.returncode == 0, scan.stderr[-2000:]
    return music, state


def steady_tracks(lines: list[dict[str, object]]) -> set[str]:
    """The tracks the status names at 26-50 s: each plays for long inside the analysed 20-60 s.

    A track named only at the stretch's edges (in a crossfade at its start, or begun near its
    end) may sound for a few seconds only; the decoder thread's timing against a virtual clock
    moves a track change by a few seconds from run to run.
    """
    return {str(ln["track"]) for ln in lines if ln.get("track") and 26 <= float(ln["t"]) <= 50}  # type: ignore[arg-type]


def tone_prominence_db(x: np.ndarray, rate: int, hz: float) -> float:
    """Power in the bins at ``hz`` over the median of the 0.8-1.2 x ``hz`` band, dB."""
    spec = np.abs(np.fft.rfft(x * np.hanning(len(x)))) ** 2
    freqs = np.fft.rfftfreq(len(x), 1 / rate)
    at = spec[np.abs(freqs - hz) < 3.0].max()
    band = spec[(freqs > 0.8 * hz) & (freqs < 1.2 * hz)]
    return float(10 * np.log10((at + 1e-30) / (np.median(band) + 1e-30)))


def test_my_music_plays_the_indexed_tracks(tmp_path, bedside_cmd, cli_env):
    music = tmp_path / "music"
    write_tracks(music)
    state = tmp_path / "state"
    state.mkdir()
    cfg = tmp_path / "bedside.toml"
    cfg.write_text(f'[music]\ndir = "{music}"\n')
    scan = subprocess.run(
        [*bedside_cmd, "music", "scan", str(music), "--state-dir", str(state), "--json"],
        env=cli_env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert scan.returncode == 0, scan.stderr[-2000:]
    out = tmp_path / "out.wav"
    proc = run_box(
        bedside_cmd,
        cli_env,
        out,
        "60",
        "--sim",
        "--program",
        "my-music",
        "--config",
        str(cfg),
        "--state-dir",
        str(state),
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    lines = [json.loads(x) for x in proc.stdout.splitlines() if x.startswith("{")]
    assert {ln["track"] for ln in lines if ln.get("track")} <= set(TONES)
    names = steady_tracks(lines)
    assert names, lines
    assert all("track_tempo_bpm" in ln for ln in lines)
    with wave.open(str(out)) as w:
        rate = w.getframerate()
        data = np.frombuffer(w.readframes(w.getnframes()), "<i2").reshape(-1, 2)
    mono = data[20 * rate : 60 * rate].astype(np.float64).mean(axis=1)
    heard = {name: tone_prominence_db(mono, rate, hz) for name, hz in TONES.items()}
    # Every track the status named is heard: its tone stands 20 dB over its neighbourhood.
    assert all(heard[name] > 20.0 for name in names), heard
