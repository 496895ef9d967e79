"""``bedside profile``, the console's ``PROFILE?`` and the report's resonance panel."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from device.box.api import OffLoop
from device.cli import main
from device.cli.report_resonance import draw_resonance_panel, resonance_steps
from device.config import Config
from device.console.commands import Console
from device.exc import StorageError
from device.store.sessions import Store
from device.therapy.resonance import ResonanceEstimate, SessionMeasurements, StepResult
from tests.support.console_doubles import answer


def learned(profile: str) -> ResonanceEstimate:
    est = ResonanceEstimate(profile)
    steps = tuple(
        StepResult(p, p + 0.3, s, 100.0, 0.0, 0.9, 6) for p, s in [(6.0, 8), (5.5, 10), (5.0, 9)]
    )
    est.update(SessionMeasurements("assess", steps))
    return est


def store_with(tmp_path: Path, profile: str = "default") -> Path:
    with Store(tmp_path / "sessions.db") as store:
        learned(profile).save(store)
        store.flush()
    return tmp_path


def test_bedside_profile_json(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    state = store_with(tmp_path)
    assert main(["profile", "--state-dir", str(state), "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["profile"] == "default" and out["sessions_measured"] == 1
    assert out["resonance_bpm"] == pytest.approx(5.8, abs=0.1)
    assert 0.0 < out["resonance_confidence"] < 0.6 and out["next_session"] == "assess"


def test_bedside_profile_text_other_profile_and_no_store(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    state = store_with(tmp_path, "anna")
    assert main(["profile", "--state-dir", str(state), "--profile", "anna"]) == 0
    text = capsys.readouterr().out
    assert "profile" in text and "anna" in text and "resonance_bpm" in text
    # A profile the store never saw is a typo, not a blank profile (#23.12).
    assert main(["profile", "--state-dir", str(state), "--profile", "bob"]) == 2
    assert "no profile 'bob'" in capsys.readouterr().err
    assert main(["profile", "--state-dir", str(tmp_path / "none")]) == 1
    assert "no session store" in capsys.readouterr().err


@dataclass
class ProfileBox:
    """The Box's ``profile()``: the learned estimate read off the loop."""

    config: Any
    store: Any

    def profile(self) -> OffLoop[dict[str, object]]:
        if self.store is None:
            raise StorageError("no session store")
        store = self.store

        def work() -> dict[str, object]:
            with store.reader() as reader:
                return dict(ResonanceEstimate.load(reader, "default").summary())

        return OffLoop(work)


def test_console_profile_query(tmp_path: Path) -> None:
    with Store(tmp_path / "sessions.db") as store:
        learned("default").save(store)
        console = Console(ProfileBox(Config.defaults(), store), None, serial="T1")
        reply = answer(console, "PROFILE?")
        assert reply.code == 0
        (line,) = list(reply.lines)
        assert "profile=default" in line and "sessions_measured=1" in line
        assert "resonance_bpm=5.72" in line and "resonance_confidence=0.565" in line
        none = Console(ProfileBox(Config.defaults(), None), None, serial="T1")
        assert answer(none, "PROFILE?").code != 0
        assert answer(console, "PROFILE? x").code != 0


def test_report_panel_plots_the_measured_steps(tmp_path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    events = [
        {"kind": "section", "detail": "slow"},
        {"kind": "resonance", "detail": StepResult(6.5, 6.8, 7.0, 1, 0, 1, 6).detail()},
        {"kind": "resonance", "detail": "next rate 6/min"},
        {"kind": "resonance", "detail": StepResult(6.0, 6.3, 9.0, 1, 0, 1, 6).detail()},
    ]
    steps = resonance_steps(events)
    assert [s.paced_bpm for s in steps] == [6.5, 6.0]
    fig, (ax, empty) = plt.subplots(2, 1)
    draw_resonance_panel(ax, steps)
    draw_resonance_panel(empty, [])
    x, y = ax.lines[0].get_data()
    assert list(x) == [6.5, 6.0] and list(y) == [7.0, 9.0]
    fig.savefig(tmp_path / "panel.png")
    plt.close(fig)
    assert (tmp_path / "panel.png").stat().st_size > 1000
