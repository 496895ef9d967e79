"""The pulse sensor as the box uses it: MAX30102 driver + LED control + contact + recovery.

:class:`PulseSensor` is polled by a loop task (every 0.1 s) and hands back
:class:`~device.drivers.samples.SampleBlock` s. It never raises from :meth:`PulseSensor.poll`:

* **LED current control** keeps the IR (and Red) DC level in a window of the ADC range
  (35-75 %) with slow steps (at most one every 2 s, at most x1.4 or /1.4), made only in the
  diastolic part of a beat so no systolic upstroke is cut; the samples after a step are
  marked in ``SampleBlock.led_step``. A saturated channel is stepped down at once.
* **Finger contact** from the IR DC level and the pulsatile amplitude (perfusion index),
  with level and time hysteresis. (No proximity mode: Rev 1 of the data sheet removed it.)
* **Recovery**: a failed transfer is retried (in the driver) and counted; a sensor that
  stops answering is closed, probed again every second and re-initialised when it answers;
  a chip that reports PWR_RDY (it browned out and lost its settings) is re-initialised at
  once. Lost samples (FIFO overflow, replug) mark a gap on the next block, and sample
  indices skip what was lost, so timestamps stay ``index / rate_hz``.

:class:`NoSensor` has the same interface for a box without a sensor (backend ``none``).
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable
from typing import Any, TypedDict

import numpy as np

from device.drivers.i2c import Retrier
from device.drivers.max30102 import (
    ADDRESS,
    FULL_SCALE,
    LED_MA_PER_LSB,
    MAX30102,
    PART_ID,
    check_settings,
    led_code,
)
from device.drivers.samples import SampleBlock
from device.exc import BusError, HardwareError

log = logging.getLogger(__name__)

#: IR/Red DC window as a share of full scale; steps aim for the middle.
DC_LOW, DC_HIGH, DC_AIM = 0.35, 0.75, 0.55
#: A channel at or above this share of full scale is clipping.
DC_SATURATED = 0.98
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
#: Contact: IR DC above DC_ON and perfusion index above PI_ON for CONTACT_ON_S turns it
#: on; DC below DC_OFF or PI below PI_OFF for CONTACT_OFF_S turns it off.
DC_ON, DC_OFF = 0.10, 0.05
PI_ON, PI_OFF = 0.002, 0.0008
CONTACT_ON_S, CONTACT_OFF_S = 1.0, 1.5
#: Red light per mA above this multiple of IR light per mA means the channels look swapped.
SWAP_RATIO = 1.2
#: Consecutive failed polls before the sensor is taken for gone.
LOST_AFTER_POLLS = 3
#: Seconds between attempts to find a missing sensor.
PROBE_INTERVAL_S = 1.0
#: Seconds between die-temperature readings (p.26: once every few seconds is enough).
TEMP_INTERVAL_S = 10.0
#: ALC_OVF is reported for this long after it was last seen.
LIGHT_HOLD_S = 2.0
#: Seconds of IR kept for the DC, pulsatility and beat-phase estimates.
HISTORY_S = 3.0
#: Clock seconds without a sample after which contact is no longer claimed (a silent chip).
SILENT_S = 1.0
#: OVF_COUNTER saturates here: at 31 the number of lost samples is unknown.
OVF_SATURATED = 31


class _ChipSettings(TypedDict):
    """The chip's sampling settings, as :class:`MAX30102` takes them."""

    sample_rate_sps: int
    averaging: int
    pulse_width_us: int
    adc_range_na: int


