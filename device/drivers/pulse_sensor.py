"""The pulse sensor as the box uses it: MAX30102 driver + LED control + contact + recovery.

:class:`PulseSensor` is polled by a loop task (every 0.1 s) and hands back
:class:`~device.heart.samples.SampleBlock` s. It never raises from :meth:`PulseSensor.poll`:

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
from typing import Any

import numpy as np

from device.drivers.contact import (
    CONTACT_OFF_S,
    CONTACT_ON_S,
    DC_OFF,
    DC_ON,
    DC_SATURATED,
    LIGHT_HOLD_S,
    PI_OFF,
    PI_ON,
    SWAP_RATIO,
    ContactDetection,
    _smooth,
)
from device.drivers.i2c import Retrier
from device.drivers.led_control import (
    DC_AIM,
    DC_HIGH,
    DC_LOW,
    LED_MAX_MA,
    LED_MIN_MA,
    STEP_FORCE_AFTER_S,
    STEP_INTERVAL_S,
    STEP_MARK_S,
    STEP_MAX,
    STEP_SATURATED,
    LedControl,
    _linear_fit,
    _step,
)
from device.drivers.max30102 import (
    ADDRESS,
    MAX30102,
    PART_ID,
    check_settings,
    led_code,
)
from device.drivers.no_sensor import NoSensor
from device.drivers.sensor_recovery import (
    PROBE_INTERVAL_S,
    TEMP_INTERVAL_S,
    SensorRecovery,
    _ChipSettings,
)
from device.exc import BusError
from device.heart.samples import SampleBlock

log = logging.getLogger(__name__)

#: Consecutive failed polls before the sensor is taken for gone.
LOST_AFTER_POLLS = 3
#: Seconds of IR kept for the DC, pulsatility and beat-phase estimates.
HISTORY_S = 3.0
#: Clock seconds without a sample after which contact is no longer claimed (a silent chip).
SILENT_S = 1.0
#: OVF_COUNTER saturates here: at 31 the number of lost samples is unknown.
OVF_SATURATED = 31

#: The names this module has always offered (LED control, contact, recovery and NoSensor
#: live in their own modules now).
__all__ = [
    "CONTACT_OFF_S",
    "CONTACT_ON_S",
    "DC_AIM",
    "DC_HIGH",
    "DC_LOW",
    "DC_OFF",
    "DC_ON",
    "DC_SATURATED",
    "HISTORY_S",
    "LED_MAX_MA",
    "LED_MIN_MA",
    "LIGHT_HOLD_S",
    "LOST_AFTER_POLLS",
    "OVF_SATURATED",
    "PI_OFF",
    "PI_ON",
    "PROBE_INTERVAL_S",
    "SILENT_S",
    "STEP_FORCE_AFTER_S",
    "STEP_INTERVAL_S",
    "STEP_MARK_S",
    "STEP_MAX",
    "STEP_SATURATED",
    "SWAP_RATIO",
    "TEMP_INTERVAL_S",
    "ContactDetection",
    "LedControl",
    "NoSensor",
    "PulseSensor",
    "SensorRecovery",
    "_linear_fit",
    "_smooth",
    "_step",
]


class PulseSensor(SensorRecovery):
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
