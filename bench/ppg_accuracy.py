"""Accuracy and cost of the streaming beat detector on real PPG with reference beats.

Usage::

    .venv/bin/python bench/ppg_accuracy.py [--data DIR] [--json] [--others] [--no-loo]

Data: ``--data``, else the recordings in the repository, ``tests/data/ppg``
(see its README for the recordings and the scoring recipe followed here):

* BIDMC (ICU, 125 Hz, ECG beats) at 125, 50 and 25 Hz (anti-aliased ``resample_poly`` of the
  signal less its mean, edges padded along a line);
* Welltory (finger on phone camera, irregular ~30 Hz, Polar H10 RR intervals) put on a
  regular 30 Hz grid by linear interpolation, and decimated from that to 25 Hz. The channel
  by the product's rule (red unless clipped or flat, then green); ``--channel red`` forces red.

Scores per method and rate: HR mean absolute error (bpm) over 10 s windows with a 5 s hop and
the share of windows with an estimate; beat sensitivity/PPV/F1 at +-100 ms and +-50 ms after
removing the best constant lag (the reference RR series of Welltory has no start time, so its
offset is found the same way); RMSSD and SDNN absolute error (ms) per recording; CPU seconds
per hour of signal; and "shown HR": HR error and coverage counting only the beats found while
the detector's quality was high enough for the box to show a heart rate. ``--others`` also
runs heartpy and neurokit2 when installed (they see the whole recording at once; ours streams
in 32-sample FIFO reads). Then, unless ``--no-loo``, the leave-one-recording-out
cross-validation of the detector's tuned constants (``bench/ppg_crossval.py``): plain figures,
cross-validated figures and the gap. Needs scipy (bench only).
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import json
import sys
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from scipy.signal import resample_poly

from device.heart.analysis import QUALITY_MIN
from device.heart.beats import BeatDetector, Tuning
from device.heart.channels import pick_channel

REPO = Path(__file__).resolve().parents[1]
DEFAULT_DATA = REPO / "tests" / "data" / "ppg"
FIFO = 32
WINDOW_S = 10.0
HOP_S = 5.0


@dataclass
class Recording:
    """One PPG recording with its reference."""

    name: str
    kind: str  # "bidmc" | "welltory"
    rate: float
    ppg: np.ndarray
    ref: np.ndarray  # reference beat times, s (Welltory: offset unknown, starts at 0)
    bad: list[tuple[float, float]] = field(default_factory=list)

    @property
    def duration(self) -> float:
        return len(self.ppg) / self.rate


def data_dir(arg: str | None) -> Path:
    path = Path(arg) if arg else DEFAULT_DATA
    if not path.is_dir():
        sys.exit(f"ppg_accuracy: data directory {path} not found (use --data)")
    return path


def load_bidmc(root: Path) -> list[Recording]:
    out = []
    for sig in sorted((root / "bidmc").glob("bidmc_*_Signals.csv")):
        stem = sig.name.replace("_Signals.csv", "")
        with sig.open() as f:
            rows = list(csv.reader(f))
        head = [h.strip() for h in rows[0]]
        col = head.index("PLETH")
        ppg = np.array([float(r[col]) for r in rows[1:]])
        ref = np.loadtxt(root / "bidmc" / f"{stem}_ref_beats.csv", delimiter=",", skiprows=1)
        bad_path = root / "bidmc" / f"{stem}_ref_bad_intervals.csv"
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # a file with no spans is just a header
            bad = np.loadtxt(bad_path, delimiter=",", skiprows=1, ndmin=2)
        out.append(
            Recording(stem, "bidmc", 125.0, ppg, np.atleast_1d(ref), [tuple(b) for b in bad])
        )
    return out


def load_welltory(root: Path, rate: float = 30.0, channel: str = "red") -> list[Recording]:
    out = []
    for sub in sorted((root / "welltory").glob("subject_*")):
        data = np.loadtxt(sub / "PPG.csv", delimiter=",", skiprows=1)
        t = data[:, 0] / 1000.0
        # Camera light falls as blood arrives. Red is the README's channel, but a red channel
        # clipped at 255 carries no pulse; then green does (subject_20, subject_21). "auto"
        # applies the product's channel rule (device/heart/channels.py) to the recording.
        col = 1
        if channel == "auto":
            cols = {"R": data[:, 1], "G": data[:, 2], "B": data[:, 3]}
            col = 1 + "RGB".index(pick_channel(cols, ("R", "G", "B")))
        red = -data[:, col]
        grid = np.arange(0.0, t[-1], 1.0 / rate)
        ppg = np.interp(grid, t, red)
        rr = np.loadtxt(sub / "RR.txt").ravel() / 1000.0
        ref = np.concatenate([[0.0], np.cumsum(rr)])
        out.append(Recording(sub.name, "welltory", rate, ppg, ref))
    return out


def decimate(rec: Recording, rate: float) -> Recording:
    from fractions import Fraction

    fr = Fraction(rate / rec.rate).limit_denominator(100)
    # The offset is taken out first: the polyphase branches of resample_poly's filter differ
    # in DC gain by about 7e-4, which turns a camera's 255-count offset into a 5 Hz tone at
    # 25 Hz (period: the up factor) as large as the pulse on a clipped channel. A sensor
    # sampling at 25 sps makes no such tone. Edges are padded along a line, not with zeros.
    offset = float(np.mean(rec.ppg))
    ppg = resample_poly(rec.ppg - offset, fr.numerator, fr.denominator, padtype="line") + offset
    return Recording(rec.name, rec.kind, rate, ppg, rec.ref, rec.bad)


# --- methods -------------------------------------------------------------------------------


#: Beats found while the detector's quality is below this are not shown on the box.
SHOWN_QUALITY = QUALITY_MIN


Beats = tuple[np.ndarray, np.ndarray | None]


def ours(ppg: np.ndarray, rate: float, tuning: Tuning | None = None) -> Beats:
    """Our streaming detector fed 32-sample FIFO reads: beats, and which the box shows."""
    det = BeatDetector(rate, tuning)
    beats: list[float] = []
    shown: list[bool] = []
    for i in range(0, len(ppg), FIFO):
        new = det.process(ppg[i : i + FIFO])
        beats += new
        shown += [det.quality >= SHOWN_QUALITY] * len(new)
    new = det.flush()
    beats += new
    shown += [det.quality >= SHOWN_QUALITY] * len(new)
    return np.array(beats), np.array(shown, dtype=bool)


def heartpy_method(ppg: np.ndarray, rate: float) -> Beats:
    import heartpy as hp

    wd, _ = hp.process(hp.filter_signal(ppg, [0.7, 3.5], rate, 2, "bandpass"), rate)
    peaks = np.array(wd["peaklist"], dtype=float)
    rejected = set(wd.get("removed_beats", []))
    return np.array([p / rate for p in peaks if p not in rejected]), None


def _neurokit(ppg: np.ndarray, rate: float, method: str) -> Beats:
    import neurokit2 as nk

    clean = nk.ppg_clean(ppg, sampling_rate=round(rate))
    _, info = nk.ppg_peaks(clean, sampling_rate=round(rate), method=method)
    return np.asarray(info["PPG_Peaks"], dtype=float) / rate, None


def nk_elgendi(ppg: np.ndarray, rate: float) -> Beats:
    return _neurokit(ppg, rate, "elgendi")


def nk_msptdfast(ppg: np.ndarray, rate: float) -> Beats:
    return _neurokit(ppg, rate, "msptdfast")


# --- scoring -------------------------------------------------------------------------------


def match(ref: np.ndarray, est: np.ndarray, tol: float) -> int:
    """Number of one-to-one pairs within ``tol`` (greedy by distance)."""
    if len(ref) == 0 or len(est) == 0:
        return 0
    j = np.clip(np.searchsorted(est, ref), 1, len(est) - 1)
    pairs = []
    for i, jj in enumerate(j):
        for k in (jj - 1, jj):
            d = abs(est[k] - ref[i])
            if d <= tol:
                pairs.append((d, i, k))
    pairs.sort()
    used_r: set[int] = set()
    used_e: set[int] = set()
    for _, i, k in pairs:
        if i not in used_r and k not in used_e:
            used_r.add(i)
            used_e.add(k)
    return len(used_r)


def best_lag(ref: np.ndarray, est: np.ndarray, lo: float, hi: float) -> float:
    """Constant lag (added to ``ref``) that best lines the beats up."""
    lags = np.arange(lo, hi, 0.01)
    scores = [match(ref + lag, est, 0.05) for lag in lags]
    lag = float(lags[int(np.argmax(scores))])
    shifted = ref + lag
    j = np.clip(np.searchsorted(est, shifted), 1, len(est) - 1)
    near = np.where(np.abs(est[j - 1] - shifted) < np.abs(est[j] - shifted), est[j - 1], est[j])
    d = near - shifted
    return lag + float(np.median(d[np.abs(d) < 0.1])) if np.any(np.abs(d) < 0.1) else lag


def in_spans(t: np.ndarray, spans: list[tuple[float, float]]) -> np.ndarray:
    bad = np.zeros(len(t), dtype=bool)
    for a, b in spans:
        bad |= (t >= a) & (t <= b)
    return bad


def window_hr(beats: np.ndarray, t0: float, t1: float) -> float | None:
    b = beats[(beats >= t0) & (beats <= t1)]
    ibi = np.diff(b)
    ibi = ibi[(ibi >= 0.3) & (ibi <= 2.0)]
    return None if len(ibi) < 2 else 60.0 / float(np.mean(ibi))


def clean_ibis(beats: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Intervals kept by the README's HRV filter, and whether each follows a kept one."""
    ibi = np.diff(beats)
    keep = (ibi >= 0.3) & (ibi <= 2.0)
    med = np.array([np.median(ibi[max(0, i - 2) : i + 3]) for i in range(len(ibi))])
    keep &= np.abs(ibi - med) < 0.2 * med
    return ibi, keep


