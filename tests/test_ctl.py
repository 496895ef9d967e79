"""``bedside ctl`` against a running box (and its clear failures)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator

import pytest

from device.cli.ctl import Result, split_commands, to_json
from tests.support.console_box import BoxRun, box_env, needs_socat, running_box

pytestmark = needs_socat


@pytest.fixture(scope="module")
def box(tmp_path_factory: pytest.TempPathFactory) -> Iterator[BoxRun]:
    tmp = tmp_path_factory.mktemp("ctl")
    with running_box(tmp, box_env(tmp)) as run:
        yield run


def ctl(
    box: BoxRun,
    *args: str,
    stdin: str | None = None,
    env: dict[str, str] | None = None,
    timeout: float = 30,
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "device", "ctl", "--port", box.tech_tty, *args],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=timeout,
        env=dict(os.environ, **(env or {})),
    )


def test_one_command_prints_its_data_and_exits_0(box: BoxRun) -> None:
    r = ctl(box, "ID?")
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith("product=Bedside ") and "protocol=1" in r.stdout


def test_words_form_one_command_and_semicolons_separate(box: BoxRun) -> None:
    r = ctl(box, "VOL", "SET", "-21", ";", "VOL?")
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert len(lines) == 2
    assert all(x.startswith("volume_db=-21.0 cap_dbfs=-6.0 level_db=") for x in lines)


def test_json_output(box: BoxRun) -> None:
    r = ctl(box, "--json", "STATUS?; PROG LIST?")
    assert r.returncode == 0, r.stderr
    status, programs = (json.loads(x) for x in r.stdout.splitlines())
    assert status[0]["state"] in ("idle", "playing") and isinstance(status[0]["underruns"], int)
    assert "wind-down" in [p["name"] for p in programs]


def test_err_exits_1_with_the_message_on_stderr_and_stops(box: BoxRun) -> None:
    r = ctl(box, "VOL SET 3; PING")
    assert r.returncode == 1
    assert r.stdout == ""
    assert r.stderr.startswith("bedside ctl: VOL SET 3: ERR 2 ") and "cap" in r.stderr


def test_commands_from_stdin(box: BoxRun) -> None:
    r = ctl(box, "-", stdin="PING\n\nID?\n")
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith("product=Bedside")


def test_auth_takes_the_pin_from_the_environment(box: BoxRun) -> None:
    r = ctl(box, "AUTH; VOL CAP SET -8; LOGOUT", env={"BEDSIDE_PIN": box.pin()})
    assert r.returncode == 0, r.stderr
    assert "cap_dbfs=-8.0" in r.stdout
    r = ctl(box, "AUTH", env={"BEDSIDE_PIN": "000000"})
    assert r.returncode == 1 and "ERR 5 wrong PIN" in r.stderr and "000000" not in r.stderr


def test_interactive_console_with_piped_input(box: BoxRun) -> None:
    r = ctl(box, stdin="ID?\nFOO\nquit\n")
    assert r.returncode == 0, r.stderr
    out = r.stdout.splitlines()
    assert out[0].startswith("product=Bedside") and out[1] == "OK"
    assert out[2].startswith("ERR 1 unknown command 'FOO'")


def test_no_box_on_the_port_times_out(tmp_path: object) -> None:
    master, slave = os.openpty()
    try:
        r = subprocess.run(
            [
                sys.executable,
                "-m",
                "device",
                "ctl",
                "--port",
                os.ttyname(slave),
                "--timeout",
                "0.5",
                "PING",
            ],
            capture_output=True,
            text=True,
            timeout=30,
        )
    finally:
        os.close(master)
        os.close(slave)
    assert r.returncode == 1 and "no reply to 'ECHO OFF' within 0.5 s" in r.stderr


def test_missing_port_is_a_clear_error() -> None:
    r = subprocess.run(
        [sys.executable, "-m", "device", "ctl", "--port", "/dev/nonexistent-tty", "PING"],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert r.returncode == 1 and "cannot open /dev/nonexistent-tty" in r.stderr


def test_split_and_json_helpers() -> None:
    assert split_commands(["VOL", "SET", "-3;", "CFG", "SET", "a.b", '"x;y";', "ID?"]) == [
        "VOL SET -3",
        'CFG SET a.b "x;y"',
        "ID?",
    ]
    res = Result("EXPORT 3", ["t,hr,contact", "0.0,,True", "1.0,58.5,True"], "OK")
    assert to_json(res) == [
        {"t": 0.0, "hr": None, "contact": "True"},
        {"t": 1.0, "hr": 58.5, "contact": "True"},
    ]
    assert to_json(Result("X", ['a=1 b="x y" c=none d=true'], "OK")) == [
        {"a": 1, "b": "x y", "c": None, "d": True}
    ]


def test_ctl_logs_out_after_its_commands_and_turns_echo_off_first(box: BoxRun) -> None:
    term = box.terminal()
    try:
        term.send("\r\n")
        term.ok("ECHO ON")  # a terminal session left echo on ...
        r = ctl(box, "AUTH; VOL CAP SET -8; VOL?", env={"BEDSIDE_PIN": box.current_pin()})
        assert r.returncode == 0, r.stderr
        # ... ctl's output holds only the replies, not its own commands echoed back
        login, *vols = r.stdout.splitlines()
        assert login == "login=service idle_logout_s=600.0" and len(vols) == 2, r.stdout
        assert all(x.startswith("volume_db=") and "cap_dbfs=-8.0" in x for x in vols)
        # and ctl logged out: a service command from the next person needs the PIN again
        final = term.ask("VOL CAP SET -6")[1]
        assert final.startswith("ERR 5 "), final
        # an ERR stops the commands, and still logs out
        r = ctl(box, "AUTH; VOL SET 3", env={"BEDSIDE_PIN": box.current_pin()})
        assert r.returncode == 1
        assert term.ask("VOL CAP SET -6")[1].startswith("ERR 5 ")
    finally:
        term.close()
        box.terminals.remove(term)
