"""Each error the command line prints says what is wrong and what to do, in one line (#23.7)."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

from device.cli import ctl as ctl_mod
from device.cli import main
from device.config import load_config
from device.exc import ConfigError


def last_error(capsys: pytest.CaptureFixture[str]) -> str:
    lines = capsys.readouterr().err.strip().splitlines()
    assert lines, "nothing on stderr"
    return lines[-1]


def test_a_wav_in_a_missing_folder_names_the_path_not_the_sound_card(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "no-such-folder" / "x.wav"
    status = main(["run", "--sim", "--audio", f"wav:{out}", "--duration", "1",
                   "--status", "none", "--state-dir", str(tmp_path / "s")])  # fmt: skip
    line = last_error(capsys)
    assert status == 2
    assert "sound card" not in line and "--audio null" not in line
    assert str(out) in line and "folder that exists" in line


def test_an_argparse_error_names_the_command_once_and_where_help_is(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["run", "--speed", "x"]) == 2
    line = last_error(capsys)
    assert line.startswith("bedside run: error: argument --speed:")
    assert "bedside: error: bedside run" not in line
    assert line.endswith("bedside run --help lists the options")


def test_an_unknown_listener_lists_the_kinds_and_no_python_types(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    status = main(["run", "--sim", "--listener", "lazy", "--audio", "null", "--duration", "1",
                   "--status", "none", "--state-dir", str(tmp_path / "s")])  # fmt: skip
    line = last_error(capsys)
    assert status == 2
    assert "dict" not in line and "'lazy'" in line
    assert "compliant" in line and ".toml" in line
    assert "listener: listener" not in line


def test_a_table_declared_twice_is_named_as_a_table_not_a_python_tuple(tmp_path: Path) -> None:
    cfg = tmp_path / "dup.toml"
    cfg.write_text("[audio]\nvolume_db = -20\n\n[audio]\ncap_dbfs = -10\n")
    with pytest.raises(ConfigError) as info:
        load_config(str(cfg))
    text = str(info.value)
    assert "('audio',)" not in text
    assert "[audio] appears twice" in text and "line 4" in text


class _Client:
    """The commands' answers, without a box: what ctl prints is what is tested."""

    def __init__(self) -> None:
        self.sent: list[str] = []

    def send(self, command: str) -> ctl_mod.Result:
        self.sent.append(command)
        return ctl_mod.Result(command, [f"line{i}=x" for i in range(200)], "OK")


def test_ctl_piped_into_head_runs_every_command_and_says_nothing_of_the_port(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    r, w = os.pipe()
    os.close(r)  # the reader (head) has gone
    stdout = os.fdopen(w, "w")
    monkeypatch.setattr(sys, "stdout", stdout)
    client = _Client()
    try:
        status = ctl_mod.run_commands(
            client,
            ["HELP", "STATUS?", "ID?"],
            as_json=False,
            ask=lambda _p: "",  # type: ignore[arg-type]
        )
    finally:
        monkeypatch.undo()
        stdout.close()
    assert status == 0
    assert client.sent == ["HELP", "STATUS?", "ID?"]
    assert "port failed" not in capsys.readouterr().err