def hrv(beats: np.ndarray) -> tuple[float, float]:
    if len(beats) < 4:
        return float("nan"), float("nan")
    ibi, keep = clean_ibis(beats)
    pairs = keep[1:] & keep[:-1]
    diffs = np.diff(ibi)[pairs]
    rmssd = float(np.sqrt(np.mean(diffs**2))) * 1000.0 if len(diffs) else float("nan")
    sdnn = float(np.std(ibi[keep])) * 1000.0 if keep.any() else float("nan")
    return rmssd, sdnn


def score(rec: Recording, est: np.ndarray, shown: np.ndarray | None = None) -> dict:
    ref = rec.ref
    # ECG to finger is a pulse arrival time; the Welltory RR series has no start time.
    lo, hi = (-0.2, 0.8) if rec.kind == "bidmc" else (-6.0, 6.0)
    lag = best_lag(ref, est, lo, hi) if len(est) > 2 else 0.0
    ref = ref + lag
    spans = [(a + lag, b + lag) for a, b in rec.bad]
    dur = rec.duration
    ref_in = ref[(ref >= 1.0) & (ref <= dur - 1.0)]
    est_in = est[(est >= 1.0) & (est <= dur - 1.0)]
    ref_in = ref_in[~in_spans(ref_in, spans)]
    est_in = est_in[~in_spans(est_in, spans)]
    res: dict = {"lag_s": round(lag, 3)}
    for tol in (0.1, 0.05):
        m = match(ref_in, est_in, tol)
        se = m / max(len(ref_in), 1)
        ppv = m / max(len(est_in), 1)
        res[f"f1_{int(tol * 1000)}"] = 2 * se * ppv / (se + ppv) if se + ppv else 0.0
    errs = []
    shown_errs = []
    windows = 0
    est_shown = est if shown is None else est[shown]
    for t0 in np.arange(0.0, dur - WINDOW_S + 1e-9, HOP_S):
        t1 = t0 + WINDOW_S
        if any(a < t1 and b > t0 for a, b in spans):
            continue
        hr_ref = window_hr(ref, t0, t1)
        if hr_ref is None:
            continue
        windows += 1
        hr_est = window_hr(est, t0, t1)
        if hr_est is not None:
            errs.append(abs(hr_est - hr_ref))
        hr_shown = window_hr(est_shown, t0, t1)
        if hr_shown is not None:
            shown_errs.append(abs(hr_shown - hr_ref))
    res["hr_mae"] = float(np.mean(errs)) if errs else float("nan")
    res["covered"] = len(errs) / max(windows, 1)
    res["hr_errors"] = errs
    res["shown_errors"] = shown_errs
    res["windows"] = windows
    sel_ref = ref[(ref >= 0) & (ref <= dur)]
    r_rmssd, r_sdnn = hrv(sel_ref)
    e_rmssd, e_sdnn = hrv(est)
    res["rmssd_err"] = abs(e_rmssd - r_rmssd)
    res["sdnn_err"] = abs(e_sdnn - r_sdnn)
    res["rmssd_ref"] = r_rmssd
    return res


