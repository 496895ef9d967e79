"""Console commands of the service login and the service itself: AUTH, LOGOUT, PIN SET, RESTART.

The PIN check and the PIN file's write run off the loop (scrypt takes a while). Handlers
take the :class:`~device.console.commands.Console`, the arguments and the loop time.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

from device.console.arguments import expect_args
from device.console.auth import check_new_pin
from device.console.protocol import Code, Deferred, Reply
from device.exc import StorageError

if TYPE_CHECKING:
    from device.console.commands import Console


def auth(c: Console, args: list[str], now: float) -> Reply:
    """``AUTH <PIN>``: checked off the loop; a lockout answers ``ERR 9`` unchecked."""
    if len(args) != 1:
        # Never repeat what was typed: it may hold the PIN.
        raise ValueError("usage: AUTH <PIN> (one PIN of digits)")
    if c.auth is None:
        raise StorageError("the service PIN is unavailable: the box has no state directory")
    login = c.auth
    left = login.locked_for()
    if left > 0:
        return Reply.error(Code.LOCKED_OUT, f"AUTH is locked for {math.ceil(left)} s more")
    pin = args[0]

    def finish(outcome: str, now: float) -> Reply:
        if outcome == "ok":
            c.service_login = True
            return Reply.data({"login": "service", "idle_logout_s": login.idle_s})
        if outcome == "locked":
            return Reply.error(
                Code.LOCKED_OUT,
                f"wrong PIN; AUTH is locked for {math.ceil(login.locked_for())} s",
            )
        return Reply.error(
            Code.PIN_REQUIRED, f"wrong PIN ({login.tries_left} tries left before a lockout)"
        )

    # The check and the lockout's file write both run off the loop.
    return Reply(deferred=Deferred(lambda: str(login.login(pin)), finish))


def logout(c: Console, args: list[str], now: float) -> Reply:
    """``LOGOUT``."""
    expect_args(args, 0, 0, "LOGOUT")
    if c.auth is not None:
        c.auth.logout("LOGOUT")
    return Reply()


def pin_set(c: Console, args: list[str], now: float) -> Reply:
    """``PIN SET <NEW>``: the hash and the file's write run off the loop."""
    if len(args) != 1:
        raise ValueError("usage: PIN SET <NEW> (6-12 digits)")
    pin = check_new_pin(args[0])
    if c.auth is None:
        raise StorageError("the service PIN is unavailable: the box has no state directory")
    store = c.auth.store
    return Reply(deferred=Deferred(lambda: store.set_pin(pin), lambda _r, _now: Reply()))


def restart(c: Console, args: list[str], now: float) -> Reply:
    """``RESTART``: fade out, exit 75."""
    expect_args(args, 0, 0, "RESTART")
    c.box.request_restart()
    return Reply()
