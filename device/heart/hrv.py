"""Time-domain HRV (RMSSD, SDNN) as the field computes it, whole and over a sliding window.

SDNN is the sample standard deviation of the intervals (n - 1 in the denominator), as the
Task Force of the ESC and NASPE (1996) defines it and neurokit2 computes it; RMSSD is the
root mean square of successive differences. :class:`HrvWindow` keeps running sums, so the
figures over the last minute or the last 5 minutes cost the same however many beats the
window holds (the box reads them every second).
"""

from __future__ import annotations

import math
from collections import deque

import numpy as np

__all__ = ["HrvWindow", "hrv_ms"]


def hrv_ms(ibi_s: np.ndarray, diffs_s: np.ndarray) -> tuple[float, float]:
    """RMSSD and SDNN in ms of intervals ``ibi_s`` and their successive differences (s).

    SDNN is ``nan`` for fewer than two intervals, RMSSD for no difference.
    """
    d = np.asarray(diffs_s, dtype=float) * 1000.0
    ibi = np.asarray(ibi_s, dtype=float) * 1000.0
    sdnn = float(np.std(ibi, ddof=1)) if len(ibi) > 1 else math.nan
    rmssd = float(np.sqrt(np.mean(d * d))) if len(d) else math.nan
    return rmssd, sdnn


class HrvWindow:
    """RMSSD and SDNN over the intervals of the last ``span_s`` seconds, from running sums.

    :meth:`add` each plausible interval (ms) at its beat time (s) with its difference from
    the previous interval when that one was plausible too (else ``None``); :meth:`figures`
    gives the window's RMSSD and SDNN in ms.
    """

    def __init__(self, span_s: float) -> None:
        if span_s <= 0.0:
            raise ValueError(f"HRV window must be longer than 0 s, got {span_s!r}")
        #: Length of the window, s.
        self.span_s = float(span_s)
        self._items: deque[tuple[float, float, float | None]] = deque()
        self._sum = 0.0
        self._sum2 = 0.0
        self._diffs = 0
        self._diff2 = 0.0

    def add(self, t: float, ibi_ms: float, diff_ms: float | None) -> None:
        """Take in the interval closed by the beat at ``t`` (s)."""
        self._items.append((t, ibi_ms, diff_ms))
        self._sum += ibi_ms
        self._sum2 += ibi_ms * ibi_ms
        if diff_ms is not None:
            self._diffs += 1
            self._diff2 += diff_ms * diff_ms
        self.expire(t)

    def expire(self, now: float) -> None:
        """Drop the intervals whose beats are older than the window before ``now`` (s)."""
        items = self._items
        while items and items[0][0] < now - self.span_s:
            _, ibi, diff = items.popleft()
            self._sum -= ibi
            self._sum2 -= ibi * ibi
            if diff is not None:
                self._diffs -= 1
                self._diff2 -= diff * diff
        if not items:  # start again from exact zeros: no rounding left over
            self._sum = self._sum2 = self._diff2 = 0.0
            self._diffs = 0

    def figures(
        self, now: float, min_diffs: int, min_cover_s: float = 0.0
    ) -> tuple[float | None, float | None]:
        """RMSSD and SDNN (ms) at ``now``; ``None`` with fewer than ``min_diffs``
        differences or less than ``min_cover_s`` of intervals in the window."""
        self.expire(now)
        n = len(self._items)
        if n < 2 or self._diffs < max(min_diffs, 1) or self._sum < 1000.0 * min_cover_s:
            return None, None
        var = max(self._sum2 - self._sum * self._sum / n, 0.0) / (n - 1)
        return math.sqrt(max(self._diff2, 0.0) / self._diffs), math.sqrt(var)

    def __len__(self) -> int:
        return len(self._items)

    def __repr__(self) -> str:
        return f"<HrvWindow span={self.span_s:g} s intervals={len(self._items)}>"
