"""The I2C bus backend: opening ``/dev/i2c-N``, retrying flaky transfers, recording them.

Drivers talk to an *smbus2-compatible* bus object (``read_byte_data``, ``write_byte_data``,
``read_i2c_block_data``, ``write_i2c_block_data``, ``i2c_rdwr``). On a Pi that is
``smbus2.SMBus`` from :func:`open_i2c_bus`; in CI it is the simulated chip of
:mod:`device.sim.max30102`. smbus2 is imported lazily so ``import device`` works anywhere.

Errors on a real bus are ``OSError`` with these errno values (smbus2 docs): 121
``EREMOTEIO`` = no ACK (wiring, wrong address, chip not ready), 5 ``EIO`` = bus error or NAK on
data, 16 ``EBUSY`` = bus busy or claimed by a kernel driver. :class:`Retrier` retries exactly
those with a short backoff and raises :class:`~device.exc.BusError` after its last try.
"""

from __future__ import annotations

import errno
import logging
import os
import time
from collections.abc import Callable, Iterable, Iterator
from typing import Any, NamedTuple, Protocol, TypeVar, cast

from device.exc import BusError, HardwareError, SensorNotFound

log = logging.getLogger(__name__)

#: Message flag of a read message (``I2C_M_RD`` in ``linux/i2c.h``).
I2C_M_RD = 0x0001

#: errno values worth retrying: no ACK, bus error, bus busy.
RETRY_ERRNOS = frozenset({errno.EREMOTEIO, errno.EIO, errno.EBUSY})

T = TypeVar("T")


class I2CBus(Protocol):
    """The subset of ``smbus2.SMBus`` the drivers use."""

    def read_byte_data(self, i2c_addr: int, register: int) -> int: ...

    def write_byte_data(self, i2c_addr: int, register: int, value: int) -> None: ...

    def read_i2c_block_data(self, i2c_addr: int, register: int, length: int) -> list[int]: ...

    def write_i2c_block_data(self, i2c_addr: int, register: int, data: list[int]) -> None: ...

    def i2c_rdwr(self, *i2c_msgs: Any) -> None: ...


class I2CMsg:
    """A plain-Python I2C message with the fields of ``smbus2.i2c_msg``.

    ``addr`` (7-bit address), ``flags`` (:data:`I2C_M_RD` for a read), ``len`` (bytes) and
    ``buf`` (a ``bytearray``; a read message's buffer is filled by the bus). Simulated buses
    expose this class as their ``i2c_msg`` attribute, so drivers and tests build messages
    without smbus2's ctypes internals.
    """

    __slots__ = ("addr", "buf", "flags", "len")

    def __init__(self, addr: int, flags: int, buf: bytearray) -> None:
        self.addr = addr
        self.flags = flags
        self.len = len(buf)
        self.buf = buf

    @classmethod
    def read(cls, address: int, length: int) -> I2CMsg:
        """A read of ``length`` bytes from ``address``."""
        if length < 0:
            raise ValueError(f"I2C read length must be >= 0, not {length}")
        return cls(address, I2C_M_RD, bytearray(length))

    @classmethod
    def write(cls, address: int, buf: Iterable[int] | bytes) -> I2CMsg:
        """A write of the bytes ``buf`` to ``address``."""
        return cls(address, 0, bytearray(buf))

    def __bytes__(self) -> bytes:
        return bytes(self.buf[: self.len])

    def __iter__(self) -> Iterator[int]:
        return iter(self.buf[: self.len])

    def __len__(self) -> int:
        return self.len

    def __repr__(self) -> str:
        kind = "read" if self.flags & I2C_M_RD else "write"
        return f"I2CMsg.{kind}(0x{self.addr:02X}, {bytes(self)!r})"


def msg_bytes(msg: Any) -> bytes:
    """The bytes of any smbus2-like message (``I2CMsg`` or ``smbus2.i2c_msg``)."""
    return bytes(msg)[: msg.len]


