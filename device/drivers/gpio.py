"""GPIO backends with the RPi.GPIO API: the real one, and a fake for tests and simulation.

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
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

from device.exc import GpioError

#: Logic levels, as RPi.GPIO's ``GPIO.LOW`` / ``GPIO.HIGH``.
LOW = 0
HIGH = 1
#: Pull resistors for inputs.
PULL_OFF = "off"
PULL_UP = "up"
PULL_DOWN = "down"
_PULLS = (PULL_OFF, PULL_UP, PULL_DOWN)
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


def _check_duty(duty: float) -> float:
    if not 0.0 <= duty <= 1.0:
        raise GpioError(f"PWM duty {duty!r} is outside 0..1")
    return float(duty)


def _check_level(level: int) -> int:
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
        if pull not in _PULLS:
            raise GpioError(f"GPIO pull {pull!r} is not one of {', '.join(_PULLS)}")
        g = self._gpio
        pud = {PULL_OFF: g.PUD_OFF, PULL_UP: g.PUD_UP, PULL_DOWN: g.PUD_DOWN}[pull]
        self._call(f"setup of input pin {pin}", g.setup, pin, g.IN, pull_up_down=pud)
        self._pins.add(pin)

    def setup_output(self, pin: int, initial: int) -> None:
        """Claim ``pin`` as an output at ``initial`` level."""
        check_pin(pin)
        level = _check_level(initial)
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
        lv = _check_level(level)
        g = self._gpio
        self._call(f"write of pin {pin}", g.output, pin, g.HIGH if lv else g.LOW)

    def set_pwm(self, pin: int, duty: float, frequency_hz: float = 400.0) -> None:
        """Run RPi.GPIO's PWM on output ``pin`` at ``duty`` (0..1); 0 stops it (pin low)."""
        duty = _check_duty(duty)
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


@dataclass(frozen=True, slots=True)
class PinChange:
    """One entry of :attr:`FakeGpio.log`: at time ``t`` (s), ``pin`` became ``level``."""

    t: float
    pin: int
    level: int
    #: ``"setup"`` for the level set when claimed, ``"output"`` or ``"input"`` otherwise.
    how: str


