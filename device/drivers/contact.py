"""Finger contact and ambient light of the pulse sensor (a base of :class:`PulseSensor`).

Contact comes from the IR DC level and the pulsatile amplitude (perfusion index), with level
and time hysteresis; ALC_OVF is held for 2 s as "exposed to light"; a finger found also
checks whether the board swapped Red and IR.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

import numpy as np

from device.drivers.max30102 import FULL_SCALE

log = logging.getLogger("device.drivers.pulse_sensor")  # the sensor logs under one name

#: A channel at or above this share of full scale is clipping.
DC_SATURATED = 0.98
#: Contact: IR DC above DC_ON and perfusion index above PI_ON for CONTACT_ON_S turns it
#: on; DC below DC_OFF or PI below PI_OFF for CONTACT_OFF_S turns it off.
DC_ON, DC_OFF = 0.10, 0.05
PI_ON, PI_OFF = 0.002, 0.0008
CONTACT_ON_S, CONTACT_OFF_S = 1.0, 1.5
#: Red light per mA above this multiple of IR light per mA means the channels look swapped.
SWAP_RATIO = 1.2
#: ALC_OVF is reported for this long after it was last seen.
LIGHT_HOLD_S = 2.0


class ContactDetection:
    """Contact and light detection over the sensor's IR/Red history."""

    rate_hz: float
    channels_swapped: bool | None
    _clock: Callable[[], float]
    _contact: bool
    _contact_candidate_since: int | None
    _ir_hist: np.ndarray
    _red_hist: np.ndarray
    _led_ir_ma: float
    _led_red_ma: float
    _light_until: float
    _light_logged: bool
    _now: float

    def _reset_history(self) -> None:
        self._ir_hist = np.zeros(0)
        self._red_hist = np.zeros(0)
        self._contact_candidate_since = None

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


def _smooth(x: np.ndarray, rate_hz: float) -> np.ndarray:
    width = max(1, round(0.04 * rate_hz))
    if width == 1 or len(x) < width:
        return x
    return np.convolve(x, np.ones(width) / width, mode="same")
