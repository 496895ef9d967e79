"""The pulse sensor of a box without one (``sensor.backend = none``)."""

from __future__ import annotations

from typing import Any

from device.heart.samples import SampleBlock


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
