"""Property test: random and malformed input never crashes the console, every line is
answered in order, and memory stays bounded."""

from __future__ import annotations

import tracemalloc
from collections.abc import Callable

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from device.console.lines import MAX_LINE
from device.console.server import ConsoleServer
from tests.support.console_doubles import FakeBox, FakeClock, MemoryPort, is_final

WORDS = [
    "PING",
    "ID?",
    "STATUS?",
    "HELP",
    "HELP VOL",
    "ERR?",
    "ECHO OFF",
    "VOL?",
    "PROG?",
    "VOL SET",
    "VOL SET abc",
    "VOL SET nan",
    "SESSION",
    "CFG SET",
    "AT",
    "AT+GCAP",
    "ATI",
    "LOG? 0",
    "STREAM HR",
    "RATE",
    "#",
    '"',
    'CFG SET "a',
    "#toolongtag1",
    "LOGOUT",
]
SPECIAL = [b"\x08", b"\x7f", b"\x00", b"\xff", b"\x03", b"\x15", b"\t", b" ", b"\x1b[A"]
OUT_MAX = 4096


def fuzz_box() -> FakeBox:
    """The shared fake box with the figures a playing box shows."""
    return FakeBox(hr=58.2, quality=0.9, volume_db=-12.0, cap_dbfs=-6.0, level_db=-80.0)


piece = st.one_of(
    st.sampled_from(WORDS).map(str.encode),
    st.sampled_from(SPECIAL),
    st.binary(max_size=12).map(lambda b: b.replace(b"\r", b"").replace(b"\n", b"")),
    st.text(alphabet=st.characters(min_codepoint=0x20, max_codepoint=0x7E), max_size=30).map(
        str.encode
    ),
)
line_body = st.lists(piece, max_size=8).map(b"".join)
long_line = st.integers(min_value=MAX_LINE - 2, max_value=400).map(lambda n: b"x" * n)
ending = st.sampled_from([b"\r", b"\n", b"\r\n"])
entry = st.tuples(st.one_of(line_body, line_body, line_body, long_line), ending)


def count_endings(stream: bytes) -> int:
    """Oracle: the answers a byte stream must get, one per line ending, empty lines included.

    CR, LF, CRLF and LFCR each end one line: the second byte of a CRLF or LFCR pair (with
    nothing between them) is the same ending.
    """
    count, prev = 0, None
    for b in stream:
        if b in (0x0D, 0x0A):
            if prev is not None and b != prev:
                prev = None  # the second half of a pair
                continue
            count += 1
            prev = b
        else:
            prev = None
    return count


def feed_all(
    server: ConsoleServer, port: MemoryPort, data: bytes, on_line: Callable[[str], None]
) -> tuple[int, int]:
    """Send ``data`` in one burst through a slow port, handing each line sent to ``on_line``.

    Returns the peak of queued output bytes and of the half line held.
    """
    port.inbox += data
    t, peak_out, peak_pending = 0.0, 0, 0
    idle = 0
    while idle < 2:
        port.room = 2048  # what the port takes per poll
        server.poll(t)
        t += 0.02
        peak_out = max(peak_out, server.queued_bytes)
        peak_pending = max(peak_pending, server.framer.pending)
        end = port.sent.rfind(b"\r\n")
        if end >= 0:
            for line in port.sent[:end].decode("ascii").split("\r\n"):
                on_line(line)
            del port.sent[: end + 2]
        busy = port.inbox or server.busy
        idle = 0 if busy else idle + 1
    assert not port.sent, "a line sent without its CRLF"
    return peak_out, peak_pending


TOTAL_LINES = [0]


