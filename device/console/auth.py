"""Service PIN for the console: salted scrypt hash on disk, lockout, idle logout.

The PIN is never stored, echoed or logged: the state directory holds only a salted hash
(``console_pin.json``, scrypt, written atomically). A fresh box has no shared default PIN:
its default is derived from the machine identity and a random secret salt kept in the
state directory (``console_pin.secret``, mode 0600), so ``bedside pin show-default`` (root)
can print it for the label and no two boxes share one.

The secret must hold 32 random bytes: a missing secret is created (atomically: a full disk
leaves no empty file), and an empty, short or unreadable one is an error, never a key
(``HMAC(empty key, machine id)`` would make the default PIN derivable by anyone).

Five wrong PINs in a row lock ``AUTH`` for 60 s; the count and the lockout are kept in
``console_auth.json`` (wall-clock time), so a restart does not reopen ``AUTH``. A service
login ends after 10 minutes without a command, with ``LOGOUT`` and when the port closes.
Time is passed in (``clock``, ``wall``), so tests never sleep.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import secrets
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from device.console.pin_hash import (
    DEFAULT_PIN_DIGITS,
    PBKDF2_ROUNDS,
    PIN_MAX,
    PIN_MIN,
    SCRYPT_N,
    SCRYPT_P,
    SCRYPT_R,
    SECRET_BYTES,
    check_new_pin,
    derive_default_pin,
    hash_pin,
    verify_pin,
)
from device.exc import AuthError, StorageError
from device.store.atomic import atomic_write_bytes

#: The PIN rules and hashing live in :mod:`device.console.pin_hash`; offered here as before.
__all__ = [
    "DEFAULT_PIN_DIGITS",
    "LOCK_FILE",
    "PBKDF2_ROUNDS",
    "PIN_FILE",
    "PIN_MAX",
    "PIN_MIN",
    "SCRYPT_N",
    "SCRYPT_P",
    "SCRYPT_R",
    "SECRET_BYTES",
    "SECRET_FILE",
    "PinAuth",
    "PinStore",
    "check_new_pin",
    "derive_default_pin",
    "hash_pin",
    "verify_pin",
]

log = logging.getLogger(__name__)

#: File holding the salted hash of the service PIN, in the state directory.
PIN_FILE = "console_pin.json"
#: Secret salt of the per-device default PIN, in the state directory.
SECRET_FILE = "console_pin.secret"
#: Wrong-PIN count and lockout, kept across restarts, in the state directory.
LOCK_FILE = "console_auth.json"


class PinStore:
    """The service PIN's hash and the default PIN's secret salt in ``state_dir``.

    :param state_dir: the box's state directory (``store.state_dir``).
    :param identity: machine identity the default PIN is derived from
        (:func:`device.console.identity.read_identity` ``.secret_id``).
    :param scrypt_n: scrypt cost parameter N for new hashes (a power of two).
    """

    def __init__(
        self, state_dir: str | os.PathLike[str], identity: str, *, scrypt_n: int = SCRYPT_N
    ) -> None:
        self.state_dir = Path(state_dir)
        self.identity = identity
        self.scrypt_n = scrypt_n

    @property
    def pin_path(self) -> Path:
        """Path of the PIN hash file."""
        return self.state_dir / PIN_FILE

    @property
    def secret_path(self) -> Path:
        """Path of the default PIN's secret salt."""
        return self.state_dir / SECRET_FILE

    def default_pin(self) -> str:
        """This box's default PIN (creates the secret salt on first use)."""
        return derive_default_pin(self.identity, self._secret())

    def is_default(self) -> bool:
        """Whether the default PIN is still the service PIN (slow: one hash)."""
        return self.verify(self.default_pin())

    def verify(self, pin: str) -> bool:
        """Whether ``pin`` is the service PIN. Slow (one scrypt): keep it off the audio loop."""
        return verify_pin(pin, self._record())

    def set_pin(self, pin: str) -> None:
        """Store a new service PIN (checked by :func:`check_new_pin`) as a salted hash."""
        check_new_pin(pin)
        self._write_record(hash_pin(pin, n=self.scrypt_n))
        log.info("console service PIN changed")

    def reset_to_default(self) -> None:
        """Make the per-device default PIN the service PIN again."""
        self._write_record(hash_pin(self.default_pin(), n=self.scrypt_n))
        log.info("console service PIN reset to the per-device default")

    def _record(self) -> dict[str, object]:
        try:
            text = self.pin_path.read_text(encoding="utf-8")
        except FileNotFoundError:
            record = hash_pin(self.default_pin(), n=self.scrypt_n)
            self._write_record(record)
            return record
        except OSError as exc:
            raise StorageError(f"{self.pin_path}: cannot read the PIN hash: {exc}") from None
        try:
            record = json.loads(text)
        except ValueError:
            raise StorageError(
                f"{self.pin_path}: the PIN hash file is damaged; "
                "reset it with: sudo bedside pin reset-default"
            ) from None
        if not isinstance(record, dict):
            raise StorageError(f"{self.pin_path}: the PIN hash file is damaged")
        return record

    def _write_record(self, record: dict[str, object]) -> None:
        try:
            self.state_dir.mkdir(parents=True, exist_ok=True)
            atomic_write_bytes(
                self.pin_path,
                json.dumps(record).encode() + b"\n",
                mode=0o600,
                owner=self._owner(),
            )
        except StorageError:
            raise
        except OSError as exc:
            raise StorageError(f"{self.pin_path}: cannot write the PIN hash: {exc}") from None

    def _secret(self) -> bytes:
        fix = "remove it and run: sudo bedside pin reset-default"
        try:
            text = self.secret_path.read_text(encoding="ascii").strip()
        except FileNotFoundError:
            return self._create_secret()
        except (OSError, ValueError) as exc:
            raise StorageError(f"{self.secret_path}: cannot read the PIN secret: {exc}") from None
        try:
            secret = bytes.fromhex(text)
        except ValueError:
            secret = b""
        if len(secret) != SECRET_BYTES:
            raise StorageError(
                f"{self.secret_path}: the PIN secret is empty or damaged "
                f"({len(text)} characters); {fix}"
            )
        return secret

    def _create_secret(self) -> bytes:
        secret = secrets.token_bytes(SECRET_BYTES)
        tmp: str | None = None
        try:
            self.state_dir.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(prefix=f".{SECRET_FILE}.", dir=self.state_dir)
            owner = self._owner()
            if owner is not None:
                os.fchown(fd, *owner)
            with os.fdopen(fd, "w", encoding="ascii") as f:
                f.write(secret.hex() + "\n")
                f.flush()
                os.fsync(f.fileno())
            # A hard link appears whole or not at all (a full disk leaves no empty secret),
            # and fails if another process made the secret first: then that one is used.
            os.link(tmp, self.secret_path)
        except FileExistsError:
            return self._secret()
        except OSError as exc:
            raise StorageError(f"{self.secret_path}: cannot create the PIN secret: {exc}") from None
        finally:
            if tmp is not None:
                with contextlib.suppress(OSError):
                    os.unlink(tmp)
        return secret

    def _owner(self) -> tuple[int, int] | None:
        # When root writes here (bedside pin ...), the service user must still read the file:
        # it gets the state directory's owner before it appears (see atomic_write_bytes).
        if os.geteuid() != 0:
            return None
        st = self.state_dir.stat()
        if st.st_uid == 0 and st.st_gid == 0:
            return None
        return (st.st_uid, st.st_gid)

    def __repr__(self) -> str:
        return f"<PinStore {self.pin_path}>"


