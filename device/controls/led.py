"""The status LED: it breathes with the breathing pacer, or blinks a fault code."""

from __future__ import annotations

import math
from dataclasses import dataclass

from device.drivers.gpio import HIGH, LOW, GpioBackend, has_pwm


@dataclass(frozen=True, slots=True)
class FaultCode:
    """A fault blink pattern: ``count`` short blinks, then a pause, repeated."""

    count: int
    on_s: float = 0.2
    off_s: float = 0.3
    pause_s: float = 1.5

    @property
    def period_s(self) -> float:
        """Length of one whole pattern, seconds."""
        return self.count * (self.on_s + self.off_s) + self.pause_s

    def level(self, t: float) -> int:
        """LED level (0/1) ``t`` seconds into the pattern."""
        phase = t % self.period_s
        slot = self.on_s + self.off_s
        if phase >= self.count * slot:
            return LOW
        return HIGH if phase % slot < self.on_s else LOW


#: Blink codes the box uses (count of blinks): 1 sensor, 2 audio, 3 storage, 4 config.
FAULT_CODES = {"sensor": 1, "audio": 2, "storage": 3, "config": 4}


class StatusLed:
    """The status LED: it breathes with the pacer, or blinks a fault code.

    Brightness is computed in the loop at each poll. When the backend can hold a PWM duty
    by itself (RPi.GPIO/rpi-lgpio, see :class:`~device.drivers.gpio.PwmBackend`) the loop
    only moves the duty and the carrier runs at ``pwm_hz``, free of flicker. Otherwise
    the loop switches the pin itself, on for the first ``duty`` of every ``frame_s``
    (visible flicker at loop rates, so only a fallback).

    Modes: ``off``, ``breathe`` (brightness follows the pacer: up while breathing in),
    ``fault`` (a blink code; wins over breathing).
    """

    def __init__(
        self,
        gpio: GpioBackend,
        pin: int,
        *,
        frame_s: float = 0.1,
        max_duty: float = 0.6,
        active_high: bool = True,
        pwm_hz: float = 400.0,
    ) -> None:
        if not 0.0 <= max_duty <= 1.0:
            raise ValueError(f"status LED max_duty must be within 0..1, not {max_duty}")
        if frame_s <= 0:
            raise ValueError(f"status LED frame_s must be positive, not {frame_s}")
        self._gpio = gpio
        self.pin = pin
        self.frame_s = frame_s
        self.max_duty = max_duty
        self._on = HIGH if active_high else LOW
        self._off = LOW if active_high else HIGH
        self.pacer_bpm: float | None = None
        self._phase = 0.0
        self._phase_t = 0.0
        self._fault: FaultCode | None = None
        self._fault_t0 = 0.0
        self._level = self._off
        #: Present brightness (0..1) the PWM is realising.
        self.duty = 0.0
        self.pwm_hz = pwm_hz
        # Library PWM drives the pin high for "on"; an active-low LED keeps loop PWM.
        self._library_pwm = has_pwm(gpio) and active_high
        self._sent_duty = -1.0
        gpio.setup_output(pin, initial=self._off)

    def breathe(self, pacer_bpm: float | None, now: float) -> None:
        """Follow a breathing pacer of ``pacer_bpm`` breaths/min (``None``: LED off).

        The breathing phase is accumulated, so a change of rate bends the light smoothly
        instead of making it jump; it restarts (dark, start of an in-breath) only when the
        pacer comes back on.
        """
        if pacer_bpm is not None and not (0.0 < pacer_bpm <= 60.0):
            raise ValueError(f"pacer rate {pacer_bpm} breaths/min is outside 0..60")
        self._advance(now)
        if self.pacer_bpm is None and pacer_bpm is not None:
            self._phase = 0.0
        self.pacer_bpm = pacer_bpm

    def _advance(self, now: float) -> None:
        if self.pacer_bpm is not None and now > self._phase_t:
            self._phase = (self._phase + (now - self._phase_t) * self.pacer_bpm / 60.0) % 1.0
        self._phase_t = now

    def fault(self, code: int | None, now: float) -> None:
        """Blink fault ``code`` (1-9 blinks), or stop blinking with ``None``."""
        if code is None:
            self._fault = None
            return
        if not 1 <= code <= 9:
            raise ValueError(f"fault code {code} is outside 1..9")
        if self._fault is None or self._fault.count != code:
            self._fault = FaultCode(code)
            self._fault_t0 = now

    @property
    def fault_code(self) -> int | None:
        """The blink code shown, or ``None``."""
        return None if self._fault is None else self._fault.count

    def brightness(self, now: float) -> float:
        """Target brightness 0..1 at ``now`` (before PWM)."""
        if self._fault is not None:
            return float(self._fault.level(now - self._fault_t0))
        if self.pacer_bpm is None:
            return 0.0
        self._advance(now)
        # Raised cosine: dark at the start of an in-breath, brightest at its top.
        return self.max_duty * 0.5 * (1.0 - math.cos(2.0 * math.pi * self._phase))

    def update(self, now: float) -> None:
        """Drive the pin for ``now`` (library PWM duty, or on/off within the PWM frame)."""
        self.duty = self.brightness(now)
        if self._library_pwm:
            # Only real changes go to the library: a 1/200 step is below what eyes see.
            if abs(self.duty - self._sent_duty) >= 0.005 or (
                self.duty == 0.0 and self._sent_duty != 0.0
            ):
                self._gpio.set_pwm(self.pin, self.duty, self.pwm_hz)  # type: ignore[attr-defined]
                self._sent_duty = self.duty
            return
        frame_phase = (now % self.frame_s) / self.frame_s
        level = self._on if frame_phase < self.duty else self._off
        if level != self._level:
            self._gpio.output(self.pin, level)
            self._level = level

    def off(self) -> None:
        """Switch the LED off now."""
        self.pacer_bpm = None
        self._fault = None
        if self._library_pwm and self._sent_duty != 0.0:
            self._gpio.set_pwm(self.pin, 0.0, self.pwm_hz)  # type: ignore[attr-defined]
            self._sent_duty = 0.0
        if self._level != self._off:
            self._gpio.output(self.pin, self._off)
            self._level = self._off

    def __repr__(self) -> str:
        mode = "off"
        if self._fault is not None:
            mode = f"fault {self._fault.count}"
        elif self.pacer_bpm is not None:
            mode = f"breathe {self.pacer_bpm:g}/min"
        return f"<StatusLed pin={self.pin} {mode}>"
