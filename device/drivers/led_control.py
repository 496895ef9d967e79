"""LED current control of the pulse sensor: the :class:`LedController` it owns.

Keeps the IR (and Red) DC level in a window of the ADC range (35-75 %) with slow steps (at
most one every 2 s, at most x1.4 or /1.4), made only in the diastolic part of a beat; the
samples after a step are marked. A saturated channel is stepped down at once.
"""

from __future__ import annotations

import math
from typing import Protocol

import numpy as np
import numpy.ma  # numpy 2 imports it on the first percentile: ~10 ms, in a task

from device.drivers.contact import DC_ON, DC_SATURATED, PI_OFF
from device.drivers.max30102 import FULL_SCALE, LED_MA_PER_LSB, MAX30102
from device.drivers.running_stats import SampleHistory, median

#: IR/Red DC window as a share of full scale; steps aim for the middle.
DC_LOW, DC_HIGH, DC_AIM = 0.35, 0.75, 0.55
#: Largest factor of one regular step, and of a step down out of saturation.
STEP_MAX, STEP_SATURATED = 1.4, 0.6
#: At most one regular step per this many seconds (slow: the detector adapts between steps).
STEP_INTERVAL_S = 2.0
#: If no diastole is found for this long, step anyway rather than stay out of the window.
STEP_FORCE_AFTER_S = 10.0
#: Samples after a step marked as disturbed (the ADC settles within a sample; the margin
#: covers a sample taken during the register write).
STEP_MARK_S = 0.2
#: LED currents the control may use, mA. Table 8 allows 51 mA; a finger rests on the LEDs
#: all night, so the control stays far below that.
LED_MIN_MA, LED_MAX_MA = 0.4, 25.0


class LedDriving(Protocol):
    """What the pulse sensor asks of its LED controller."""

    ir_ma: float
    red_ma: float
    steps: int

    def control(self, drv: MAX30102, end_index: int) -> None:
        """Step the currents if the DC left its window (:class:`~device.exc.BusError` raised)."""
        ...

    def marked(self, start: int, n: int) -> np.ndarray | None:
        """Mask of the samples ``start .. start + n`` disturbed by a step (``None``: none)."""
        ...