@settings(
    max_examples=60,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(entries=st.lists(entry, min_size=170, max_size=260))
def _fuzz_once(entries: list[tuple[bytes, bytes]]) -> None:
    port = MemoryPort()
    server = ConsoleServer(
        lambda: port,
        fuzz_box(),
        None,
        FakeClock(),
        serial="FUZZ",
        out_max=OUT_MAX,
        lines_per_poll=64,
        budget_s=1.0,
    )
    stream = bytearray()
    tags: list[str] = []
    prev_cr = False
    for i, (body, end) in enumerate(entries):
        if prev_cr and body.startswith(b"\n"):
            body = body[1:]
        stream += body + end
        prev_cr = end == b"\r"
        if i % 10 == 0:
            tags.append(f"p{i}")
            stream += f"PING #p{i}\r\n".encode()
            prev_cr = False
    expected = count_endings(bytes(stream))
    lines: list[str] = []
    peak_out, peak_pending = feed_all(server, port, bytes(stream), lines.append)
    TOTAL_LINES[0] += len(entries) + len(tags)
    finals = [x for x in lines if is_final(x)]
    assert len(finals) == expected
    assert [x for x in finals if x.startswith("OK #p")] == [f"OK #{t}" for t in tags]
    assert all(x.isascii() and x.isprintable() for x in lines)
    assert server.faults == 0 and server.is_open
    assert peak_pending <= MAX_LINE
    assert peak_out <= OUT_MAX + 2 * 1024


def test_fuzz_at_least_10000_lines() -> None:
    TOTAL_LINES[0] = 0
    _fuzz_once()
    assert TOTAL_LINES[0] >= 10_000


def test_floods_keep_memory_bounded_and_answer_in_order() -> None:
    port = MemoryPort()
    server = ConsoleServer(lambda: port, fuzz_box(), None, FakeClock(), serial="FUZZ")
    burst = (
        b"x" * 65536
        + b"\r\n"  # a 64 KiB line without an end, then one
        + b"\xff" * 20000
        + b"\n"  # a baud-mismatch burst
        + b"\x00" * 10000  # NULs
        + b"".join(b"PING #b%d\r\n" % i for i in range(3000))
        + b"STATUS? #last\r"
    )
    want = iter(
        ["ERR 3 line too long (at most 120 characters)"] * 2
        + [f"OK #b{i}" for i in range(3000)]
        + ["OK #last"]
    )
    seen = [0]

    def check(line: str) -> None:
        if is_final(line):
            assert line == next(want)
            seen[0] += 1

    tracemalloc.start()
    base = tracemalloc.get_traced_memory()[0]
    feed_all(server, port, burst, check)
    peak = tracemalloc.get_traced_memory()[1] - base
    tracemalloc.stop()
    assert seen[0] == 3003
    assert peak < 256 * 1024, peak


BOX_WORDS = [
    "STATUS?",
    "SENSOR?",
    "PROG LIST?",
    "PROG?",
    "VOL?",
    "VOL SET -20",
    "VOL SET 3",
    "SESSION START",
    "SESSION START relax 1",
    "SESSION STOP",
    "CFG? audio.volume_db",
    "CFG SET audio.fade_in_s 5",
    "CFG SET audio.cap_dbfs -3",
    "LOG? 5",
    "SESSIONS?",
    "EXPORT 1",
    "SELFTEST",
    "ERASE USERDATA",
    "RESTART",
    "STREAM HR ON",
    "STREAM HR OFF",
    "ERR?",
    "HELP",
]
box_piece = st.one_of(
    st.sampled_from(BOX_WORDS).map(str.encode),
    st.sampled_from(SPECIAL),
    st.binary(max_size=6).map(lambda b: b.replace(b"\r", b"").replace(b"\n", b"")),
)
box_line = st.lists(box_piece, min_size=1, max_size=3).map(b" ".join)


def test_fuzz_against_the_real_box(tmp_path_factory: pytest.TempPathFactory) -> None:
    from device.box.app import Box, RunOptions
    from device.config import Config

    tmp = tmp_path_factory.mktemp("fuzzbox")
    opts = RunOptions(
        sim=True,
        audio="null",
        speed=None,
        status="none",
        state_dir=str(tmp),
        config_path=str(tmp / "config.toml"),
    )
    with Box(Config.defaults(), opts) as box:
        for _ in range(20):
            box.loop.turn()

        @settings(
            max_examples=8,
            deadline=None,
            database=None,
            suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
        )
        @given(entries=st.lists(st.tuples(box_line, ending), min_size=50, max_size=120))
        def fuzz(entries: list[tuple[bytes, bytes]]) -> None:
            port = MemoryPort()
            server = ConsoleServer(
                lambda: port, box, None, FakeClock(), serial="FUZZ", lines_per_poll=64, budget_s=1.0
            )
            stream = bytearray()
            prev_cr = False
            for body, end in entries:
                if prev_cr and body.startswith(b"\n"):
                    body = body[1:]
                stream += body + end
                prev_cr = end == b"\r"
            expected = count_endings(bytes(stream))
            lines: list[str] = []

            def on_line(line: str) -> None:
                lines.append(line)
                box.loop.turn()  # the sound goes on between polls

            feed_all(server, port, bytes(stream), on_line)
            finals = [x for x in lines if is_final(x)]
            assert len(finals) == expected
            assert all(x.isascii() and x.isprintable() for x in lines)
            assert server.faults == 0
            server.close()

        fuzz()
        assert box.loop.blocks > 20
