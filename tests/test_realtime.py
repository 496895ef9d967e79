"""Real-time priority through the unit's LimitRTPRIO: the box raises itself, never fails for it."""

from __future__ import annotations

import io
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from device.box.app import Box, RunOptions
from device.config import Config
from device.sched.realtime import current, raise_priority

REPO = Path(__file__).resolve().parents[1]
UNIT = REPO / "systemd" / "bedside.service"


def unit_keys() -> dict[str, list[str]]:
    keys: dict[str, list[str]] = {}
    for line in UNIT.read_text().splitlines():
        if "=" in line and not line.startswith("#"):
            k, _, v = line.partition("=")
            keys.setdefault(k.strip(), []).append(v.strip())
    return keys


def test_the_unit_grants_realtime_and_leaves_taking_it_to_the_box():
    keys = unit_keys()
    assert int(keys["LimitRTPRIO"][0]) >= 1
    assert keys["RestrictRealtime"] == ["no"]
    # systemd would fail the start (214/SETSCHEDULER) on a kernel that refuses it.
    assert not any(k.startswith("CPUScheduling") for k in keys)
    assert int(keys["Nice"][0]) < 0  # where real time is refused


def test_without_a_limit_nothing_is_asked():
    assert raise_priority(0) == current()


def rt_host() -> bool:
    chrt = shutil.which("chrt")
    if chrt is None:
        return False
    return subprocess.run([chrt, "-f", "10", "/bin/true"], capture_output=True).returncode == 0


CHILD = """
import json, os, resource, subprocess, sys, threading
from device.sched.realtime import raise_priority, current
try:
    resource.setrlimit(resource.RLIMIT_RTPRIO, (20, 20))  # as the unit's LimitRTPRIO=20
    got = raise_priority()
except ValueError:  # may take RT (CAP_SYS_NICE) but not raise its hard limit: pass it in
    got = raise_priority(20)
seen = {}
t = threading.Thread(target=lambda: seen.update(thread=current()))
t.start(); t.join()
code = "import os; from device.cli.music import lower_priority; lower_priority(); " \\
       "print(os.sched_getscheduler(0), os.getpriority(os.PRIO_PROCESS, 0))"
child = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
print(json.dumps({"got": got, "thread": seen["thread"], "scan": child.stdout.split()}))
"""


@pytest.mark.skipif(os.geteuid() != 0 or not rt_host(), reason="needs root on a host allowing RT")
def test_under_the_limit_the_loop_and_its_threads_run_fifo_and_the_scan_child_idle():
    env = dict(os.environ, PYTHONPATH=str(REPO))
    out = subprocess.run(
        [sys.executable, "-c", CHILD], capture_output=True, text=True, env=env, timeout=60
    )
    assert out.returncode == 0, out.stderr
    r = json.loads(out.stdout.splitlines()[-1])
    assert r["got"] == "fifo:20"
    assert r["thread"] == "fifo:20"  # threads started after it inherit the loop's priority
    policy, nice = map(int, r["scan"])
    assert policy == os.SCHED_IDLE and nice == 19  # the scan child still goes idle


def test_a_refusal_is_reported_not_raised(monkeypatch, caplog):
    def refuse(*args):
        raise PermissionError(1, "Operation not permitted")

    monkeypatch.setattr(os, "sched_setscheduler", refuse)
    assert raise_priority(20).startswith("other (refused")
    assert "real-time priority 20 refused" in caplog.text


def test_the_status_says_how_the_loop_is_scheduled(tmp_path):
    opts = RunOptions(sim=True, audio="null", speed=None, status="none", state_dir=str(tmp_path))
    with Box(Config.defaults(), opts, status_out=io.StringIO()) as box:
        assert box.status()["sched"] == current()