def run_method(
    method: Callable[[np.ndarray, float], Beats], recs: list[Recording]
) -> tuple[dict, list[dict]]:
    """Run ``method`` on every recording; return the summary and one scored row each."""
    rows = []
    cpu = 0.0
    dur = 0.0
    for rec in recs:
        c0 = time.process_time()
        try:
            with contextlib.redirect_stdout(sys.stderr):  # heartpy prints its complaints
                est, shown = method(rec.ppg, rec.rate)
                order = np.argsort(est, kind="stable")
                est = est[order]
                shown = None if shown is None else shown[order]
        except Exception as exc:  # other tools fail on noisy recordings; count it
            print(f"  {method.__name__} failed on {rec.name}: {exc}", file=sys.stderr)
            est = np.zeros(0)
            shown = None
        cpu += time.process_time() - c0
        dur += rec.duration
        row = score(rec, est, shown)
        row["name"] = rec.name
        rows.append(row)
    return summarize(rows, cpu / dur * 3600.0), rows


def summarize(rows: list[dict], cpu_s_per_h: float = float("nan")) -> dict:
    """Pooled HR error and cover, mean F1 and HRV errors over scored recordings."""

    def avg(key: str) -> float:
        vals = [r[key] for r in rows if np.isfinite(r[key])]
        return float(np.mean(vals)) if vals else float("nan")

    def pooled_cover(key: str) -> float:
        return sum(len(r[key]) for r in rows) / max(sum(r["windows"] for r in rows), 1)

    errs = [e for r in rows for e in r["hr_errors"]]
    shown_errs = [e for r in rows for e in r["shown_errors"]]
    return {
        "hr_mae_bpm": float(np.mean(errs)) if errs else float("nan"),
        "covered": pooled_cover("hr_errors"),
        "f1_100": avg("f1_100"),
        "f1_50": avg("f1_50"),
        "rmssd_err_ms": avg("rmssd_err"),
        "sdnn_err_ms": avg("sdnn_err"),
        "cpu_s_per_h": cpu_s_per_h,
        # HR as the box shows it: only from beats found while quality was high enough.
        "shown_hr_mae_bpm": float(np.mean(shown_errs)) if shown_errs else float("nan"),
        "shown_covered": pooled_cover("shown_errors"),
    }


