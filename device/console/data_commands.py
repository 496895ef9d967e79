"""Console commands for the box's records: LOG?, SESSIONS?, PROFILE?, EXPORT, SELFTEST, ERASE.

Everything that reads or writes the session store runs off the loop (the box hands the
work out as :class:`~device.box.api.OffLoop`); only the formatting runs on it. Handlers
take the :class:`~device.console.commands.Console`, the arguments and the loop time.
"""

from __future__ import annotations

import csv
import io
import secrets
from collections.abc import Iterable, Iterator, Mapping
from typing import TYPE_CHECKING, Any

from device.console.arguments import expect_args, field, off_loop
from device.console.lines import flatten, format_cell
from device.console.protocol import Code, Deferred, Reply, format_pairs
from device.store.rr import rr_lines

if TYPE_CHECKING:
    from device.console.commands import Console

#: Seconds an ``ERASE USERDATA`` token stays valid.
ERASE_TOKEN_S = 60.0
#: Most events ``LOG?`` returns.
LOG_MAX = 500

Row = dict[str, object]


def log_events(c: Console, args: list[str], now: float) -> Reply:
    """``LOG? [N]`` (events are kept in memory)."""
    expect_args(args, 0, 1, "LOG? [N]")
    n = 20
    if args:
        if not args[0].isdigit() or not 1 <= int(args[0]) <= LOG_MAX:
            raise ValueError(f"N must be a whole number from 1 to {LOG_MAX}, not {args[0]!r}")
        n = int(args[0])
    return Reply.data(*(flatten(e) for e in c.box.events(n)))


def sessions(c: Console, args: list[str], now: float) -> Reply:
    """``SESSIONS?``: read off the loop."""
    expect_args(args, 0, 0, "SESSIONS?")
    return off_loop(c.box.sessions(), lambda found: Reply.data(*(flatten(s) for s in found)))


def profile(c: Console, args: list[str], now: float) -> Reply:
    """``PROFILE?``: the learned resonance, read off the loop."""
    expect_args(args, 0, 0, "PROFILE?")
    return off_loop(c.box.profile(), lambda summary: Reply.data(flatten(summary)))


def export(c: Console, args: list[str], now: float) -> Reply:
    """``EXPORT <SESSION> [RR]``: CSV lines of the 1 Hz record, or with ``RR`` the beat
    intervals as a plain RR file (one per line, ms); the store is read off the loop."""
    usage = "EXPORT <SESSION> [RR]"
    text, *what = expect_args(args, 1, 2, usage)
    if not text.isdigit():
        raise ValueError(f"SESSION must be a session number (SESSIONS? lists them), not {text!r}")
    rr = bool(what)
    if rr and what[0].upper() != "RR":
        raise ValueError(f"expected RR after the session, not {what[0]!r} (usage: {usage})")
    sid = int(text)
    known = c.box.sessions()
    rows = c.box.export_beats(sid) if rr else c.box.export_rows(sid)

    def work() -> list[Row]:
        ids = {int(str(field(s, "id"))) for s in known.work() if field(s, "id") is not None}
        if sid not in ids:
            raise ValueError(f"no session {sid} (SESSIONS? lists them)")
        return rows.work()

    def answer(found: list[Row], _now: float) -> Reply:
        return Reply(rr_lines(found)) if rr else Reply(csv_lines(found))

    return Reply(deferred=Deferred(work, answer))


def selftest(c: Console, args: list[str], now: float) -> Reply:
    """``SELFTEST``: the storage check reads the store off the loop."""
    expect_args(args, 0, 0, "SELFTEST")
    return off_loop(c.box.selftest(), _selftest_reply)


def _selftest_reply(checks: Iterable[Any]) -> Reply:
    rows = []
    failed: list[str] = []
    for check in checks:
        if isinstance(check, Mapping):
            name, ok, detail = check.get("check"), check.get("ok"), check.get("detail", "")
        else:
            name, ok, detail = check
        rows.append({"check": name, "result": "pass" if ok else "fail", "detail": detail})
        if not ok:
            failed.append(str(name))
    if not failed:
        return Reply.data(*rows)
    code = Code.STORAGE_FAULT if failed == ["storage"] else Code.HARDWARE_FAULT
    return Reply([format_pairs(r) for r in rows], code, f"self-test failed: {', '.join(failed)}")


def erase(c: Console, args: list[str], now: float) -> Reply:
    """``ERASE USERDATA [TOKEN]``: a token first, then the erasure off the loop."""
    expect_args(args, 0, 1, "ERASE USERDATA [TOKEN]")
    t = c.clock()
    if not args:
        token = secrets.token_hex(4).upper()
        c.erase_token = (token, t + ERASE_TOKEN_S)
        return Reply.data(
            {"token": token, "expires_s": int(ERASE_TOKEN_S), "confirm": f"ERASE USERDATA {token}"}
        )
    pending, c.erase_token = c.erase_token, None
    if pending is None or t > pending[1] or args[0].upper() != pending[0]:
        raise ValueError("the token is wrong or expired; ask for a new one with ERASE USERDATA")

    def answer(counts: Mapping[str, object]) -> Reply:
        erased = {f"erased_{k}": v for k, v in dict(counts or {}).items()}
        return Reply.data(erased) if erased else Reply()

    return off_loop(c.box.erase_userdata(), answer)


def csv_lines(rows: Iterable[Any]) -> Iterator[str]:
    """CSV lines of ``rows`` (mappings): a header line, then one line per row, pulled lazily."""
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="")
    header: list[str] | None = None
    for row in rows:
        if header is None:
            header = list(row.keys()) if isinstance(row, Mapping) else []
            if header:
                writer.writerow(header)
                yield _take(buf)
        values = [row.get(k) for k in header] if isinstance(row, Mapping) and header else row
        writer.writerow([format_cell(v) for v in values])
        yield _take(buf)


def _take(buf: io.StringIO) -> str:
    text = buf.getvalue()
    buf.seek(0)
    buf.truncate()
    return text
