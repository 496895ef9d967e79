"""Who may read the listener's heart data, and who owns the files a person asks for.

The state directory is 0700, or 0750 with group ``bedside`` when that group exists (so that
its members, a technician's account for instance, may read the store); ``sessions.db`` is
0600, or 0640 in the group case. sqlite creates ``sessions.db-wal`` and ``-shm`` with the
database file's mode, so they follow it.

Files written for a person (``bedside report``, ``bedside export --out``) belong to that
person: under ``sudo`` they are given to ``SUDO_UID``/``SUDO_GID``, and their mode comes
from the caller's umask, as any file the person makes.
"""

from __future__ import annotations

import contextlib
import grp
import os
import stat
from collections.abc import Mapping
from pathlib import Path

from device.exc import StorageError
from device.store.atomic import atomic_write_bytes

#: The group whose members may read the store (created by the installer, when wanted).
STORE_GROUP = "bedside"
#: Names of the files the box keeps in its state directory (the session store, the console
#: PIN): a directory holding only these (or nothing) is the box's, and so is tightened.
STATE_FILE_PREFIXES = ("sessions.db", "console_pin")


def store_gid() -> int | None:
    """The id of :data:`STORE_GROUP`, or ``None`` when there is no such group."""
    try:
        return grp.getgrnam(STORE_GROUP).gr_gid
    except KeyError:
        return None


def state_dir_mode(path: Path) -> int:
    """The mode the state directory should have: 0750 if it is in the store group, else 0700."""
    gid = store_gid()
    return 0o750 if gid is not None and path.stat().st_gid == gid else 0o700


def prepare_state_dir(path: Path, *, owned: bool = False) -> None:
    """Create the state directory 0700 (0750 with group ``bedside``), or tighten it.

    An existing directory is tightened when ``owned`` (the caller knows it is the box's
    state directory) or when it holds only the box's files (:data:`STATE_FILE_PREFIXES`):
    pointing ``--state-dir`` at a home directory must not lock it. A directory this
    process does not own is left as it is.
    """
    try:
        path.mkdir(mode=0o700)
        created = True
    except FileExistsError:
        created = False
    except FileNotFoundError:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.mkdir(mode=0o700, exist_ok=True)
        created = True
    st = path.stat()
    if st.st_uid != os.geteuid():
        return
    if not (created or owned or _only_state_files(path)):
        return
    gid = store_gid()
    if gid is not None and st.st_gid != gid:
        with contextlib.suppress(OSError):  # allowed for root and for members of the group
            os.chown(path, -1, gid)
    mode = state_dir_mode(path)
    if stat.S_IMODE(path.stat().st_mode) != mode:
        os.chmod(path, mode)


def _only_state_files(path: Path) -> bool:
    return all(p.name.lstrip(".").startswith(STATE_FILE_PREFIXES) for p in path.iterdir())


def prepare_db_file(path: Path) -> None:
    """Create ``sessions.db`` 0600 (0640 in a group-``bedside`` directory), or tighten it.

    Its ``-wal`` and ``-shm`` files, when present, are tightened the same way (sqlite
    creates new ones with the database file's mode).
    """
    group = state_dir_mode(path.parent) == 0o750
    mode = 0o640 if group else 0o600
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, mode)
    os.close(fd)
    for name in (path, *(path.with_name(path.name + s) for s in ("-wal", "-shm"))):
        try:
            st = name.stat()
        except FileNotFoundError:
            continue
        if st.st_uid != os.geteuid():
            continue
        if group and st.st_gid != path.parent.stat().st_gid:
            with contextlib.suppress(OSError):
                os.chown(name, -1, path.parent.stat().st_gid)
        if stat.S_IMODE(st.st_mode) & ~mode:
            os.chmod(name, mode)


def caller_umask() -> int:
    """This process's umask (read without changing it, from /proc where there is one)."""
    with contextlib.suppress(OSError, ValueError):
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    old = os.umask(0o077)
    os.umask(old)
    return old


def give_to_caller(path: Path, env: Mapping[str, str] | None = None) -> None:
    """Under ``sudo`` (root with ``SUDO_UID`` set), make ``path`` the calling user's."""
    env = os.environ if env is None else env
    uid, gid = env.get("SUDO_UID", ""), env.get("SUDO_GID", "")
    if os.geteuid() != 0 or not uid.isdigit():
        return
    os.chown(path, int(uid), int(gid) if gid.isdigit() else -1)


def write_for_caller(path: Path, data: bytes, env: Mapping[str, str] | None = None) -> None:
    """Write a file a person asked for, atomically: theirs, with their umask's mode."""
    atomic_write_bytes(path, data, mode=0o666 & ~caller_umask())
    try:
        give_to_caller(path, env)
    except OSError as exc:
        raise StorageError(f"{path}: cannot give it to the calling user: {exc}") from exc
