"""Every session start reads its files off the loop: buttons, boot and console alike (issue 16
item 4).

A session start reads the program file and the profile's learnt preferences (the bandit's and
the resonance estimate's). The boxes here play through ``realtime:null``, a sound card's
buffer timing in front of the null sink, so the loop runs on its real clock as on a Pi. The
program read is held on a :class:`threading.Event`: while it is held the loop must keep
rendering blocks and the box must not be playing; once it is let go the session starts. On a
box that read the program on the loop, the loop would render nothing while held, and the
read would run on the loop's own thread.
"""

from __future__ import annotations

import io
import logging
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

import device.therapy.program as program_module
from device.box.app import Box, RunOptions
from device.config import Config
from device.console.server import ConsoleServer
from device.exc import ProgramError
from device.store.sessions import Store
from device.therapy.bandit import Chooser
from device.therapy.resonance import PREFERENCE_PREFIX
from tests.support.console_doubles import Hold, MemoryPort, is_final

#: Blocks the loop must render while the program read is held.
HOLD_BLOCKS = 25
#: Wall-time bound of one driven run, s (a safety net: a run normally ends in about 2 s).
WALL_LIMIT_S = 30.0


@pytest.fixture
def hold(monkeypatch: pytest.MonkeyPatch) -> Iterator[Hold]:
    h = Hold()
    monkeypatch.setattr(program_module, "read_program", h.wrap(program_module.read_program))
    yield h
    h.gate.set()


def make_box(tmp_path: Path, *, auto_start: bool = False, audio: str = "realtime:null") -> Box:
    cfg = Config.defaults().with_value("service.auto_start", auto_start)
    opts = RunOptions(
        sim=True, audio=audio, status="none", speed=None, state_dir=str(tmp_path / "state")
    )
    return Box(cfg, opts, status_out=io.StringIO())


def drive(box: Box, step: Callable[[int], bool]) -> None:
    """Run ``box``, calling ``step(n)`` after every block until it returns True."""
    wall_end = time.monotonic() + WALL_LIMIT_S
    done = False

    def task(deadline: float) -> float:
        nonlocal done
        done = step(box.loop.blocks) or time.monotonic() > wall_end
        return deadline + box.loop.block_s

    box.loop.add_task("test-driver", task, 0.0)
    box.loop.run(until=lambda: done)


def press_until_playing(box: Box, at: int) -> None:
    """Drive ``box``, press start at block ``at``, until a session plays."""

    def step(n: int) -> bool:
        if n == at:
            box.tasks.button("start_stop")
        return box.runner.playing()

    drive(box, step)


def starts(box: Box) -> list[dict[str, object]]:
    """The box's session-start events (a session's own ``start`` event says its length)."""
    return [
        e
        for e in box.events(50)
        if e["kind"] == "start" and str(e["detail"]).startswith("program=")
    ]


class Held:
    """What a driven run saw while the program read was held, and after."""

    def __init__(self) -> None:
        self.entered_at: int | None = None
        self.held_blocks = 0
        self.held_states: set[str] = set()
        self.released = False


def held_run(box: Box, hold: Hold, press: Callable[[int], None], *, after_blocks: int = 5) -> Held:
    """Drive ``box``: ``press(n)`` each block; once the program read is entered, hold it for
    :data:`HOLD_BLOCKS` blocks, let it go, then run until the box plays (plus
    ``after_blocks``) or is idle again for as long."""
    seen = Held()
    settled = 0

    def step(n: int) -> bool:
        nonlocal settled
        press(n)
        if not seen.released:
            if hold.threads and seen.entered_at is None:
                seen.entered_at = n
            if seen.entered_at is not None:
                seen.held_states.add(str(box.state))
                seen.held_blocks = n - seen.entered_at
                if seen.held_blocks >= HOLD_BLOCKS:
                    seen.released = True
                    hold.gate.set()
            return False
        if box.state in ("playing", "idle"):
            settled += 1
        return settled > after_blocks + 20

    drive(box, step)
    return seen


def assert_held_off_the_loop(seen: Held, hold: Hold, waiting: str) -> None:
    assert hold.threads, "the program was never read"
    assert threading.main_thread() not in hold.threads, "the program was read on the loop"
    assert seen.released, "the loop stopped rendering while the program was read"
    assert seen.held_blocks >= HOLD_BLOCKS
    assert seen.held_states == {waiting}, seen.held_states


def test_a_button_start_reads_the_program_off_the_loop(tmp_path: Path, hold: Hold) -> None:
    with make_box(tmp_path) as box:
        seen = held_run(box, hold, lambda n: box.tasks.button("start_stop") if n == 30 else None)
        assert_held_off_the_loop(seen, hold, "idle")
        assert box.state == "playing"
        assert box.status()["program"] == "wind-down"
        assert len(starts(box)) == 1


def test_a_double_press_while_preparing_starts_one_session(
    tmp_path: Path, hold: Hold, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="device.box.tasks")
    with make_box(tmp_path) as box:

        def press(n: int) -> None:
            if n == 30 or (hold.threads and n == 35):
                box.tasks.button("start_stop")

        seen = held_run(box, hold, press)
        assert_held_off_the_loop(seen, hold, "idle")
        assert box.state == "playing"
        assert len(starts(box)) == 1
        assert "a session start is being prepared" in caplog.text
        store = box.recorder.require()
        store.flush()  # the start's insert is queued for the writer thread
        with store.reader() as reader:
            assert len(reader.sessions()) == 1


