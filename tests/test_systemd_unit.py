"""The systemd unit: offline checks, and the real unit under a private ``systemd --user``.

Offline: ``systemd-analyze verify`` prints nothing and ``systemd-analyze security`` rates
the unit at most 1.5.

Live (needs root and /lib/systemd/systemd, as CI has): a private user manager runs in its
own mount namespace (the "booted with systemd" marker /run/systemd/system exists only
there, so the host is untouched). A test copy of the unit runs the real box
(``bedside run --service --sim --audio null``) with the same hardening, except what a user
manager cannot do (switch user, groups that Debian lacks), with these adjustments: the
interpreter is /usr/bin/python3 with the repository on PYTHONPATH (the venv's interpreter
lives under /root, which ProtectHome= hides), output goes to a file (no journald here),
real-time scheduling is dropped where the host refuses it, and WatchdogSec, RestartSec and
TimeoutStopSec are shortened so the test is quick. It proves READY=1 and STATUS=, the
watchdog kill of a deliberately hung loop (``tests/support/hang_box.py S``, a test-only
wrapper), the
restart after it, and the restart after ``kill -9``.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
UNIT = REPO / "systemd" / "bedside.service"
SYSTEMD = Path("/lib/systemd/systemd")
PYTHON = Path("/usr/bin/python3")
#: What the test copy of the unit runs: the real box, simulated sensor, no sound card.
EXEC = f"{PYTHON} -m device run --service --sim --audio null"


def analyze(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["systemd-analyze", *args], capture_output=True, text=True, timeout=60, check=False
    )


needs_analyze = pytest.mark.skipif(
    shutil.which("systemd-analyze") is None, reason="systemd-analyze is not installed"
)


def offline_copy(tmp_path: Path) -> Path:
    """The unit with ExecStart pointing at a file that exists here (verify checks it)."""
    exe = tmp_path / "opt" / "bedside" / "venv" / "bin" / "bedside"
    exe.parent.mkdir(parents=True)
    exe.write_text("#!/bin/sh\nexit 0\n")
    exe.chmod(0o755)
    text = UNIT.read_text().replace("/opt/bedside/venv/bin/bedside", str(exe))
    copy = tmp_path / "bedside.service"
    copy.write_text(text)
    return copy


@needs_analyze
def test_unit_verifies_silently(tmp_path: Path):
    r = analyze("verify", str(offline_copy(tmp_path)))
    assert r.returncode == 0
    assert r.stdout + r.stderr == ""


@needs_analyze
def test_verify_catches_a_typo(tmp_path: Path):
    """The gate can fail: the same check on a broken copy prints the problem."""
    copy = offline_copy(tmp_path)
    copy.write_text(copy.read_text().replace("NoNewPrivileges=yes", "NoNewPrivilege=yes"))
    r = analyze("verify", str(copy))
    assert "Unknown key" in r.stdout + r.stderr


@needs_analyze
def test_security_exposure_at_most_1_5(tmp_path: Path):
    r = analyze("security", "--offline=true", str(offline_copy(tmp_path)))
    m = re.search(r"Overall exposure level for \S+: (\d+\.\d)", r.stdout + r.stderr)
    assert m, r.stdout + r.stderr
    assert float(m.group(1)) <= 1.5, r.stdout


def test_unit_contract():
    """The settings the product relies on are present (a reviewer's checklist as code)."""
    keys: dict[str, list[str]] = {}
    for line in UNIT.read_text().splitlines():
        if "=" in line and not line.startswith("#"):
            k, _, v = line.partition("=")
            keys.setdefault(k.strip(), []).append(v.strip())
    assert keys["Type"] == ["notify"] and keys["NotifyAccess"] == ["main"]
    assert keys["ExecStart"] == ["/opt/bedside/venv/bin/bedside run --service"]
    assert float(keys["WatchdogSec"][0]) > 0
    # Never give up on a box that is supposed to play (issue 16 item 0).
    assert keys["Restart"] == ["always"]
    assert keys["StartLimitIntervalSec"] == ["0"] and "StartLimitBurst" not in keys
    assert float(keys["RestartSec"][0]) > 0
    # lgpio's notify pipes need a writable directory: $LG_WD, the working directory.
    assert keys["RuntimeDirectory"] == ["bedside"]
    assert keys["WorkingDirectory"] == ["/run/bedside"]
    assert "LG_WD=/run/bedside" in keys["Environment"]
    assert keys["User"] == ["bedside"]
    assert set(keys["SupplementaryGroups"][0].split()) == {"audio", "i2c", "gpio", "dialout"}
    assert keys["StateDirectory"] == ["bedside"] and keys["ConfigurationDirectory"] == ["bedside"]
    assert keys["RestrictAddressFamilies"] == ["AF_UNIX"] and keys["IPAddressDeny"] == ["any"]
    assert keys["PrivateNetwork"] == ["yes"] and keys["DevicePolicy"] == ["closed"]
    allowed = " ".join(keys["DeviceAllow"])
    for dev in ("i2c", "gpiochip", "alsa", "ttyAMA"):
        assert dev in allowed
    assert keys["CapabilityBoundingSet"] == [""]
    assert "PrivateUsers" not in keys  # would hide the supplementary groups from devices
    assert int(keys["Nice"][0]) < 0


# --- live, under a private systemd --user manager -------------------------------------------

START_MANAGER = """#!/bin/sh
set -e
mount -t tmpfs tmpfs /run/systemd
mkdir -p /run/systemd/system /run/systemd/inaccessible
cd /run/systemd/inaccessible
mkdir dir; : > reg; mkfifo fifo; mknod chr c 0 0; mknod blk b 0 0
{python} -c 'import socket; s=socket.socket(socket.AF_UNIX); s.bind("sock")'
chmod 0000 dir reg fifo chr blk sock
exec env -i PATH=/usr/bin:/bin HOME={home} XDG_RUNTIME_DIR={run} {systemd} --user
"""


class Manager:
    """A private ``systemd --user`` instance and helpers to drive it."""

    def __init__(self, base: Path) -> None:
        self.base = base
        self.home = base / "home"
        self.run = base / "run"
        self.out = base / "out"
        self.units = self.home / ".config" / "systemd" / "user"
        for d in (self.run, self.out, self.units):
            d.mkdir(parents=True, exist_ok=True)
        self.run.chmod(0o700)
        script = base / "start-manager.sh"
        script.write_text(
            START_MANAGER.format(python=PYTHON, home=self.home, run=self.run, systemd=SYSTEMD)
        )
        script.chmod(0o755)
        self.log = open(base / "systemd.log", "wb")  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen(
            ["unshare", "--mount", "--propagation", "private", str(script)],
            stdout=self.log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        self.env = dict(os.environ, XDG_RUNTIME_DIR=str(self.run), HOME=str(self.home))
        try:
            self._wait_up()
        except RuntimeError:
            self.stop()
            raise

    def _wait_up(self) -> None:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"user manager exited: {self.manager_log()}")
            if self.systemctl("show", "-p", "SystemState", "--value").stdout.strip() in (
                "running",
                "degraded",
            ):
                return
            time.sleep(0.1)
        raise RuntimeError(f"user manager did not come up: {self.manager_log()}")

    def manager_log(self) -> str:
        return (self.base / "systemd.log").read_text(errors="replace")[-3000:]

    def systemctl(self, *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            ["systemctl", "--user", *args],
            env=self.env,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )

    def show(self, unit: str, *props: str) -> dict[str, str]:
        r = self.systemctl("show", unit, "-p", ",".join(props))
        return dict(line.split("=", 1) for line in r.stdout.splitlines() if "=" in line)

    def wait_for(self, unit: str, what: str, check, timeout: float) -> dict[str, str]:
        props = ("ActiveState", "SubState", "MainPID", "NRestarts", "StatusText", "Result")
        deadline = time.monotonic() + timeout
        state: dict[str, str] = {}
        while time.monotonic() < deadline:
            state = self.show(unit, *props)
            if check(state):
                return state
            time.sleep(0.1)
        raise AssertionError(f"{unit}: {what} not seen within {timeout} s; last state {state}")

    def stop(self) -> None:
        """Stop every unit and the manager; kill its process group if it will not go."""
        try:
            self.systemctl("exit", timeout=20)
            self.proc.wait(timeout=20)
        except (subprocess.TimeoutExpired, OSError):
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=10)
        finally:
            self.log.close()