class FakeGpio:
    """A GPIO chip in memory, like gpiozero's MockFactory: product code, not a test mock.

    Inputs float at the level their pull gives (up -> 1, down/off -> 0) until a test or
    the simulator drives them with :meth:`press`/:meth:`release`/:meth:`drive`. Every
    level change of every pin is logged with the injected clock's time.

    :param clock: returns the present time in seconds (``time.monotonic`` by default).
    :param active_low: buttons pull the pin low when pressed (the usual wiring with the
        internal pull-up); :meth:`press` then drives 0.
    :param pwm: offer :meth:`set_pwm` like RPi.GPIO (``False``: a chip without it, so the
        LED falls back to on/off PWM from the loop).
    """

    def __init__(
        self,
        clock: Callable[[], float] = time.monotonic,
        *,
        active_low: bool = True,
        pwm: bool = False,
    ) -> None:
        self._clock = clock
        self.active_low = active_low
        self.has_pwm = pwm
        #: ``(t, pin, duty)`` of every PWM duty change, oldest first.
        self.pwm_log: list[tuple[float, int, float]] = []
        self._duty: dict[int, float] = {}
        self._lock = threading.Lock()
        self._mode: dict[int, str] = {}
        self._level: dict[int, int] = {}
        #: Every level change, oldest first.
        self.log: list[PinChange] = []
        #: Pins released by :meth:`cleanup`.
        self.released: set[int] = set()
        self._failing: set[int] = set()

    # --- the GpioBackend API -------------------------------------------------------------

    def setup_input(self, pin: int, pull: str = PULL_OFF) -> None:
        """Claim ``pin`` as an input; it rests at the level its pull gives."""
        check_pin(pin)
        if pull not in _PULLS:
            raise GpioError(f"GPIO pull {pull!r} is not one of {', '.join(_PULLS)}")
        self._claim(pin, "in")
        self._set(pin, 1 if pull == PULL_UP else 0, "setup")

    def setup_output(self, pin: int, initial: int) -> None:
        """Claim ``pin`` as an output at ``initial``."""
        check_pin(pin)
        self._claim(pin, "out")
        self._set(pin, _check_level(initial), "setup")

    def input(self, pin: int) -> int:
        """Read ``pin``; reading an unclaimed pin is an error, as on the real chip."""
        self._need(pin, "read")
        return self._level[pin]

    def output(self, pin: int, level: int) -> None:
        """Drive output ``pin``; driving an input is an error."""
        self._need(pin, "write")
        if self._mode[pin] != "out":
            raise GpioError(f"GPIO pin {pin} is an input; cannot drive it")
        self._set(pin, _check_level(level), "output")

    def cleanup(self, pins: Iterable[int] | None = None) -> None:
        """Release ``pins`` (all claimed pins when ``None``); idempotent."""
        with self._lock:
            chosen = set(self._mode) if pins is None else set(pins) & set(self._mode)
            for pin in chosen:
                del self._mode[pin]
                self.released.add(pin)

    close = cleanup

    def set_pwm(self, pin: int, duty: float, frequency_hz: float = 400.0) -> None:
        """Hold output ``pin`` at ``duty`` (0..1); logged in :attr:`pwm_log`."""
        if not self.has_pwm:
            raise GpioError("this GPIO backend has no PWM")
        self._need(pin, "drive")
        if self._mode[pin] != "out":
            raise GpioError(f"GPIO pin {pin} is an input; cannot drive it")
        duty = _check_duty(duty)
        if self._duty.get(pin) != duty:
            self._duty[pin] = duty
            self.pwm_log.append((self._clock(), pin, duty))
        self._set(pin, 1 if duty > 0 else 0, "output")

    def duty(self, pin: int) -> float:
        """Present PWM duty of ``pin`` (0 when never set)."""
        return self._duty.get(pin, 0.0)

    # --- driving inputs and faults -------------------------------------------------------

    def drive(self, pin: int, level: int) -> None:
        """Set the electrical level of input ``pin`` from outside (a switch, a wire)."""
        self._need(pin, "drive")
        if self._mode[pin] != "in":
            raise GpioError(f"GPIO pin {pin} is an output; drive inputs only")
        self._set(pin, _check_level(level), "input")

    def press(self, pin: int) -> None:
        """Close the button on ``pin``."""
        self.drive(pin, 0 if self.active_low else 1)

    def release(self, pin: int) -> None:
        """Open the button on ``pin``."""
        self.drive(pin, 1 if self.active_low else 0)

    def fail(self, pin: int, failing: bool = True) -> None:
        """Make every access to ``pin`` raise ``GpioError`` (a pin taken by another program)."""
        if failing:
            self._failing.add(pin)
        else:
            self._failing.discard(pin)

    # --- inspection ----------------------------------------------------------------------

    def level(self, pin: int) -> int:
        """Present level of ``pin`` (claimed or not yet released)."""
        return self._level[pin]

    def mode(self, pin: int) -> str | None:
        """``"in"``, ``"out"`` or ``None`` when the pin is not claimed."""
        return self._mode.get(pin)

    def history(self, pin: int) -> list[tuple[float, int]]:
        """``(t, level)`` of every change of ``pin``, oldest first."""
        return [(c.t, c.level) for c in self.log if c.pin == pin]

    def level_at(self, pin: int, t: float) -> int | None:
        """The level ``pin`` had at time ``t`` (``None`` before it was claimed)."""
        level = None
        for change in self.log:
            if change.pin == pin and change.t <= t:
                level = change.level
        return level

    def assert_level(self, pin: int, level: int) -> None:
        """Fail with a readable message unless ``pin`` is at ``level`` now."""
        actual = self._level.get(pin)
        if actual != level:
            raise AssertionError(f"GPIO pin {pin} is {actual}, expected {level}")

    def assert_history(self, pin: int, levels: list[int]) -> None:
        """Fail unless the sequence of levels ``pin`` took is exactly ``levels``."""
        actual = [lv for _, lv in self.history(pin)]
        if actual != levels:
            raise AssertionError(f"GPIO pin {pin} went through {actual}, expected {levels}")

    # --- internals -----------------------------------------------------------------------

    def _claim(self, pin: int, mode: str) -> None:
        if pin in self._failing:
            raise GpioError(f"GPIO pin {pin} is busy (claimed by another program)")
        self._mode[pin] = mode
        self.released.discard(pin)

    def _need(self, pin: int, what: str) -> None:
        if pin in self._failing:
            raise GpioError(f"GPIO {what} of pin {pin} failed: pin busy")
        if pin not in self._mode:
            raise GpioError(f"GPIO pin {pin} is not set up; cannot {what} it")

    def _set(self, pin: int, level: int, how: str) -> None:
        with self._lock:
            changed = self._level.get(pin) != level or how == "setup"
            self._level[pin] = level
            if changed:
                self.log.append(PinChange(self._clock(), pin, level, how))

    def __enter__(self) -> FakeGpio:
        return self

    def __exit__(self, *exc: object) -> None:
        self.cleanup()

    def __repr__(self) -> str:
        pins = ", ".join(f"{p}:{self._mode[p]}={self._level[p]}" for p in sorted(self._mode))
        return f"<FakeGpio {pins or 'no pins'}>"


def has_pwm(gpio: object) -> bool:
    """True when ``gpio`` can hold a PWM duty by itself (:class:`PwmBackend`)."""
    return callable(getattr(gpio, "set_pwm", None)) and getattr(gpio, "has_pwm", True)


def open_gpio(backend: str, *, clock: Callable[[], float] = time.monotonic) -> GpioBackend | None:
    """Build the backend named by ``gpio.backend``: ``"rpi"``, ``"fake"`` or ``"none"``."""
    if backend == "rpi":
        return RPiGpio()
    if backend == "fake":
        return FakeGpio(clock, pwm=True)
    if backend == "none":
        return None
    raise GpioError(f"gpio.backend {backend!r} is not one of rpi, fake, none")
