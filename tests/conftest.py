"""Shared test fixtures: the CLI command and environment, ALSA capture (helpers: tests/support/)."""

from __future__ import annotations

import gc
import logging
import os
import sys
import textwrap
from pathlib import Path

import pytest
from hypothesis import settings

from tests.support.paths import REPO

#: Property tests: in CI (``CI`` set, as CI services do) the examples are derandomised
#: (a fixed seed derived from each test) and no example database is kept, so a run is
#: repeatable; elsewhere hypothesis explores freely and remembers what failed.
#: ``HYPOTHESIS_PROFILE=ci`` selects the CI profile by hand.
settings.register_profile("ci", derandomize=True, database=None, print_blob=True)
settings.register_profile("dev")
settings.load_profile(
    os.environ.get("HYPOTHESIS_PROFILE") or ("ci" if os.environ.get("CI") else "dev")
)


@pytest.fixture
def bedside_cmd() -> list[str]:
    """The command that runs the ``bedside`` CLI of this checkout."""
    return [sys.executable, "-m", "device"]


@pytest.fixture
def cli_env(tmp_path: Path) -> dict[str, str]:
    """Environment for CLI subprocesses: no system config, state in a temp dir."""
    env = dict(os.environ)
    env.pop("BEDSIDE_CONFIG", None)
    env.pop("NOTIFY_SOCKET", None)
    env.pop("JOURNAL_STREAM", None)
    env["XDG_STATE_HOME"] = str(tmp_path / "xdg-state")
    env["PYTHONPATH"] = str(REPO) + os.pathsep + env.get("PYTHONPATH", "")
    return env


ALSA_CONF = textwrap.dedent(
    """
    </usr/share/alsa/alsa.conf>
    pcm.!default {
        type file
        slave.pcm "null"
        file { @func getenv vars [ BEDSIDE_CAPTURE ] default "/dev/null" }
        format "raw"
    }
    pcm.bedsidecard {
        type file
        slave.pcm "null"
        file { @func getenv vars [ BEDSIDE_CAPTURE ] default "/dev/null" }
        format "raw"
    }
    """
)


@pytest.fixture
def alsa_capture(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Route ALSA's default device (PortAudio's default output) into a raw file.

    Set in this process's environment, so a box started from the test inherits it.
    """
    pytest.importorskip("pyaudio")
    conf = tmp_path / "asound.conf"
    conf.write_text(ALSA_CONF)
    out = tmp_path / "played.raw"
    monkeypatch.setenv("ALSA_CONFIG_PATH", str(conf))
    monkeypatch.setenv("BEDSIDE_CAPTURE", str(out))
    return out


@pytest.fixture(autouse=True)
def _garbage_collector_as_found():
    """Hand the garbage collector back as the test found it.

    A box that runs disables automatic collection and freezes what start-up made
    (``device.sched.collector``) and gives both back when it stops; a test that builds a box
    and drops it without stopping it would leave collection off for every later test, and the
    allocation tests then count garbage no collector took.
    """
    enabled, frozen = gc.isenabled(), gc.get_freeze_count()
    yield
    if gc.get_freeze_count() > frozen:
        gc.unfreeze()
    if enabled and not gc.isenabled():
        gc.enable()


@pytest.fixture(autouse=True)
def _root_logger_as_found():
    """Hand the root logger back as the test found it (its handlers and level).

    A test that runs the box's ``main()`` in-process installs the box's stream handler on
    pytest's captured stderr, which pytest closes after that test; left in place, every
    later log line raises "I/O operation on closed file" and logging prints a traceback
    (CI, 2026-12-08: that traceback's allocations took the console flood test's traced peak
    past its 256 KiB bound).
    """
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    for h in [h for h in root.handlers if h not in handlers]:
        root.removeHandler(h)
    root.setLevel(level)
