"""Service PIN: hashing, per-device default, lockout, idle timeout, logout, never logged."""

from __future__ import annotations

import json
import logging
import os
import shutil
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from device.console.auth import (
    PIN_FILE,
    SECRET_FILE,
    PinAuth,
    PinStore,
    check_new_pin,
    derive_default_pin,
    hash_pin,
    verify_pin,
)
from device.console.server import ConsoleServer
from device.exc import AuthError, StorageError
from tests.support.console_doubles import FakeBox, FakeClock, MemoryPort, run_server

FAST_N = 2**10  # scrypt cost for tests; the product default is checked separately


def make_auth(tmp_path: Path, clock: FakeClock | None = None) -> PinAuth:
    return PinAuth(tmp_path, clock=clock or FakeClock(), identity="machine:abc", scrypt_n=FAST_N)


def test_hash_is_salted_scrypt_and_verifies() -> None:
    a, b = hash_pin("246810", n=FAST_N), hash_pin("246810", n=FAST_N)
    assert a["kdf"] == "scrypt" and a["salt"] != b["salt"] and a["hash"] != b["hash"]
    assert verify_pin("246810", a) and not verify_pin("246811", a)
    assert "246810" not in json.dumps(a)


def test_damaged_record_is_a_storage_error() -> None:
    with pytest.raises(StorageError, match="damaged"):
        verify_pin("1", {"kdf": "scrypt", "salt": "zz", "hash": "00"})
    with pytest.raises(StorageError, match="unknown PIN hash"):
        verify_pin("1", {"kdf": "md5", "salt": "00", "hash": "00"})


def test_new_pin_rules() -> None:
    assert check_new_pin("246810") == "246810"
    for bad in ("12345", "1234567890123", "12a456", "111111", "١٢٣٤٥٦"):
        with pytest.raises(ValueError, match="PIN"):
            check_new_pin(bad)


def test_default_pin_is_per_device(tmp_path: Path) -> None:
    one = derive_default_pin("machine:a", b"s" * 32)
    assert len(one) == 8 and one.isdigit()
    assert one != derive_default_pin("machine:b", b"s" * 32)
    assert one != derive_default_pin("machine:a", b"t" * 32)
    # Two boxes with the same identity but their own secret salt get different PINs.
    s1 = PinStore(tmp_path / "box1", "machine:a", scrypt_n=FAST_N)
    s2 = PinStore(tmp_path / "box2", "machine:a", scrypt_n=FAST_N)
    assert s1.default_pin() != s2.default_pin()
    assert s1.default_pin() == PinStore(tmp_path / "box1", "machine:a").default_pin()


def test_files_hold_only_a_hash_with_mode_0600(tmp_path: Path) -> None:
    store = PinStore(tmp_path, "machine:abc", scrypt_n=FAST_N)
    assert store.verify(store.default_pin())
    store.set_pin("975310")
    text = (tmp_path / PIN_FILE).read_text()
    assert "975310" not in text and json.loads(text)["kdf"] == "scrypt"
    for name in (PIN_FILE, SECRET_FILE):
        assert stat.S_IMODE(os.stat(tmp_path / name).st_mode) == 0o600
    assert store.verify("975310") and not store.verify(store.default_pin())
    assert not store.is_default()
    store.reset_to_default()
    assert store.is_default()
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []


def test_product_cost_is_scrypt_2_14(tmp_path: Path) -> None:
    store = PinStore(tmp_path, "machine:abc")
    store.set_pin("864200")
    record = json.loads((tmp_path / PIN_FILE).read_text())
    assert (record["n"], record["r"], record["p"]) == (2**14, 8, 1)


def test_damaged_pin_file_names_the_fix(tmp_path: Path) -> None:
    (tmp_path / PIN_FILE).write_text("{not json")
    with pytest.raises(StorageError, match="reset-default"):
        PinStore(tmp_path, "machine:abc").verify("12345678")


def test_five_wrong_pins_lock_for_60_s(tmp_path: Path) -> None:
    clock = FakeClock()
    auth = make_auth(tmp_path, clock)
    right = auth.store.default_pin()
    results = [auth.login("000001") for _ in range(5)]
    assert results == ["wrong"] * 4 + ["locked"]
    assert auth.locked_for() == pytest.approx(60.0)
    assert auth.login(right) == "locked" and not auth.logged_in
    clock.t += 59.9
    assert auth.login(right) == "locked"
    clock.t += 0.2
    assert auth.locked_for() == 0.0
    assert auth.tries_left == 5
    assert auth.login(right) == "ok" and auth.logged_in


