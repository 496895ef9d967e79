"""The amplifier-enable pin, switched only while the digital signal is quiet (no pop)."""

from __future__ import annotations

from device.drivers.gpio import HIGH, LOW, GpioBackend


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