class PinAuth:
    """Service login state of the console: attempts, lockout, idle timeout.

    :param state_dir: the box's state directory (the PIN hash and secret live there).
    :param clock: monotonic seconds (wall time, not audio time: a lockout lasts 60 real
        seconds even when a simulation runs faster).
    :param identity: machine identity for the default PIN; read from the machine when
        ``None`` (:func:`device.console.identity.read_identity`).
    :param max_failures: wrong PINs in a row before ``AUTH`` locks.
    :param lockout_s: how long ``AUTH`` stays locked, seconds.
    :param idle_s: a service login ends after this long without a command, seconds.
    :param scrypt_n: scrypt cost of new hashes.
    :param wall: wall-clock seconds (``time.time``), for the lockout kept across restarts.
    """

    def __init__(
        self,
        state_dir: str | os.PathLike[str],
        *,
        clock: Callable[[], float] = time.monotonic,
        identity: str | None = None,
        max_failures: int = 5,
        lockout_s: float = 60.0,
        idle_s: float = 600.0,
        scrypt_n: int = SCRYPT_N,
        wall: Callable[[], float] = time.time,
    ) -> None:
        if identity is None:
            from device.console.identity import read_identity

            identity = read_identity().secret_id
        self.store = PinStore(state_dir, identity, scrypt_n=scrypt_n)
        self.clock = clock
        self.max_failures = max_failures
        self.lockout_s = lockout_s
        self.idle_s = idle_s
        self._logged_in = False
        self._last_use = 0.0
        self._failures = 0
        self._locked_until: float | None = None
        self.wall = wall
        self.lock_path = Path(state_dir) / LOCK_FILE
        #: Wrong PINs since the box started.
        self.failures_total = 0
        self._load_lock()

    def _load_lock(self) -> None:
        """Take over the wrong-PIN count and lockout the last run left."""
        try:
            state = json.loads(self.lock_path.read_text(encoding="utf-8"))
            failures = int(state["failures"])
            until = float(state["locked_until"])
        except FileNotFoundError:
            return
        except (OSError, ValueError, KeyError, TypeError):
            # Damaged: the safe reading is a fresh lockout, not an open AUTH.
            log.warning("%s is damaged: AUTH locked for %.0f s", self.lock_path, self.lockout_s)
            failures, until = 0, self.wall() + self.lockout_s
        self._failures = max(0, min(failures, self.max_failures - 1))
        left = min(until - self.wall(), self.lockout_s)
        if left > 0:
            self._locked_until = self.clock() + left

    def _save_lock(self) -> None:
        """Keep the count and lockout for the next run (slow: call off the audio loop)."""
        left = 0.0 if self._locked_until is None else self._locked_until - self.clock()
        state = {"failures": self._failures, "locked_until": self.wall() + left if left > 0 else 0}
        try:
            atomic_write_bytes(self.lock_path, json.dumps(state).encode() + b"\n", mode=0o600)
        except StorageError as exc:
            log.warning("AUTH lockout not kept across a restart: %s", exc)

    @property
    def logged_in(self) -> bool:
        """Whether a service login is active now (ends it when idle too long)."""
        if self._logged_in and self.clock() - self._last_use > self.idle_s:
            self.logout(f"idle for more than {self.idle_s:.0f} s")
        return self._logged_in

    def touch(self) -> None:
        """Note console activity now (keeps a service login alive)."""
        if self.logged_in:
            self._last_use = self.clock()

    def require(self, what: str) -> None:
        """Raise :class:`AuthError` unless a service login is active."""
        if not self.logged_in:
            raise AuthError(f"{what} needs the service PIN: AUTH <PIN> first")

    def locked_for(self) -> float:
        """Seconds ``AUTH`` stays locked from now (0 when open)."""
        if self._locked_until is None:
            return 0.0
        left = self._locked_until - self.clock()
        if left <= 0:
            self._locked_until = None
            self._failures = 0
            return 0.0
        return left

    @property
    def tries_left(self) -> int:
        """Wrong PINs still allowed before ``AUTH`` locks."""
        return self.max_failures - self._failures

    def check_pin(self, pin: str) -> bool:
        """Whether ``pin`` is right. Slow, pure (changes no login state): run it off the loop."""
        return self.store.verify(pin)

    def finish_attempt(self, ok: bool) -> str:
        """Apply the result of :meth:`check_pin`; return ``"ok"``, ``"wrong"`` or ``"locked"``.

        Writes the count to the state directory when it changes: call it off the loop.
        """
        if self.locked_for() > 0:
            return "locked"
        if ok:
            had_failures = self._failures > 0
            self._failures = 0
            self._logged_in = True
            self._last_use = self.clock()
            log.info("console service login")
            if had_failures:
                self._save_lock()
            return "ok"
        self._failures += 1
        self.failures_total += 1
        if self._failures >= self.max_failures:
            self._locked_until = self.clock() + self.lockout_s
            self._failures = 0
            log.warning(
                "console AUTH locked for %.0f s after %d wrong PINs",
                self.lockout_s,
                self.max_failures,
            )
            self._save_lock()
            return "locked"
        log.warning("console AUTH: wrong PIN (%d of %d)", self._failures, self.max_failures)
        self._save_lock()
        return "wrong"

    def login(self, pin: str) -> str:
        """Check ``pin`` and apply the result: ``"ok"``, ``"wrong"`` or ``"locked"``.

        Slow (one scrypt, a file write): the console runs it on its worker thread.
        """
        if self.locked_for() > 0:
            return "locked"
        return self.finish_attempt(self.check_pin(pin))

    def set_pin(self, pin: str) -> None:
        """Store a new service PIN (needs an active login)."""
        self.require("PIN SET")
        self.store.set_pin(pin)

    def logout(self, reason: str = "LOGOUT") -> None:
        """End the service login (idempotent)."""
        if self._logged_in:
            log.info("console service login ended: %s", reason)
        self._logged_in = False

    def close(self) -> None:
        """End any login (the port closed)."""
        self.logout("port closed")

    def __repr__(self) -> str:
        state = "service" if self._logged_in else "user"
        locked = self._locked_until is not None
        return f"<PinAuth {state} failures={self._failures} locked={locked}>"