def live_unavailable() -> str | None:
    if os.geteuid() != 0:
        return "needs root (mount namespace for the private systemd --user)"
    if not SYSTEMD.exists():
        return f"{SYSTEMD} is missing"
    if shutil.which("unshare") is None or shutil.which("systemctl") is None:
        return "unshare or systemctl is missing"
    if not PYTHON.exists():
        return f"{PYTHON} is missing"
    return None


@pytest.fixture(scope="module")
def manager() -> Iterator[Manager]:
    reason = live_unavailable()
    if reason:
        pytest.skip(reason)
    # Not under /tmp or /var/tmp (PrivateTmp= hides them) nor /run (ProtectKernelTunables=
    # and friends give the service a fresh /run when it is not a mount point).
    base = Path("/var/lib") / f"bedside-systest-{os.getpid()}"
    shutil.rmtree(base, ignore_errors=True)
    base.mkdir(parents=True)
    try:
        m = Manager(base)
    except RuntimeError as exc:
        shutil.rmtree(base, ignore_errors=True)
        pytest.fail(str(exc))
    yield m
    m.stop()
    shutil.rmtree(base, ignore_errors=True)


def site_packages() -> str:
    import numpy

    return str(Path(numpy.__file__).resolve().parents[1])


def unit_for_test(
    manager: Manager, name: str, fault: str = "", config: bool = False, exec_start: str = ""
) -> str:
    """The shipped unit adapted to the private manager (see the module docstring)."""
    out = manager.out / f"{name}.log"
    existing = {g for g in ("audio", "i2c", "gpio", "dialout") if _group_exists(g)}
    rt_allowed = realtime_allowed()
    lines = []
    for line in UNIT.read_text().splitlines():
        key = line.split("=", 1)[0]
        if key in ("User", "Group"):
            continue  # a user manager runs its units as its own user
        if key.startswith("CPUScheduling") and not rt_allowed:
            continue  # this host refuses real-time scheduling (exit 214/SETSCHEDULER)
        if key == "SupplementaryGroups":
            line = "SupplementaryGroups=" + " ".join(sorted(existing))
        elif key == "ExecStart":
            line = f"ExecStart={exec_start or EXEC}"
            if fault:
                # The fault comes from a test-only wrapper; the product has no fault switch.
                seconds = fault.removeprefix("hang-after:")
                line = (
                    f"ExecStart={PYTHON} {REPO / 'tests' / 'support' / 'hang_box.py'} {seconds} "
                    + (EXEC.split(" -m device ", 1)[1])
                )
        elif key == "WorkingDirectory":
            line = "WorkingDirectory=%t/bedside"  # RuntimeDirectory= of a user manager
        elif key == "WatchdogSec":
            line = "WatchdogSec=3"
        elif key == "RestartSec":
            line = "RestartSec=0.5"
        elif key == "TimeoutStopSec":
            line = "TimeoutStopSec=5"  # the 2 s stop fade fits; a hung loop goes sooner
        lines.append(line)
        if line.startswith("[Service]"):
            lines += [
                f"Environment=PYTHONPATH={REPO}:{site_packages()}",
                # The user manager's ConfigurationDirectory= is ~/.config/bedside (%E).
                *(["Environment=BEDSIDE_CONFIG=%E/bedside/config.toml"] if config else []),
                f"StandardOutput=append:{out}",
                f"StandardError=append:{out}",
                f"BindPaths={manager.out}",
                # The notify socket, under /var/lib like the rest (TemporaryFileSystem=/var).
                f"BindPaths={manager.run}",
                f"BindReadOnlyPaths={REPO}",
                # Why each run ended, as systemd saw it (there is no journal here).
                f'ExecStopPost=/bin/sh -c "echo SERVICE_RESULT=$SERVICE_RESULT '
                f'EXIT_STATUS=$EXIT_STATUS >> {manager.out}/{name}.results"',
            ]
    return "\n".join(lines) + "\n"