def fill_read_msg(msg: Any, data: bytes) -> None:
    """Store ``data`` in a read message's buffer (``bytearray`` or smbus2's ctypes buffer)."""
    if isinstance(msg.buf, bytearray):
        msg.buf[: len(data)] = data
        return
    for i, value in enumerate(data):
        msg.buf[i] = bytes((value,))


def msg_factory(bus: Any) -> Any:
    """The message class to use with ``bus.i2c_rdwr``: the bus's own, else smbus2's."""
    factory = getattr(bus, "i2c_msg", None)
    if factory is not None:
        return factory
    from smbus2 import i2c_msg

    return i2c_msg


def open_i2c_bus(bus: int | str) -> Any:
    """Open an I2C bus with smbus2: ``1`` (for ``/dev/i2c-1``) or a device path.

    :raises SensorNotFound: when the device file does not exist (I2C not enabled).
    :raises HardwareError: when it cannot be opened (permissions, smbus2 missing).
    """
    path = bus if isinstance(bus, str) else f"/dev/i2c-{bus}"
    try:
        from smbus2 import SMBus
    except ImportError as exc:  # smbus2 needs Linux (fcntl)
        raise HardwareError(
            errno.ENOSYS, f"cannot open {path}: smbus2 is not usable here ({exc})"
        ) from exc
    try:
        return SMBus(bus)
    except FileNotFoundError as exc:
        raise SensorNotFound(
            errno.ENOENT,
            f"I2C bus {path} does not exist: enable I2C with 'dtparam=i2c_arm=on' in "
            "/boot/firmware/config.txt (or raspi-config) and reboot",
        ) from exc
    except PermissionError as exc:
        raise HardwareError(
            errno.EACCES,
            f"no permission to open {path}: add the service user to group 'i2c' "
            f"(running as uid {os.getuid()})",
        ) from exc
    except OSError as exc:
        raise HardwareError(exc.errno, f"cannot open I2C bus {path}: {exc.strerror}") from exc


class Retrier:
    """Runs bus transfers, retrying EIO/EREMOTEIO/EBUSY with exponential backoff.

    :param tries: attempts per transfer (>= 1).
    :param backoff_s: wait before the second attempt, in seconds; doubled each retry.
    :param sleep: the sleep function (injected so tests do not wait).

    ``retries`` counts retried attempts and ``failures`` the transfers that failed for good.
    """

    def __init__(
        self, tries: int = 3, backoff_s: float = 0.0005, sleep: Callable[[float], None] = time.sleep
    ) -> None:
        if tries < 1:
            raise ValueError(f"tries must be >= 1, not {tries}")
        if backoff_s < 0:
            raise ValueError(f"backoff_s must be >= 0, not {backoff_s}")
        self.tries = tries
        self.backoff_s = backoff_s
        self._sleep = sleep
        self.retries = 0
        self.failures = 0

    def call(self, what: str, fn: Callable[..., T], *args: Any) -> T:
        """Return ``fn(*args)``; ``what`` names the transfer in the error message.

        :raises BusError: after the last failed try, or at once for an errno not worth
            retrying; its ``errno`` is that of the last attempt.
        """
        delay = self.backoff_s
        for attempt in range(1, self.tries + 1):
            try:
                return fn(*args)
            except OSError as exc:
                if isinstance(exc, BusError):
                    raise
                code = exc.errno
                if code in RETRY_ERRNOS and attempt < self.tries:
                    self.retries += 1
                    if delay:
                        self._sleep(delay)
                    delay *= 2
                    continue
                self.failures += 1
                reason = os.strerror(code) if code else str(exc)
                raise BusError(
                    code or errno.EIO,
                    f"{what} failed after {attempt} tr{'y' if attempt == 1 else 'ies'}: "
                    f"[Errno {code}] {reason}",
                ) from exc
        raise AssertionError("unreachable")  # pragma: no cover

    def __repr__(self) -> str:
        return (
            f"<Retrier tries={self.tries} backoff={self.backoff_s * 1000:g}ms "
            f"retries={self.retries} failures={self.failures}>"
        )


