"""The box's own music scan: ``bedside music scan`` in an idle-priority child process.

A listener who copies music into ``[music] dir`` expects the box to find it. At start the
box runs :class:`MusicScan`: a child process (``python -m device music scan DIR --summary
--idle``), never a thread of the box, so decoding competes neither for the GIL nor (at
``SCHED_IDLE``) for the CPU with the audio loop. The loop only calls :meth:`MusicScan.poll`
(non-blocking ``Popen.poll``); once the child has exited, a worker thread reads its summary
and the index and hands the playable tracks to the music player (``on_tracks``), so no disk
work reaches the loop. The scan is incremental (files keyed by path, size and mtime), so a
rescan of an unchanged folder only stats its files.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import subprocess
import sys
import threading
from collections.abc import Callable
from pathlib import Path

from device.exc import StorageError
from device.music.index import MusicIndex, Track

log = logging.getLogger(__name__)

#: How long a virtual-clock box waits for its start scan before it plays without it, s.
WAIT_S = 600.0


def scan_command(music_dir: str | Path, state_dir: str | Path) -> list[str]:
    """The child's command line: this interpreter, the summary line only, idle priority."""
    return [
        sys.executable, "-m", "device", "music", "scan", str(music_dir),
        "--state-dir", str(state_dir), "--summary", "--idle",
    ]  # fmt: skip


def _idle(pid: int) -> None:
    """Move the child to idle priority at once (it does so itself too, after its imports)."""
    with contextlib.suppress(OSError, AttributeError):
        os.sched_setscheduler(pid, os.SCHED_IDLE, os.sched_param(0))
    with contextlib.suppress(OSError):
        os.setpriority(os.PRIO_PROCESS, pid, 19)


class MusicScan:
    """Scans ``music_dir`` into the index in ``state_dir`` in a child, one scan at a time.

    :param on_tracks: called (on the worker thread) with the folder's indexed tracks after
        each successful scan.
    """

    def __init__(
        self,
        music_dir: str | Path,
        state_dir: str | Path,
        on_tracks: Callable[[list[Track]], object],
    ) -> None:
        self.music_dir = str(music_dir)
        self.state_dir = str(state_dir)
        self._on_tracks = on_tracks
        self._proc: subprocess.Popen[bytes] | None = None
        self._worker: threading.Thread | None = None
        #: Scans finished (successfully or not) since the box started.
        self.finished = 0
        #: The last finished scan's summary (``tracks``, ``new``, ``unreadable``), or its error.
        self.last: dict[str, object] = {}

    def __repr__(self) -> str:
        return f"<MusicScan {self.music_dir} {'running' if self.running else 'idle'}>"

    @property
    def running(self) -> bool:
        """A child is scanning or its result is being loaded."""
        return self._proc is not None or (self._worker is not None and self._worker.is_alive())

    def start(self) -> bool:
        """Start a scan (False, and nothing done, while one runs or when it cannot spawn)."""
        if self.running:
            return False
        try:
            self._proc = subprocess.Popen(
                scan_command(self.music_dir, self.state_dir),
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,  # one summary line: never fills the pipe
                stderr=subprocess.PIPE,  # only a fatal error's message
                start_new_session=True,  # a console Ctrl-C stops the box, which ends the scan
                close_fds=True,
            )
        except OSError as exc:
            log.warning("music: cannot start the scan of %s (%s)", self.music_dir, exc)
            return False
        _idle(self._proc.pid)
        log.info("music: scanning %s", self.music_dir)
        return True

    def poll(self) -> None:
        """From a loop task: if the child has exited, load its result on a worker thread."""
        proc = self._proc
        if proc is None or proc.poll() is None:
            return
        self._proc = None
        self._worker = threading.Thread(
            target=self._finish, args=(proc,), name="music-scan", daemon=True
        )
        self._worker.start()

    def wait(self, timeout_s: float = WAIT_S) -> bool:
        """Block until the running scan is finished and loaded (a virtual-clock box only)."""
        proc = self._proc
        if proc is not None:
            try:
                proc.wait(timeout_s)
            except subprocess.TimeoutExpired:
                log.warning("music: the scan of %s is still running", self.music_dir)
                return False
            self.poll()
        if self._worker is not None:
            self._worker.join(timeout_s)
        return not self.running

    def _finish(self, proc: subprocess.Popen[bytes]) -> None:
        out, err = proc.communicate()
        self.finished += 1
        if proc.returncode != 0:
            lines = err.decode(errors="replace").strip().splitlines() or ["no message"]
            self.last = {"error": lines[-1]}
            log.warning("music: the scan of %s failed: %s", self.music_dir, lines[-1])
            return
        try:
            summary = json.loads(out.decode(errors="replace").strip().splitlines()[-1])
            with MusicIndex.in_state_dir(self.state_dir) as index:
                tracks = index.tracks(self.music_dir)
        except (ValueError, IndexError, StorageError, OSError) as exc:
            self.last = {"error": str(exc)}
            log.warning(
                "music: the index of %s cannot be read after its scan (%s)", self.music_dir, exc
            )
            return
        self.last = dict(summary)
        log.info(
            "music: %s tracks indexed (%s new, %s unreadable)",
            summary.get("tracks"), summary.get("new"), summary.get("unreadable"),
        )  # fmt: skip
        self._on_tracks(tracks)

    def close(self) -> None:
        """Stop a running child and wait for the worker (idempotent)."""
        proc, self._proc = self._proc, None
        if proc is not None:
            with contextlib.suppress(OSError):
                proc.terminate()
            try:
                proc.wait(5.0)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
            for stream in (proc.stdout, proc.stderr):
                if stream is not None:
                    stream.close()
        if self._worker is not None:
            self._worker.join(5.0)
            self._worker = None
