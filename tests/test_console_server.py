"""The console server's loop behaviour: async lines between replies, backpressure, a port
that vanishes and comes back, faults that never reach the loop."""

from __future__ import annotations

import logging

import pytest

from device.console.auth import PinAuth
from device.console.server import ConsoleServer
from tests.support.console_doubles import FakeBox, FakeClock, MemoryPort, is_final, run_server


def event_box() -> FakeBox:
    """The shared fake box with a heart rate, whose events are many and long."""
    return FakeBox(hr=61.0, quality=0.8, contact=True)


def sent_lines(port: MemoryPort) -> list[str]:
    return [x for x in port.sent.decode().split("\r\n") if x]


def test_async_lines_wait_until_the_reply_is_out() -> None:
    port = MemoryPort(room=64)  # a slow port: a long reply takes many polls
    server = ConsoleServer(lambda: port, event_box(), None, FakeClock(), serial="S", out_max=256)
    server.poll(0.0)
    port.sent.clear()
    port.inbox += b"LOG? 200 #big\r\n"
    t = 0.0
    for _ in range(400):
        server.poll(t)
        server.emit(f"!EVENT test n={int(t * 50)}")
        t += 0.02
    lines = sent_lines(port)
    end = lines.index("OK #big")
    assert end == 200
    assert all(not x.startswith("!") for x in lines[:end])
    assert lines[end + 1].startswith("!EVENT test")
    assert server.queued_bytes <= 256 + 200
    assert server.async_dropped > 0  # the queue is bounded; it says what it dropped


def test_emit_without_bang_and_unprintable_text_is_made_safe() -> None:
    port = MemoryPort()
    server = ConsoleServer(lambda: port, event_box(), None, FakeClock(), serial="S")
    server.poll(0.0)
    server.emit("EVENT odd\r\ntext\x00é")
    server.poll(0.02)
    assert sent_lines(port)[-1] == "!EVENT odd  text??"


def test_hr_stream_each_second_of_loop_time() -> None:
    port = MemoryPort()
    server = ConsoleServer(lambda: port, event_box(), None, FakeClock(), serial="S")
    port.inbox += b"STREAM HR ON\r\n"
    for i in range(151):
        server.poll(i * 0.02)
    hr = [x for x in sent_lines(port) if x.startswith("!HR")]
    assert hr == [f"!HR t={t:.1f} bpm=61.0 q=0.8 contact=true" for t in (0.0, 1.0, 2.0, 3.0)]
    port.inbox += b"STREAM HR OFF\r\n"
    for i in range(151, 300):
        server.poll(i * 0.02)
    assert len([x for x in sent_lines(port) if x.startswith("!HR")]) == 4


def test_port_vanishes_and_is_reopened(tmp_path: object) -> None:
    clock = FakeClock()
    auth = PinAuth(str(tmp_path), clock=clock, identity="m:1", scrypt_n=2**10)
    ports = [MemoryPort(), MemoryPort()]
    plugged = [True]
    opened: list[MemoryPort] = []

    def opener() -> MemoryPort:
        if not plugged[0]:
            raise OSError(2, "could not open port /dev/ttyACM0")
        port = ports[len(opened)]
        opened.append(port)
        return port

    server = ConsoleServer(opener, event_box(), auth, clock, serial="S", reopen_s=1.0)
    first = ports[0]
    first.inbox += f"AUTH {auth.store.default_pin()} #a\r\n".encode()
    run_server(server, first, 1)
    assert auth.logged_in
    first.inbox += b"STREAM HR ON\r\nVOL SE"  # a half line, then the cable is pulled
    server.poll(1.0)
    first.broken = True
    plugged[0] = False
    server.poll(1.02)
    assert not server.is_open and first.closed and not auth.logged_in
    for k in range(100):
        server.poll(1.04 + k * 0.02)  # fails quietly, retried once a second
    assert len(opened) == 1
    plugged[0] = True
    server.poll(3.0)
    assert not server.is_open  # the retry pause has not passed on the monotonic clock
    clock.t += 1.0
    second = ports[1]
    second.inbox += b"T -20 #b\r\n"
    lines = run_server(server, second, 1, t0=3.1)
    assert lines[0].startswith("!READY product=Bedside")
    assert lines[1].startswith("ERR 1 unknown command 'T -20'")
    assert not any(x.startswith("!HR") for x in lines)  # the stream ended with the port
    assert server.opens == 2 and server.port_failures == 1