def streaming_cost(recs: list[Recording], rate: float = 100.0) -> dict:
    """CPU share of one core for the whole streaming path (HeartAnalyzer) at ``rate``."""
    from device.heart.analysis import HeartAnalyzer
    from device.heart.samples import SampleBlock

    chunk = int(rate // 10)  # a 10 Hz poll
    cpu = 0.0
    dur = 0.0
    for rec in recs:
        sig = decimate(rec, rate).ppg if rec.rate != rate else rec.ppg
        counts = 100000.0 - 20000.0 * sig  # raw reflectance: the signal dips at systole
        an = HeartAnalyzer(rate)
        c0 = time.process_time()
        for i in range(0, len(counts), chunk):
            part = counts[i : i + chunk]
            an.feed(SampleBlock(i, rate, part, part))
            an.snapshot()
        cpu += time.process_time() - c0
        dur += len(counts) / rate
    return {"rate_hz": rate, "core_pct": cpu / dur * 100.0, "cpu_s_per_h": cpu / dur * 3600.0}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", help="PPG data directory (default: tests/data/ppg in the repository)")
    ap.add_argument("--json", action="store_true", help="print one JSON object instead")
    ap.add_argument("--others", action="store_true", help="also run heartpy / neurokit2")
    ap.add_argument(
        "--channel",
        choices=("red", "auto"),
        default="auto",
        help="Welltory camera channel: auto (default): the product's channel rule, green "
        "where red is clipped (subjects 20 and 21); or red, as the data README says",
    )
    ap.add_argument("--verbose", action="store_true", help="also print every recording")
    ap.add_argument(
        "--no-loo",
        action="store_true",
        help="skip the leave-one-recording-out cross-validation (27 tunings, a few minutes)",
    )
    args = ap.parse_args(argv)
    root = data_dir(args.data)
    bidmc = load_bidmc(root)
    well = load_welltory(root, channel=args.channel)
    sets = {
        "bidmc@125": bidmc,
        "bidmc@50": [decimate(r, 50.0) for r in bidmc],
        "bidmc@25": [decimate(r, 25.0) for r in bidmc],
        "welltory@30": well,
        "welltory@25": [decimate(r, 25.0) for r in well],
    }
    methods: list[Callable[[np.ndarray, float], Beats]] = [ours]
    if args.others:
        for name, fns in (("heartpy", [heartpy_method]), ("neurokit2", [nk_elgendi, nk_msptdfast])):
            try:
                __import__(name)
                methods += fns
            except ImportError:
                print(f"({name} not installed; skipped)", file=sys.stderr)
    result: dict = {"latency_s": BeatDetector(125.0).latency_s, "sets": {}, "recordings": {}}
    for set_name, recs in sets.items():
        for m in methods:
            summary, rows = run_method(m, recs)
            result["sets"][f"{set_name}/{m.__name__}"] = summary
            result["recordings"][f"{set_name}/{m.__name__}"] = rows
    result["streaming_100hz"] = streaming_cost(bidmc)
    if not args.no_loo:
        from ppg_crossval import cross_validate

        with contextlib.redirect_stdout(sys.stderr if args.json else sys.stdout):
            result["cross_validation"] = cross_validate(sets)
        for fig in result["cross_validation"]["sets"].values():
            for part in fig.values():
                part.pop("cpu_s_per_h", None)
    for rows in result["recordings"].values():
        for row in rows:
            row.pop("hr_errors", None)
            row.pop("shown_errors", None)
    if args.json:
        print(json.dumps(result, indent=1, default=float))
        return 0
    head = f"{'set/method':28} {'HR MAE':>7} {'cover':>6} {'F1@100':>7} {'F1@50':>7} "
    head += f"{'RMSSD e':>8} {'SDNN e':>7} {'CPU s/h':>8} {'shown HR':>9} {'cover':>6}"
    print(head)
    print("-" * len(head))
    for key, s in result["sets"].items():
        print(
            f"{key:28} {s['hr_mae_bpm']:7.2f} {s['covered'] * 100:5.1f}% {s['f1_100']:7.3f} "
            f"{s['f1_50']:7.3f} {s['rmssd_err_ms']:8.1f} {s['sdnn_err_ms']:7.1f} "
            f"{s['cpu_s_per_h']:8.2f} {s['shown_hr_mae_bpm']:9.2f} {s['shown_covered'] * 100:5.1f}%"
        )
    if args.verbose:
        for key, rows in result["recordings"].items():
            for r in rows:
                print(
                    f"{key:22} {r['name']:11} {r['hr_mae']:7.2f} {r['covered'] * 100:5.1f}% "
                    f"{r['f1_100']:7.3f} {r['f1_50']:7.3f} {r['rmssd_err']:8.1f} "
                    f"{r['sdnn_err']:7.1f}"
                )
    if "cross_validation" in result:
        from ppg_crossval import print_table

        print("\nleave-one-recording-out cross-validation of the tuned constants (ppg_crossval):")
        print_table(result["cross_validation"])
    sc = result["streaming_100hz"]
    print(
        f"\nlatency {result['latency_s']:.3f} s; streaming path (HeartAnalyzer) at 100 Hz: "
        f"{sc['core_pct']:.3f} % of one core ({sc['cpu_s_per_h']:.2f} CPU s per hour)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
