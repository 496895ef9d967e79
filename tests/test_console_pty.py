"""The whole command set over a real pty pair against ``bedside run --sim --audio null``."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator

import pytest

from device.console.protocol import parse_pairs
from tests.support.console_box import BoxRun, Terminal, box_env, is_final, needs_socat, running_box

pytestmark = needs_socat


@pytest.fixture(scope="module")
def box(tmp_path_factory: pytest.TempPathFactory) -> Iterator[BoxRun]:
    tmp = tmp_path_factory.mktemp("console-pty")
    with running_box(tmp, box_env(tmp)) as run:
        yield run


@pytest.fixture
def term(box: BoxRun) -> Iterator[Terminal]:
    t = box.terminal()
    t.send("\r\n")  # end any half line an earlier test left
    t.ask("ECHO OFF")  # and whatever else it left on
    t.ask("STREAM HR OFF")
    yield t
    t.close()
    box.terminals.remove(t)


def pairs(line: str) -> dict[str, str]:
    return parse_pairs(line)


def test_id(term: Terminal) -> None:
    (line,) = term.ok("ID?")
    p = pairs(line)
    assert p["product"] == "Bedside" and p["protocol"] == "1" and p["version"] and p["serial"]


def test_each_line_ending_gets_exactly_one_reply(term: Terminal) -> None:
    term.send("PING #e1\rPING #e2\nPING #e3\r\nid? #e4\r")
    lines = term.until(lambda x: x.endswith("#e4"))
    finals = [x for x in lines if is_final(x)]
    assert finals == ["OK #e1", "OK #e2", "OK #e3", "OK #e4"]
    term.send("PING #e5\r\n")
    assert term.reply_line() == "OK #e5"  # no stray reply from the CRLF before


def test_errors_have_their_codes_and_queue(term: Terminal) -> None:
    term.ok("ERR?")  # start from an empty queue
    assert term.ask("VOLUME 3")[1] == "ERR 1 unknown command 'VOLUME 3'; HELP lists the commands"
    final = term.ask("VOL SET 0")[1]
    assert final.startswith("ERR 2 ") and "cap" in final
    assert term.ask("VOL SET loud")[1] == "ERR 2 dB must be a number, not 'loud'"
    term.send("X" * 121 + "\r\n")
    assert term.reply_line() == "ERR 3 line too long (at most 120 characters)"
    assert term.ask("SESSION STOP")[1].startswith("ERR 4 ")
    assert term.ask("VOL CAP SET -10")[1].startswith("ERR 5 VOL CAP SET needs the service PIN")
    term.send("\xff\x00garbage\r\n".encode("latin-1"))
    assert term.reply_line().startswith("ERR 1 unknown command: byte 0xFF")
    data = term.ok("ERR?")
    codes = [pairs(x)["code"] for x in data]
    assert codes == ["1", "2", "2", "3", "4", "5", "1"]


def test_an_empty_line_is_answered_ok_and_crlf_counts_once(term: Terminal) -> None:
    term.send("\r\n\r\n   \r\n")
    assert [term.reply_line(), term.reply_line(), term.reply_line()] == ["OK"] * 3
    term.send("\rPING #z\r\n")
    assert term.reply_line() == "OK" and term.reply_line() == "OK #z"


def test_help_vol_lists_every_vol_command(term: Terminal) -> None:
    names = [pairs(x)["command"] for x in term.ok("HELP VOL")]
    assert names == ["VOL?", "VOL SET <dB>", "VOL CAP SET <dB>"]
    names = [pairs(x)["command"] for x in term.ok("HELP PROG")]
    assert names == ["PROG LIST?", "PROG?"]


def test_modem_probe_gets_err_1_and_nothing_else(term: Terminal) -> None:
    term.send("AT\rAT+GCAP\r\nATE0\r\nPING #m\r\n")
    lines = [x for x in term.until(lambda x: x == "OK #m") if not x.startswith("!")]
    assert lines == ["ERR 1 unknown command"] * 3 + ["OK #m"]


def test_help_lists_every_command(term: Terminal) -> None:
    data = term.ok("HELP")
    names = [pairs(x)["command"].split(" <")[0].split(" [")[0] for x in data]
    for name in ("ID?", "STATUS?", "VOL CAP SET", "ERASE USERDATA", "ERR?", "STREAM HR ON|OFF"):
        assert name in names
    assert [pairs(x)["auth"] for x in term.ok("help vol cap")] == ["service"]


def test_status_has_the_documented_keys(term: Terminal) -> None:
    (line,) = term.ok("status?")
    p = pairs(line)
    for key in (
        "state",
        "program",
        "section",
        "elapsed_s",
        "remaining_s",
        "hr",
        "quality",
        "contact",
        "breathing",
        "pacer",
        "entrain_kind",
        "entrain_hz",
        "volume_db",
        "cap_dbfs",
        "underruns",
        "overruns",
        "uptime_s",
    ):
        assert key in p, key
    assert p["state"] == "idle"


def wait_idle(term: Terminal) -> None:
    """Stop any session and wait for its fade to end."""
    term.ask("SESSION STOP")
    deadline = time.monotonic() + 10
    while pairs(term.ok("STATUS?")[0])["state"] != "idle":
        assert time.monotonic() < deadline, "the session did not stop"
        time.sleep(0.1)


def test_programs_session_volume_rating_and_export(term: Terminal) -> None:
    names = [pairs(x)["name"] for x in term.ok("PROG LIST?")]
    assert "wind-down" in names
    (line,) = term.ok("SESSION START WIND-DOWN 1")
    started = pairs(line)
    assert started["program"] == "wind-down"
    assert term.ask("SESSION START")[1].startswith("ERR 4 ")
    assert pairs(term.ok("PROG?")[0])["program"] == "wind-down"
    assert pairs(term.ok("VOL SET -20.5")[0])["volume_db"] == "-20.5"
    assert pairs(term.ok("VOL?")[0])["cap_dbfs"] == "-6.0"
    assert term.ask("RATE MAYBE")[1].startswith("ERR 2 expected LIKE or SKIP")
    sensor = pairs(term.ok("SENSOR?")[0])
    assert sensor["present"] == "true" and "contact" in sensor and "quality" in sensor
    time.sleep(2.5)  # a few 1 Hz rows
    term.ok("SESSION STOP")
    assert term.ask("SESSION STOP")[1].startswith("ERR 4 ")  # already fading out
    wait_idle(term)
    events = [pairs(x)["kind"] for x in term.ok("LOG? 50")]
    assert "start" in events and "stop" in events
    sessions = [pairs(x) for x in term.ok("SESSIONS?")]
    sid = started["session"]
    assert sid in [s["id"] for s in sessions]
    rows = term.ok(f"EXPORT {sid}")
    assert rows[0].startswith("t,") and len(rows) >= 2
    assert term.ask("EXPORT 99999")[1] == "ERR 2 no session 99999 (SESSIONS? lists them)"


def test_rate_like_and_skip(term: Terminal) -> None:
    wait_idle(term)
    assert term.ask("RATE LIKE")[1].startswith("ERR 4 ")  # nothing plays
    term.ok("SESSION START relax")
    term.ok("rate like")
    term.ok("RATE SKIP")
    kinds = [pairs(x) for x in term.ok("LOG? 10")]
    assert [e["detail"].split()[0] for e in kinds if e["kind"] == "rating"][-2:] == ["like", "skip"]
    wait_idle(term)


def test_config_get_set_save(term: Terminal, box: BoxRun) -> None:
    all_keys = [x.split("=")[0] for x in term.ok("CFG?")]
    assert "audio.volume_db" in all_keys and "console.baud" in all_keys
    assert term.ok("cfg? AUDIO.FADE_IN_S") == ["audio.fade_in_s=30.0"]
    assert term.ok("CFG SET audio.fade_in_s 12") == ["audio.fade_in_s=12.0"]
    final = term.ask("CFG SET audio.fade_in_s 9999")[1]
    assert final.startswith("ERR 2 ") and "audio.fade_in_s" in final
    final = term.ask("CFG SET console.baud 9600")[1]
    assert final.startswith("ERR 5 CFG SET console.baud (a service key) needs the service PIN")
    assert term.ask("CFG SET nosuch.key 1")[1].startswith("ERR 2 ")
    assert term.ok('CFG SET therapy.profile "Room 12"') == ['therapy.profile="Room 12"']
    assert term.ok('CFG SET therapy.profile "12"') == ["therapy.profile=12"]
    assert term.ask("CFG SET therapy.profile 12")[1].startswith("ERR 2 therapy.profile = 12")
    assert term.ask("CFG SAVE")[1].startswith("ERR 5 CFG SAVE needs the service PIN")
    term.ok(f"AUTH {box.current_pin()}")
    (line,) = term.ok("CFG SAVE")
    assert pairs(line)["file"] == str(box.config)
    assert "fade_in_s = 12.0" in box.config.read_text()


def test_selftest_reports_each_check(term: Terminal) -> None:
    data, final, _ = term.ask("SELFTEST")
    checks = {pairs(x)["check"]: pairs(x)["result"] for x in data}
    assert set(checks) >= {"sensor", "audio", "storage", "clock"}
    assert final == "OK" if all(v == "pass" for v in checks.values()) else final.startswith("ERR")


def test_echo_on_and_off(term: Terminal) -> None:
    def line() -> str:
        while (text := term.line()).startswith("!"):
            pass
        return text

    term.ok("ECHO ON")
    term.send("PING #x1\r")
    assert line() == "PING #x1"  # the echo
    assert line() == "OK #x1"
    term.send("ECHO OFF #x2\r")
    assert line() == "ECHO OFF #x2"
    assert line() == "OK #x2"
    term.send("PING #x3\r")
    assert line() == "OK #x3"


def test_hr_stream_never_splits_a_reply(term: Terminal) -> None:
    term.ok("STREAM HR ON")
    bangs: list[str] = []
    deadline = time.monotonic() + 3.5
    while time.monotonic() < deadline:
        for _ in range(5):  # ask() fails if a ! line comes inside a reply
            bangs += term.ask("STATUS?")[2]
            bangs += term.ask("HELP")[2]
    term.ok("STREAM HR OFF")
    hr = [b for b in bangs if b.startswith("!HR ")]
    assert len(hr) >= 2
    assert {"t", "bpm", "q"} <= set(pairs(hr[0][4:]))


def test_service_login_pin_change_erase_and_restart(term: Terminal, box: BoxRun) -> None:
    wait_idle(term)
    pin = box.pin()
    assert term.ask("AUTH 000000")[1] == "ERR 5 wrong PIN (4 tries left before a lockout)"
    assert term.ok(f"AUTH {pin}") == ["login=service idle_logout_s=600.0"]
    # The cap below the present volume: the volume follows it down (was ERR 2).
    volume = float(pairs(term.ok("VOL?")[0])["volume_db"])
    assert volume > -30.0
    vol = pairs(term.ok("VOL CAP SET -30")[0])
    assert (vol["cap_dbfs"], vol["volume_db"]) == ("-30.0", "-30.0")
    assert term.ask("VOL CAP SET -80")[1].startswith("ERR 2 ")  # refused: nothing changed
    assert pairs(term.ok("VOL?")[0])["volume_db"] == "-30.0"
    assert pairs(term.ok("VOL CAP SET -10")[0])["cap_dbfs"] == "-10.0"
    assert term.ok("CFG SET console.baud 57600") == ["console.baud=57600"]
    term.ok("CFG DEFAULTS")
    assert term.ok("CFG? console.baud") == ["console.baud=115200"]
    assert term.ask("PIN SET 1234")[1].startswith("ERR 2 a PIN is 6-12 digits")
    term.ok("PIN SET 975310")
    box.new_pin = "975310"
    term.ok("LOGOUT")
    assert term.ask("ERASE USERDATA")[1].startswith("ERR 5 ")
    term.ok("AUTH 975310")
    token = pairs(term.ok("ERASE USERDATA")[0])["token"]
    assert term.ask("ERASE USERDATA 00000000")[1].startswith("ERR 2 the token is wrong")
    assert term.ask(f"ERASE USERDATA {token}")[1].startswith("ERR 2 the token is wrong")  # used up
    token = pairs(term.ok("ERASE USERDATA")[0])["token"]
    erased = pairs(term.ok(f"erase userdata {token.lower()}")[0])
    assert int(erased["erased_sessions"]) >= 1
    assert term.ok("SESSIONS?") == []
    record = json.loads((box.state_dir / "console_pin.json").read_text())
    assert record["kdf"] == "scrypt" and "975310" not in json.dumps(record)
    assert "975310" not in box.log_text() and pin not in box.log_text()


def test_unplug_logs_out_keeps_playing_and_reopens(box: BoxRun) -> None:
    term = box.terminal()
    term.send("\r\n")
    term.ok(f"AUTH {box.current_pin()}")
    term.send("VOL SE")  # half a line, then the adapter is pulled out
    box.unplug()
    time.sleep(0.5)
    assert box.proc.poll() is None
    box.plug()
    term = box.terminal()
    term.until(lambda x: x.startswith("!READY"), timeout=10)
    term.send("T -20 #h\r\n")  # must not be glued to the half line from before
    assert term.reply_line().startswith("ERR 1 unknown command 'T -20'")
    assert term.ask("VOL CAP SET -10")[1].startswith("ERR 5 ")  # logged out on close
    (line,) = term.ok("STATUS?")
    assert pairs(line)["underruns"] == "0"
    assert "console port lost" in box.log_text()


def test_floods_and_garbage_over_the_pty(box: BoxRun) -> None:
    term = box.terminal()
    term.send("\r\n")
    term.ok("PING")  # and past the OK of that empty line
    burst = (
        b"x" * 65536
        + b"\r\n"
        + b"\xff" * 4096
        + b"\r\n"
        + b"\x00" * 1000
        + b"".join(b"PING #f%d\r\n" % i for i in range(2000))
        + b"STATUS? #fend\r\n"
    )
    term.send(burst)
    lines = term.until(lambda x: x == "OK #fend", timeout=60)
    finals = [x for x in lines if is_final(x)]
    assert finals[:2] == ["ERR 3 line too long (at most 120 characters)"] * 2
    assert finals[2:-1] == [f"OK #f{i}" for i in range(2000)]
    assert pairs(term.ok("STATUS?")[0])["underruns"] == "0"


def test_restart_exits_for_systemd(box: BoxRun) -> None:
    term = box.terminal()
    term.send("\r\n")
    term.ok(f"AUTH {box.current_pin()}")
    term.ok("RESTART")
    assert box.proc.wait(15) == 75
