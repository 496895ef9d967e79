"""Running order statistics of the pulse sensor's recent samples, kept as samples arrive.

The contact detector asks every 0.1 s for the median of the last 3 s of IR, the median of
its last 0.25 s and the 3rd and 97th percentiles of its pulsatile part. Sorting those windows
afresh at every poll was about half the real cost of the sensor task (issue 22). Here each
window is kept sorted as it slides (a binary search and one list insertion per sample, the
oldest removed the same way), so a poll costs a few list operations per new sample and the
answers are those of :func:`numpy.median` / :func:`numpy.percentile` on the same values.
"""

from __future__ import annotations

import bisect
import math
from collections import deque
from collections.abc import Iterable

import numpy as np


def median(x: np.ndarray) -> float:
    """:func:`numpy.median` of finite values, without its NaN check.

    numpy 2's NaN check imports :mod:`numpy.ma` the first time it runs: some 10 ms (about
    a tenth of a second on a Pi Zero 2 W) inside whatever loop task first took a median.
    """
    n = len(x)
    k = n // 2
    if n % 2:
        return float(np.partition(x, k)[k])
    part = np.partition(x, (k - 1, k))
    return float(np.mean(part[k - 1 : k + 1]))


class SortedWindow:
    """The values of a sliding window, kept in order: O(log n) search per value added.

    Values leave in the order they came (:meth:`drop_oldest`); :meth:`median` and
    :meth:`percentile` answer as :func:`numpy.median` and :func:`numpy.percentile` (linear
    interpolation) would on the same values.
    """

    def __init__(self) -> None:
        self._order: list[float] = []
        self._fifo: deque[float] = deque()

    def __len__(self) -> int:
        return len(self._fifo)

    def clear(self) -> None:
        """Forget every value."""
        self._order.clear()
        self._fifo.clear()

    def fill(self, values: Iterable[float]) -> None:
        """Replace the window's contents by ``values`` (oldest first); sorts once."""
        self._fifo = deque(float(v) for v in values)
        self._order = sorted(self._fifo)

    def push(self, value: float) -> None:
        """Add the newest value."""
        self._fifo.append(value)
        bisect.insort(self._order, value)

    def drop_oldest(self, n: int = 1) -> None:
        """Remove the ``n`` oldest values."""
        order = self._order
        for _ in range(min(n, len(self._fifo))):
            del order[bisect.bisect_left(order, self._fifo.popleft())]

    def median(self) -> float:
        """The median (the mean of the two middle values for an even count)."""
        order, n = self._order, len(self._order)
        mid = n // 2
        if n % 2:
            return order[mid]
        return float(np.mean((order[mid - 1], order[mid])))

    def percentile(self, q: float, extra: tuple[float, ...] = ()) -> float:
        """The ``q``-th percentile of the window plus ``extra`` values (linear interpolation).

        ``extra`` values take part in this answer only (the window is left as it was).
        """
        order = self._order
        for v in extra:
            bisect.insort(order, v)
        try:
            return _percentile_sorted(order, q)
        finally:
            for v in extra:
                del order[bisect.bisect_left(order, v)]


def _percentile_sorted(order: list[float], q: float) -> float:
    """:func:`numpy.percentile` (method ``linear``) of values already in ascending order."""
    n = len(order)
    virtual = (n - 1) * (q / 100.0)
    lo = math.floor(virtual)
    hi = min(lo + 1, n - 1)
    t = virtual - lo
    a, b = order[lo], order[hi]
    # numpy's _lerp: from the nearer end, so the result is exact at t = 0 and t = 1.
    return b - (b - a) * (1.0 - t) if t >= 0.5 else a + (b - a) * t


