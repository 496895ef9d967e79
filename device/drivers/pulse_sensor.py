"""The pulse sensor as the box uses it: a MAX30102 driver and the three parts it owns.

:class:`PulseSensor` is polled by a loop task (every 0.1 s) and hands back
:class:`~device.heart.samples.SampleBlock` s; :meth:`PulseSensor.poll` never raises. It
keeps the sample stream (indices, gaps, the last 3 s in a
:class:`~device.drivers.running_stats.SampleHistory`) and owns three parts, each behind a
small interface:

* a :class:`~device.drivers.led_control.LedController` keeps the DC level in a window of
  the ADC range with slow steps made in the diastolic part of a beat (the samples after a
  step are marked in ``SampleBlock.led_step``);
* a :class:`~device.drivers.contact.ContactDetector` judges finger contact from the DC level
  and the perfusion index, with hysteresis, and ambient light (no proximity mode: Rev 1 of
  the data sheet removed it);
* a :class:`~device.drivers.sensor_recovery.Reconnector` finds the chip again when it stops
  answering (a failed transfer is retried in the driver and counted) or browns out.

Lost samples (FIFO overflow, replug) mark a gap on the next block, and sample indices skip
what was lost, so timestamps stay ``index / rate_hz``. :class:`NoSensor` has the same
interface for a box without a sensor (backend ``none``).
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable
from typing import Any

import numpy as np

from device.drivers.contact import ContactDetector, ContactSensing
from device.drivers.i2c import Retrier
from device.drivers.led_control import LedController, LedDriving
from device.drivers.max30102 import ADDRESS, PART_ID, check_settings, led_code
from device.drivers.no_sensor import NoSensor
from device.drivers.running_stats import SampleHistory, median
from device.drivers.sensor_recovery import PROBE_INTERVAL_S, ChipSettings, Reconnecting, Reconnector
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

__all__ = ["HISTORY_S", "LOST_AFTER_POLLS", "OVF_SATURATED", "SILENT_S", "NoSensor", "PulseSensor"]


class PulseSensor:
    """A MAX30102 that keeps working through whatever happens at the bedside.

    :param bus_factory: returns an smbus2-compatible bus; called again to reopen the bus
        after the sensor went missing (``lambda: open_i2c_bus(1)``, a simulated chip).
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
    :param backend: what :meth:`info` reports as the backend (``"simulated"``).
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
        self.address = address
        self.bus_name = bus_name
        self.backend = backend
        settings: ChipSettings = {
            "sample_rate_sps": sample_rate_sps,
            "averaging": averaging,
            "pulse_width_us": pulse_width_us,
            "adc_range_na": adc_range_na,
        }
        #: Output sample rate in Hz (samples per second in the blocks).
        self.rate_hz = sample_rate_sps / averaging
        self.led_control = led_control
        self._clock = clock
        self._closed = False
        self._standby = False
        self._history = SampleHistory(self.rate_hz, HISTORY_S)
        self._link: Reconnecting = Reconnector(
            bus_factory, address, bus_name, settings, Retrier(sleep=sleep)
        )
        self._leds: LedDriving = LedController(self._history, led_ir_ma, led_red_ma)
        self._finger: ContactSensing = ContactDetector(self._history)

        #: Counters reported by :meth:`info`.
        self.bus_errors = 0
        self.reinits = 0
        self.overflows = 0
        self.samples_lost = 0
        self.errors = 0
        self.last_error: str | None = None

        self._next_index = 0
        self._t_anchor: float | None = None  # clock time of sample index 0
        self._gap_pending = False
        self._unknown_gap = False
        self._failed_polls = 0
        self._last_sample_t = -math.inf
        self._connect(self._clock())

    @property
    def present(self) -> bool:
        """``True`` while a working MAX30102 is connected and sampling."""
        return self._link.driver is not None

    @property
    def contact(self) -> bool:
        """Finger contact, with hysteresis, as of the last block."""
        return self._finger.contact

    @property
    def light_exposed(self) -> bool:
        """``True`` while ambient light overwhelms the sensor (ALC_OVF seen in the last 2 s)."""
        return self._finger.light_at(self._clock())

    @property
    def channels_swapped(self) -> bool | None:
        """Red and IR look swapped (checked whenever a finger is found); ``None`` until then."""
        return self._finger.channels_swapped

    @property
    def led_steps(self) -> int:
        """LED current steps made so far."""
        return self._leds.steps

    @property
    def temperature_c(self) -> float | None:
        """Die temperature last read, °C."""
        return self._link.temperature_c

    @property
    def stream_start_s(self) -> float | None:
        """Clock time (s) of sample index 0, or ``None`` before the sensor was first found.

        Sample ``i`` was taken at about ``stream_start_s + i / rate_hz`` on the clock given
        to the constructor (the chip's crystal and the clock drift apart slowly).
        """
        return None if self._t_anchor is None else self._t_anchor + 1.0 / self.rate_hz

    def _connect(self, now: float) -> None:
        error = self._link.connect(
            now, red_ma=self._leds.red_ma, ir_ma=self._leds.ir_ma, announce=self.last_error is None
        )
        if error is not None:
            if error != self.last_error:
                log.warning("pulse sensor: %s", error)
            self.last_error = error
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
        self.last_error = None
        self._failed_polls = 0
        self._reset_history()

    def _lose(self, reason: str) -> None:
        log.warning("pulse sensor lost (%s); looking for it every %g s", reason, PROBE_INTERVAL_S)
        self._link.lose()
        self._gap_pending = self._unknown_gap = True
        self._finger.set_contact(False)
        self._reset_history()  # so SENSOR? shows no stale light levels

    def _reset_history(self) -> None:
        self._history.clear()
        self._finger.restart()

    def _bus_error(self, exc: BusError) -> None:
        self.bus_errors += 1
        self.last_error = str(exc)

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
        if self._link.driver is None:
            if not self._link.due(now):
                return None
            self._connect(now)
            if self._link.driver is None:
                return None
        try:
            fifo = self._link.driver.read_fifo()
        except BusError as exc:
            self._bus_error(exc)
            self._failed_polls += 1
            if self._failed_polls >= LOST_AFTER_POLLS:
                self._lose(str(exc))
            return None
        self._failed_polls = 0
        if fifo.power_up:
            self._lose("it powered up afresh (PWR_RDY): its settings are gone")
            self._connect(now)
            return None
        self._finger.note_light(fifo.light, now)
        block = self._take(fifo.ir, fifo.red, now)
        if fifo.lost:
            self.overflows += 1
            self.samples_lost += fifo.lost
            self._gap_pending = True
            if fifo.lost >= OVF_SATURATED:
                self._unknown_gap = True  # how many were lost is unknown: re-anchor by clock
            else:
                self._next_index += fifo.lost
            self._reset_history()
        try:
            self._link.housekeeping(now)
        except BusError as exc:
            self._bus_error(exc)
        return block

    def _take(self, ir: np.ndarray, red: np.ndarray, now: float) -> SampleBlock | None:
        n = len(ir)
        if not n:
            if self._finger.contact and now - self._last_sample_t > SILENT_S:
                self._finger.set_contact(False)  # no samples: nothing says a finger is there
            return None
        self._last_sample_t = now
        start = self._next_index
        if self._unknown_gap and self._t_anchor is not None:
            start = max(start, math.floor((now - self._t_anchor) * self.rate_hz) - n)
            self._unknown_gap = False
        block = self._make_block(start, ir, red)
        self._next_index = start + n
        return block

    def _make_block(self, start: int, ir: np.ndarray, red: np.ndarray) -> SampleBlock:
        n = len(ir)
        gap = self._gap_pending
        self._gap_pending = False
        if gap:
            self._reset_history()
        self._history.append(ir, red)
        step = self._leds.marked(start, n)
        end_index = start + n
        self._finger.update(end_index, self._leds.ir_ma, self._leds.red_ma)
        drv = self._link.driver
        if self.led_control and drv is not None and not self._finger.light_now():
            try:
                self._leds.control(drv, end_index)
            except BusError as exc:
                self._bus_error(exc)
        return SampleBlock(
            start_index=start,
            rate_hz=self.rate_hz,
            ir=ir,
            red=red,
            gap_before=gap,
            led_step=step,
            contact=self._finger.contact,
        )

    def info(self) -> dict[str, Any]:
        """Raw facts for the console's ``SENSOR?`` (no quality judgement).

        ``part`` is the PART_ID read (0x15) and ``part_name`` what it means; ``error`` is the
        last problem met (``None`` once the sensor works again); DC levels are raw counts
        (median of the last 3 s), ``perfusion_pct`` the pulsatile share of the IR light.
        """
        link, h = self._link, self._history
        levels = self._finger.levels() if link.driver is not None else None
        return {
            "backend": self.backend,
            "present": self.present,
            "part": link.part_id,
            "part_name": "MAX30102" if link.part_id == PART_ID else None,
            "rev": link.rev_id,
            "address": self.address,
            "bus": self.bus_name,
            "rate_hz": self.rate_hz,
            **link.settings,
            "led_red_ma": self._leds.red_ma,
            "led_ir_ma": self._leds.ir_ma,
            "ir_dc": h.ir_median() if len(h) else None,
            "red_dc": median(h.red) if len(h) else None,
            "perfusion_pct": None if levels is None else round(100.0 * levels[1], 3),
            "contact": self.contact,
            "standby": self._standby,
            "samples": self._next_index,
            "overflows": self.overflows,
            "samples_lost": self.samples_lost,
            "bus_errors": self.bus_errors,
            "bus_retries": link.retrier.retries,
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
        """Shut the chip down between sessions (no red glow all night), or wake it.

        On waking the FIFO is cleared, the stream goes on at the index the clock says and the
        first block is marked as a gap. Never raises (a bus error is counted).
        """
        on = bool(on)
        if on == self._standby or self._closed:
            return
        self._standby = on
        self._finger.set_contact(False, quiet=True)
        drv = self._link.driver
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
            self._bus_error(exc)

    def close(self) -> None:
        """Shut the chip down and close the bus. Safe to call again."""
        if self._closed:
            return
        self._closed = True
        self._link.close()

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
            f"IR {self._leds.ir_ma:g} mA Red {self._leds.red_ma:g} mA contact={self.contact}>"
        )
