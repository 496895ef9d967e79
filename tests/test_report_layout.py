"""The report's event labels: none overlaps another, none is cut off at the figure's edge."""

from __future__ import annotations

import pytest

from device.cli.report import build_report, layout_labels

SESSION = {"id": 3, "program": "wind-down", "mean_hr": 64.0}


def crowded_events() -> list[dict[str, object]]:
    events: list[dict[str, object]] = [
        {"t": 0.0, "kind": "session-start", "detail": "wind-down (configured program)"},
    ]
    # A burst of events a few seconds apart, as a restless listener makes them.
    for i in range(12):
        events.append(
            {"t": 300.0 + 4.0 * i, "kind": "rating", "detail": "skip" if i % 2 else "like"}
        )
    events += [
        {"t": 600.0, "kind": "section", "detail": "settle -> slow breathing, alpha to theta"},
        {"t": 602.0, "kind": "sensor", "detail": "contact lost (finger off)"},
        {"t": 1195.0, "kind": "stop", "detail": "end of program (fade complete)"},
        {"t": 1200.0, "kind": "session-end", "detail": "stop"},
    ]
    return events


def rows() -> list[dict[str, object]]:
    return [
        {
            "t": float(t),
            "hr": 70.0 - t / 100,
            "pacer": 6.0,
            "breathing": 6.5,
            "coherence": 0.5,
            "volume_db": -20.0,
        }
        for t in range(0, 1201, 5)
    ]


def test_labels_neither_overlap_nor_leave_the_figure():
    fig, labels = build_report(SESSION, rows(), crowded_events())
    try:
        fig.canvas.draw()
        renderer = fig.canvas.get_renderer()
        boxes = [t.get_window_extent(renderer) for t in labels]
        assert len(boxes) == len(crowded_events())
        page = fig.bbox
        for box in boxes:
            assert page.x0 <= box.x0 and box.x1 <= page.x1, box
            assert page.y0 <= box.y0 and box.y1 <= page.y1, box
        for i, a in enumerate(boxes):
            for b in boxes[i + 1 :]:
                assert not a.overlaps(b), (a, b)
        # The labels stay clear of the title and of the heart-rate panel.
        title = fig._suptitle.get_window_extent(renderer)
        hr_panel = fig.axes[1].get_window_extent(renderer)
        for box in boxes:
            assert not box.overlaps(title) and box.y0 >= hr_panel.y1
    finally:
        import matplotlib.pyplot as plt

        plt.close(fig)


def test_layout_lanes_are_greedy_and_clamped():
    # Three labels 100 px wide on a 1000 px axis of 0..10 (100 px per unit).
    placed = layout_labels([1.0, 1.5, 5.0, 9.9], [100, 100, 100, 100], (0.0, 10.0), 1000.0)
    assert placed[0] == (1.0, 0) and placed[1] == (1.5, 1)  # overlaps: next lane
    assert placed[2] == (5.0, 0)  # clear of the first: back in lane 0
    assert placed[3] == (pytest.approx(9.0), 0)  # would run past the right end: pulled in
