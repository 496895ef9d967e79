"""The lab's instrument that aligns a capture with the tap (tools/lab/guest/lab-compare.py).

It runs inside the VM on the guest's numpy; here it runs on the host's, on taps made to look
like the box's: a fade-in whose first seconds hold the same tiny frames hundreds of
thousands of times, then a capture that starts mid-stream.
"""

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import numpy as np

from tests.support.lab_path import LAB

SCRIPT = LAB / "guest" / "lab-compare.py"
RATE = 48000


def _module():
    spec = importlib.util.spec_from_file_location("lab_compare", SCRIPT)
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def _faded_tap(seconds: float, seed: int) -> np.ndarray:
    """Stereo S16 frames: noise under a slow fade-in, so the start is all tiny values."""
    rng = np.random.default_rng(seed)
    n = int(seconds * RATE)
    gain = np.linspace(0.0, 1.0, n) ** 3 * 3000.0
    x = rng.standard_normal((n, 2)) * gain[:, None]
    return np.round(x).astype("<i2")


def _run(tmp_path: Path, tap: np.ndarray, cap: np.ndarray) -> dict:
    (tmp_path / "tap.raw").write_bytes(tap.tobytes())
    (tmp_path / "cap.raw").write_bytes(cap.tobytes())
    r = subprocess.run(
        [sys.executable, str(SCRIPT), str(tmp_path / "tap.raw"), str(tmp_path / "cap.raw")],
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(r.stdout)


def test_find_is_not_fooled_by_a_frame_common_in_the_fade_in():
    mod = _module()
    tap = _faded_tap(8.0, seed=1)
    # The fade's first 4 s as dither-level sound: only 0 and 1 in each channel.
    tap[: 4 * RATE] = np.random.default_rng(4).integers(0, 2, (4 * RATE, 2))
    # The window's first frame is one the quiet start holds far more than 20000 times.
    tap[5 * RATE] = (0, 1)
    w = tap[5 * RATE : 5 * RATE + mod.WIN].copy()
    assert np.count_nonzero(np.all(tap == w[0], axis=1)) > 20000
    assert mod.find(tap, w, 0, len(tap)) == 5 * RATE


def test_a_capture_from_mid_stream_matches_bit_exact(tmp_path):
    tap = _faded_tap(6.0, seed=2)
    cap = np.concatenate([np.zeros((1000, 2), "<i2"), tap[3 * RATE : 5 * RATE]])
    res = _run(tmp_path, tap, cap)
    assert "error" not in res
    assert res["gaps"] == []
    assert abs(res["matched_s"] - 2.0) < 1e-9
    assert abs(res["start_in_tap_s"] - 3.0) < 1e-9


def test_a_gap_is_measured_and_a_foreign_start_is_described(tmp_path):
    tap = _faded_tap(6.0, seed=3)
    gap = np.zeros((RATE // 4, 2), "<i2")
    cap = np.concatenate([tap[3 * RATE : 4 * RATE], gap, tap[4 * RATE + RATE // 2 : 5 * RATE]])
    res = _run(tmp_path, tap, cap)
    assert len(res["gaps"]) == 1
    g = res["gaps"][0]
    assert abs(g["at_s"] - 1.0) < 1e-3 and abs(g["inserted_s"] - 0.25) < 1e-3
    assert abs(g["skipped_s"] - 0.5) < 1e-3
    # A capture whose first second is nowhere in the tap: the error says where it joins.
    stranger = np.random.default_rng(9).integers(-3000, 3000, (RATE, 2)).astype("<i2")
    res = _run(tmp_path, tap, np.concatenate([stranger, tap[2 * RATE : 3 * RATE]]))
    assert res["error"] == "the capture's first sound is not in the tap"
    assert len(res["first_frames"]) == 4
    assert abs(res["joins_tap_at_s"]["capture"] - 1.0) < 0.11
