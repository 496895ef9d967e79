"""Atomic file saves: after a power cut the file is either the old one or the new one.

Recipe: write a temporary file in the same directory, flush and ``fsync`` it, ``rename``
it over the target (atomic on POSIX filesystems), then ``fsync`` the directory so the
rename itself is on the card. Used for configuration saves and the PIN file.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path

from device.exc import StorageError


def fsync_dir(directory: str | os.PathLike[str]) -> None:
    """Flush a directory's entries (a rename or a new file) to storage."""
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def atomic_write_bytes(path: str | os.PathLike[str], data: bytes, *, mode: int = 0o644) -> None:
    """Replace ``path`` with ``data`` atomically, with permission bits ``mode``.

    Raises :class:`~device.exc.StorageError` naming the file when anything fails; the old
    file is then untouched and no temporary file is left behind.
    """
    target = Path(path)
    directory = target.parent if str(target.parent) else Path(".")
    tmp_name: str | None = None
    try:
        fd, tmp_name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=directory)
        try:
            os.fchmod(fd, mode)
            view = memoryview(data)
            while view:
                written = os.write(fd, view)
                view = view[written:]
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp_name, target)
        tmp_name = None
        fsync_dir(directory)
    except OSError as exc:
        raise StorageError(f"{target}: cannot save: {exc.strerror or exc}") from exc
    finally:
        if tmp_name is not None:
            with contextlib.suppress(OSError):
                os.unlink(tmp_name)


def atomic_write_text(
    path: str | os.PathLike[str], text: str, *, mode: int = 0o644, encoding: str = "utf-8"
) -> None:
    """Replace ``path`` with ``text`` atomically (see :func:`atomic_write_bytes`)."""
    atomic_write_bytes(path, text.encode(encoding), mode=mode)