class Transaction(NamedTuple):
    """One bus transfer as data: what a :class:`RecordingBus` saw.

    ``op`` is ``"read"`` (register read, byte or block), ``"write"`` (register write, byte
    or block) or ``"rdwr"`` (a combined ``i2c_rdwr`` transfer: ``reg`` is its first written
    byte, ``data`` what was read). ``data`` holds the bytes written or read; ``error`` the
    errno when the transfer raised (``data`` is then empty for reads).
    """

    op: str
    addr: int
    reg: int
    data: bytes
    error: int | None = None


class RecordingBus:
    """Wraps a bus and records every transfer as a :class:`Transaction` in ``log``.

    For transaction-exact tests and for debugging on a real box. Transfers pass through
    unchanged, errors included (and recorded with their errno).
    """

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.log: list[Transaction] = []

    @property
    def i2c_msg(self) -> Any:
        """The inner bus's message class (smbus2's when the inner bus has none)."""
        return msg_factory(self.inner)

    def clear(self) -> None:
        """Forget the transactions recorded so far."""
        self.log.clear()

    def _run(self, op: str, addr: int, reg: int, written: bytes, fn: Callable[[], T]) -> T:
        try:
            result = fn()
        except OSError as exc:
            self.log.append(Transaction(op, addr, reg, written, exc.errno))
            raise
        data = written
        if op == "read":
            data = bytes([result]) if isinstance(result, int) else bytes(cast(bytes, result))
        self.log.append(Transaction(op, addr, reg, data))
        return result

    def read_byte_data(self, i2c_addr: int, register: int) -> int:
        """Read one register byte (recorded)."""
        return self._run(
            "read", i2c_addr, register, b"", lambda: self.inner.read_byte_data(i2c_addr, register)
        )

    def write_byte_data(self, i2c_addr: int, register: int, value: int) -> None:
        """Write one register byte (recorded)."""
        self._run(
            "write",
            i2c_addr,
            register,
            bytes([value]),
            lambda: self.inner.write_byte_data(i2c_addr, register, value),
        )

    def read_i2c_block_data(self, i2c_addr: int, register: int, length: int) -> list[int]:
        """Read ``length`` bytes from ``register`` on (recorded)."""
        return self._run(
            "read",
            i2c_addr,
            register,
            b"",
            lambda: self.inner.read_i2c_block_data(i2c_addr, register, length),
        )

    def write_i2c_block_data(self, i2c_addr: int, register: int, data: list[int]) -> None:
        """Write bytes from ``register`` on (recorded)."""
        self._run(
            "write",
            i2c_addr,
            register,
            bytes(data),
            lambda: self.inner.write_i2c_block_data(i2c_addr, register, data),
        )

    def i2c_rdwr(self, *i2c_msgs: Any) -> None:
        """Run a combined transfer (recorded as one ``rdwr`` transaction)."""
        writes = [msg_bytes(m) for m in i2c_msgs if not m.flags & I2C_M_RD]
        first = writes[0] if writes else b""
        addr = i2c_msgs[0].addr if i2c_msgs else 0
        reg = first[0] if first else -1
        try:
            self.inner.i2c_rdwr(*i2c_msgs)
        except OSError as exc:
            self.log.append(Transaction("rdwr", addr, reg, b"", exc.errno))
            raise
        read = b"".join(msg_bytes(m) for m in i2c_msgs if m.flags & I2C_M_RD)
        self.log.append(Transaction("rdwr", addr, reg, read))

    def close(self) -> None:
        """Close the inner bus (when it can be closed)."""
        close = getattr(self.inner, "close", None)
        if close is not None:
            close()

    def __repr__(self) -> str:
        return f"<RecordingBus {len(self.log)} transactions over {self.inner!r}>"
