"""How a run of the box begins and ends, and what of the simulator a real box shows."""

from __future__ import annotations

import io
import os
import subprocess
import wave
from pathlib import Path

import numpy as np
import pytest

from device.box.app import Box, RunOptions
from device.config import Config

#: A two-part program short enough to play to its end in a test: 40 s, then a 20 s fade.
SHORT = """name = "short"
description = "a test program"

[[section]]
name = "only"
duration_s = 40
pacer_bpm = 6

[ending]
kind = "fade"
duration_s = 20
"""


@pytest.fixture
def short_program(tmp_path: Path) -> Path:
    path = tmp_path / "short.toml"
    path.write_text(SHORT)
    return path


def box_for(tmp_path: Path, cfg: Config | None = None, **opts: object) -> Box:
    base: dict[str, object] = dict(sim=True, audio="null", speed=None, status="none")
    base["state_dir"] = str(tmp_path / "state")
    base.update(opts)
    return Box(cfg or Config.defaults(), RunOptions(**base), status_out=io.StringIO())  # type: ignore[arg-type]


# -- the end of a run --------------------------------------------------------------------


def test_a_run_into_a_wav_without_duration_ends_after_its_program(
    tmp_path: Path, short_program: Path, bedside_cmd: list[str], cli_env: dict[str, str]
) -> None:
    out = tmp_path / "out.wav"
    proc = subprocess.run(
        [*bedside_cmd, "run", "--sim", "--program", str(short_program), "--listener",
         "restless", "--audio", f"wav:{out}", "--speed", "max", "--status", "none"],
        env=cli_env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-2000:]
    with wave.open(str(out)) as w:
        seconds = w.getnframes() / w.getframerate()
    assert 60.0 <= seconds <= 64.0  # the program (60 s with its ending), then the last fade