def test_box_faults_become_errors_and_never_reach_the_loop(
    caplog: pytest.LogCaptureFixture,
) -> None:
    box = event_box()
    box.fail = True
    port = MemoryPort()
    server = ConsoleServer(lambda: port, box, None, FakeClock(), serial="S")
    port.inbox += b"STATUS? #f\r\nSESSIONS?\r\nPING #p\r\n"
    with caplog.at_level(logging.ERROR):
        lines = run_server(server, port, 3)
    finals = [x for x in lines if is_final(x)]
    assert finals[0] == "ERR 6 internal fault (RuntimeError); see the box's log #f"
    assert finals[1] == "ERR 6 internal fault (RuntimeError); see the box's log"
    assert finals[2] == "OK #p"
    assert "console command STATUS? failed" in caplog.text


def test_service_commands_without_a_state_directory() -> None:
    port = MemoryPort()
    server = ConsoleServer(lambda: port, event_box(), None, FakeClock(), serial="S")
    port.inbox += b"AUTH 12345678\r\nRESTART\r\n"
    finals = [x for x in run_server(server, port, 2) if is_final(x)]
    assert finals == ["ERR 7 the service PIN is unavailable: the box has no state directory"] * 2


def test_close_is_idempotent_and_ends_the_login(tmp_path: object) -> None:
    clock = FakeClock()
    auth = PinAuth(str(tmp_path), clock=clock, identity="m:1", scrypt_n=2**10)
    port = MemoryPort()
    with ConsoleServer(lambda: port, event_box(), auth, clock, serial="S") as server:
        port.inbox += f"AUTH {auth.store.default_pin()}\r\n".encode()
        run_server(server, port, 1)
        assert auth.logged_in and "port=open" in repr(server)
    assert not auth.logged_in and port.closed
    server.close()
    server.emit("!late")
    assert server.poll(5.0) == pytest.approx(5.02)
    assert "port=closed" in repr(server)


def test_a_port_that_takes_nothing_stops_the_reading_not_the_memory() -> None:
    port = MemoryPort(room=0)  # nobody reads the other end
    server = ConsoleServer(lambda: port, event_box(), None, FakeClock(), serial="S", out_max=1024)
    port.inbox += b"STATUS?\r\n" * 10_000
    for i in range(2000):
        server.poll(i * 0.02)
        server.emit("!EVENT tick")
        assert server.queued_bytes <= 1024 + 200
        assert server.backlog_bytes <= server.in_max
    # the input backlog is full and the rest waits in the port, where it belongs
    assert server.backlog_bytes == server.in_max
    assert len(port.inbox) > 90_000 - server.in_max - 2 * server.read_chunk
    assert server.faults == 0 and server.is_open
    port.room = None
    for i in range(2000):  # 32 lines a poll at most
        server.poll(40.0 + i * 0.02)
    finals = [x for x in sent_lines(port) if is_final(x)]
    assert len(finals) == 10_000 and set(finals) == {"OK"}


def test_input_is_drained_while_the_output_is_blocked_and_the_backlog_is_bounded() -> None:
    port = MemoryPort(room=0)  # the peer takes no output at all (a relay blocked on its write)
    server = ConsoleServer(
        lambda: port, event_box(), None, FakeClock(), serial="S", out_max=256, in_max=4096
    )
    server.poll(0.0)
    port.inbox += b"LOG? 50\r\n" + b"PING\r\n" * 2000
    for i in range(20):
        server.poll(0.02 * i)
    assert server.backlog_bytes == 4096  # read on although nothing could be written
    assert server.bytes_in == 4096 + server.read_chunk  # and framed one chunk of it
    port.room = None  # the peer reads again: every line is answered, in order
    for i in range(500):  # 32 lines a poll at most
        server.poll(1.0 + 0.02 * i)
    lines = sent_lines(port)
    finals = [x for x in lines if is_final(x)]
    assert len(finals) == 2001 and finals == ["OK"] * 2001
    assert lines.index("OK") == 1 + sum(1 for x in lines if x.startswith("t="))  # after !READY