def test_a_right_pin_resets_the_count(tmp_path: Path) -> None:
    auth = make_auth(tmp_path)
    right = auth.store.default_pin()
    for _ in range(4):
        auth.login("000001")
    assert auth.login(right) == "ok"
    assert [auth.login("000001") for _ in range(4)] == ["wrong"] * 4


def test_idle_timeout_ends_the_login(tmp_path: Path) -> None:
    clock = FakeClock()
    auth = make_auth(tmp_path, clock)
    assert auth.login(auth.store.default_pin()) == "ok"
    clock.t += 599.0
    auth.touch()
    clock.t += 599.0
    assert auth.logged_in
    clock.t += 2.0
    assert not auth.logged_in
    with pytest.raises(AuthError, match="AUTH"):
        auth.require("VOL CAP SET")


def test_console_login_service_command_and_logout_on_port_close(tmp_path: Path) -> None:
    clock = FakeClock()
    auth = make_auth(tmp_path, clock)
    port = MemoryPort()
    server = ConsoleServer(lambda: port, FakeBox(), auth, clock, serial="T1")
    pin = auth.store.default_pin()
    port.inbox += f"PIN SET 975310 #a\r\nAUTH {pin} #b\r\nPIN SET 975310 #c\r\n".encode()
    lines = run_server(server, port, 3)
    assert [x for x in lines if not x.startswith("!")][-4:] == [
        "ERR 5 PIN SET needs the service PIN: AUTH <PIN> first #a",
        "login=service idle_logout_s=600.0",
        "OK #b",
        "OK #c",
    ]
    assert auth.logged_in and auth.store.verify("975310")
    port.broken = True
    server.poll(1.0)
    assert not server.is_open and port.closed
    assert not auth.logged_in


def test_console_lockout_answers_err_9(tmp_path: Path) -> None:
    clock = FakeClock()
    auth = make_auth(tmp_path, clock)
    port = MemoryPort()
    server = ConsoleServer(lambda: port, FakeBox(), auth, clock, serial="T1")
    port.inbox += b"".join(b"AUTH 00000%d #w%d\r\n" % (i, i) for i in range(6))
    finals = [x for x in run_server(server, port, 6) if x.startswith(("OK", "ERR"))]
    assert finals[:4] == [
        f"ERR 5 wrong PIN ({4 - i} tries left before a lockout) #w{i}" for i in range(4)
    ]
    assert finals[4] == "ERR 9 wrong PIN; AUTH is locked for 60 s #w4"
    assert finals[5] == "ERR 9 AUTH is locked for 60 s more #w5"