class PulseSensor:
    """A MAX30102 that keeps working through whatever happens at the bedside.

    :param bus_factory: returns an smbus2-compatible bus; called again to reopen the bus
        after the sensor went missing (e.g. ``lambda: open_i2c_bus(1)`` or
        ``lambda: simulated_chip``).
    :param address: the chip's 7-bit address.
    :param bus_name: how messages name the bus (``"/dev/i2c-1"``).
    :param sample_rate_sps: ADC sample rate, sps (Table 6).
    :param averaging: samples averaged on the chip; ``rate_hz = sample_rate_sps / averaging``.
    :param pulse_width_us: LED pulse width, µs (Table 7).
    :param adc_range_na: ADC full scale, nA (Table 5).
    :param led_red_ma: Red LED current to start with, mA (0-51).
    :param led_ir_ma: IR LED current to start with, mA (0-51).
    :param led_control: adjust the LED currents to keep the DC in the window.
    :param clock: seconds; times the probing and the temperature, and re-anchors sample
        indices after a gap of unknown length. Pass the loop's clock (the simulated chip's).
    :param sleep: used only for the short backoff between bus retries.
    :param backend: what :meth:`info` reports as the backend (``"simulated"`` over the
        simulated chip).
    :raises SettingError: for settings the data sheet forbids (before touching the bus).

    The sensor is looked for at construction; if it is missing, :attr:`present` is ``False``
    and :meth:`poll` keeps looking.
    """

    def __init__(
        self,
        bus_factory: Callable[[], Any],
        *,
        address: int = ADDRESS,
        bus_name: str = "/dev/i2c-1",
        sample_rate_sps: int = 100,
        averaging: int = 1,
        pulse_width_us: int = 411,
        adc_range_na: int = 4096,
        led_red_ma: float = 7.0,
        led_ir_ma: float = 7.0,
        led_control: bool = True,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
        backend: str = "max30102",
    ) -> None:
        check_settings(sample_rate_sps, averaging, pulse_width_us, adc_range_na)
        led_code(led_red_ma, "led_red_ma")
        led_code(led_ir_ma, "led_ir_ma")
        self._bus_factory = bus_factory
        self.address = address
        self.bus_name = bus_name
        self.backend = backend
        self._settings: _ChipSettings = {
            "sample_rate_sps": sample_rate_sps,
            "averaging": averaging,
            "pulse_width_us": pulse_width_us,
            "adc_range_na": adc_range_na,
        }
        #: Output sample rate in Hz (samples per second in the blocks).
        self.rate_hz = sample_rate_sps / averaging
        self.led_control = led_control
        self._clock = clock
        self._retrier = Retrier(sleep=sleep)
        self._bus: Any = None
        self._drv: MAX30102 | None = None
        self._closed = False
        self._standby = False
        self._led_red_ma = float(led_red_ma)
        self._led_ir_ma = float(led_ir_ma)

        #: Counters reported by :meth:`info`.
        self.bus_errors = 0
        self.reinits = 0
        self.overflows = 0
        self.samples_lost = 0
        self.led_steps = 0
        self.errors = 0
        self.last_error: str | None = None
        self.part_id: int | None = None
        self.rev_id: int | None = None
        self.temperature_c: float | None = None
        #: Red and IR look swapped (checked whenever a finger is found); ``None`` until then.
        self.channels_swapped: bool | None = None

        self._next_index = 0
        self._t_anchor: float | None = None  # clock time of sample index 0
        self._gap_pending = False
        self._unknown_gap = False
        self._failed_polls = 0
        self._next_probe = -math.inf
        self._next_temp = -math.inf
        self._temp_pending = False
        self._light_until = -math.inf
        self._light_logged = False
        self._now = -math.inf
        self._ir_hist = np.zeros(0)
        self._red_hist = np.zeros(0)
        self._mark_until = 0  # sample index up to which samples are marked (LED step)
        self._last_step_index = -(10**12)
        self._out_of_window_since: int | None = None
        self._contact = False
        self._contact_candidate_since: int | None = None
        self._last_sample_t = -math.inf
        self._connect(self._clock())

    # --- connection and recovery --------------------------------------------------------

    @property
    def stream_start_s(self) -> float | None:
        """Clock time (s) of sample index 0, or ``None`` before the sensor was first found.

        Sample ``i`` was taken at about ``stream_start_s + i / rate_hz`` on the clock given
        to the constructor (the chip's crystal and the clock drift apart slowly).
        """
        return None if self._t_anchor is None else self._t_anchor + 1.0 / self.rate_hz

    @property
    def present(self) -> bool:
        """``True`` while a working MAX30102 is connected and sampling."""
        return self._drv is not None

    def _connect(self, now: float) -> None:
        self._next_probe = now + PROBE_INTERVAL_S
        try:
            if self._bus is None:
                self._bus = self._bus_factory()
            drv = MAX30102(
                self._bus,
                self.address,
                bus_name=self.bus_name,
                led_red_ma=self._led_red_ma,
                led_ir_ma=self._led_ir_ma,
                retrier=self._retrier,
                **self._settings,
            )
        except Exception as exc:  # no sensor fault may stop the box
            message = str(exc) if isinstance(exc, HardwareError) else f"{type(exc).__name__}: {exc}"
            if message != self.last_error:
                log.warning("pulse sensor: %s", message)
            self.last_error = message
            self._close_bus()
            return
        if self._t_anchor is None:
            self._t_anchor = now
        else:
            self.reinits += 1
            self._gap_pending = self._unknown_gap = True
            log.warning(
                "pulse sensor: re-initialised at 0x%02X on %s after it went missing",
                self.address,
                self.bus_name,
            )
        self._drv = drv
        self.part_id, self.rev_id = drv.part_id, drv.rev_id
        self.last_error = None
        self._failed_polls = 0
        self._reset_history()

    def _lose(self, reason: str) -> None:
        log.warning("pulse sensor lost (%s); looking for it every %g s", reason, PROBE_INTERVAL_S)
        if self._drv is not None:
            self._drv.close()
            self._drv = None
        self._close_bus()
        self._gap_pending = self._unknown_gap = True
        self._next_probe = -math.inf
        self._temp_pending = False
        self._set_contact(False)
        self._reset_history()  # so SENSOR? shows no stale light levels

    def _close_bus(self) -> None:
        bus, self._bus = self._bus, None
        close = getattr(bus, "close", None)
        if close is not None:
            try:
                close()
            except OSError as exc:
                log.debug("closing the I2C bus failed: %s", exc)

    # --- polling -------------------------------------------------------------------------

    def poll(self) -> SampleBlock | None:
        """Read what the FIFO holds; ``None`` when there is nothing (or no sensor).

        Never raises: errors are counted (``bus_errors``, ``errors``) and reported by
        :meth:`info`, and the sensor is looked for again when it has gone.
        """
        if self._closed or self._standby:
            return None
        try:
            return self._poll(self._clock())
        except Exception as exc:  # the sound plays on whatever the sensor does
            self.errors += 1
            self.last_error = f"{type(exc).__name__}: {exc}"
            log.exception("pulse sensor poll failed")
            return None

    def _poll(self, now: float) -> SampleBlock | None:
        if self._drv is None:
            if now < self._next_probe:
                return None
            self._connect(now)
            if self._drv is None:
                return None
        drv = self._drv
        try:
            fifo = drv.read_fifo()
        except BusError as exc:
            self.bus_errors += 1
            self._failed_polls += 1
            self.last_error = str(exc)
            if self._failed_polls >= LOST_AFTER_POLLS:
                self._lose(str(exc))
            return None
        self._failed_polls = 0
        if fifo.power_up:
            self._lose("it powered up afresh (PWR_RDY): its settings are gone")
            self._connect(now)
            return None
        self._note_light(fifo.light, now)
        n = len(fifo.ir)
        block = None
        if n:
            self._last_sample_t = now
        elif self._contact and now - self._last_sample_t > SILENT_S:
            self._set_contact(False)  # no samples: nothing says a finger is there
        if n:
            start = self._next_index
            if self._unknown_gap and self._t_anchor is not None:
                start = max(start, math.floor((now - self._t_anchor) * self.rate_hz) - n)
                self._unknown_gap = False
            block = self._make_block(start, fifo.ir, fifo.red)
            self._next_index = start + n
        if fifo.lost:
            self.overflows += 1
            self.samples_lost += fifo.lost
            self._gap_pending = True
            if fifo.lost >= OVF_SATURATED:
                self._unknown_gap = True  # how many were lost is unknown: re-anchor by clock
            else:
                self._next_index += fifo.lost
            self._reset_history()
        self._housekeeping(now)
        return block

    def _make_block(self, start: int, ir: np.ndarray, red: np.ndarray) -> SampleBlock:
        n = len(ir)
        gap = self._gap_pending
        self._gap_pending = False
        if gap:
            self._reset_history()
        keep = round(HISTORY_S * self.rate_hz)
        self._ir_hist = np.concatenate((self._ir_hist, ir))[-keep:]
        self._red_hist = np.concatenate((self._red_hist, red))[-keep:]
        step = None
        if self._mark_until > start:
            step = np.arange(start, start + n) < self._mark_until
        end_index = start + n
        self._update_contact(end_index)
        if self.led_control and not self._light_now():
            self._control_leds(end_index)
        return SampleBlock(
            start_index=start,
            rate_hz=self.rate_hz,
            ir=ir,
            red=red,
            gap_before=gap,
            led_step=step,
            contact=self._contact,
        )

    def _reset_history(self) -> None:
        self._ir_hist = np.zeros(0)
        self._red_hist = np.zeros(0)
        self._contact_candidate_since = None

    def _housekeeping(self, now: float) -> None:
        drv = self._drv
        if drv is None:
            return
        try:
            if self._temp_pending:
                value = drv.read_temperature()
                if value is not None:
                    self.temperature_c = value
                    self._temp_pending = False
            elif now >= self._next_temp:
                drv.start_temperature()
                self._temp_pending = True
                self._next_temp = now + TEMP_INTERVAL_S
        except BusError as exc:
            self.bus_errors += 1
            self.last_error = str(exc)

    def _note_light(self, light: bool, now: float) -> None:
        if light:
            self._light_until = now + LIGHT_HOLD_S
            if not self._light_logged:
                log.warning("pulse sensor exposed to light: readings are not valid")
                self._light_logged = True
        elif self._light_logged and now >= self._light_until:
            log.info("pulse sensor no longer exposed to light")
            self._light_logged = False
        self._now = now

    def _light_now(self) -> bool:
        return self._now < self._light_until

    @property
    def light_exposed(self) -> bool:
        """``True`` while ambient light overwhelms the sensor (ALC_OVF seen in the last 2 s)."""
        return self._clock() < self._light_until

    # --- finger contact ------------------------------------------------------------------

    @property
    def contact(self) -> bool:
        """Finger contact, with hysteresis, as of the last block."""
        return self._contact

    def _levels(self) -> tuple[float, float] | None:
        """IR DC as a share of full scale and perfusion index (AC / DC), from the history.

        The AC part is what remains after a 1 s moving average is taken off: that keeps the
        cardiac pulse (>= 0.6 Hz mostly) and removes breathing wander (0.2 Hz to 7 %).
        """
        x = self._ir_hist
        width = max(1, round(1.0 * self.rate_hz))
        if len(x) < width + round(1.0 * self.rate_hz):
            return None
        dc = float(np.median(x))
        if dc <= 0:
            return 0.0, 0.0
        trend = np.convolve(x, np.ones(width) / width, mode="valid")
        first = (width - 1) // 2
        ac = _smooth(x[first : first + len(trend)] - trend, self.rate_hz)
        p2p = float(np.percentile(ac, 97) - np.percentile(ac, 3))
        return dc / FULL_SCALE, p2p / dc

    def _update_contact(self, index: int) -> None:
        if self._light_now():
            return  # readings are invalid: keep the last verdict
        levels = self._levels()
        if levels is None:
            return
        dc, pi = levels
        # A lifted finger shows at once in the newest samples (the history median lags).
        recent = float(np.median(self._ir_hist[-max(1, round(0.25 * self.rate_hz)) :]))
        if self._contact and recent < DC_OFF * FULL_SCALE:
            self._set_contact(False)
            return
        if dc >= DC_SATURATED:
            return  # clipped: the pulse cannot be seen until the LED steps down
        if self._contact:
            flip = dc < DC_OFF or pi < PI_OFF
            hold = CONTACT_OFF_S
        else:
            flip = dc >= DC_ON and pi >= PI_ON
            hold = CONTACT_ON_S
        if not flip:
            self._contact_candidate_since = None
            return
        if self._contact_candidate_since is None:
            self._contact_candidate_since = index
        if dc < DC_OFF or (index - self._contact_candidate_since) / self.rate_hz >= hold:
            self._set_contact(not self._contact)

    def _set_contact(self, value: bool) -> None:
        if value != self._contact:
            log.info("pulse sensor: finger %s", "on" if value else "off")
        self._contact = value
        self._contact_candidate_since = None
        if value:
            self._check_channels()

    def _check_channels(self) -> None:
        # A finger passes more IR than red light per mA of drive; some clone boards swap
        # the two LEDs, which shows as the opposite (the data sheet order is Red then IR).
        if not (len(self._ir_hist) and self._led_ir_ma and self._led_red_ma):
            return
        ir = float(np.median(self._ir_hist)) / self._led_ir_ma
        red = float(np.median(self._red_hist)) / self._led_red_ma
        swapped = red > SWAP_RATIO * ir
        if swapped and not self.channels_swapped:
            log.warning(
                "pulse sensor: the 'Red' channel passes %.1fx the light of the 'IR' channel "
                "through the finger: Red and IR look swapped (a clone board?)",
                red / ir,
            )
        self.channels_swapped = swapped

    # --- LED current control -------------------------------------------------------------

    def _control_leds(self, index: int) -> None:
        window = round(1.0 * self.rate_hz)
        if self._drv is None or len(self._ir_hist) < window:
            return
        ir = self._ir_hist[-window:]
        red = self._red_hist[-window:]
        ir_dc = float(np.median(ir)) / FULL_SCALE
        red_dc = float(np.median(red)) / FULL_SCALE
        if ir_dc < DC_ON:
            return  # nothing on the sensor: raising the LEDs would only light the room
        saturated = max(float(ir.max()), float(red.max())) >= DC_SATURATED * FULL_SCALE
        out = saturated or not (DC_LOW <= ir_dc <= DC_HIGH and DC_LOW <= red_dc <= DC_HIGH)
        if not out:
            self._out_of_window_since = None
            return
        if self._out_of_window_since is None:
            self._out_of_window_since = index
        since_step = (index - self._last_step_index) / self.rate_hz
        if saturated:
            if since_step < STEP_MARK_S * 2:
                return
        else:
            if since_step < STEP_INTERVAL_S:
                return
            waited = (index - self._out_of_window_since) / self.rate_hz
            if waited < STEP_FORCE_AFTER_S and not self._in_diastole():
                return
        new_ir = _step(self._led_ir_ma, ir_dc, float(ir.max()) / FULL_SCALE)
        new_red = _step(self._led_red_ma, red_dc, float(red.max()) / FULL_SCALE)
        if new_ir == self._led_ir_ma and new_red == self._led_red_ma:
            return
        try:
            if new_ir != self._led_ir_ma:
                self._drv.led_ir_ma = new_ir
            if new_red != self._led_red_ma:
                self._drv.led_red_ma = new_red
        except BusError as exc:
            self.bus_errors += 1
            self.last_error = str(exc)
            return
        # Photocurrent is proportional to LED current: rescale the history so the DC and
        # pulsatility estimates carry on across the step.
        self._ir_hist = self._ir_hist * (new_ir / self._led_ir_ma if self._led_ir_ma else 1.0)
        self._red_hist = self._red_hist * (new_red / self._led_red_ma if self._led_red_ma else 1.0)
        self._led_ir_ma, self._led_red_ma = new_ir, new_red
        self._last_step_index = index
        self._mark_until = index + max(1, round(STEP_MARK_S * self.rate_hz))
        self.led_steps += 1
        self._out_of_window_since = None

    def _in_diastole(self) -> bool:
        """``True`` if the newest sample lies in the diastolic part of a beat.

        The raw signal dips at each systolic peak; a step is allowed 0.12 s after a clear
        peak (of the inverted signal) and before 55 % of the beat interval has passed.
        """
        rate = self.rate_hz
        x = self._ir_hist[-round(2.5 * rate) :]
        if len(x) < round(1.5 * rate):
            return False
        s = _smooth(-(x - _linear_fit(x)), rate)
        p2p = float(np.percentile(s, 97) - np.percentile(s, 3))
        dc = float(np.median(x))
        if dc <= 0 or p2p / dc < PI_OFF:
            return True  # no pulse to disturb
        half = max(1, round(0.25 * rate))
        confirm = max(1, round(0.12 * rate))
        threshold = float(np.median(s)) + 0.25 * p2p
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

    # --- reporting, lifecycle ---------------------------------------------------------------

    def info(self) -> dict[str, Any]:
        """Raw facts for the console's ``SENSOR?`` (no quality judgement).

        ``part`` is the PART_ID read (0x15) and ``part_name`` what it means; ``error`` is the
        last problem met (``None`` once the sensor works again); DC levels are raw counts
        (median of the last 3 s), ``perfusion_pct`` the pulsatile share of the IR light.
        """
        levels = self._levels() if self._drv is not None else None
        ir_dc = float(np.median(self._ir_hist)) if len(self._ir_hist) else None
        red_dc = float(np.median(self._red_hist)) if len(self._red_hist) else None
        return {
            "backend": self.backend,
            "present": self.present,
            "part": self.part_id,
            "part_name": "MAX30102" if self.part_id == PART_ID else None,
            "rev": self.rev_id,
            "address": self.address,
            "bus": self.bus_name,
            "rate_hz": self.rate_hz,
            **self._settings,
            "led_red_ma": self._led_red_ma,
            "led_ir_ma": self._led_ir_ma,
            "ir_dc": ir_dc,
            "red_dc": red_dc,
            "perfusion_pct": None if levels is None else round(100.0 * levels[1], 3),
            "contact": self._contact,
            "standby": self._standby,
            "samples": self._next_index,
            "overflows": self.overflows,
            "samples_lost": self.samples_lost,
            "bus_errors": self.bus_errors,
            "bus_retries": self._retrier.retries,
            "reinits": self.reinits,
            "led_steps": self.led_steps,
            "temperature_c": self.temperature_c,
            "light_exposed": self.light_exposed,
            "channels_swapped": self.channels_swapped,
            "error": self.last_error,
        }

    @property
    def standby(self) -> bool:
        """True while the chip is shut down between sessions (LEDs dark, 0.7 µA)."""
        return self._standby

    def set_standby(self, on: bool) -> None:
        """Shut the chip down between sessions, or wake it for the next one.

        A red LED glowing all night by a bed is unwelcome, and nobody reads the pulse when
        no session plays. On waking the FIFO is cleared, the stream goes on at the index the
        clock says (``stream_start_s`` stays valid) and the first block is marked as a gap.
        Never raises: a bus error is counted, and a lost sensor is found again by :meth:`poll`.
        """
        on = bool(on)
        if on == self._standby or self._closed:
            return
        self._standby = on
        self._contact = False
        drv = self._drv
        if drv is None:
            return
        try:
            if on:
                drv.shutdown()
            else:
                drv.wake()
                drv.clear_fifo()
                self._unknown_gap = True
                self._gap_pending = True
                self._reset_history()
        except BusError as exc:
            self.bus_errors += 1
            self.last_error = str(exc)

    def close(self) -> None:
        """Shut the chip down and close the bus. Safe to call again."""
        if self._closed:
            return
        self._closed = True
        if self._drv is not None:
            self._drv.close()
            self._drv = None
        self._close_bus()

    def __enter__(self) -> PulseSensor:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def __repr__(self) -> str:
        if self._closed:
            return f"<PulseSensor 0x{self.address:02X} on {self.bus_name} closed>"
        state = "present" if self.present else "missing"
        return (
            f"<PulseSensor 0x{self.address:02X} on {self.bus_name} {state} {self.rate_hz:g} Hz "
            f"IR {self._led_ir_ma:g} mA Red {self._led_red_ma:g} mA contact={self._contact}>"
        )


