"""A technician's session through a real terminal client: picocom in tmux."""

from __future__ import annotations

import shutil
import subprocess
import time
from collections.abc import Iterator

import pytest

from tests.support.console_box import BoxRun, box_env, needs_socat, running_box

pytestmark = [
    needs_socat,
    pytest.mark.skipif(
        shutil.which("picocom") is None or shutil.which("tmux") is None,
        reason="picocom and tmux are needed",
    ),
]


@pytest.fixture(scope="module")
def box(tmp_path_factory: pytest.TempPathFactory) -> Iterator[BoxRun]:
    tmp = tmp_path_factory.mktemp("picocom")
    with running_box(tmp, box_env(tmp)) as run:
        for t in run.terminals:
            t.close()
        run.terminals.clear()
        yield run


def screen(sock: str) -> str:
    return subprocess.run(
        ["tmux", "-L", sock, "capture-pane", "-t", "term", "-p", "-J"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout


def wait_for(sock: str, text: str, timeout: float = 10.0) -> str:
    deadline = time.monotonic() + timeout
    while True:
        shown = screen(sock)
        if text in shown:
            return shown
        if time.monotonic() > deadline:
            raise AssertionError(f"{text!r} not on the screen:\n{shown}")
        time.sleep(0.05)


def test_picocom_shows_id_and_status(box: BoxRun) -> None:
    sock = f"bedside-{id(box)}"
    tmux = ["tmux", "-L", sock]
    subprocess.run(
        [
            *tmux,
            "new-session",
            "-d",
            "-s",
            "term",
            "-x",
            "160",
            "-y",
            "40",
            f"picocom -q -b 115200 --omap crlf --echo {box.tech_tty}",
        ],
        check=True,
    )
    try:
        time.sleep(0.5)
        subprocess.run([*tmux, "send-keys", "-t", "term", "ID?", "Enter"], check=True)
        shown = wait_for(sock, "protocol=1")
        assert "ID?" in shown and "product=Bedside" in shown
        subprocess.run([*tmux, "send-keys", "-t", "term", "status?", "Enter"], check=True)
        shown = wait_for(sock, "state=")
        lines = [x.strip() for x in shown.splitlines() if x.strip()]
        i = lines.index("status?")
        assert lines[i + 1].startswith("t=") and "volume_db=" in lines[i + 1]
        assert lines[i + 2] == "OK"
        subprocess.run([*tmux, "send-keys", "-t", "term", "vol set 0", "Enter"], check=True)
        assert "ERR 2 " in wait_for(sock, "ERR 2")
    finally:
        subprocess.run([*tmux, "send-keys", "-t", "term", "C-a", "C-x"], check=False)
        time.sleep(0.2)
        subprocess.run([*tmux, "kill-server"], check=False, capture_output=True)
