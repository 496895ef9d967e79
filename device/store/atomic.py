"""Atomic file saves: after a power cut the file is either the old one or the new one.

Recipe: write a temporary file in the same directory (created with ``O_EXCL``), flush and
``fsync`` it, ``rename`` it over the target (atomic on POSIX filesystems), then ``fsync``
the directory so the rename itself is on the card. Used for configuration saves and the
PIN file.

A process killed between the create and the rename leaves its temporary file behind. The
name says whose it is (``.NAME.PID.RANDOM.tmp``), and :func:`clean_stale_temps` (run before
every save, and by the service at start) removes those whose process is gone.
"""

from __future__ import annotations

import contextlib
import os
import re
import secrets
from pathlib import Path

from device.exc import StorageError


def fsync_dir(directory: str | os.PathLike[str]) -> None:
    """Flush a directory's entries (a rename or a new file) to storage."""
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _temp_pattern(target: Path) -> re.Pattern[str]:
    return re.compile(rf"\.{re.escape(target.name)}\.(\d+)\.[0-9a-f]{{16}}\.tmp")


def _alive(pid: int) -> bool:
    if pid == os.getpid():
        return False  # this process saves one file at a time: an old temp of ours is stale
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def clean_stale_temps(path: str | os.PathLike[str]) -> list[Path]:
    """Remove the temporary files a killed save of ``path`` left; return those removed.

    Only files named as :func:`atomic_write_bytes` names them, of processes no longer
    running, are touched. Errors (a read-only directory) are ignored: the next save tries
    again.
    """
    target = Path(path)
    directory = target.parent if str(target.parent) else Path(".")
    pattern = _temp_pattern(target)
    removed: list[Path] = []
    try:
        names = os.listdir(directory)
    except OSError:
        return removed
    for name in names:
        found = pattern.fullmatch(name)
        if found and not _alive(int(found.group(1))):
            with contextlib.suppress(OSError):
                os.unlink(directory / name)
                removed.append(directory / name)
    return removed


def atomic_write_bytes(
    path: str | os.PathLike[str],
    data: bytes,
    *,
    mode: int = 0o644,
    owner: tuple[int, int] | None = None,
) -> None:
    """Replace ``path`` with ``data`` atomically, with permission bits ``mode``.

    ``owner`` (uid, gid) is given to the new file before it replaces the old one, so that a
    power cut cannot leave the new content with the writer's ownership (a chown after the
    rename is metadata the card may never get). Raises :class:`~device.exc.StorageError`
    naming the file when anything fails; the old file is then untouched and no temporary
    file is left behind.
    """
    target = Path(path)
    directory = target.parent if str(target.parent) else Path(".")
    clean_stale_temps(target)
    tmp: Path | None = None
    try:
        name = directory / f".{target.name}.{os.getpid()}.{secrets.token_hex(8)}.tmp"
        fd = os.open(name, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
        tmp = name
        try:
            os.fchmod(fd, mode)
            if owner is not None:
                os.fchown(fd, *owner)
            view = memoryview(data)
            while view:
                written = os.write(fd, view)
                view = view[written:]
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, target)
        tmp = None
        fsync_dir(directory)
    except OSError as exc:
        raise StorageError(f"{target}: cannot save: {exc.strerror or exc}") from exc
    finally:
        if tmp is not None:
            with contextlib.suppress(OSError):
                os.unlink(tmp)


def atomic_write_text(
    path: str | os.PathLike[str], text: str, *, mode: int = 0o644, encoding: str = "utf-8"
) -> None:
    """Replace ``path`` with ``text`` atomically (see :func:`atomic_write_bytes`)."""
    atomic_write_bytes(path, text.encode(encoding), mode=mode)
