"""Hostile configuration files: each fails ``config check`` with one line naming the key.

And the service's lenient loader keeps every valid key of such a file (issue #16 items 6, 7).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from device.config import (
    SCHEMA,
    Config,
    load_config,
    load_config_lenient,
    parse_config,
    parse_config_lenient,
)
from device.config import rules as config_rules
from device.exc import ConfigError
from tests.support.config_cases import HOSTILE


@pytest.mark.parametrize(("text", "key"), HOSTILE, ids=lambda v: str(v)[:24])
def test_hostile_file_is_one_config_error_naming_the_key(text, key):
    with pytest.raises(ConfigError) as err:
        parse_config(text, file="c.toml")
    assert err.value.key == key
    msg = str(err.value)
    assert msg.startswith("c.toml: ") and key in msg
    assert "\n" not in msg and len(msg) < 400


def test_config_check_cli_exits_2_with_one_line(tmp_path, bedside_cmd, cli_env):
    for i, (text, key) in enumerate(HOSTILE):
        path = tmp_path / f"c{i}.toml"
        path.write_text(text)
        out = subprocess.run(
            [*bedside_cmd, "config", "check", str(path)],
            env=cli_env,
            capture_output=True,
            text=True,
        )
        assert out.returncode == 2, out.stderr[-300:]
        assert out.stderr.count("\n") == 1 and key in out.stderr


def test_byte_order_mark_is_accepted(tmp_path):
    path = tmp_path / "bom.toml"
    path.write_bytes(b"\xef\xbb\xbf[audio]\nvolume_db = -20.0\n")
    assert load_config(str(path), env={}).audio.volume_db == -20.0


@pytest.fixture
def open_dir():
    """A directory every user may search (pytest's own base directory is private)."""
    path = tempfile.mkdtemp(prefix="bedside-test-")
    os.chmod(path, 0o755)
    yield Path(path)
    shutil.rmtree(path)


def test_programs_dir_the_service_user_cannot_read(open_dir, monkeypatch):
    progs = open_dir / "programs"
    progs.mkdir(mode=0o755)
    (progs / "mine.toml").write_text("[[section]]\nduration_min = 5\n")
    monkeypatch.setattr(config_rules, "SERVICE_USER", "nobody")
    text = f"[therapy]\nprograms_dir = '{progs}'\nprogram = 'mine'\n"
    assert parse_config(text).therapy.program == "mine"
    progs.chmod(0o700)  # owned by the test's user: nobody cannot list it
    with pytest.raises(ConfigError, match=r"therapy.programs_dir = .* service user \(nobody\)"):
        parse_config(text)
    (progs / "sub").mkdir()
    (progs / "sub").chmod(0o755)
    with pytest.raises(ConfigError, match=r"therapy.programs_dir"):
        parse_config(f"[therapy]\nprograms_dir = '{progs / 'sub'}'\n")  # parent not searchable
    progs.chmod(0o755)


def test_invalid_user_program_fails_the_check(tmp_path):
    progs = tmp_path / "programs"
    progs.mkdir()
    (progs / "bad.toml").write_text("[[section]]\nduration_min = -5\n")
    with pytest.raises(ConfigError, match=r"therapy.program = \"bad\" is not allowed: .*bad.toml"):
        parse_config(f"[therapy]\nprograms_dir = '{progs}'\nprogram = 'bad'\n")


def test_missing_programs_dir_is_allowed():
    assert parse_config("[therapy]\nprograms_dir = '/nonexistent/programs'\n").therapy.program


# --- the lenient fallback (item 7) ---------------------------------------------------------


def test_lenient_keeps_the_lowered_cap_with_an_unrelated_bad_key():
    text = "[audio]\ncap_dbfs = -30\nvolume_db = -35\n[gpio]\npin_led = 99\n"
    cfg, errors = parse_config_lenient(text, file="c.toml")
    assert cfg.audio.cap_dbfs == -30.0 and cfg.audio.volume_db == -35.0
    assert cfg.gpio.pin_led == 13  # only the bad key took its default
    assert [e.key for e in errors] == ["gpio.pin_led"]


def test_lenient_keeps_valid_keys_of_text_that_is_not_toml():
    text = "[audio]\ncap_dbfs = -30\nthis is not toml\n[therapy]\nprogram = 'nap'\n"
    cfg, errors = parse_config_lenient(text, file="c.toml")
    assert cfg.audio.cap_dbfs == -30.0 and cfg.therapy.program == "nap"
    assert errors and errors[0].key is not None


@pytest.mark.parametrize(
    ("text", "cap"),
    [
        ("[audio]\ncap_dbfs = -90\n", -40.0),  # below range: the lowest the box allows
        ("[audio]\ncap_dbfs = 'quiet'\n", -6.0),  # says no level: the default
        ("[audio]\ncap_dbfs = -30\ncap_dbfs = -3\n", -30.0),  # twice: the lower one
        ("[audio]\ncap_dbfs = -25\nvolume_db = -10\n", -25.0),  # volume over the cap
    ],
)
def test_lenient_cap_never_rises(text, cap):
    cfg, errors = parse_config_lenient(text)
    assert errors
    assert cfg.audio.cap_dbfs == cap
    assert cfg.audio.volume_db <= cfg.audio.cap_dbfs


def test_lenient_replaces_forbidden_sensor_timing_and_missing_program():
    text = "[sensor]\nsample_rate_sps = 800\naveraging = 8\ni2c_bus = 3\n[therapy]\nprogram = 'x'\n"
    cfg, errors = parse_config_lenient(text)
    assert cfg.sensor.i2c_bus == 3
    # 800 sps forbids the default pulse width: the timing keys go back to the defaults together
    assert (cfg.sensor.sample_rate_sps, cfg.sensor.averaging) == (100, 1)
    assert cfg.therapy.program == "wind-down"
    assert {"sensor.pulse_width_us", "therapy.program"} <= {e.key for e in errors}
    parse_config(cfg.to_toml())  # what it runs on passes the check


def test_load_config_lenient_never_raises(tmp_path):
    cfg, errors = load_config_lenient(str(tmp_path / "missing.toml"), env={})
    assert cfg == Config.defaults() and len(errors) == 1
    bad = tmp_path / "bad.toml"
    bad.write_bytes(b"\xff\xfe not utf-8")
    cfg, errors = load_config_lenient(str(bad), env={})
    assert cfg == Config.defaults() and cfg.source == str(bad) and len(errors) == 1
    good = tmp_path / "good.toml"
    good.write_text("[audio]\ncap_dbfs = -30\nvolume_db = -35\n")
    cfg, errors = load_config_lenient(str(good), env={})
    assert cfg.audio.cap_dbfs == -30.0 and errors == []


# --- fuzz: the loader returns a Config or raises ConfigError, nothing else ------------------

_KEYS = [(s, k) for s, keys in SCHEMA.items() for k in keys]
_value = st.one_of(
    st.integers(min_value=-(10**500), max_value=10**500).map(str),
    st.floats(allow_nan=True).map(repr),
    st.sampled_from(["true", "false", "nan", "inf", "-inf", "[]", "{}", "'x'", '"\\u0000"']),
    st.text(max_size=20).map(lambda t: '"' + t.replace("\\", "").replace('"', "") + '"'),
    st.integers(min_value=1, max_value=3000).map(lambda n: "[" * n + "]" * n),
    st.text(max_size=12),
)


@st.composite
def _tomlish(draw):
    lines = []
    for _ in range(draw(st.integers(0, 8))):
        section, key = draw(st.sampled_from(_KEYS))
        kind = draw(st.integers(0, 9))
        if kind == 0:
            lines.append(draw(st.text(max_size=30)))
        elif kind == 1:
            lines.append(f"[{draw(st.sampled_from([section, section + '.x', 'bogus', '']))}]")
        else:
            lines.append(f"[{section}]")
            lines.append(f"{key} = {draw(_value)}")
    prefix = draw(st.sampled_from(["", "\ufeff"]))
    return prefix + "\n".join(lines)


@settings(max_examples=300, deadline=None)
@given(_tomlish())
def test_fuzz_loader_returns_config_or_config_error(text):
    try:
        cfg = parse_config(text, file="f.toml")
    except ConfigError as exc:
        assert "\n" not in str(exc)
    else:
        assert isinstance(cfg, Config)
    lenient, _errors = parse_config_lenient(text, file="f.toml")
    assert isinstance(lenient, Config)
    parse_config(lenient.to_toml())  # the fallback itself always passes the check


def test_readable_by_asks_for_the_named_user_not_the_caller(open_dir):
    assert config_rules.readable_by(open_dir, "root")
    assert config_rules.readable_by(open_dir, "nobody")
    open_dir.chmod(0o700)
    assert not config_rules.readable_by(open_dir, "nobody")
    open_dir.chmod(0o755)


def test_the_pulse_width_table_covers_every_configurable_rate():
    from device.config.schema import PULSE_WIDTHS_AT_RATE_US

    rates = SCHEMA["sensor"]["sample_rate_sps"].choices
    assert set(PULSE_WIDTHS_AT_RATE_US) == set(rates)


def test_checking_a_file_needs_no_numpy(tmp_path, cli_env):
    code = (
        "import sys; sys.modules['numpy'] = None; import device.config as c;"
        "c.parse_config('[sensor]\\nsample_rate_sps = 400\\npoll_interval_s = 0.05\\n')"
    )
    out = subprocess.run([sys.executable, "-c", code], env=cli_env, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr


def _sensor_rate_choices():
    rates = SCHEMA["sensor"]["sample_rate_sps"].choices
    averaging = SCHEMA["sensor"]["averaging"].choices
    return [(r, a) for r in rates for a in averaging]


@pytest.mark.parametrize(("sps", "averaging"), _sensor_rate_choices())
def test_a_sample_rate_the_heart_analysis_refuses_fails_the_check(sps, averaging):
    # 1600 sps without averaging (or 50 sps averaged by 4) passed the check, and the box then
    # ran a heart analysis that refuses its rate (20-1000 Hz after averaging).
    from device.config.schema import PULSE_WIDTHS_AT_RATE_US
    from device.heart.analysis import HeartAnalyzer

    width = PULSE_WIDTHS_AT_RATE_US[sps][0]
    text = f"[sensor]\nsample_rate_sps = {sps}\naveraging = {averaging}\npulse_width_us = {width}\n"
    try:
        HeartAnalyzer(sps / averaging)
    except ValueError:
        with pytest.raises(ConfigError) as info:
            parse_config(text)
        assert info.value.key == "sensor.sample_rate_sps"
        assert f"sensor.averaging = {averaging}" in str(info.value)
        assert "\n" not in str(info.value)
        return
    try:
        parse_config(text)
    except ConfigError as exc:  # other rules (the FIFO's fill time) may still refuse it
        assert exc.key != "sensor.sample_rate_sps", str(exc)


def test_lenient_loading_replaces_a_rate_the_heart_analysis_refuses():
    cfg, errors = parse_config_lenient("[sensor]\nsample_rate_sps = 50\naveraging = 8\n")
    assert "sensor.sample_rate_sps" in {e.key for e in errors}
    assert 20 <= cfg.sensor.sample_rate_sps / cfg.sensor.averaging <= 1000
    parse_config(cfg.to_toml())
