"""Configuration: schema validation, search order, console values, atomic saves."""

from __future__ import annotations

import subprocess

import pytest

from device.config import Config, find_config, load_config, parse_config, save_config
from device.exc import ConfigError


def test_defaults_are_valid_and_complete():
    cfg = Config.defaults()
    assert cfg.audio.sample_rate == 48000
    assert cfg.get("therapy.pacer_target_bpm") == 6.0
    assert parse_config(cfg.to_toml()) == cfg
    assert parse_config(cfg.to_toml(commented=True)) == cfg


def test_file_values_override_defaults():
    cfg = parse_config("[audio]\nvolume_db = -20\n[therapy]\nprogram = 'sleep'\n", file="x.toml")
    assert cfg.audio.volume_db == -20.0 and isinstance(cfg.audio.volume_db, float)
    assert cfg.therapy.program == "sleep"
    assert cfg.audio.cap_dbfs == -6.0


@pytest.mark.parametrize(
    ("text", "key", "allowed"),
    [
        ("[audio]\nvolume_db = 'loud'\n", "audio.volume_db", "a number from -60 to 0"),
        ("[audio]\nvolume_db = -61\n", "audio.volume_db", "a number from -60 to 0"),
        ("[audio]\nvolume_db = nan\n", "audio.volume_db", "a number"),
        ("[audio]\nsample_rate = 22050\n", "audio.sample_rate", "one of 44100, 48000"),
        ("[audio]\noutput = 'mono'\n", "audio.output", 'one of "speaker", "headphones"'),
        ("[sensor]\ni2c_bus = 1.5\n", "sensor.i2c_bus", "a whole number from 0 to 31"),
        ("[sensor]\ni2c_bus = true\n", "sensor.i2c_bus", "a whole number"),
        ("[therapy]\npersonalise = 1\n", "therapy.personalise", "true or false"),
        ("[therapy]\npacer_target_bpm = 8\n", "therapy.pacer_target_bpm", "from 4.5 to 7"),
        ("[console]\nport = 5\n", "console.port", "a string"),
        ("[audio]\ncap_dbfs = -20\nvolume_db = -10\n", "audio.volume_db", "audio.cap_dbfs"),
        (
            "[sensor]\nsample_rate_sps = 400\npoll_interval_s = 0.1\n",
            "sensor.poll_interval_s",
            "FIFO fills in 0.080 s",
        ),
    ],
)
def test_bad_values_name_file_key_value_and_allowed(text, key, allowed):
    with pytest.raises(ConfigError) as err:
        parse_config(text, file="/etc/bedside/config.toml")
    msg = str(err.value)
    assert msg.startswith("/etc/bedside/config.toml: ")
    assert key in msg and allowed in msg
    assert err.value.key == key


def test_unknown_key_and_section_are_errors():
    with pytest.raises(ConfigError, match=r"unknown key 'audio.volume' \(keys in \[audio\]"):
        parse_config("[audio]\nvolume = -3\n", file="c.toml")
    with pytest.raises(ConfigError, match=r"c.toml: unknown section \[sound\]"):
        parse_config("[sound]\nx = 1\n", file="c.toml")
    with pytest.raises(ConfigError, match=r"must be a .section. table"):
        parse_config("audio = 3\n", file="c.toml")


def test_toml_syntax_error_names_file():
    with pytest.raises(ConfigError, match=r"^c.toml: line 1: not valid TOML"):
        parse_config("[audio\n", file="c.toml")


def test_with_value_parses_console_text_like_the_file():
    cfg = Config.defaults()
    assert cfg.with_value("audio.volume_db", "-20.5").audio.volume_db == -20.5
    assert cfg.with_value("audio.output", "headphones").audio.output == "headphones"
    assert cfg.with_value("therapy.personalise", "false").therapy.personalise is False
    assert cfg.with_value("therapy.program", '"sleep"').therapy.program == "sleep"
    with pytest.raises(ConfigError, match=r"therapy.program = \"my program\" is not allowed"):
        cfg.with_value("therapy.program", '"my program"')
    with pytest.raises(ConfigError, match=r"audio.volume_db = \"up\" is not allowed"):
        cfg.with_value("audio.volume_db", "up")
    with pytest.raises(ConfigError, match=r"unknown key 'audio\.nope'"):
        cfg.with_value("audio.nope", "1")
    assert cfg.audio.volume_db == -12.0  # immutable


def test_search_order(tmp_path, monkeypatch):
    a, b = tmp_path / "a.toml", tmp_path / "b.toml"
    a.write_text("[therapy]\nprogram = 'relax'\n")
    b.write_text("[therapy]\nprogram = 'nap'\n")
    assert find_config(str(a), env={"BEDSIDE_CONFIG": str(b)}) == a
    assert find_config(None, env={"BEDSIDE_CONFIG": str(b)}) == b
    assert load_config(None, env={"BEDSIDE_CONFIG": str(b)}).therapy.program == "nap"
    monkeypatch.setattr("device.config.SYSTEM_CONFIG", tmp_path / "none.toml")
    assert find_config(None, env={}) is None
    assert load_config(None, env={}).source is None
    with pytest.raises(ConfigError, match=r"named by --config does not exist"):
        find_config(str(tmp_path / "missing.toml"), env={})


def test_save_is_atomic_and_round_trips(tmp_path):
    path = tmp_path / "etc" / "config.toml"
    path.parent.mkdir()
    cfg = Config.defaults().with_value("audio.volume_db", "-30")
    save_config(cfg, path)
    assert "volume_db = -30.0" in path.read_text()
    assert [p.name for p in path.parent.iterdir()] == ["config.toml"]  # no temp file left
    assert parse_config(path.read_text()) == cfg


def test_cli_config_check_and_show(tmp_path, bedside_cmd, cli_env):
    good, bad = tmp_path / "good.toml", tmp_path / "bad.toml"
    good.write_text("[audio]\nvolume_db = -20\n")
    bad.write_text("[audio]\nvolume_db = -20\nbogus = 1\n")
    ok = subprocess.run(
        [*bedside_cmd, "config", "check", str(good)], env=cli_env, capture_output=True, text=True
    )
    assert ok.returncode == 0, ok.stderr
    assert ok.stdout.strip() == f"{good}: ok"
    ko = subprocess.run(
        [*bedside_cmd, "config", "check", str(bad)], env=cli_env, capture_output=True, text=True
    )
    assert ko.returncode == 2
    assert ko.stderr.count("\n") == 1 and "audio.bogus" in ko.stderr and str(bad) in ko.stderr
    show = subprocess.run(
        [*bedside_cmd, "config", "show", "--config", str(good)],
        env=cli_env,
        capture_output=True,
        text=True,
    )
    assert show.returncode == 0
    assert "volume_db = -20.0" in show.stdout
    assert parse_config(show.stdout).audio.volume_db == -20.0
