"""The box's own music scan: ``bedside music scan`` in an idle-priority child process.

A listener who copies music into ``[music] dir`` expects the box to find it. At start the
box runs :class:`MusicScan`: a child process (``python -m device music scan DIR --summary
--idle``), never a thread of the box, so decoding competes neither for the GIL nor (at
``SCHED_IDLE``) for the CPU with the audio loop. The loop only calls :meth:`MusicScan.poll`
(non-blocking ``Popen.poll``); a reader thread takes the child's progress lines (``done`` of
``total`` files: the status line's ``music=scanning n/N``), and once the child has exited a
worker thread reads its summary and the index and hands the playable tracks to the music
player (``on_tracks``), so no disk work reaches the loop. Nothing waits for a scan: the box
plays (the pad stands in for music not yet indexed) and answers from its first block; a
virtual-clock box only lets its store task wait a moment on a running child each turn
(:meth:`MusicScan.pace`), so its time does not race past a scan. The scan is incremental
(files keyed by path, size and mtime), so a rescan of an unchanged folder only stats its files.
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

#: How long a virtual-clock box's store task waits on a running scan each turn, s.
PACE_S = 0.5

#: How long ``bedside render`` waits for its scan before it renders without the tracks, s.
WAIT_S = 600.0


def scan_command(music_dir: str | Path, state_dir: str | Path, idle: bool = True) -> list[str]:
    """The child's command line: this interpreter, the summary line only, idle priority
    (``idle``)."""
    return [
        sys.executable, "-m", "device", "music", "scan", str(music_dir),
        "--state-dir", str(state_dir), "--summary", "--progress",
    ] + (["--idle"] if idle else [])  # fmt: skip


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
    :param idle: run the child at idle priority (``SCHED_IDLE``, nice 19). A box with real-time
        audio does, so a scan never takes its CPU; a virtual-clock box or a render has no
        real-time audio to protect and a busy machine would starve an idle child for as long
        as it stays busy, so they scan at normal priority.
    """

    def __init__(
        self,
        music_dir: str | Path,
        state_dir: str | Path,
        on_tracks: Callable[[list[Track]], object],
        *,
        idle: bool = True,
    ) -> None:
        self.music_dir = str(music_dir)
        self.idle = idle
        self.state_dir = str(state_dir)
        self._on_tracks = on_tracks
        self._proc: subprocess.Popen[bytes] | None = None
        self._worker: threading.Thread | None = None
        self._reader: threading.Thread | None = None
        self._summary = b""
        #: Files measured or taken from the index so far, and the folder's files (-1: not
        #: listed yet), as the child reports them.
        self.done = 0
        self.total = -1
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
                scan_command(self.music_dir, self.state_dir, self.idle),
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,  # one summary line: never fills the pipe
                stderr=subprocess.PIPE,  # only a fatal error's message
                start_new_session=True,  # a console Ctrl-C stops the box, which ends the scan
                close_fds=True,
            )
        except OSError as exc:
            log.warning("music: cannot start the scan of %s (%s)", self.music_dir, exc)
            return False
        if self.idle:
            _idle(self._proc.pid)
        self.done, self.total, self._summary = 0, -1, b""
        self._reader = threading.Thread(
            target=self._read, args=(self._proc,), name="music-scan-out", daemon=True
        )
        self._reader.start()
        log.info("music: scanning %s", self.music_dir)
        return True

    def _read(self, proc: subprocess.Popen[bytes]) -> None:
        """Reader thread: the child's progress lines, then its summary line."""
        assert proc.stdout is not None
        for line in proc.stdout:
            try:
                d = json.loads(line)
            except ValueError:
                continue
            if isinstance(d, dict) and "done" in d:
                self.done, self.total = int(d["done"]), int(d["total"])
            else:
                self._summary = line

    @property
    def state(self) -> str:
        """``scanning n/N`` while a scan runs (``?`` until the child has listed the folder),
        then ``ready`` or ``scan failed`` (the status line's ``music``)."""
        if self.running:
            return f"scanning {self.done}/{'?' if self.total < 0 else self.total}"
        if "error" in self.last:
            return "scan failed"
        return "ready" if self.finished else "not scanned"

    def pace(self, timeout_s: float) -> None:
        """Wait up to ``timeout_s`` for a running child (a virtual-clock box only: its time
        then runs no faster than the scan's, while the loop keeps turning and answering)."""
        proc = self._proc
        if proc is not None:
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout_s)

    def wait(self, timeout_s: float = WAIT_S) -> bool:
        """Block until the running scan is finished and loaded (``bedside render`` only: a
        render has no listener to keep waiting, and must repeat exactly; the box never waits).
        """
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

    def _finish(self, proc: subprocess.Popen[bytes]) -> None:
        if self._reader is not None:
            self._reader.join()
        err = b"" if proc.stderr is None else proc.stderr.read()
        proc.wait()
        out = self._summary
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
            if self._reader is not None:
                self._reader.join(5.0)
            for stream in (proc.stdout, proc.stderr):
                if stream is not None:
                    stream.close()
        if self._worker is not None:
            self._worker.join(5.0)
            self._worker = None
