"""Finger contact and ambient light of the pulse sensor: the :class:`ContactDetector`.

Contact comes from the IR DC level and the pulsatile amplitude (perfusion index), with level
and time hysteresis; ALC_OVF is held for 2 s as "exposed to light"; a finger found also
checks whether the board swapped Red and IR. The levels come from the sensor's
:class:`~device.drivers.running_stats.SampleHistory`, whose order statistics are kept as
the samples arrive, so a poll sorts nothing.
"""

from __future__ import annotations

import logging
import math
from typing import Protocol

from device.drivers.max30102 import FULL_SCALE
from device.drivers.running_stats import SampleHistory, median

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


class ContactSensing(Protocol):
    """What the pulse sensor asks of its contact detector."""

    @property
    def contact(self) -> bool:
        """Finger contact, with hysteresis, as of the last block."""
        ...

    channels_swapped: bool | None

    def note_light(self, light: bool, now: float) -> None:
        """Take the chip's ALC_OVF flag of a poll at clock time ``now``."""
        ...

    def light_at(self, now: float) -> bool:
        """Ambient light overwhelmed the sensor within the hold time before ``now``."""
        ...

    def light_now(self) -> bool:
        """Light was seen within the hold time before the last poll."""
        ...

    def update(self, end_index: int, led_ir_ma: float, led_red_ma: float) -> None:
        """Judge contact after the samples up to ``end_index`` joined the history."""
        ...

    def set_contact(self, value: bool, *, quiet: bool = False) -> None:
        """Force the verdict (no samples, a lost sensor, standby)."""
        ...

    def levels(self) -> tuple[float, float] | None:
        """IR DC as a share of full scale and the perfusion index; ``None``: too few samples."""
        ...

    def restart(self) -> None:
        """Forget a change of verdict under way (the history was reset)."""
        ...


class ContactDetector:
    """Contact and light detection over a sensor's sample history.

    :param history: the sensor's recent samples (read only here).
    """

    def __init__(self, history: SampleHistory) -> None:
        self._history = history
        self.rate_hz = history.rate_hz
        self._contact = False
        self._candidate_since: int | None = None
        #: Red and IR look swapped (checked whenever a finger is found); ``None`` until then.
        self.channels_swapped: bool | None = None
        self._light_until = -math.inf
        self._light_logged = False
        self._now = -math.inf
        self._led_ir_ma = 0.0
        self._led_red_ma = 0.0

    # --- ambient light ---------------------------------------------------------------------

    def note_light(self, light: bool, now: float) -> None:
        """Take the chip's ALC_OVF flag of a poll at clock time ``now``."""
        if light:
            self._light_until = now + LIGHT_HOLD_S
            if not self._light_logged:
                log.warning("pulse sensor exposed to light: readings are not valid")
                self._light_logged = True
        elif self._light_logged and now >= self._light_until:
            log.info("pulse sensor no longer exposed to light")
            self._light_logged = False
        self._now = now

    def light_now(self) -> bool:
        """Light was seen within the hold time before the last poll."""
        return self._now < self._light_until

    def light_at(self, now: float) -> bool:
        """Light was seen within the hold time before clock time ``now``."""
        return now < self._light_until

    # --- finger contact --------------------------------------------------------------------

    @property
    def contact(self) -> bool:
        """Finger contact, with hysteresis, as of the last block."""
        return self._contact

    def restart(self) -> None:
        """Forget a change of verdict under way (the history was reset)."""
        self._candidate_since = None

    def levels(self) -> tuple[float, float] | None:
        """IR DC as a share of full scale and perfusion index (AC / DC), from the history.

        The AC part is what remains after a 1 s moving average is taken off: that keeps the
        cardiac pulse (>= 0.6 Hz mostly) and removes breathing wander (0.2 Hz to 7 %).
        """
        h = self._history
        width = max(1, round(1.0 * self.rate_hz))
        if len(h) < width + round(1.0 * self.rate_hz):
            return None
        dc = h.ir_median()
        if dc <= 0:
            return 0.0, 0.0
        low, high = h.ac_percentiles(3, 97)
        p2p = high - low
        return dc / FULL_SCALE, p2p / dc

    def update(self, end_index: int, led_ir_ma: float, led_red_ma: float) -> None:
        """Judge contact after the samples up to ``end_index`` joined the history."""
        self._led_ir_ma, self._led_red_ma = led_ir_ma, led_red_ma
        if self.light_now():
            return  # readings are invalid: keep the last verdict
        levels = self.levels()
        if levels is None:
            return
        dc, pi = levels
        # A lifted finger shows at once in the newest samples (the history median lags).
        if self._contact and self._history.recent_ir_median() < DC_OFF * FULL_SCALE:
            self.set_contact(False)
            return
        if dc >= DC_SATURATED:
            return  # clipped: the pulse cannot be seen until the LED steps down
        flip, hold = self._flip_rule(dc, pi)
        if not flip:
            self._candidate_since = None
            return
        if self._candidate_since is None:
            self._candidate_since = end_index
        if dc < DC_OFF or (end_index - self._candidate_since) / self.rate_hz >= hold:
            self.set_contact(not self._contact)

    def _flip_rule(self, dc: float, pi: float) -> tuple[bool, float]:
        """Whether these levels argue for the other verdict, and how long (s) they must
        keep doing so: off below ``DC_OFF`` or ``PI_OFF``, on above ``DC_ON`` and ``PI_ON``."""
        if self._contact:
            return dc < DC_OFF or pi < PI_OFF, CONTACT_OFF_S
        return dc >= DC_ON and pi >= PI_ON, CONTACT_ON_S

    def set_contact(self, value: bool, *, quiet: bool = False) -> None:
        """Force the verdict (no samples, a lost sensor, standby); logs a change unless quiet."""
        if value != self._contact and not quiet:
            log.info("pulse sensor: finger %s", "on" if value else "off")
        self._contact = value
        self._candidate_since = None
        if value:
            self._check_channels()

    def _check_channels(self) -> None:
        """Note whether Red and IR look swapped (a clone board), warning when they start to.

        A finger passes more IR than red light per mA of drive; some clone boards swap
        the two LEDs, which shows as the opposite (the data sheet order is Red then IR).
        """
        h = self._history
        if not (len(h) and self._led_ir_ma and self._led_red_ma):
            return
        ir = h.ir_median() / self._led_ir_ma
        red = median(h.red) / self._led_red_ma
        swapped = red > SWAP_RATIO * ir
        if swapped and not self.channels_swapped:
            log.warning(
                "pulse sensor: the 'Red' channel passes %.1fx the light of the 'IR' channel "
                "through the finger: Red and IR look swapped (a clone board?)",
                red / ir,
            )
        self.channels_swapped = swapped
