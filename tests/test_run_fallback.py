"""``run --service`` on a broken file keeps the file's valid keys (issue 16 item 7)."""

from __future__ import annotations

import argparse
from pathlib import Path

from device.cli.run import load_for_run


def test_a_broken_key_never_raises_the_technicians_cap(tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    path.write_text("[audio]\ncap_dbfs = -30.0\n\n[sensor]\nsample_rate_sps = 123\n")
    cfg, error = load_for_run(argparse.Namespace(config=str(path), service=True))
    assert cfg.audio.cap_dbfs == -30.0
    assert cfg.audio.volume_db <= -30.0
    assert error is not None and "sensor.sample_rate_sps" in error
    assert cfg.sensor.sample_rate_sps == 100  # only the bad key took its default


def test_a_good_file_has_no_error(tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    path.write_text("[audio]\ncap_dbfs = -30.0\nvolume_db = -35.0\n")
    cfg, error = load_for_run(argparse.Namespace(config=str(path), service=True))
    assert error is None and cfg.audio.cap_dbfs == -30.0