def test_pin_never_in_logs_or_replies(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    clock = FakeClock()
    auth = make_auth(tmp_path, clock)
    port = MemoryPort()
    server = ConsoleServer(lambda: port, FakeBox(), auth, clock, serial="T1")
    pin = auth.store.default_pin()
    secrets_typed = [pin, "314159", "271828", "161803"]
    port.inbox += (
        f"ECHO ON\rAUTH 314159\rAUTH {pin}\rPIN SET 271828\rAUTH 161803 extra\r"
        "PIN SET 161803 x\rERR?\rLOGOUT\r"
    ).encode()
    sent = "\n".join(run_server(server, port, 8))
    for secret in secrets_typed:
        assert secret not in caplog.text
        assert secret not in sent
    assert "AUTH ******" in sent  # echo shows stars
    assert "console service login" in caplog.text  # the log does say what happened


def pin_cli(*args: str, user: list[str] | None = None) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, PYTHONPATH=str(Path(__file__).resolve().parent.parent))
    return subprocess.run(
        [*(user or []), sys.executable, "-m", "device", "pin", *args],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
    )


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root")
def test_pin_show_default_and_reset_as_root(tmp_path: Path) -> None:
    from device.console.identity import read_identity
    from device.store.sessions import Store

    Store(tmp_path / "sessions.db").close()  # a box's state directory
    r = pin_cli("show-default", "--state-dir", str(tmp_path))
    assert r.returncode == 0, r.stderr
    store = PinStore(tmp_path, read_identity().secret_id, scrypt_n=FAST_N)
    assert r.stdout.splitlines() == [f"default service PIN: {store.default_pin()}", "in use: yes"]
    store.set_pin("975310")
    r = pin_cli("show-default", "--state-dir", str(tmp_path))
    assert r.stdout.splitlines()[1].startswith("in use: no (changed with PIN SET")
    assert pin_cli("reset-default", "--state-dir", str(tmp_path)).returncode == 0
    assert store.is_default()


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root")
def test_files_root_writes_belong_to_the_service_user_before_they_appear(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A power cut right after the rename must not leave a root-owned PIN file that the
    # service cannot read (seen in the lab): the owner is set on the temporary file.
    state = tmp_path / "state"
    state.mkdir()
    os.chown(state, 4321, 4321)
    calls: list[tuple[str, object]] = []
    real_fchown, real_replace, real_link = os.fchown, os.replace, os.link

    def fchown(fd: int, uid: int, gid: int) -> None:
        calls.append(("fchown", uid))
        real_fchown(fd, uid, gid)

    def replace(src: object, dst: object) -> None:
        calls.append(("replace", Path(str(dst)).name))
        real_replace(src, dst)  # type: ignore[arg-type]

    def link(src: object, dst: object) -> None:
        calls.append(("link", Path(str(dst)).name))
        real_link(src, dst)  # type: ignore[arg-type]

    monkeypatch.setattr(os, "fchown", fchown)
    monkeypatch.setattr(os, "replace", replace)
    monkeypatch.setattr(os, "link", link)
    store = PinStore(state, "machine:abc", scrypt_n=FAST_N)
    assert store.is_default()
    assert calls == [
        ("fchown", 4321),
        ("link", SECRET_FILE),
        ("fchown", 4321),
        ("replace", PIN_FILE),
    ]
    for name in (PIN_FILE, SECRET_FILE):
        st = (state / name).stat()
        assert (st.st_uid, st.st_gid, stat.S_IMODE(st.st_mode)) == (4321, 4321, 0o600)


SETPRIV = shutil.which("setpriv")


@pytest.mark.skipif(os.geteuid() != 0 or SETPRIV is None, reason="needs root and setpriv")
def test_pin_show_default_refuses_other_users(tmp_path: Path) -> None:
    nobody = [str(SETPRIV), "--reuid=65534", "--regid=65534", "--clear-groups"]
    r = pin_cli("show-default", "--state-dir", str(tmp_path), user=nobody)
    assert r.returncode == 1 and r.stdout == ""
    assert "must be run as root (sudo bedside pin show-default)" in r.stderr
    assert not (tmp_path / SECRET_FILE).exists()


def test_idle_logout_is_announced_once(tmp_path: Path) -> None:
    clock = FakeClock()
    auth = make_auth(tmp_path, clock)
    port = MemoryPort()
    server = ConsoleServer(lambda: port, FakeBox(), auth, clock, serial="T1")
    port.inbox += f"AUTH {auth.store.default_pin()}\r\n".encode()
    run_server(server, port, 1)
    clock.t += 599.0
    server.poll(10.0)
    assert "!EVENT logout" not in port.sent.decode()
    clock.t += 2.0
    server.poll(10.02)
    server.poll(10.04)
    assert port.sent.decode().count("!EVENT logout reason=idle\r\n") == 1
    port.inbox += b"VOL CAP SET -10\r\n"
    assert run_server(server, port, 2)[-1].startswith("ERR 5 VOL CAP SET needs the service PIN")


def test_mistyped_auth_and_pin_lines_never_quote_the_pin(tmp_path: Path) -> None:
    auth = make_auth(tmp_path)
    port = MemoryPort()
    server = ConsoleServer(lambda: port, FakeBox(), auth, FakeClock(), serial="T1")
    port.inbox += b'AUTHH 314159\rPIN SETT 314159\rPIN 314159\rAUTH "314159\rAUTH 31"4159\r'
    finals = [x for x in run_server(server, port, 5) if x.startswith("ERR")]
    assert finals == [
        "ERR 1 unknown command 'AUTHH'; HELP lists the commands",
        "ERR 1 unknown command 'PIN'; PIN has: PIN SET",
        "ERR 1 unknown command 'PIN'; PIN has: PIN SET",
        "ERR 2 unclosed double quote",
        "ERR 2 a quote inside a word: quote whole values",
    ]


# --- the PIN secret (issue 16 item 13) ------------------------------------------------------


def test_an_empty_or_damaged_secret_is_an_error_never_a_key(tmp_path: Path) -> None:
    auth = make_auth(tmp_path)
    for content in ("", "\n", "abcd\n", "zz" * 32 + "\n"):
        (tmp_path / SECRET_FILE).write_text(content)
        with pytest.raises(StorageError, match=r"empty or damaged.*reset-default"):
            auth.store.default_pin()
        # AUTH with what HMAC(empty key, identity) would give opens nothing: ERR 7.
        with pytest.raises(StorageError):
            auth.login("12345678")
        assert not auth.logged_in
    with pytest.raises(ValueError, match="0 bytes"):
        derive_default_pin("machine:abc", b"")
    (tmp_path / SECRET_FILE).unlink()
    assert len(auth.store.default_pin()) == 8  # a missing secret is made afresh, whole
    assert len(bytes.fromhex((tmp_path / SECRET_FILE).read_text())) == 32


def test_an_unreadable_secret_is_an_error(tmp_path: Path) -> None:
    (tmp_path / SECRET_FILE).mkdir()  # reading it fails (EISDIR), as a bad card would
    with pytest.raises(StorageError, match="cannot read the PIN secret"):
        make_auth(tmp_path).store.default_pin()


def test_a_full_disk_at_the_first_auth_leaves_no_empty_secret(tmp_path: Path) -> None:
    from tests.support.fs import tiny_tmpfs

    with tiny_tmpfs(tmp_path / "tiny", "64k") as disk:
        filler = disk / "filler"
        fd = os.open(filler, os.O_WRONLY | os.O_CREAT, 0o644)
        with pytest.raises(OSError, match="No space"):
            while True:
                os.write(fd, b"\0" * 512)
        os.close(fd)
        auth = make_auth(disk)
        with pytest.raises(StorageError, match="cannot"):
            auth.login("12345678")
        assert not (disk / SECRET_FILE).exists()  # was a 0-byte secret: HMAC(empty, id)
        assert [p.name for p in disk.iterdir()] == ["filler"]  # no temp file left either
        filler.unlink()
        pin = auth.store.default_pin()  # room again: a real secret, the same on every read
        assert auth.login(pin) == "ok" and auth.store.default_pin() == pin


@pytest.mark.parametrize("pin", ["123456", "987654", "0123456789", "890123", "210987"])
def test_pin_set_refuses_sequences(pin: str) -> None:
    with pytest.raises(ValueError, match="ascending or descending"):
        check_new_pin(pin)


@pytest.mark.parametrize("pin", ["975310", "123457", "112233", "135790"])
def test_pin_set_takes_pins_that_are_not_sequences(pin: str) -> None:
    assert check_new_pin(pin) == pin


# --- the lockout across a restart (issue 16 item 12) ----------------------------------------


def test_the_lockout_survives_a_restart(tmp_path: Path) -> None:
    wall = [1_000_000.0]
    clock = FakeClock()

    def auth_now() -> PinAuth:
        return PinAuth(
            tmp_path, clock=clock, identity="machine:abc", scrypt_n=FAST_N, wall=lambda: wall[0]
        )

    auth = auth_now()
    right = auth.store.default_pin()
    assert [auth.login("000001") for _ in range(5)][-1] == "locked"
    wall[0] += 10
    clock.t = 5.0  # the box restarts: a new boot, a new monotonic clock
    auth = auth_now()
    assert auth.login(right) == "locked" and 49 < auth.locked_for() <= 50
    wall[0] += 50
    clock.t += 50
    assert auth.login(right) == "ok"
    # Four wrong PINs, a restart, one more: locked (the count is kept too).
    auth.logout()
    for _ in range(4):
        auth.login("000001")
    auth = auth_now()
    assert auth.tries_left == 1 and auth.login("000001") == "locked"
    assert stat.S_IMODE(os.stat(tmp_path / "console_auth.json").st_mode) == 0o600


def test_a_damaged_lock_file_locks_rather_than_opens(tmp_path: Path) -> None:
    (tmp_path / "console_auth.json").write_text("{garbage")
    auth = make_auth(tmp_path)
    assert auth.locked_for() > 0
