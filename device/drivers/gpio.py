"""GPIO backends with the RPi.GPIO API: the real one (the fake: :mod:`device.drivers.fake_gpio`).

The box reads its buttons by polling (``input()`` from the loop every 10-20 ms) and
debounces in its own code, so no edge-detection threads are used. On Raspberry Pi OS
bookworm and on every Pi 5 the ``RPi.GPIO`` module must come from **rpi-lgpio**
(``pip install rpi-lgpio``, apt ``python3-rpi-lgpio``): the original RPi.GPIO cannot find
the Pi 5's RP1 chip and cannot add edges on kernel 6.6. rpi-lgpio finds the gpiochip
itself, so no chip number appears anywhere here; pins are BCM numbers.

Outputs are always set up with an explicit ``initial=`` level, so an amplifier-enable pin
never glitches high while it is being claimed.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterable
from typing import Any, Protocol, runtime_checkable

from device.exc import GpioError

#: Logic levels, as RPi.GPIO's ``GPIO.LOW`` / ``GPIO.HIGH``.
LOW = 0
HIGH = 1
#: Pull resistors for inputs.
PULL_OFF = "off"
PULL_UP = "up"
PULL_DOWN = "down"
PULLS = (PULL_OFF, PULL_UP, PULL_DOWN)
#: Highest BCM pin on the 40-pin header.
MAX_BCM_PIN = 27


@runtime_checkable
class GpioBackend(Protocol):
    """What the box needs of a GPIO library (BCM numbering, polled inputs)."""

    def setup_input(self, pin: int, pull: str = PULL_OFF) -> None:
        """Claim ``pin`` as an input with pull ``"off"``, ``"up"`` or ``"down"``."""
        ...

    def setup_output(self, pin: int, initial: int) -> None:
        """Claim ``pin`` as an output driven at ``initial`` (0 or 1) from the first instant."""
        ...

    def input(self, pin: int) -> int:
        """Read the level of ``pin`` (0 or 1)."""
        ...

    def output(self, pin: int, level: int) -> None:
        """Drive output ``pin`` to ``level`` (0 or 1)."""
        ...

    def cleanup(self, pins: Iterable[int] | None = None) -> None:
        """Release ``pins`` (all pins this backend claimed when ``None``); idempotent."""
        ...


@runtime_checkable
class PwmBackend(Protocol):
    """A backend that can also hold a pin at a duty cycle by itself (timed by the library).

    The loop polls at 20-50 Hz, far too slowly for a flicker-free LED; a backend with this
    capability keeps the PWM carrier running (RPi.GPIO/rpi-lgpio time it in their own
    thread) and the loop only moves the duty cycle.
    """

    def set_pwm(self, pin: int, duty: float, frequency_hz: float = 400.0) -> None:
        """Drive output ``pin`` with ``duty`` (0..1) at ``frequency_hz``; 0 stops the carrier."""
        ...


def check_pin(pin: int) -> int:
    """Return ``pin`` if it is a BCM header pin (0-27), else raise ``GpioError``."""
    if isinstance(pin, bool) or not isinstance(pin, int) or not 0 <= pin <= MAX_BCM_PIN:
        raise GpioError(f"GPIO pin {pin!r} is not a BCM header pin (0 to {MAX_BCM_PIN})")
    return pin


def check_duty(duty: float) -> float:
    if not 0.0 <= duty <= 1.0:
        raise GpioError(f"PWM duty {duty!r} is outside 0..1")
    return float(duty)


def check_level(level: int) -> int:
    if level not in (0, 1):
        raise GpioError(f"GPIO level {level!r} is not 0 or 1")
    return int(level)


class RPiGpio:
    """The RPi.GPIO API (rpi-lgpio on Pi 5 and bookworm), imported only when built.

    :param module: an already imported ``RPi.GPIO``-compatible module (tests may inject
        one); imported lazily when ``None``.
    :raises GpioError: when the module is missing or refuses to run on this machine.
    """

    def __init__(self, module: Any = None) -> None:
        if module is None:
            try:
                import RPi.GPIO as module  # type: ignore[no-redef]
            except ImportError as exc:
                raise GpioError(
                    "RPi.GPIO is not installed: install rpi-lgpio (pip install rpi-lgpio, or "
                    'apt install python3-rpi-lgpio), or set gpio.backend = "none"'
                ) from exc
            except RuntimeError as exc:
                # Raised at import off a Pi ("This module can only be run on a Raspberry Pi!").
                raise GpioError(f"RPi.GPIO cannot run here: {exc}") from exc
        self._gpio = module
        self._pins: set[int] = set()
        self._pwm: dict[int, Any] = {}
        self._closed = False
        try:
            module.setwarnings(False)
            module.setmode(module.BCM)
        except (RuntimeError, ValueError, OSError) as exc:
            raise GpioError(f"RPi.GPIO setmode(BCM) failed: {exc}") from exc

    def _call(self, what: str, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        if self._closed:
            raise GpioError(f"GPIO backend is closed ({what})")
        try:
            return fn(*args, **kwargs)
        except (RuntimeError, ValueError, OSError) as exc:
            raise GpioError(f"GPIO {what} failed: {exc}") from exc

    def setup_input(self, pin: int, pull: str = PULL_OFF) -> None:
        """Claim ``pin`` as an input with the given pull resistor."""
        check_pin(pin)
        if pull not in PULLS:
            raise GpioError(f"GPIO pull {pull!r} is not one of {', '.join(PULLS)}")
        g = self._gpio
        pud = {PULL_OFF: g.PUD_OFF, PULL_UP: g.PUD_UP, PULL_DOWN: g.PUD_DOWN}[pull]
        self._call(f"setup of input pin {pin}", g.setup, pin, g.IN, pull_up_down=pud)
        self._pins.add(pin)

    def setup_output(self, pin: int, initial: int) -> None:
        """Claim ``pin`` as an output at ``initial`` level."""
        check_pin(pin)
        level = check_level(initial)
        g = self._gpio
        self._call(
            f"setup of output pin {pin}",
            g.setup,
            pin,
            g.OUT,
            initial=g.HIGH if level else g.LOW,
        )
        self._pins.add(pin)

    def input(self, pin: int) -> int:
        """Read ``pin`` (0 or 1)."""
        return 1 if self._call(f"read of pin {pin}", self._gpio.input, pin) else 0

    def output(self, pin: int, level: int) -> None:
        """Drive ``pin`` to ``level``."""
        lv = check_level(level)
        g = self._gpio
        self._call(f"write of pin {pin}", g.output, pin, g.HIGH if lv else g.LOW)

    def set_pwm(self, pin: int, duty: float, frequency_hz: float = 400.0) -> None:
        """Run RPi.GPIO's PWM on output ``pin`` at ``duty`` (0..1); 0 stops it (pin low)."""
        duty = check_duty(duty)
        g = self._gpio
        pwm = self._pwm.get(pin)
        if duty == 0.0:
            if pwm is not None:
                self._call(f"PWM stop on pin {pin}", pwm.stop)
                del self._pwm[pin]
                self.output(pin, 0)
            return
        if pwm is None:
            pwm = self._call(f"PWM on pin {pin}", g.PWM, pin, frequency_hz)
            self._call(f"PWM start on pin {pin}", pwm.start, duty * 100.0)
            self._pwm[pin] = pwm
        else:
            self._call(f"PWM duty on pin {pin}", pwm.ChangeDutyCycle, duty * 100.0)

    def cleanup(self, pins: Iterable[int] | None = None) -> None:
        """Release our pins only (never the whole chip: other programs may use it)."""
        if self._closed:
            return
        chosen = sorted(self._pins if pins is None else set(pins) & self._pins)
        for pin in chosen:
            pwm = self._pwm.pop(pin, None)
            if pwm is not None:
                with contextlib.suppress(RuntimeError, ValueError, OSError):
                    pwm.stop()
        if chosen:
            # Releasing on the way out: nothing useful can be done about a failure.
            with contextlib.suppress(RuntimeError, ValueError, OSError):
                self._gpio.cleanup(chosen)
        self._pins.difference_update(chosen)
        if pins is None:
            self._closed = True

    close = cleanup

    def __enter__(self) -> RPiGpio:
        return self

    def __exit__(self, *exc: object) -> None:
        self.cleanup()

    def __repr__(self) -> str:
        state = "closed" if self._closed else f"pins={sorted(self._pins)}"
        return f"<RPiGpio {state}>"


def has_pwm(gpio: object) -> bool:
    """True when ``gpio`` can hold a PWM duty by itself (:class:`PwmBackend`)."""
    return callable(getattr(gpio, "set_pwm", None)) and getattr(gpio, "has_pwm", True)


def open_gpio(backend: str, *, clock: Callable[[], float] = time.monotonic) -> GpioBackend | None:
    """Build the backend named by ``gpio.backend``: ``"rpi"``, ``"fake"`` or ``"none"``."""
    if backend == "rpi":
        return RPiGpio()
    if backend == "fake":
        from device.drivers.fake_gpio import FakeGpio

        return FakeGpio(clock, pwm=True)
    if backend == "none":
        return None
    raise GpioError(f"gpio.backend {backend!r} is not one of rpi, fake, none")