class NoSensor:
    """The pulse sensor of a box without one (backend ``none``): never present.

    :param rate_hz: the rate reported, so the heart analysis can be built all the same.
    """

    present = False
    contact = False
    light_exposed = False
    #: Never dark between sessions: there is nothing to darken.
    standby = False

    def __init__(self, rate_hz: float = 100.0) -> None:
        self.rate_hz = float(rate_hz)
        self._closed = False

    def poll(self) -> SampleBlock | None:
        """Always ``None``: there is nothing to read."""
        return None

    def set_standby(self, on: bool) -> None:
        """Nothing to darken or wake."""

    def info(self) -> dict[str, Any]:
        """The same keys as :meth:`PulseSensor.info`, saying there is no sensor."""
        return {
            "backend": "none",
            "present": False,
            "part": None,
            "part_name": None,
            "rev": None,
            "rate_hz": self.rate_hz,
            "led_red_ma": None,
            "led_ir_ma": None,
            "ir_dc": None,
            "red_dc": None,
            "perfusion_pct": None,
            "contact": False,
            "samples": 0,
            "overflows": 0,
            "samples_lost": 0,
            "bus_errors": 0,
            "bus_retries": 0,
            "reinits": 0,
            "led_steps": 0,
            "temperature_c": None,
            "light_exposed": False,
            "error": "no pulse sensor (sensor.backend = none)",
        }

    def close(self) -> None:
        """Nothing to release. Safe to call again."""
        self._closed = True

    def __enter__(self) -> NoSensor:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<NoSensor {self.rate_hz:g} Hz>"


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
