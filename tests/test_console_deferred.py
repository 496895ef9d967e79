"""Console commands that touch the disk do it off the loop (issue 16 item 4).

Each command runs against the real Box with its disk part (a store read, a program file, the
config file, the erasure) held on a :class:`threading.Event`: while it is held the loop
keeps rendering blocks and another console keeps answering ``PING``, no reply to the held
command is sent, and the held part runs on a thread other than the loop's. Once the Event
is set the reply arrives. On a console that did the disk work inline the held part would
run on the loop's own thread and the loop would render nothing while it waited.
"""

from __future__ import annotations

import io
import threading
import time
import tracemalloc
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import device.box.live_config as live_config
import device.therapy.program as program_module
from device.box.app import Box, RunOptions
from device.config import Config
from device.console import data_commands
from device.console.auth import PinAuth
from device.console.commands import Console
from device.console.protocol import parse_request
from device.console.server import ConsoleServer
from device.store.sessions import Store
from tests.support.console_doubles import FakeBox, Hold, MemoryPort, answer, is_final

#: Console polls (20 ms of loop time each) the disk part is held for.
HOLD_POLLS = 30


@pytest.fixture
def box(tmp_path: Path) -> Iterator[Box]:
    cfg = Config.defaults().with_value("service.auto_start", False)
    opts = RunOptions(
        sim=True,
        audio="null",
        speed=None,
        status="none",
        state_dir=str(tmp_path / "state"),
        config_path=str(tmp_path / "config.toml"),
    )
    with Box(cfg, opts, status_out=io.StringIO()) as b:
        yield b


def lines_of(port: MemoryPort) -> list[str]:
    return [x for x in port.sent.decode().split("\r\n") if x]


def finals(port: MemoryPort) -> list[str]:
    return [x for x in lines_of(port) if is_final(x)]


def run_held(box: Box, line: str, hold: Hold, tmp_path: Path, *, before: str = "") -> dict:
    """Send ``line`` to a console on ``box`` (after ``before``), hold its disk part for
    :data:`HOLD_POLLS` polls, then let it go; what was seen while it was held."""
    auth = PinAuth(tmp_path / "auth", clock=time.monotonic, identity="m:1", scrypt_n=2**10)
    assert auth.login(auth.store.default_pin()) == "ok"
    port, ping_port = MemoryPort(), MemoryPort()
    server = ConsoleServer(lambda: port, box, auth, time.monotonic, serial="T")
    pinger = ConsoleServer(lambda: ping_port, box, None, time.monotonic, serial="T")
    seen: dict[str, Any] = {"polls": 0, "done": False}
    wall_end = time.monotonic() + 30.0
    if before:
        port.inbox += before.encode() + b"\r\n"

    def task(deadline: float) -> float:
        n = seen["polls"]
        seen["polls"] += 1
        if n == 1:
            port.inbox += line.encode() + b"\r\n"
        server.poll(deadline)
        pinger.poll(deadline)
        if n == 3:
            seen["blocks0"] = box.loop.blocks
            ping_port.inbox += b"PING #p1\r\n"
        if n == 3 + HOLD_POLLS:
            seen["held_finals"] = finals(port)
            seen["held_blocks"] = box.loop.blocks - seen["blocks0"]
            seen["pings"] = finals(ping_port)
            hold.gate.set()
        expected = 2 if before else 1
        if n > 3 + HOLD_POLLS and len(finals(port)) >= expected:
            seen["done"] = True
        if time.monotonic() > wall_end:
            seen["done"] = True
        return deadline + 0.02

    box.loop.add_task("test-console", task, 0.02)
    box.loop.run(until=lambda: bool(seen["done"]))
    hold.gate.set()
    seen["lines"] = lines_of(port)
    seen["finals"] = finals(port)
    server.close()
    pinger.close()
    return seen


def assert_held_off_the_loop(seen: dict, hold: Hold, *, before: int = 0) -> None:
    assert hold.threads, "the disk part never ran"
    assert threading.main_thread() not in hold.threads, "the disk part ran on the loop's thread"
    assert len(seen["held_finals"]) == before, seen["held_finals"]
    assert seen["held_blocks"] >= HOLD_POLLS, "the loop stopped rendering"
    assert seen["pings"] == ["OK #p1"], "the loop stopped answering another console"


