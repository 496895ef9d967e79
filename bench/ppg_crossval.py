"""Leave-one-recording-out cross-validation of the beat detector's tuned constants.

The constants of :class:`device.heart.beats.Tuning` were set by looking at recordings; every
other constant of the detector comes from physiology, the latency contract or a published
method (docs/heart.md lists each with its origin). Scoring the product's defaults on the very
recordings they were set on flatters them, so this module asks what the detector would score
on a recording nobody tuned it on:

for each recording R (BIDMC 01-03 and the 21 Welltory subjects; R at every rate is one fold),
pick from :data:`GRID` the tuning that scores best on all the *other* recordings (native rate
and 25 Hz, both data sets), then score R with that tuning. The figures over all held-out R are
the cross-validated ones; printed beside the plain figures (the product's defaults scored on
all recordings) with the gap between them. The grid brackets each default by about +-30 %
(+-1.5 Hz for the corner), so the gap measures how much the defaults depend on the data.

Training objective per recording and rate: HR MAE (bpm; 30 when no window has an estimate)
+ 20 x (1 - beat F1 at +-100 ms), averaged; ties keep the grid's earlier entry (the defaults
come first).
"""

from __future__ import annotations

import itertools
import math
from collections import Counter
from collections.abc import Callable

import numpy as np
from ppg_accuracy import Beats, Recording, ours, run_method, summarize

from device.heart.beats import Tuning

#: Values tried for each tuned constant (the product's default among them).
GRID: dict[str, tuple[float, ...]] = {
    "threshold_share": (0.15, 0.25, 0.35),
    "refractory_share": (0.5, 0.6, 0.7),
    "lowpass_hz": (4.5, 6.0, 8.0),
}
#: The sets every fold is trained and scored on: native rates and 25 Hz.
LOO_SETS = ("bidmc@125", "bidmc@25", "welltory@30", "welltory@25")
#: Objective: bpm of HR error one unit of beat F1 is worth; HR error of a recording without
#: any estimate.
F1_WEIGHT_BPM = 20.0
MISSING_HR_BPM = 30.0


def tunings(grid: dict[str, tuple[float, ...]] = GRID) -> list[Tuning]:
    """Every combination of the grid, the product's defaults first."""
    default = Tuning()
    out = [default]
    for values in itertools.product(*grid.values()):
        t = Tuning(**dict(zip(grid, values, strict=True)))
        if t != default:
            out.append(t)
    return out


def _method(tuning: Tuning) -> Callable[[np.ndarray, float], Beats]:
    def method(ppg: np.ndarray, rate: float) -> Beats:
        return ours(ppg, rate, tuning)

    method.__name__ = "ours"
    return method


def objective(rows_by_set: dict[str, list[dict]], names: set[str]) -> float:
    """Mean training loss of one tuning over the recordings ``names`` (all LOO sets)."""
    losses = []
    for rows in rows_by_set.values():
        for r in rows:
            if r["name"] in names:
                hr = r["hr_mae"] if math.isfinite(r["hr_mae"]) else MISSING_HR_BPM
                losses.append(hr + F1_WEIGHT_BPM * (1.0 - r["f1_100"]))
    return float(np.mean(losses))


def best_tuning(scored: list[dict[str, list[dict]]], names: set[str]) -> int:
    """Index of the tuning with the least training loss over ``names`` (ties: the first)."""
    return min(range(len(scored)), key=lambda i: (objective(scored[i], names), i))


def select_per_fold(scored: list[dict[str, list[dict]]], names: list[str]) -> dict[str, int]:
    """For each recording, the tuning chosen on all the *other* recordings only."""
    everyone = set(names)
    return {held: best_tuning(scored, everyone - {held}) for held in names}


def cross_validate(
    sets: dict[str, list[Recording]], grid: list[Tuning] | None = None, log: bool = True
) -> dict:
    """Plain and leave-one-recording-out figures per set, and what each fold chose."""
    grid = tunings() if grid is None else grid
    scored: list[dict[str, list[dict]]] = []
    for k, tuning in enumerate(grid):
        if log:
            print(f"  cross-validation: tuning {k + 1}/{len(grid)} {tuning}", flush=True)
        scored.append({s: run_method(_method(tuning), sets[s])[1] for s in LOO_SETS})
    names = sorted({r["name"] for s in LOO_SETS for r in scored[0][s]})
    chosen = select_per_fold(scored, names)
    in_sample = best_tuning(scored, set(names))
    result: dict = {"sets": {}, "chosen": {}, "in_sample_best": str(grid[in_sample])}
    for s in LOO_SETS:
        loo_rows = [
            next(r for r in scored[chosen[row["name"]]][s] if r["name"] == row["name"])
            for row in scored[0][s]
        ]
        plain = summarize(scored[0][s])
        loo = summarize(loo_rows)
        best = summarize(scored[in_sample][s])
        result["sets"][s] = {"plain": plain, "loo": loo, "in_sample_best": best}
    counts = Counter(chosen.values())
    result["chosen"] = {str(grid[i]): n for i, n in counts.most_common()}
    result["folds_keeping_defaults"] = counts.get(0, 0)
    result["folds"] = len(names)
    return result


def print_table(cv: dict) -> None:
    """The plain, cross-validated and gap figures, one line per set."""
    keys = (("hr_mae_bpm", "HR MAE", 2), ("covered", "cover", 3), ("f1_100", "F1@100", 3))
    keys += (("rmssd_err_ms", "RMSSD e", 1), ("shown_hr_mae_bpm", "shown HR", 2))
    head = f"{'set':12}" + "".join(f" {label + ' plain/LOO/gap':>26}" for _, label, _ in keys)
    print(head)
    print("-" * len(head))
    for s, fig in cv["sets"].items():
        line = f"{s:12}"
        for key, _, nd in keys:
            p, lo = fig["plain"][key], fig["loo"][key]
            line += f" {p:8.{nd}f} {lo:8.{nd}f} {lo - p:+8.{nd}f}"
        print(line)
    print(
        f"\nfolds keeping the product's defaults: {cv['folds_keeping_defaults']} of "
        f"{cv['folds']}; tuning chosen per fold: {cv['chosen']}"
    )
    print(f"best tuning on all recordings (in-sample, for reference): {cv['in_sample_best']}")