class PulsatileWindow:
    """The pulsatile (AC) part of a sliding IR history and its running percentiles.

    The AC part of sample ``c`` is ``x[c]`` less the mean of the ``trend`` samples around it
    (a 1-s moving average, centred as :func:`numpy.convolve` ``valid`` centres it), smoothed
    by a ``smooth``-sample mean (:func:`numpy.convolve` ``same``: the series' ends see zeros).
    Each interior value depends only on samples inside the history, so it is computed once,
    when its last sample arrives, and kept in a :class:`SortedWindow`; only the
    ``smooth - 1`` values at the series' two ends are computed at each query.
    """

    def __init__(self, trend: int, smooth: int) -> None:
        self.trend = trend
        self.smooth = smooth
        self._first = (trend - 1) // 2  # centre of the moving average, as in valid mode
        self._right = (smooth - 1) // 2 if smooth > 1 else 0  # 'same' mode's centring
        self._left = smooth - 1 - self._right
        self._trend_k = np.ones(trend) / trend
        self._smooth_k = np.ones(smooth) / smooth
        self._interior = SortedWindow()
        #: Index (in the history as it stands) of the first interior value kept.
        self._start = 0

    def clear(self) -> None:
        """Forget everything (the history was reset)."""
        self._interior.clear()
        self._start = 0

    def _series(self, x: np.ndarray) -> np.ndarray:
        """The unsmoothed AC part of ``x``: one value per full moving-average window."""
        trend = np.convolve(x, self._trend_k, mode="valid")
        return x[self._first : self._first + len(trend)] - trend

    def _bounds(self, n: int) -> tuple[int, int]:
        """History indices [lo, hi) of the interior smoothed values for ``n`` samples."""
        m = n - self.trend + 1  # values in the AC series
        lo = self._first + self._left
        hi = self._first + m - self._right
        return lo, max(lo, hi)

    def _smoothed(self, x: np.ndarray, lo: int, hi: int) -> np.ndarray:
        """Interior smoothed values for history indices [lo, hi) of ``x``."""
        a0 = lo - self._left - self._first  # first AC value needed, as an index into x
        seg = x[a0 : hi + self._right - self._first + self.trend - 1]
        a = self._series(seg)
        if self.smooth == 1:
            return a
        return np.convolve(a, self._smooth_k, mode="valid")

    def rebuild(self, x: np.ndarray) -> None:
        """Compute every interior value of the history ``x`` afresh (after a rescale)."""
        self._interior.clear()
        lo, hi = self._bounds(len(x))
        self._start = lo
        if hi > lo:
            self._interior.fill(self._smoothed(x, lo, hi))

    def update(self, x: np.ndarray, added: int, dropped: int) -> None:
        """The history is now ``x``: ``added`` samples came, its ``dropped`` oldest went."""
        self._start -= dropped
        lo, hi = self._bounds(len(x))
        if self._start < lo:  # values whose left neighbours left the history
            self._interior.drop_oldest(lo - self._start)
            self._start = lo
        end = self._start + len(self._interior)
        if not len(self._interior):
            end = self._start = lo
        if hi > end:
            for v in self._smoothed(x, end, hi).tolist():
                self._interior.push(v)

    def edges(self, x: np.ndarray) -> tuple[float, ...]:
        """The smoothed values at both ends of the series (zeros beyond them, as numpy's)."""
        if self.smooth == 1:
            return ()
        # Each end's smoothed values need the series' smooth - 1 values at that end.
        span = self.smooth - 1 + self.trend - 1
        full_head = np.convolve(self._series(x[:span]), self._smooth_k, mode="full")
        full_tail = np.convolve(self._series(x[len(x) - span :]), self._smooth_k, mode="full")
        r, k = self._right, self.smooth - 1  # 'same' index p is 'full' index p + r
        out = [float(full_head[p + r]) for p in range(self._left)]
        out += [float(full_tail[k + p]) for p in range(r)]
        return tuple(out)

    def percentiles(self, x: np.ndarray, *qs: float) -> list[float]:
        """The ``qs``-th percentiles of the whole smoothed AC series of the history ``x``."""
        edges = self.edges(x)
        return [self._interior.percentile(q, edges) for q in qs]


class SampleHistory:
    """The last ``seconds`` of IR and Red samples, with the IR's running order statistics.

    Owned by the pulse sensor and read by its contact detector (DC median, the newest
    samples' median, the pulsatile percentiles) and its LED controller (the newest second,
    rescaled when a step changes the LED current).

    :param rate_hz: samples per second.
    :param seconds: how much history is kept.
    :param recent_s: the span of :meth:`recent_ir_median`, s.
    """

    def __init__(self, rate_hz: float, seconds: float = 3.0, recent_s: float = 0.25) -> None:
        self.rate_hz = rate_hz
        self.keep = round(seconds * rate_hz)
        self._recent_n = max(1, round(recent_s * rate_hz))
        self.ir = np.zeros(0)
        self.red = np.zeros(0)
        self._ir_order = SortedWindow()
        self._recent = SortedWindow()
        self.pulsatile = PulsatileWindow(max(1, round(rate_hz)), max(1, round(0.04 * rate_hz)))

    def __len__(self) -> int:
        return len(self.ir)

    def clear(self) -> None:
        """Forget every sample (a gap, a lost sensor)."""
        self.ir = np.zeros(0)
        self.red = np.zeros(0)
        self._ir_order.clear()
        self._recent.clear()
        self.pulsatile.clear()

    def append(self, ir: np.ndarray, red: np.ndarray) -> None:
        """Add a block of samples; the oldest beyond the kept span leave."""
        before = len(self.ir)
        self.ir = np.concatenate((self.ir, ir))[-self.keep :]
        self.red = np.concatenate((self.red, red))[-self.keep :]
        if len(ir) >= self.keep:
            self._refill()
            return
        dropped = before + len(ir) - len(self.ir)  # old samples that left the history
        new = ir.tolist()
        self._ir_order.drop_oldest(dropped)
        for v in new:
            self._ir_order.push(v)
        if len(new) >= self._recent_n:
            self._recent.fill(new[-self._recent_n :])
        else:
            self._recent.drop_oldest(len(self._recent) + len(new) - self._recent_n)
            for v in new:
                self._recent.push(v)
        self.pulsatile.update(self.ir, len(new), dropped)

    def _refill(self) -> None:
        self._ir_order.fill(self.ir)
        self._recent.fill(self.ir[-self._recent_n :])
        self.pulsatile.rebuild(self.ir)

    def rescale(self, ir_factor: float, red_factor: float) -> None:
        """Multiply the history by the LED current's change (photocurrent follows it)."""
        self.ir = self.ir * ir_factor
        self.red = self.red * red_factor
        self._refill()

    def ir_median(self) -> float:
        """Median of the IR history (``nan`` when empty)."""
        return self._ir_order.median() if len(self._ir_order) else math.nan

    def recent_ir_median(self) -> float:
        """Median of the newest ``recent_s`` of IR (``nan`` when empty)."""
        return self._recent.median() if len(self._recent) else math.nan

    def ac_percentiles(self, *qs: float) -> list[float]:
        """``qs``-th percentiles of the IR's smoothed pulsatile part over the history."""
        return self.pulsatile.percentiles(self.ir, *qs)
