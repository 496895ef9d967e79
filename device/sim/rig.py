"""The simulated bedside: a listener, their pulse and the MAX30102 on its bus (``--sim`` only).

:class:`SimRig` owns the simulated listener (:class:`~device.sim.listener.Listener`), the
pulse model it drives (:class:`~device.sim.pulse.PulseModel`) and the register-level chip
(:class:`~device.sim.max30102.SimulatedMAX30102`) the real :class:`PulseSensor` driver
reads. The box steps it from its sensor task, before polling the sensor, with the pacer and
targets it is playing. Nothing of the rig exists in a real box: it is built only for
``--sim`` runs, from the ``sim.*`` settings (which nothing else uses).
"""

from __future__ import annotations

from collections.abc import Callable

from device.sim.ideal_feed import make_listener
from device.sim.max30102 import SimulatedMAX30102
from device.sim.pulse import PulseModel
from device.sound.targets import SoundTargets


class SimRig:
    """The simulated listener and chip of one ``--sim`` run.

    :param clock: loop time in seconds (the chip's samples accrue as it runs).
    :param listener: a built-in listener kind or a listener file.
    :param seed: seed of the listener, the pulse model and the chip's noise.
    :param finger_off_at_s: session time the finger comes off, s (negative: never).
    :param finger_off_for_s: how long it stays off, s.
    :param address: the chip's I2C address.
    :raises ConfigError: the listener kind or file is not valid (names ``sim.listener``).
    """

    def __init__(
        self,
        clock: Callable[[], float],
        *,
        listener: str = "compliant",
        seed: int = 0,
        finger_off_at_s: float = -1.0,
        finger_off_for_s: float = 0.0,
        address: int = 0x57,
    ) -> None:
        self.seed = seed
        self.listener = make_listener(listener, self.seed)
        self.model = PulseModel(seed=self.seed)
        self.chip = SimulatedMAX30102(clock, self.model, address=address, seed=self.seed)
        self._finger_off_at_s = finger_off_at_s
        self._finger_off_for_s = finger_off_for_s

    def bus(self) -> SimulatedMAX30102:
        """The simulated I2C bus with the chip on it (the sensor driver's bus factory)."""
        return self.chip

    def step(
        self,
        t: float,
        dt: float,
        *,
        pacer_bpm: float | None,
        targets: SoundTargets | None,
        session_t: float,
    ) -> None:
        """Advance the listener by ``dt`` s to loop time ``t`` and drive the pulse model.

        :param pacer_bpm: the breathing pacer playing now (``None``: none).
        :param targets: the sound targets playing now (``None`` before the first session).
        :param session_t: seconds since the present session started (the finger-off window
            of ``sim.finger_off_at_s`` counts from there).
        """
        if targets is not None:
            self.listener.step(t, dt, pacer_bpm, targets)
        self.model.set_heart(self.listener.hr_mean_bpm, self.listener.rsa_bpm)
        self.model.set_breathing(self.listener.breathing_bpm)
        off_at, off_for = self._finger_off_at_s, self._finger_off_for_s
        self.model.set_contact(not (off_at >= 0 and off_at <= session_t < off_at + off_for))

    def status(self) -> dict[str, object]:
        """What the simulated listener truly does (for a ``--sim`` run's status only).

        ``sim_hr`` (mean heart rate, bpm), ``sim_breathing`` (breaths/min) and
        ``sim_asleep`` (``True`` once they fell asleep): the truth the box's own figures
        (``hr``, ``breathing``) estimate.
        """
        return {
            "sim_hr": self.listener.hr_mean_bpm,
            "sim_breathing": self.listener.breathing_bpm,
            "sim_asleep": self.listener.asleep,
        }

    def __repr__(self) -> str:
        return f"<SimRig listener={self.listener.kind} seed={self.seed}>"
