#!/usr/bin/python3
"""Lab equipment: compare what the card's capture side heard with what the box wrote.

lab-compare TAP CAPTURE: both raw S16_LE stereo 48 kHz. TAP is every frame the box wrote
(ALSA's file plugin), CAPTURE what snd-aloop's other side delivered. Walks the capture
along the tap and prints one JSON object: matched frames, and each discontinuity with the
silence it inserted and the tap frames it skipped (negative: a repeat).
"""

import json
import sys

import numpy as np

RATE = 48000
WIN = 64


def find(t: np.ndarray, w: np.ndarray, lo: int, hi: int) -> int | None:
    """The first tap position in [lo, hi] where the window w starts, or None.

    Candidates are narrowed a frame at a time over the whole range, never capped: early
    in the box's 30-s fade-in the tap holds hundreds of thousands of frames such as
    (0, 1), and a capped candidate list missed the true position.
    """
    lo, hi = max(0, lo), min(len(t) - len(w), hi)
    if hi < lo:
        return None
    seg = t[lo : hi + 1]
    cand = lo + np.flatnonzero((seg[:, 0] == w[0, 0]) & (seg[:, 1] == w[0, 1]))
    for k in range(1, len(w)):
        if len(cand) <= 8:
            break
        cand = cand[np.all(t[cand + k] == w[k], axis=1)]
    for q in cand:
        if np.array_equal(t[q : q + len(w)], w):
            return int(q)
    return None


def first_found(t: np.ndarray, c: np.ndarray, i: int) -> tuple[int, int] | None:
    """(capture frame, tap frame) of the first sounding window after i found in the tap."""
    for j in range(i, len(c) - WIN, RATE // 10):
        w = c[j : j + WIN]
        if np.any(w != 0):
            q = find(t, w, 0, len(t))
            if q is not None:
                return j, q
    return None


def main() -> int:
    t = np.fromfile(sys.argv[1], "<i2").reshape(-1, 2)
    c = np.fromfile(sys.argv[2], "<i2").reshape(-1, 2)
    nz = np.flatnonzero(np.any(c != 0, axis=1))
    res = {"tap_s": len(t) / RATE, "capture_s": len(c) / RATE, "matched_s": 0.0, "gaps": []}
    if len(nz) == 0:
        res["error"] = "the capture is all silence"
        print(json.dumps(res))
        return 0
    i = int(nz[0])
    res["leading_silence_s"] = i / RATE
    p = find(t, c[i : i + WIN], 0, len(t))
    if p is None:
        res["error"] = "the capture's first sound is not in the tap"
        # What the card played first, and where (if anywhere) the capture joins the tap later.
        res["first_frames"] = c[i : i + 4].tolist()
        later = first_found(t, c, i)
        if later is not None:
            res["joins_tap_at_s"] = {"capture": later[0] / RATE, "tap": later[1] / RATE}
        print(json.dumps(res))
        return 0
    res["start_in_tap_s"] = p / RATE
    matched = 0
    while i < len(c):
        n = min(len(c) - i, len(t) - p)
        if n <= 0:
            res["tail_beyond_tap_s"] = (len(c) - i) / RATE
            break
        eq = np.all(c[i : i + n] == t[p : p + n], axis=1)
        bad = n if eq.all() else int(np.argmin(eq))
        i, p, matched = i + bad, p + bad, matched + bad
        if bad == n:
            continue
        j, q = i, None
        while j < len(c) - WIN:
            w = c[j : j + WIN]
            if np.any(w != 0):
                q = find(t, w, p - 2 * RATE, p + 20 * RATE)
                if q is not None:
                    break
            j += 16
        if q is None:
            res["unmatched_tail_s"] = (len(c) - i) / RATE
            res["gaps"].append(
                {"at_s": i / RATE, "inserted_s": (len(c) - i) / RATE, "skipped_s": None}
            )
            break
        while j > i and q > 0 and np.array_equal(c[j - 1], t[q - 1]):
            j, q = j - 1, q - 1
        res["gaps"].append(
            {"at_s": i / RATE, "inserted_s": (j - i) / RATE, "skipped_s": (q - p) / RATE}
        )
        i, p = j, q
    res["matched_s"] = matched / RATE
    print(json.dumps(res))
    return 0


if __name__ == "__main__":
    sys.exit(main())
