"""``CFG SAVE``: comments, order and mode kept; no temp file survives a kill (issue #16 item 8)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap

import pytest

from device.config import Config, load_config_lenient, parse_config, save_config
from device.exc import ConfigError
from device.store.atomic import clean_stale_temps

COMMENTED = """\
# Bedside configuration for room 12 (installer, 2026-11-02).

[audio]
# Lowered after the complaint of 2026-11-20: do not raise.
cap_dbfs = -30   # dBFS
volume_db = -35

# The speaker is in the headboard.
output = "speaker"

[therapy]
program = "sleep"  # the listener asked for it
"""


def test_save_keeps_comments_order_and_mode(tmp_path):
    path = tmp_path / "config.toml"
    path.write_text(COMMENTED)
    path.chmod(0o600)
    cfg = (
        parse_config(COMMENTED)
        .with_value("audio.volume_db", "-32")
        .with_value("audio.fade_in_s", "10")
    )
    save_config(cfg, path)
    text = path.read_text()
    assert (
        text.replace("volume_db = -32.0", "volume_db = -35").replace("fade_in_s = 10.0\n", "")
        == COMMENTED
    )
    assert "fade_in_s = 10.0" in text.split("[therapy]")[0]  # added to its own section
    assert os.stat(path).st_mode & 0o777 == 0o600
    assert parse_config(text, file=str(path)) == cfg


def test_save_into_a_new_file_and_drop_refused_keys(tmp_path):
    path = tmp_path / "config.toml"
    save_config(Config.defaults().with_value("console.baud", "9600"), path)
    assert path.read_text() == "[console]\nbaud = 9600\n"
    path.write_text("# keep me\n[audio]\nbogus = 1\nvolume_db = -20\n[nosuch]\nx = 1\n")
    save_config(Config.defaults().with_value("audio.volume_db", "-20"), path)
    assert path.read_text() == "# keep me\n[audio]\nvolume_db = -20\n"


def test_a_program_that_does_not_exist_is_refused_before_saving(tmp_path):
    progs = tmp_path / "programs"
    progs.mkdir()
    (progs / "mine.toml").write_text("[[section]]\nduration_min = 5\n")
    cfg = Config.defaults().with_value("therapy.programs_dir", f'"{progs}"')
    cfg = cfg.with_value("therapy.program", "mine")
    (progs / "mine.toml").unlink()
    path = tmp_path / "config.toml"
    path.write_text(COMMENTED)
    with pytest.raises(ConfigError, match=r"therapy.program = \"mine\" is not allowed"):
        save_config(cfg, path)
    assert path.read_text() == COMMENTED
    assert set(os.listdir(tmp_path)) == {"config.toml", "programs"}


KILL_DURING_SAVE = textwrap.dedent(
    """
    import os, signal, sys
    from device.config import Config, save_config
    real_fsync = os.fsync
    def fsync_then_die(fd):
        real_fsync(fd)
        os.kill(os.getpid(), signal.SIGKILL)  # between the temp's fsync and the rename
    os.fsync = fsync_then_die
    save_config(Config.defaults().with_value("audio.volume_db", "-40"), sys.argv[1])
    """
)


def test_a_save_killed_midway_leaves_the_old_file_and_its_temp_is_cleaned(tmp_path):
    path = tmp_path / "config.toml"
    path.write_text(COMMENTED)
    for _ in range(3):
        proc = subprocess.run([sys.executable, "-c", KILL_DURING_SAVE, str(path)], check=False)
        assert proc.returncode == -signal.SIGKILL
    assert path.read_text() == COMMENTED
    temps = [n for n in os.listdir(tmp_path) if n.endswith(".tmp")]
    # Each save removed the temp of the killed one before: one is left, not three.
    assert len(temps) == 1 and temps[0].startswith(".config.toml.")
    # The service's start (the lenient loader) removes them; so does the next save.
    cfg, errors = load_config_lenient(str(path), env={})
    assert errors == [] and cfg.audio.cap_dbfs == -30.0
    assert os.listdir(tmp_path) == ["config.toml"]
    subprocess.run([sys.executable, "-c", KILL_DURING_SAVE, str(path)], check=False)
    save_config(cfg, path)
    assert os.listdir(tmp_path) == ["config.toml"]


def test_clean_stale_temps_spares_live_processes_and_other_files(tmp_path):
    path = tmp_path / "config.toml"
    live = tmp_path / f".config.toml.{os.getppid()}.0123456789abcdef.tmp"
    dead = tmp_path / ".config.toml.999999999.0123456789abcdef.tmp"
    other = tmp_path / ".other.toml.999999999.0123456789abcdef.tmp"
    for p in (live, dead, other):
        p.write_text("x")
    assert clean_stale_temps(path) == [dead]
    assert live.exists() and other.exists()


def test_loading_does_not_import_tomlkit(cli_env):
    code = (
        "import sys, device.config as c; c.parse_config('[audio]\\nvolume_db = -20\\n');"
        "sys.exit('tomlkit' in sys.modules)"
    )
    assert subprocess.run([sys.executable, "-c", code], env=cli_env).returncode == 0
