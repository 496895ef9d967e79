"""`bedside music scan`'s errors in the project's words (#23.7)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from device.cli import main
from device.exc import InputFileError
from device.music.analysis import analyse


def test_scan_without_soundfile_is_one_line_naming_what_to_install(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    music = tmp_path / "music"
    music.mkdir()
    (music / "a.flac").write_bytes(b"fLaC")
    monkeypatch.setitem(sys.modules, "soundfile", None)  # import soundfile -> ImportError
    status = main(["music", "scan", str(music), "--state-dir", str(tmp_path / "state")])
    err = capsys.readouterr().err.strip().splitlines()
    assert status == 1
    assert len(err) == 1 and "Traceback" not in err[0]
    assert "soundfile" in err[0] and "pip install" in err[0]


def test_a_file_that_is_not_audio_is_not_said_to_be_missing(tmp_path: Path) -> None:
    pytest.importorskip("soundfile")
    bad = tmp_path / "bad.mp3"
    bad.write_bytes(b"this is not an mp3 file at all\n" * 10)
    with pytest.raises(InputFileError) as info:
        analyse(bad)
    text = str(info.value)
    assert "does not exist" not in text
    assert str(bad) in text and "cannot decode" in text and "re-encode" in text
