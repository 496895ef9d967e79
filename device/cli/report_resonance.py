"""The session report's resonance panel: the heart's breathing swing against the paced rate.

The closed loop records each candidate rate it measured as a ``resonance`` event
(``step paced=... breathing=... swing=...``, see ``device.therapy.resonance.StepResult``);
:func:`resonance_steps` reads them back from the stored events and
:func:`draw_resonance_panel` plots them on a matplotlib axis (swing against paced rate, and
against the breathing rate the heart showed), the best rate marked.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from device.therapy.resonance import StepResult


def resonance_steps(events: Iterable[Mapping[str, Any]]) -> list[StepResult]:
    """The measured steps among a session's stored events, in the order they happened."""
    steps = []
    for ev in events:
        if ev.get("kind") == "resonance":
            step = StepResult.parse(str(ev.get("detail") or ""))
            if step is not None:
                steps.append(step)
    return steps


def draw_resonance_panel(ax: Any, steps: list[StepResult]) -> None:
    """Plot the swing (bpm) against the paced and the breathing rate (/min) on ``ax``."""
    ax.set_xlabel("rate (breaths/min)")
    ax.set_ylabel("HR swing (bpm)")
    ax.grid(alpha=0.3)
    if not steps:
        ax.text(
            0.5,
            0.5,
            "no resonance rates measured",
            ha="center",
            va="center",
            transform=ax.transAxes,
            fontsize=9,
        )
        return
    paced = [s.paced_bpm for s in steps]
    swing = [s.swing_bpm for s in steps]
    ax.plot(paced, swing, "o-", color="tab:blue", label="against the pacer")
    ax.plot(
        [s.breathing_bpm for s in steps],
        swing,
        "s--",
        color="tab:green",
        alpha=0.7,
        label="against breathing",
    )
    best = max(steps, key=lambda s: s.swing_bpm)
    ax.axvline(best.paced_bpm, color="tab:red", lw=0.8, ls=":")
    ax.annotate(
        f"best {best.paced_bpm:g}/min",
        (best.paced_bpm, best.swing_bpm),
        textcoords="offset points",
        xytext=(4, 4),
        fontsize=8,
    )
    ax.invert_xaxis()  # the session steps down: read left to right in time
    ax.legend(loc="lower right", fontsize=8)