def test_a_long_press_while_preparing_cancels_the_start(tmp_path: Path, hold: Hold) -> None:
    with make_box(tmp_path) as box:

        def press(n: int) -> None:
            if n == 30:
                box.tasks.button("start_stop")
            elif hold.threads and n == 35:
                box.tasks.button("stop_fade")

        seen = held_run(box, hold, press)
        assert_held_off_the_loop(seen, hold, "idle")
        assert box.state == "idle" and starts(box) == []
        # The next press starts a session as usual.
        n0 = box.loop.blocks
        press_until_playing(box, n0 + 1)
        assert box.state == "playing" and len(starts(box)) == 1


def test_the_boot_auto_start_reads_the_program_off_the_loop(tmp_path: Path, hold: Hold) -> None:
    with make_box(tmp_path, auto_start=True) as box:
        seen = held_run(box, hold, lambda n: None)
        assert_held_off_the_loop(seen, hold, "starting")
        assert box.tasks.ready, "READY=1 waits for no file"
        assert box.state == "playing"
        kinds = [e["kind"] for e in box.events(50)]
        assert kinds.index("boot") < kinds.index("start")


def learnt_bandit(tmp_path: Path, draws: int) -> None:
    """Store a bandit state of ``draws`` draws for the default profile."""
    store = Store(tmp_path / "state" / "sessions.db")
    learnt = Chooser(profile="default")
    for _ in range(draws):
        learnt.choose(program_module.load_program("wind-down").options)
    store.set_preference("bandit:default", learnt.to_state())
    store.close()


def record_preference_reads(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, threading.Thread]]:
    """Every preference read from now on, with the thread it ran on."""
    reads: list[tuple[str, threading.Thread]] = []
    get = Store.get_preference

    def recorded(self: Store, key: str, default: object = None) -> Any:
        reads.append((key, threading.current_thread()))
        return get(self, key, default)

    monkeypatch.setattr(Store, "get_preference", recorded)
    return reads


def assert_read_off_the_loop(box: Box, reads: list[tuple[str, threading.Thread]]) -> None:
    assert box.state == "playing"
    session = box.runner.session
    assert session is not None and session.chooser is not None
    draws = session.chooser.to_state()["profiles"]["default"]["draws"]
    assert draws >= 3, "the learnt bandit state was not used"
    keys = {key for key, _ in reads}
    assert {"bandit:default", PREFERENCE_PREFIX + "default"} <= keys
    on_loop = [key for key, t in reads if t is threading.main_thread()]
    assert not on_loop, f"preferences read on the loop: {on_loop}"


def test_preferences_are_read_off_the_loop(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    learnt_bandit(tmp_path, 3)
    reads = record_preference_reads(monkeypatch)
    with make_box(tmp_path) as box:
        reads.clear()  # the music's taste is read while the box is built, before its loop runs
        press_until_playing(box, 30)
        assert_read_off_the_loop(box, reads)


def test_a_console_start_reads_the_preferences_off_the_loop(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    learnt_bandit(tmp_path, 3)
    reads = record_preference_reads(monkeypatch)
    with make_box(tmp_path) as box:
        reads.clear()
        port = MemoryPort()
        server = ConsoleServer(lambda: port, box, None, time.monotonic, serial="T")

        def step(n: int) -> bool:
            if n == 30:
                port.inbox += b"SESSION START relax 5\r\n"
            server.poll(box.clock.now())
            return any(is_final(x) for x in port.sent.decode().split("\r\n") if x)

        drive(box, step)
        server.close()
        assert "OK" in port.sent.decode().split("\r\n"), port.sent
        assert_read_off_the_loop(box, reads)


def test_on_a_virtual_clock_a_press_starts_at_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Nothing paces a virtual clock, so nothing can underrun: the start is finished at the
    # press (still read on the worker), and a render is the same on every run.
    threads: list[threading.Thread] = []
    read = program_module.read_program

    def noted(path: Path) -> Any:
        threads.append(threading.current_thread())
        return read(path)

    monkeypatch.setattr(program_module, "read_program", noted)
    with make_box(tmp_path, audio="null") as box:
        box.tasks.button("start_stop")
        assert box.state == "playing" and len(starts(box)) == 1
        assert threads and threading.main_thread() not in threads


def test_a_bad_program_from_the_button_is_ignored_and_logged(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    def broken(path: Path) -> Any:
        raise ProgramError(f"{path}: broken on purpose")

    monkeypatch.setattr(program_module, "read_program", broken)
    caplog.set_level(logging.INFO, logger="device.box.tasks")
    with make_box(tmp_path, audio="null") as box:
        box.tasks.button("start_stop")
        assert not box.runner.playing() and starts(box) == []
        assert "button start_stop ignored: " in caplog.text and "broken on purpose" in caplog.text
        assert not box.tasks.starter.preparing


def test_the_command_line_start_still_blocks_and_starts(tmp_path: Path) -> None:
    with make_box(tmp_path) as box:
        sid = box.start_session("relax", 5)
        assert box.state == "playing" and box.status()["program"] == "relax"
        assert sid is not None and sid == box.recorder.session_id