def hold_reader(monkeypatch: pytest.MonkeyPatch) -> Hold:
    hold = Hold()
    monkeypatch.setattr(Store, "reader", hold.wrap(Store.reader))
    return hold


def test_sessions_reads_the_store_off_the_loop(
    box: Box, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = box.recorder.require()
    sid = store.start_session("relax", "default")
    hold = hold_reader(monkeypatch)
    seen = run_held(box, "SESSIONS?", hold, tmp_path)
    assert_held_off_the_loop(seen, hold)
    assert seen["finals"] == ["OK"]
    assert any(f"id={sid} " in x and "program=relax" in x for x in seen["lines"])


def test_export_reads_the_rows_off_the_loop(
    box: Box, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = box.recorder.require()
    sid = store.start_session("relax", "default")
    store.add_rows(sid, [{"t": 0.0, "hr": 61.0}, {"t": 1.0, "hr": 62.5}])
    hold = hold_reader(monkeypatch)
    seen = run_held(box, f"EXPORT {sid}", hold, tmp_path)
    assert_held_off_the_loop(seen, hold)
    assert seen["finals"] == ["OK"]
    header = next(x for x in seen["lines"] if x.startswith("t,"))
    rows = seen["lines"][seen["lines"].index(header) + 1 : -1]
    assert len(rows) == 2 and rows[1].startswith("1.0,62.5")


def test_export_of_an_unknown_session_is_refused_off_the_loop(
    box: Box, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    hold = hold_reader(monkeypatch)
    seen = run_held(box, "EXPORT 99", hold, tmp_path)
    assert_held_off_the_loop(seen, hold)
    assert seen["finals"] == ["ERR 2 no session 99 (SESSIONS? lists them)"]


def test_profile_reads_the_store_off_the_loop(
    box: Box, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    hold = hold_reader(monkeypatch)
    seen = run_held(box, "PROFILE?", hold, tmp_path)
    assert_held_off_the_loop(seen, hold)
    assert seen["finals"] == ["OK"]
    assert any("profile=default" in x for x in seen["lines"])


def test_selftest_checks_the_store_off_the_loop(
    box: Box, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    hold = hold_reader(monkeypatch)
    seen = run_held(box, "SELFTEST", hold, tmp_path)
    assert_held_off_the_loop(seen, hold)
    checks = [x for x in seen["lines"] if x.startswith("check=")]
    assert [x.split()[0] for x in checks] == [
        "check=sensor",
        "check=audio",
        "check=storage",
        "check=clock",
    ]
    assert "check=storage result=pass" in checks[2] and "integrity ok" in checks[2]


def test_erase_runs_off_the_loop_and_is_noted_on_it(
    box: Box, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = box.recorder.require()
    store.start_session("relax", "default")
    box.recorder.event("test", "before the erase")
    hold = Hold()
    monkeypatch.setattr(Store, "erase_userdata", hold.wrap(Store.erase_userdata))
    monkeypatch.setattr(data_commands.secrets, "token_hex", lambda n: "1a2b3c4d")
    # The token is answered at once; the erasure after it is held.
    seen = run_held(box, "ERASE USERDATA 1A2B3C4D", hold, tmp_path, before="ERASE USERDATA")
    assert_held_off_the_loop(seen, hold, before=1)
    assert seen["finals"] == ["OK", "OK"]
    assert any("erased_sessions=1" in x for x in seen["lines"])
    kinds = [e["kind"] for e in box.events(10)]
    assert kinds == ["erase"], kinds  # memory forgotten, the erasure noted, on the loop


def test_erase_while_playing_is_refused_at_once(box: Box, tmp_path: Path) -> None:
    auth = PinAuth(tmp_path / "auth", clock=time.monotonic, identity="m:1", scrypt_n=2**10)
    assert auth.login(auth.store.default_pin()) == "ok"
    console = Console(box, auth, serial="T")
    (line,) = answer(console, "ERASE USERDATA").lines
    token = line.split()[0].split("=")[1]
    box.start_session("relax", 5)
    reply = console.execute(parse_request(f"ERASE USERDATA {token}"), 0.0)
    assert reply.deferred is None and reply.code == 4


def test_cfg_save_writes_the_file_off_the_loop(
    box: Box, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    hold = Hold()
    monkeypatch.setattr(live_config, "save_config", hold.wrap(live_config.save_config))
    seen = run_held(box, "CFG SAVE", hold, tmp_path)
    assert_held_off_the_loop(seen, hold)
    assert seen["finals"] == ["OK"]
    assert f"file={tmp_path / 'config.toml'}" in seen["lines"]
    assert (tmp_path / "config.toml").is_file()
    assert any(e["kind"] == "config-saved" for e in box.events(10))


def hold_program_reads(monkeypatch: pytest.MonkeyPatch) -> Hold:
    hold = Hold()
    monkeypatch.setattr(program_module, "read_program", hold.wrap(program_module.read_program))
    return hold


def test_session_start_reads_the_program_off_the_loop(
    box: Box, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    hold = hold_program_reads(monkeypatch)
    seen = run_held(box, "SESSION START RELAX 5", hold, tmp_path)
    assert_held_off_the_loop(seen, hold)
    assert seen["finals"] == ["OK"]
    assert any(x.startswith("session=") and "program=relax" in x for x in seen["lines"])
    assert box.status()["program"] == "relax"


def test_session_start_of_a_program_file_reads_it_off_the_loop(
    box: Box, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    source = program_module.BUILTIN_DIR / "relax.toml"
    mine = tmp_path / "mine.toml"
    mine.write_text(source.read_text().replace('name = "relax"', 'name = "mine"', 1))
    hold = hold_program_reads(monkeypatch)
    seen = run_held(box, f"SESSION START {mine} 5", hold, tmp_path)
    assert_held_off_the_loop(seen, hold)
    assert seen["finals"] == ["OK"]
    assert box.status()["program"] == "mine"


def test_prog_list_reads_the_programs_off_the_loop(
    box: Box, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    hold = hold_program_reads(monkeypatch)
    seen = run_held(box, "PROG LIST?", hold, tmp_path)
    assert_held_off_the_loop(seen, hold)
    assert seen["finals"] == ["OK"]
    assert any(x.startswith("name=relax ") for x in seen["lines"])


def test_cfg_set_program_loads_it_off_the_loop(
    box: Box, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    hold = hold_program_reads(monkeypatch)
    seen = run_held(box, "CFG SET therapy.program relax", hold, tmp_path)
    assert_held_off_the_loop(seen, hold)
    assert seen["finals"] == ["OK"] and "therapy.program=relax" in seen["lines"]
    assert box.config.get("therapy.program") == "relax"


def test_a_huge_program_file_is_refused_unread(tmp_path: Path) -> None:
    big = tmp_path / "big.toml"
    with big.open("wb") as f:
        f.truncate(128 * 1024 * 1024)  # sparse: 128 MB that take no disk
    console = Console(FakeBox(), None, serial="T")
    tracemalloc.start()
    try:
        reply = answer(console, f"SESSION START {big}")
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert reply.code == 2 and "larger than 64 KiB" in reply.message
    assert peak < 1024 * 1024, f"{peak} bytes allocated: the file was read"


def test_a_held_command_holds_the_lines_after_it(tmp_path: Path) -> None:
    """One deferred reply at a time, in line order: a PING after SESSIONS? waits for it."""
    fake = FakeBox()
    fake.gate.clear()
    port = MemoryPort()
    server = ConsoleServer(lambda: port, fake, None, time.monotonic, serial="T")
    port.inbox += b"SESSIONS? #s\r\nPING #p\r\n"
    t = 0.0
    for _ in range(50):
        server.poll(t)
        t += 0.02
    assert finals(port) == []
    fake.gate.set()
    deadline = time.monotonic() + 10.0
    while len(finals(port)) < 2 and time.monotonic() < deadline:
        server.poll(t)
        t += 0.02
        time.sleep(0.001)
    assert finals(port) == ["ERR 7 no session store #s", "OK #p"]
    assert fake.work_threads and all(n.startswith("console-work") for n in fake.work_threads)
    server.close()