def realtime_allowed() -> bool:
    """True when this host lets a process take SCHED_FIFO (containers often refuse)."""
    chrt = shutil.which("chrt")
    if chrt is None:
        return False
    r = subprocess.run([chrt, "-f", "10", "/bin/true"], capture_output=True, check=False)
    return r.returncode == 0


def _group_exists(name: str) -> bool:
    import grp

    try:
        grp.getgrnam(name)
    except KeyError:
        return False
    return True


def install(
    manager: Manager, name: str, fault: str = "", config: bool = False, exec_start: str = ""
) -> str:
    unit = f"{name}.service"
    (manager.units / unit).write_text(unit_for_test(manager, name, fault, config, exec_start))
    r = manager.systemctl("daemon-reload")
    assert r.returncode == 0, r.stderr
    return unit


def results(manager: Manager, name: str) -> list[str]:
    p = manager.out / f"{name}.results"
    return p.read_text().splitlines() if p.exists() else []


def service_log(manager: Manager, name: str) -> str:
    p = manager.out / f"{name}.log"
    return p.read_text(errors="replace")[-4000:] if p.exists() else "(no output)"


def test_live_ready_status_and_kill_9_restart(manager: Manager):
    unit = install(manager, "bedside-live")
    t0 = time.monotonic()
    r = manager.systemctl("start", unit, timeout=60)  # returns once READY=1 arrived
    assert r.returncode == 0, r.stderr + service_log(manager, "bedside-live")
    state = manager.show(unit, "ActiveState", "SubState", "MainPID", "StatusText", "NRestarts")
    assert state["ActiveState"] == "active" and state["SubState"] == "running", state
    assert time.monotonic() - t0 < 30
    # STATUS= reaches the manager and changes while the box plays.
    manager.wait_for(unit, "a STATUS= text", lambda s: s.get("StatusText"), 10)
    first = manager.show(unit, "StatusText")["StatusText"]
    manager.wait_for(unit, "a new STATUS=", lambda s: s["StatusText"] != first, 10)
    # The hardening holds inside: no network, no new privileges, read-only system.
    pid = int(state["MainPID"])
    status = Path(f"/proc/{pid}/status").read_text()
    assert re.search(r"NoNewPrivs:\s+1", status)
    assert re.search(r"CapBnd:\s+0+\n", status)
    # kill -9 of the process: systemd restarts it (Restart=on-failure).
    os.kill(pid, signal.SIGKILL)
    after = manager.wait_for(
        unit,
        "a restart after kill -9",
        lambda s: s["NRestarts"] == "1" and s["SubState"] == "running" and s["MainPID"] != "0",
        30,
    )
    assert int(after["MainPID"]) != pid
    assert results(manager, "bedside-live") == ["SERVICE_RESULT=signal EXIT_STATUS=KILL"]
    r = manager.systemctl("stop", unit, timeout=30)
    assert r.returncode == 0
    # SIGTERM: the box fades out and exits 0 by itself (not killed at the stop timeout).
    assert results(manager, "bedside-live")[-1] == "SERVICE_RESULT=success EXIT_STATUS=0"


