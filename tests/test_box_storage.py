"""The whole box on a full disk: the sound goes on and the store reports a storage fault.

Runs the real ``bedside run --sim --audio null`` with its state directory on a tiny tmpfs
(needs root to mount it), once full from the start and once filling up mid-session.
"""

from __future__ import annotations

import errno
import json
import os
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.fs import tiny_tmpfs

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture
def tiny_disk(tmp_path: Path) -> Iterator[Path]:
    """A real 2m filesystem (tmpfs), so the kernel itself says ENOSPC."""
    with tiny_tmpfs(tmp_path / "state", "2m") as mnt:
        yield mnt


def fill(path: Path) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT, 0o644)
    try:
        while True:
            os.write(fd, b"\0" * 65536)
    except OSError as exc:
        assert exc.errno == errno.ENOSPC
    finally:
        os.close(fd)
    # Whatever is left is smaller than a block; take it too.
    fd = os.open(path, os.O_WRONLY | os.O_APPEND)
    try:
        while True:
            os.write(fd, b"\0" * 512)
    except OSError:
        pass
    finally:
        os.close(fd)


def box(state: Path, *extra: str) -> subprocess.Popen[str]:
    env = {k: v for k, v in os.environ.items() if k not in ("NOTIFY_SOCKET", "BEDSIDE_CONFIG")}
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "device",
            "run",
            "--sim",
            "--audio",
            "null",
            "--status",
            "json",
            "--state-dir",
            str(state),
            *extra,
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
        cwd=REPO,
    )


def test_full_disk_from_the_start_still_plays(tiny_disk: Path):
    fill(tiny_disk / "filler")
    proc = box(tiny_disk, "--duration", "6", "--speed", "4")
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err[-2000:]
    lines = [json.loads(x) for x in out.splitlines()]
    assert len(lines) >= 4
    assert all(s["storage"] == "fault" for s in lines)
    assert lines[-1]["t"] >= 4.0  # one line a second until the stop fade at the end
    assert any(s["state"] == "playing" for s in lines)
    assert "storage fault" in err


def test_disk_filling_mid_session_keeps_playing_and_keeps_earlier_rows(tiny_disk: Path):
    proc = box(tiny_disk, "--duration", "16", "--speed", "4")
    assert proc.stdout is not None
    lines = []
    for raw in proc.stdout:
        lines.append(json.loads(raw))
        if len(lines) == 4:
            fill(tiny_disk / "filler")  # a runaway log fills the card
    err = proc.stderr.read() if proc.stderr else ""
    proc.wait(timeout=60)
    assert proc.returncode == 0, err[-2000:]
    assert lines[0]["storage"] == "ok"
    assert lines[-1]["storage"] == "fault"
    assert lines[-1]["t"] >= 14.0  # the loop went on to the end (then the stop fade)
    assert "storage fault" in err
    # Space again: the file opens, is intact and holds the rows written before the disk filled.
    (tiny_disk / "filler").unlink()
    db = sqlite3.connect(tiny_disk / "sessions.db")
    assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    assert db.execute("SELECT count(*) FROM rows").fetchone()[0] >= 2
    db.close()