class LedController:
    """Steps the LED currents to keep the DC level in its window.

    :param history: the sensor's recent samples; rescaled here when a step changes the
        photocurrent, so the DC and pulsatility estimates carry on across the step.
    :param ir_ma: IR LED current to start with, mA.
    :param red_ma: Red LED current to start with, mA.
    """

    def __init__(self, history: SampleHistory, ir_ma: float, red_ma: float) -> None:
        self._history = history
        self.rate_hz = history.rate_hz
        #: Present LED currents, mA.
        self.ir_ma = float(ir_ma)
        self.red_ma = float(red_ma)
        #: Steps made so far.
        self.steps = 0
        self._out_of_window_since: int | None = None
        self._last_step_index = -(10**12)
        self._mark_until = 0  # sample index up to which samples are marked (LED step)

    def marked(self, start: int, n: int) -> np.ndarray | None:
        """Mask of the samples ``start .. start + n`` disturbed by a step (``None``: none)."""
        if self._mark_until <= start:
            return None
        return np.arange(start, start + n) < self._mark_until

    def control(self, drv: MAX30102, end_index: int) -> None:
        """Step the currents if the DC left its window; a failed write raises BusError."""
        index = end_index
        window = round(1.0 * self.rate_hz)
        if len(self._history) < window:
            return
        ir = self._history.ir[-window:]
        red = self._history.red[-window:]
        ir_dc = median(ir) / FULL_SCALE
        red_dc = median(red) / FULL_SCALE
        if ir_dc < DC_ON:
            return  # nothing on the sensor: raising the LEDs would only light the room
        saturated = max(float(ir.max()), float(red.max())) >= DC_SATURATED * FULL_SCALE
        if not (saturated or _out_of_window(ir_dc, red_dc)):
            self._out_of_window_since = None
            return
        if self._out_of_window_since is None:
            self._out_of_window_since = index
        if not self._may_step(index, saturated):
            return
        new_ir = _step(self.ir_ma, ir_dc, float(ir.max()) / FULL_SCALE)
        new_red = _step(self.red_ma, red_dc, float(red.max()) / FULL_SCALE)
        if new_ir == self.ir_ma and new_red == self.red_ma:
            return
        self._write_currents(drv, new_ir, new_red)
        # Photocurrent is proportional to LED current: rescale the history so the DC and
        # pulsatility estimates carry on across the step.
        self._history.rescale(
            new_ir / self.ir_ma if self.ir_ma else 1.0,
            new_red / self.red_ma if self.red_ma else 1.0,
        )
        self.ir_ma, self.red_ma = new_ir, new_red
        self._last_step_index = index
        self._mark_until = index + max(1, round(STEP_MARK_S * self.rate_hz))
        self.steps += 1
        self._out_of_window_since = None

    def _write_currents(self, drv: MAX30102, new_ir: float, new_red: float) -> None:
        """Write the LED currents that changed (mA); a failed write raises BusError."""
        if new_ir != self.ir_ma:
            drv.led_ir_ma = new_ir
        if new_red != self.red_ma:
            drv.led_red_ma = new_red

    def _may_step(self, index: int, saturated: bool) -> bool:
        """Whether a step may be taken now: soon after a saturation, else after the step
        interval once the DC has been out of its window long enough or a beat is in diastole."""
        since_step = (index - self._last_step_index) / self.rate_hz
        if saturated:
            return since_step >= STEP_MARK_S * 2
        if since_step < STEP_INTERVAL_S or self._out_of_window_since is None:
            return False
        waited = (index - self._out_of_window_since) / self.rate_hz
        return waited >= STEP_FORCE_AFTER_S or self._in_diastole()

    def _in_diastole(self) -> bool:
        """``True`` if the newest sample lies in the diastolic part of a beat.

        The raw signal dips at each systolic peak; a step is allowed 0.12 s after a clear
        peak (of the inverted signal) and before 55 % of the beat interval has passed.
        """
        rate = self.rate_hz
        x = self._history.ir[-round(2.5 * rate) :]
        if len(x) < round(1.5 * rate):
            return False
        s = _smooth(-(x - _linear_fit(x)), rate)
        p2p = float(np.percentile(s, 97) - np.percentile(s, 3))
        dc = median(x)
        if dc <= 0 or p2p / dc < PI_OFF:
            return True  # no pulse to disturb
        half = max(1, round(0.25 * rate))
        confirm = max(1, round(0.12 * rate))
        threshold = median(s) + 0.25 * p2p
        peaks = [
            i
            for i in range(half, len(s) - confirm)
            if s[i] >= threshold and s[i] == s[max(0, i - half) : i + confirm + 1].max()
        ]
        if not peaks:
            return False
        last = peaks[-1]
        age = (len(s) - 1 - last) / rate
        limit = 0.45
        if len(peaks) >= 2:
            limit = min(limit, 0.55 * (peaks[-1] - peaks[-2]) / rate)
        return 0.12 <= age <= limit and s[-1] < s[last] - 0.4 * p2p


def _step(ma: float, dc: float, peak: float) -> float:
    """The LED current after one step towards DC_AIM (in 0.2 mA steps, within limits)."""
    if peak >= DC_SATURATED:
        factor = STEP_SATURATED
    elif DC_LOW <= dc <= DC_HIGH:
        return ma
    else:
        factor = min(STEP_MAX, max(1.0 / STEP_MAX, DC_AIM / max(dc, 1e-6)))
    code = round(ma / LED_MA_PER_LSB)
    target = min(LED_MAX_MA, max(LED_MIN_MA, ma * factor)) / LED_MA_PER_LSB
    # Round towards the present current, so a step never exceeds its factor.
    new = math.floor(target + 1e-9) if target > code else math.ceil(target - 1e-9)
    return round(new * LED_MA_PER_LSB, 1)


def _linear_fit(x: np.ndarray) -> np.ndarray:
    n = len(x)
    t = np.arange(n, dtype=np.float64) - (n - 1) / 2.0
    slope = float(np.dot(t, x - x.mean()) / max(np.dot(t, t), 1e-12))
    return x.mean() + slope * t


def _smooth(x: np.ndarray, rate_hz: float) -> np.ndarray:
    width = max(1, round(0.04 * rate_hz))
    if width == 1 or len(x) < width:
        return x
    return np.convolve(x, np.ones(width) / width, mode="same")


def _out_of_window(ir_dc: float, red_dc: float) -> bool:
    """Whether either channel's DC (share of full scale) is outside ``DC_LOW .. DC_HIGH``."""
    return not (DC_LOW <= ir_dc <= DC_HIGH and DC_LOW <= red_dc <= DC_HIGH)