def test_live_watchdog_kills_a_hung_loop_and_restarts(manager: Manager):
    unit = install(manager, "bedside-hang", fault="hang-after:2")
    r = manager.systemctl("start", unit, timeout=60)
    assert r.returncode == 0, r.stderr + service_log(manager, "bedside-hang")
    pid = manager.show(unit, "MainPID")["MainPID"]
    # Hangs 2 s after start; WatchdogSec=3 later systemd aborts it and starts a new one.
    after = manager.wait_for(
        unit,
        "a watchdog restart",
        lambda s: s["NRestarts"] not in ("", "0") and s["SubState"] == "running",
        30,
    )
    assert after["MainPID"] != pid
    assert results(manager, "bedside-hang")[0] == "SERVICE_RESULT=watchdog EXIT_STATUS=ABRT"
    assert "fault injection" in service_log(manager, "bedside-hang")
    # The new instance hangs too (same fault switch): stop it without waiting for a timeout.
    manager.systemctl("stop", "--no-block", unit)
    manager.systemctl("kill", "--signal=SIGKILL", unit)
    manager.wait_for(unit, "the stop", lambda s: s["ActiveState"] in ("inactive", "failed"), 15)


def test_live_crash_loop_never_leaves_the_unit_failed(manager: Manager):
    # A process that dies at every start: far more than the old limit of five starts, and the
    # unit is still trying (activating/auto-restart), never "failed" and silent for good.
    unit = install(manager, "bedside-crash", exec_start="/bin/sh -c 'pwd >&2; exit 3'")
    manager.systemctl("start", "--no-block", unit)
    state = manager.wait_for(unit, "eight restarts", lambda s: int(s["NRestarts"] or 0) >= 8, 60)
    assert state["ActiveState"] != "failed", state
    assert results(manager, "bedside-crash")[0] == "SERVICE_RESULT=exit-code EXIT_STATUS=3"
    # It ran in its runtime directory (where lgpio makes its pipes).
    assert service_log(manager, "bedside-crash").splitlines()[0].endswith("/bedside")
    manager.systemctl("stop", unit, timeout=30)


def test_live_broken_config_falls_back_to_defaults_and_plays(manager: Manager):
    conf = manager.home / ".config" / "bedside"
    conf.mkdir(parents=True, exist_ok=True)
    (conf / "config.toml").write_text("[audio]\nvolume_db = 12.0\n")  # above the 0 dB limit
    unit = install(manager, "bedside-badconf", config=True)
    r = manager.systemctl("start", unit, timeout=60)
    assert r.returncode == 0, r.stderr + service_log(manager, "bedside-badconf")
    state = manager.show(unit, "ActiveState", "SubState")
    assert state == {"ActiveState": "active", "SubState": "running"}
    log = service_log(manager, "bedside-badconf")
    assert "configuration refused" in log and "audio.volume_db" in log, log
    manager.wait_for(unit, "a playing STATUS=", lambda s: "playing" in s["StatusText"], 10)
    manager.systemctl("stop", unit, timeout=30)
    assert results(manager, "bedside-badconf") == ["SERVICE_RESULT=success EXIT_STATUS=0"], (
        service_log(manager, "bedside-badconf") + manager.manager_log()
    )


if __name__ == "__main__":
    sys.exit(pytest.main([__file__, "-v"]))