def test_a_sim_run_without_a_sound_card_says_what_to_use_and_exits_2(
    tmp_path: Path, bedside_cmd: list[str], cli_env: dict[str, str]
) -> None:
    cfg = tmp_path / "config.toml"
    cfg.write_text('[audio]\nbackend = "pyaudio"\ndevice = "no-such-card-anywhere"\n')
    proc = subprocess.run(
        [*bedside_cmd, "run", "--sim", "--config", str(cfg), "--duration", "2"],
        env=cli_env, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert proc.returncode == 2, proc.stderr[-2000:]
    last = proc.stderr.strip().splitlines()[-1]
    assert last.startswith("bedside: error:")
    assert "--audio null" in last and "wav:PATH" in last
    assert "Traceback" not in proc.stderr


def test_a_listener_that_does_not_exist_is_one_line_and_exit_2(
    bedside_cmd: list[str], cli_env: dict[str, str]
) -> None:
    proc = subprocess.run(
        [*bedside_cmd, "run", "--sim", "--listener", "restles", "--audio", "null",
         "--duration", "1"],
        env=cli_env, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert lines[-1].startswith("bedside: error:") and "restles" in lines[-1]
    assert "sim.listener" in lines[-1] or "listener" in lines[-1]


@pytest.mark.parametrize(
    "command", ["run", "render", "config", "sessions", "report", "ctl", "pin", "analyze-ppg"]
)
def test_help_texts_show_no_docstring_markup(
    command: str, bedside_cmd: list[str], cli_env: dict[str, str]
) -> None:
    proc = subprocess.run(
        [*bedside_cmd, command, "--help"], env=cli_env, capture_output=True, text=True, timeout=60
    )
    assert proc.returncode == 0, proc.stderr
    for markup in ("``", ":class:", ":func:", ":data:", ":meth:"):
        assert markup not in proc.stdout, f"{command} --help shows {markup}"


# -- the listener's store ------------------------------------------------------------------


def test_a_sim_run_without_state_dir_never_touches_the_listeners_store(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    listener_store = tmp_path / "var-lib-bedside"
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "xdg"))
    monkeypatch.delenv("STATE_DIRECTORY", raising=False)
    cfg = Config.defaults().with_value("store.state_dir", str(listener_store))
    box = box_for(tmp_path, cfg, state_dir=None, duration_s=5.0)
    with box:
        assert box.run() == 0
        used = box.state_dir
        assert used is not None and (used / "sessions.db").exists()
        assert box.sessions().run()  # the demo's session is recorded, in the throw-away store
    assert not listener_store.exists()
    assert not (tmp_path / "xdg").exists()
    assert not used.exists()  # removed at close


# -- a real box shows nothing of the simulator -------------------------------------------------


def real_box(tmp_path: Path, seed: int) -> Box:
    cfg = Config.defaults()
    for key, value in [
        ("sensor.backend", "none"),
        ("gpio.backend", "none"),
        ("console.port", ""),
        ("sim.seed", seed),
        ("therapy.program", "relax"),
        ("therapy.personalise", False),  # the same sound choices in both boxes
    ]:
        cfg = cfg.with_value(key, value)
    return box_for(tmp_path / str(seed), cfg, sim=False)


def render(box: Box, seconds: float) -> np.ndarray:
    """Run the box until its session plays, then ``seconds`` of its engine's sound."""
    box.loop.run(until=lambda: box.status()["state"] == "playing")
    n = round(seconds * box.engine.sample_rate / box.engine.block_frames)
    return np.concatenate([box.engine.render().copy() for _ in range(n)])


def test_sim_seed_never_reaches_a_real_box(tmp_path: Path) -> None:
    with real_box(tmp_path, 1) as one, real_box(tmp_path, 2) as two:
        assert np.array_equal(render(one, 3.0), render(two, 3.0))
        assert one.runner.seed is None  # each real session draws its own seed
        status = one.status()
    assert "sim_hr" not in status and "sim_breathing" not in status
    assert one.sensor_info()["backend"] == "none"


def test_a_sim_box_says_its_sensor_is_simulated(tmp_path: Path) -> None:
    with box_for(tmp_path) as box:
        assert box.sensor_info()["backend"] == "simulated"
        assert "sim_hr" in box.status()


def test_the_fault_variable_of_old_does_nothing(
    bedside_cmd: list[str], cli_env: dict[str, str]
) -> None:
    env = dict(cli_env, BEDSIDE_FAULT="hang-after:0.5")
    proc = subprocess.run(
        [*bedside_cmd, "run", "--sim", "--audio", "null", "--duration", "3", "--speed", "max",
         "--status", "none"],
        env=env, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "fault injection" not in proc.stderr
    assert not any("FAULT" in name for name in os.environ if name.startswith("BEDSIDE"))


# -- sessions ----------------------------------------------------------------------------------


def states_every(box: Box, step: float, until: float) -> list[tuple[float, str]]:
    seen: list[tuple[float, str]] = []

    def probe(deadline: float) -> float:
        seen.append((deadline, str(box.status()["state"])))
        return deadline + step

    box.loop.add_task("probe", probe, step)
    box.loop.run(until=lambda: box.clock.now() >= until)
    return seen


def test_the_state_is_ending_while_the_programs_ending_plays(
    tmp_path: Path, short_program: Path
) -> None:
    with box_for(tmp_path, program=str(short_program)) as box:
        seen = states_every(box, 1.0, 70.0)
    start = next(t for t, s in seen if s == "playing")
    ending = [t - start for t, s in seen if s == "ending"]
    assert ending, seen
    assert 39.0 <= min(ending) <= 42.0 and max(ending) <= 61.0
    assert all(s == "idle" for t, s in seen if t - start > 62.0)


def test_session_start_without_a_program_plays_the_one_the_box_was_started_with(
    tmp_path: Path,
) -> None:
    with box_for(tmp_path, program="relax") as box:
        box.loop.run(until=lambda: box.clock.now() >= 2.0)
        assert box.status()["program"] == "relax"
        box.stop_session("console")
        box.loop.run(until=lambda: box.clock.now() >= 6.0)
        assert box.status()["state"] == "idle"
        box.start_session()
        assert box.status()["program"] == "relax"
        box.stop_session("console")
        box.loop.run(until=lambda: box.clock.now() >= 10.0)
        box.set_config("therapy.program", "nap").run()  # the technician's choice wins from now on
        box.start_session()
        assert box.status()["program"] == "nap"


def test_the_amplifier_goes_off_between_sessions(tmp_path: Path) -> None:
    cfg = Config.defaults().with_value("therapy.program", "relax")
    with box_for(tmp_path, cfg) as box:
        assert box.controls is not None and box.controls.amp_enable is not None
        amp = box.controls.amp_enable
        box.loop.run(until=lambda: box.clock.now() >= 5.0)
        assert box.status()["state"] == "playing" and amp.enabled
        box.stop_session("console")
        box.loop.run(until=lambda: box.engine.faded_out)
        faded = box.clock.now()
        box.loop.run(until=lambda: box.clock.now() >= faded + 0.1)
        assert amp.enabled  # the buffered blocks may still hold sound
        box.loop.run(until=lambda: box.clock.now() >= faded + 0.5)
        assert not amp.enabled  # 0.2 s of quiet: off (docs/box.md)
        box.start_session()
        assert amp.enabled  # on again before the fade-in
        assert amp.forced == 0  # never switched while sound played
