"""Console commands for the session and the sound: SESSION, PROG, VOL, SENSOR?, STREAM, RATE.

Handlers take the :class:`~device.console.commands.Console`, the arguments after the
command's words and the loop time, and return a :class:`~device.console.protocol.Reply`.
Program files are read off the loop (``SESSION START``, ``PROG LIST?``), and so are the
learnt preferences a session start reads.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from device.console.arguments import expect_args, field, number, off_loop, on_off
from device.console.lines import flatten
from device.console.protocol import Deferred, Reply

if TYPE_CHECKING:
    from device.box.session_start import SessionStart
    from device.console.commands import Console
    from device.therapy.program import Program

#: Longest session a console start may ask for, minutes.
MAX_MINUTES = 1440


def session_start(c: Console, args: list[str], now: float) -> Reply:
    """``SESSION START [PROGRAM] [MINUTES]``: the program is found and read off the loop."""
    expect_args(args, 0, 2, "SESSION START [PROGRAM] [MINUTES]")
    program: str | None = None
    minutes: float | None = None
    if len(args) == 2:
        program, minutes = args[0], number(args[1], "MINUTES")
    elif len(args) == 1:
        try:
            minutes = number(args[0], "MINUTES")
        except ValueError:
            program = args[0]
    if minutes is not None and not 0 < minutes <= MAX_MINUTES:
        raise ValueError(f"MINUTES must be more than 0 and at most {MAX_MINUTES}, not {minutes:g}")
    box = c.box
    # The program (a name matched case-insensitively) and the profile's preferences are read
    # off the loop; the session starts on it.
    request = box.prepare_session(program, minutes)

    def finish(plan: SessionStart, _now: float) -> Reply:
        started = request.apply(plan)
        st = box.status()
        return Reply.data(
            {
                "session": started.session_id,
                "program": st.get("program"),
                "remaining_s": st.get("remaining_s"),
            }
        )

    return Reply(deferred=Deferred(request.work, finish))


def session_stop(c: Console, args: list[str], now: float) -> Reply:
    """``SESSION STOP``."""
    expect_args(args, 0, 0, "SESSION STOP")
    c.box.stop_session(reason="console")
    return Reply()


def prog_list(c: Console, args: list[str], now: float) -> Reply:
    """``PROG LIST?``: every program file is read off the loop."""
    expect_args(args, 0, 0, "PROG LIST?")

    def answer(programs: list[Program]) -> Reply:
        keys = ("name", "duration_s", "description")
        return Reply.data(*({k: field(p, k, "") for k in keys} for p in programs))

    return off_loop(c.box.programs(), answer)


def prog(c: Console, args: list[str], now: float) -> Reply:
    """``PROG?``."""
    expect_args(args, 0, 0, "PROG?")
    st = c.box.status()
    keys = ("program", "section", "elapsed_s", "remaining_s", "state")
    return Reply.data({k: st.get(k) for k in keys})


def vol(c: Console, args: list[str], now: float) -> Reply:
    """``VOL?``."""
    expect_args(args, 0, 0, "VOL?")
    st = c.box.status()
    return Reply.data({k: st.get(k) for k in ("volume_db", "cap_dbfs", "level_db")})


def vol_set(c: Console, args: list[str], now: float) -> Reply:
    """``VOL SET <dB>``."""
    (text,) = expect_args(args, 1, 1, "VOL SET <dB>")
    c.box.set_volume_db(number(text, "dB"))
    return vol(c, [], now)


def vol_cap_set(c: Console, args: list[str], now: float) -> Reply:
    """``VOL CAP SET <dB>``: a volume above the new cap comes down with it (the box does it)."""
    (text,) = expect_args(args, 1, 1, "VOL CAP SET <dB>")
    c.box.set_cap_dbfs(number(text, "dB"))
    return vol(c, [], now)


def sensor(c: Console, args: list[str], now: float) -> Reply:
    """``SENSOR?``."""
    expect_args(args, 0, 0, "SENSOR?")
    return Reply.data(flatten(c.box.sensor_info()))


def stream_hr(c: Console, args: list[str], now: float) -> Reply:
    """``STREAM HR ON|OFF``."""
    c.stream_hr = on_off(args, "STREAM HR ON|OFF")
    c.next_hr = now
    return Reply()


def rate(c: Console, args: list[str], now: float) -> Reply:
    """``RATE LIKE|SKIP``."""
    (kind,) = expect_args(args, 1, 1, "RATE LIKE|SKIP")
    if kind.upper() not in ("LIKE", "SKIP"):
        raise ValueError(f"expected LIKE or SKIP, not {kind!r}")
    c.box.rate(kind.lower())
    return Reply()
