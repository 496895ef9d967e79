"""Connection, recovery and chip upkeep of the pulse sensor (a base of :class:`PulseSensor`).

A sensor that stops answering is closed, probed again every second and re-initialised when
it answers; the die temperature is read every 10 s between polls.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable
from typing import Any, TypedDict

from device.drivers.i2c import Retrier
from device.drivers.led_control import LedControl
from device.drivers.max30102 import MAX30102
from device.exc import BusError, HardwareError

log = logging.getLogger("device.drivers.pulse_sensor")  # the sensor logs under one name

#: Seconds between attempts to find a missing sensor.
PROBE_INTERVAL_S = 1.0
#: Seconds between die-temperature readings (p.26: once every few seconds is enough).
TEMP_INTERVAL_S = 10.0


class _ChipSettings(TypedDict):
    """The chip's sampling settings, as :class:`MAX30102` takes them."""

    sample_rate_sps: int
    averaging: int
    pulse_width_us: int
    adc_range_na: int


class SensorRecovery(LedControl):
    """Finds, loses and re-initialises the chip, and reads its temperature."""

    address: int
    bus_name: str
    reinits: int
    part_id: int | None
    rev_id: int | None
    temperature_c: float | None
    _bus: Any
    _bus_factory: Callable[[], Any]
    _retrier: Retrier
    _settings: _ChipSettings
    _t_anchor: float | None
    _gap_pending: bool
    _unknown_gap: bool
    _failed_polls: int
    _next_probe: float
    _next_temp: float
    _temp_pending: bool

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
                announce=self.last_error is None,  # once, not at every retry
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
