"""Connection, recovery and chip upkeep of the pulse sensor: the :class:`Reconnector`.

A sensor that stops answering is closed, probed again every second and re-initialised when
it answers; the die temperature is read every 10 s between polls. The pulse sensor owns one
:class:`Reconnector` and keeps the sample stream (indices, gaps) itself.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable
from typing import Any, Protocol, TypedDict

from device.drivers.i2c import Retrier
from device.drivers.max30102 import MAX30102
from device.exc import HardwareError

log = logging.getLogger("device.drivers.pulse_sensor")  # the sensor logs under one name

#: Seconds between attempts to find a missing sensor.
PROBE_INTERVAL_S = 1.0
#: Seconds between die-temperature readings (p.26: once every few seconds is enough).
TEMP_INTERVAL_S = 10.0


class ChipSettings(TypedDict):
    """The chip's sampling settings, as :class:`MAX30102` takes them."""

    sample_rate_sps: int
    averaging: int
    pulse_width_us: int
    adc_range_na: int


class Reconnecting(Protocol):
    """What the pulse sensor asks of its reconnector."""

    driver: MAX30102 | None
    temperature_c: float | None
    part_id: int | None
    rev_id: int | None
    settings: ChipSettings
    retrier: Retrier

    def due(self, now: float) -> bool:
        """A missing chip may be probed again at clock time ``now``."""
        ...

    def connect(self, now: float, *, red_ma: float, ir_ma: float, announce: bool) -> str | None:
        """Open the bus and initialise the chip; ``None`` on success, else what went wrong."""
        ...

    def lose(self) -> None:
        """Close the chip and the bus; probe again at the next poll."""
        ...

    def housekeeping(self, now: float) -> None:
        """Read the die temperature every so often (:class:`~device.exc.BusError` raised)."""
        ...

    def close(self) -> None:
        """Shut the chip down and close the bus."""
        ...


class Reconnector:
    """Finds, loses and re-initialises the chip, and reads its temperature.

    :param bus_factory: returns an smbus2-compatible bus; called again after a loss.
    :param address: the chip's 7-bit address.
    :param bus_name: how messages name the bus.
    :param settings: the chip's sampling settings.
    :param retrier: retries a failed transfer (its ``retries`` are reported).
    """

    def __init__(
        self,
        bus_factory: Callable[[], Any],
        address: int,
        bus_name: str,
        settings: ChipSettings,
        retrier: Retrier,
    ) -> None:
        self._bus_factory = bus_factory
        self.address = address
        self.bus_name = bus_name
        self.settings = settings
        self.retrier = retrier
        self._bus: Any = None
        #: The working chip, or ``None`` while it is missing.
        self.driver: MAX30102 | None = None
        self.part_id: int | None = None
        self.rev_id: int | None = None
        #: Die temperature last read, °C.
        self.temperature_c: float | None = None
        self._next_probe = -math.inf
        self._next_temp = -math.inf
        self._temp_pending = False

    def due(self, now: float) -> bool:
        """A missing chip may be probed again at clock time ``now``."""
        return now >= self._next_probe

    def connect(self, now: float, *, red_ma: float, ir_ma: float, announce: bool) -> str | None:
        """Open the bus and initialise the chip; ``None`` on success, else what went wrong.

        Never raises: no sensor fault may stop the box.
        """
        self._next_probe = now + PROBE_INTERVAL_S
        try:
            if self._bus is None:
                self._bus = self._bus_factory()
            drv = MAX30102(
                self._bus,
                self.address,
                bus_name=self.bus_name,
                led_red_ma=red_ma,
                led_ir_ma=ir_ma,
                retrier=self.retrier,
                announce=announce,
                **self.settings,
            )
        except Exception as exc:  # no sensor fault may stop the box
            self._close_bus()
            return str(exc) if isinstance(exc, HardwareError) else f"{type(exc).__name__}: {exc}"
        self.driver = drv
        self.part_id, self.rev_id = drv.part_id, drv.rev_id
        return None

    def lose(self) -> None:
        """Close the chip and the bus; probe again at the next poll."""
        if self.driver is not None:
            self.driver.close()
            self.driver = None
        self._close_bus()
        self._next_probe = -math.inf
        self._temp_pending = False

    def _close_bus(self) -> None:
        bus, self._bus = self._bus, None
        close = getattr(bus, "close", None)
        if close is not None:
            try:
                close()
            except OSError as exc:
                log.debug("closing the I2C bus failed: %s", exc)

    def housekeeping(self, now: float) -> None:
        """Read the die temperature every so often (:class:`~device.exc.BusError` raised)."""
        drv = self.driver
        if drv is None:
            return
        if self._temp_pending:
            value = drv.read_temperature()
            if value is not None:
                self.temperature_c = value
                self._temp_pending = False
        elif now >= self._next_temp:
            drv.start_temperature()
            self._temp_pending = True
            self._next_temp = now + TEMP_INTERVAL_S

    def close(self) -> None:
        """Shut the chip down and close the bus. Safe to call again."""
        if self.driver is not None:
            self.driver.close()
            self.driver = None
        self._close_bus()
