"""Shared test fixtures: paths of the repo and of the shared data beside it."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
#: Real PPG recordings live in shared/ beside the repository (CI clones it there too).
PPG_DATA = Path(os.environ.get("BEDSIDE_PPG_DATA", REPO.parent / "shared" / "data" / "ppg"))


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
