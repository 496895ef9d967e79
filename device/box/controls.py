"""Buttons, status LED and amplifier enable: the box's own hardware, driven from the loop.

Everything here is polled by the loop with its time ``now`` (seconds); nothing starts a
thread or reads a clock. The loop calls :meth:`Controls.poll` every 10-25 ms and maps the
returned action names to the Box's methods:

``"start_stop"`` (short press of start/stop), ``"stop_fade"`` (long press of start/stop),
``"volume_up"``, ``"volume_down"`` (press, repeating while held), ``"like"``, ``"skip"``.

A GPIO failure never stops the sound: it is counted, remembered in ``last_error`` and the
failing part goes quiet.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

from device.drivers.gpio import HIGH, LOW, PULL_DOWN, PULL_UP, GpioBackend, has_pwm
from device.exc import GpioError

#: Action names :meth:`Controls.poll` can return.
ACTIONS = ("start_stop", "stop_fade", "volume_up", "volume_down", "like", "skip")


class Button:
    """One push button, debounced by N consecutive equal reads.

    :param name: the button's role (``"start_stop"``, ``"volume_up"``, ...).
    :param pin: BCM pin.
    :param stable_reads: reads in a row that must agree before the state changes
        (debounce time / poll period, at least 2).
    :param long_press_s: hold time that makes a long press, seconds (``None``: no long press).
    :param repeat_s: while held, repeat the press action this often, seconds (``None``: no
        repeat; used for volume).
    :param active_low: the pin reads 0 while pressed.
    """

    def __init__(
        self,
        name: str,
        pin: int,
        *,
        stable_reads: int,
        long_press_s: float | None = None,
        repeat_s: float | None = None,
        active_low: bool = True,
    ) -> None:
        if stable_reads < 1:
            raise ValueError(f"{name}: stable_reads must be at least 1, not {stable_reads}")
        self.name = name
        self.pin = pin
        self.stable_reads = stable_reads
        self.long_press_s = long_press_s
        self.repeat_s = repeat_s
        self.active_low = active_low
        #: Debounced state: True while the button is held down.
        self.pressed = False
        self._candidate = False
        self._count = 0
        self._down_at = 0.0
        self._long_sent = False
        self._next_repeat = math.inf

    def update(self, raw: int, now: float) -> list[str]:
        """Feed one raw read taken at ``now``; return the events it completes.

        Events: ``"press"`` (debounced press), ``"short"`` (released before the long-press
        time), ``"long"`` (held for the long-press time; once per hold), ``"repeat"``
        (held, every ``repeat_s``).
        """
        down = (raw == 0) if self.active_low else (raw != 0)
        events: list[str] = []
        if down == self._candidate:
            self._count += 1
        else:
            self._candidate = down
            self._count = 1
        if self._count >= self.stable_reads and down != self.pressed:
            self.pressed = down
            if down:
                self._down_at = now
                self._long_sent = False
                self._next_repeat = now + self.repeat_s if self.repeat_s else math.inf
                events.append("press")
            elif not self._long_sent:
                events.append("short")
        if self.pressed:
            if (
                self.long_press_s is not None
                and not self._long_sent
                and now - self._down_at >= self.long_press_s
            ):
                self._long_sent = True
                events.append("long")
            if now >= self._next_repeat and self.repeat_s:
                events.append("repeat")
                self._next_repeat += self.repeat_s
        return events

    def __repr__(self) -> str:
        return f"<Button {self.name} pin={self.pin} {'down' if self.pressed else 'up'}>"


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


class AmpEnable:
    """The amplifier-enable pin, switched only while the digital signal is quiet.

    Sequence (no pop): the Box primes the output buffer with zeros, then asks for the amp
    (:meth:`request`) and only then starts its fade-in. The amp goes on at once if the
    output is quiet (at or below ``quiet_db``); :attr:`ready_for_fade_in` says so. At the
    end the fade-out reaches silence; once the output has stayed quiet for ``settle_s`` -
    so the blocks still buffered are quiet too - the amp goes off.

    A request for "on" while sound already plays waits for quiet; if none comes within
    ``force_on_s`` the amp is switched on anyway (a possible pop beats a silent box) and
    :attr:`forced` counts it.

    :param settle_s: quiet time before switching off, seconds; at least the output
        buffer's depth (buffer_blocks * block_frames / rate).
    :param quiet_db: output level (dBFS) that counts as quiet.
    :param force_on_s: longest wait for quiet before switching on regardless, seconds.
    """

    def __init__(
        self,
        gpio: GpioBackend,
        pin: int,
        *,
        settle_s: float = 0.2,
        quiet_db: float = -60.0,
        force_on_s: float = 1.0,
        active_high: bool = True,
    ) -> None:
        if settle_s < 0:
            raise ValueError(f"amplifier settle_s must be >= 0, not {settle_s}")
        self._gpio = gpio
        self.pin = pin
        self.settle_s = settle_s
        self.quiet_db = quiet_db
        self.force_on_s = force_on_s
        self._on = HIGH if active_high else LOW
        self._off = LOW if active_high else HIGH
        #: True while the amplifier is enabled.
        self.enabled = False
        #: Times the amp had to be switched on while sound played.
        self.forced = 0
        self._want = False
        self._wanted_since: float | None = None
        self._quiet_since: float | None = None
        self._now: float | None = None
        gpio.setup_output(pin, initial=self._off)

    def request(self, on: bool) -> None:
        """Ask for the amp on (before a fade-in) or off (after a fade-out).

        Switches on at once when the output is quiet, so a Box that calls this right before
        its fade-in has the amp before any sound.
        """
        on = bool(on)
        if on != self._want:
            self._wanted_since = self._now
        self._want = on
        if self._now is not None:
            self._switch_if_due(self._now)

    @property
    def ready_for_fade_in(self) -> bool:
        """True once the amp is enabled: the fade-in may start."""
        return self.enabled

    def update(self, now: float, level_db: float) -> None:
        """Note the output level at ``now`` and switch the pin if it is wanted and due."""
        self._now = now
        if self._wanted_since is None:
            self._wanted_since = now
        if level_db <= self.quiet_db:
            if self._quiet_since is None:
                self._quiet_since = now
        else:
            self._quiet_since = None
        self._switch_if_due(now)

    def _switch_if_due(self, now: float) -> None:
        if self._want == self.enabled:
            return
        quiet = self._quiet_since is not None
        if self._want:
            waited = now - (self._wanted_since if self._wanted_since is not None else now)
            if not quiet:
                if waited < self.force_on_s:
                    return
                self.forced += 1
        elif not quiet or now - self._quiet_since < self.settle_s:  # type: ignore[operator]
            return
        self._gpio.output(self.pin, self._on if self._want else self._off)
        self.enabled = self._want

    def force_off(self) -> None:
        """Disable the amp at once (service stop, after the fade; a fault)."""
        self._want = False
        self._gpio.output(self.pin, self._off)
        self.enabled = False

    def __repr__(self) -> str:
        return f"<AmpEnable pin={self.pin} {'on' if self.enabled else 'off'}>"


#: Which action each button role sends on a short press, and on a long press.
_SHORT = {
    "start_stop": "start_stop",
    "volume_up": "volume_up",
    "volume_down": "volume_down",
    "like": "like",
    "skip": "skip",
}
_LONG = {"start_stop": "stop_fade"}

_UNSET: object = object()


class Controls:
    """All buttons, the status LED and the amplifier enable of one box.

    :param gpio: the GPIO backend (``RPiGpio`` on a Pi, ``FakeGpio`` in simulation).
    :param pins: role -> BCM pin for any of ``start_stop``, ``volume_up``,
        ``volume_down``, ``like``, ``skip``; a pin of -1 (or a missing role) means none.
    :param led_pin: BCM pin of the status LED, -1 for none.
    :param amp_pin: BCM pin of the amplifier enable, -1 for none (the kernel owns it).
    :param poll_s: how often the loop calls :meth:`poll`, seconds (5-100 ms).
    :param debounce_s: a button must read the same for this long, seconds (at least two
        reads are always required).
    :param long_press_s: hold time of a long press, seconds.
    :param repeat_s: volume buttons repeat this often while held, seconds.
    :param active_low: buttons pull the pin low when pressed (internal pull-up).
    :param amp_settle_s: quiet output before switching the amp off, seconds.
    """

    def __init__(
        self,
        gpio: GpioBackend,
        *,
        pins: dict[str, int],
        led_pin: int = -1,
        amp_pin: int = -1,
        poll_s: float = 0.02,
        debounce_s: float = 0.03,
        long_press_s: float = 1.0,
        repeat_s: float = 0.4,
        active_low: bool = True,
        amp_settle_s: float = 0.2,
    ) -> None:
        if not 0.005 <= poll_s <= 0.1:
            raise ValueError(f"controls poll_s {poll_s} s is outside 0.005..0.1")
        unknown = set(pins) - set(_SHORT)
        if unknown:
            raise ValueError(
                f"unknown button role(s) {', '.join(sorted(unknown))}; known: {', '.join(_SHORT)}"
            )
        used = [p for p in (*pins.values(), led_pin, amp_pin) if p >= 0]
        if len(used) != len(set(used)):
            raise GpioError(f"GPIO pins used twice in {sorted(used)}")
        self._gpio = gpio
        self.poll_s = poll_s
        #: GPIO failures seen while polling (the sound never stops for them).
        self.errors = 0
        #: Text of the last GPIO failure, or ``None``.
        self.last_error: str | None = None
        stable = max(2, math.ceil(round(debounce_s / poll_s, 6)))
        self.buttons: list[Button] = []
        for role, pin in pins.items():
            if pin < 0:
                continue
            gpio.setup_input(pin, PULL_UP if active_low else PULL_DOWN)
            self.buttons.append(
                Button(
                    role,
                    pin,
                    stable_reads=stable,
                    long_press_s=long_press_s if role in _LONG else None,
                    repeat_s=repeat_s if role.startswith("volume") else None,
                    active_low=active_low,
                )
            )
        self.led = StatusLed(gpio, led_pin) if led_pin >= 0 else None
        self.amp_enable = AmpEnable(gpio, amp_pin, settle_s=amp_settle_s) if amp_pin >= 0 else None
        self._level_db = -math.inf
        self._closed = False

    def poll(
        self,
        now: float,
        *,
        pacer_bpm: float | object | None = _UNSET,
        audio_level_db: float | None = None,
    ) -> list[str]:
        """Read every button, drive LED and amp for ``now``; return the actions, in order.

        :param now: loop time, seconds.
        :param pacer_bpm: the breathing pacer the LED follows (``None``: LED dark); left
            as it was when not given.
        :param audio_level_db: the engine's present output level in dBFS (``-inf`` when
            silent), for the amplifier sequence; the last value is kept when not given.
        """
        actions: list[str] = []
        if self._closed:
            return actions
        for button in self.buttons:
            try:
                raw = self._gpio.input(button.pin)
            except GpioError as exc:
                self._record(exc)
                continue
            for event in button.update(raw, now):
                if event == "short" and button.name in _LONG:
                    actions.append(_SHORT[button.name])
                elif event == "long":
                    actions.append(_LONG[button.name])
                elif event in ("press", "repeat") and button.name not in _LONG:
                    actions.append(_SHORT[button.name])
        if audio_level_db is not None:
            self._level_db = audio_level_db
        try:
            if self.led is not None:
                if pacer_bpm is not _UNSET:
                    try:
                        self.led.breathe(pacer_bpm, now)  # type: ignore[arg-type]
                    except ValueError as exc:
                        # A nonsense pacer must not stop the loop: the LED goes dark.
                        self.led.breathe(None, now)
                        self.last_error = str(exc)
                self.led.update(now)
        except GpioError as exc:
            self._record(exc)
        try:
            if self.amp_enable is not None:
                self.amp_enable.update(now, self._level_db)
        except GpioError as exc:
            self._record(exc)
        return actions

    def task(
        self,
        on_action: Callable[[str], None],
        level_db: Callable[[], float] | None = None,
    ) -> Callable[[float], float]:
        """A loop task ``cb(deadline) -> next deadline`` calling ``on_action`` per action."""

        def run(deadline: float) -> float:
            level = None if level_db is None else level_db()
            for action in self.poll(deadline, audio_level_db=level):
                on_action(action)
            return deadline + self.poll_s

        return run

    def breathe(self, pacer_bpm: float | None, now: float) -> None:
        """Let the status LED follow the pacer (``None``: dark)."""
        if self.led is not None:
            self.led.breathe(pacer_bpm, now)

    def show_fault(self, kind: str | None, now: float) -> None:
        """Blink the code of fault ``kind`` (see :data:`FAULT_CODES`), or stop with ``None``."""
        if kind is not None and kind not in FAULT_CODES:
            raise ValueError(f"unknown fault {kind!r}; known: {', '.join(FAULT_CODES)}")
        if self.led is not None:
            self.led.fault(None if kind is None else FAULT_CODES[kind], now)

    def amp(self, on: bool) -> None:
        """Ask for the amplifier on (before the fade-in) or off (after the fade-out).

        On: at once if the output is quiet. Off: once it has been quiet for
        ``amp_settle_s`` (at a later :meth:`poll`).
        """
        if self.amp_enable is not None:
            try:
                self.amp_enable.request(on)
            except GpioError as exc:
                self._record(exc)

    @property
    def ready_for_fade_in(self) -> bool:
        """True when the fade-in may start (the amp is on, or there is no amp pin)."""
        return self.amp_enable is None or self.amp_enable.ready_for_fade_in

    def _record(self, exc: GpioError) -> None:
        self.errors += 1
        self.last_error = str(exc)

    def status(self) -> dict[str, object]:
        """Buttons held, LED mode, amp state and GPIO errors, for ``STATUS?``/selftest."""
        return {
            "buttons_down": [b.name for b in self.buttons if b.pressed],
            "led_fault": None if self.led is None else self.led.fault_code,
            "amp": None if self.amp_enable is None else self.amp_enable.enabled,
            "amp_forced_on": 0 if self.amp_enable is None else self.amp_enable.forced,
            "gpio_errors": self.errors,
            "gpio_last_error": self.last_error,
        }

    def close(self) -> None:
        """LED and amp off, release our pins. Idempotent."""
        if self._closed:
            return
        self._closed = True
        try:
            if self.amp_enable is not None:
                self.amp_enable.force_off()
            if self.led is not None:
                self.led.off()
        except GpioError as exc:
            self._record(exc)
        pins = [b.pin for b in self.buttons]
        pins += [p.pin for p in (self.led, self.amp_enable) if p is not None]
        self._gpio.cleanup(pins)

    def __enter__(self) -> Controls:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        names = ",".join(b.name for b in self.buttons) or "no buttons"
        return f"<Controls {names} led={self.led!r} amp={self.amp_enable!r} errors={self.errors}>"
