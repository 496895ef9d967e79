"""A simulated listener: how a person's breathing and heart answer what the box plays.

:class:`Listener` is stepped with the pacer rate and the sound targets and keeps:

* ``breathing_bpm``: follows the breath pacer with the listener's *compliance* (0: ignores
  it, 1: breathes with it) through a first-order lag of ``lag_s``, plus a slow random wander
  (large for a restless listener);
* ``hr_mean_bpm``: the baseline, lowered as breathing slows and when the sound suits the
  listener (``likes``), lowered further asleep, raised steadily when restless;
* ``rsa_bpm``: the heart's breathing swing (peak to trough over a breath): ``rsa_bpm`` at
  the resting breathing rate, rising along the second-order resonance curve of the
  baroreflex loop (Vaschillo 2002) to about 5x that at the listener's own resonance rate
  ``resonance_bpm`` (4.5-7/min, 6 for the built-in kinds; Lehrer: 4-10x rest at
  resonance), as sharp as ``resonance_width_bpm``, building up over a few breaths, with a
  slow random +-5 % wander;
* ``breath_phase``: the breathing phase in cycles, and ``hr_now_bpm``: the heart rate
  within the breath (mean plus half the swing on the in-breath, minus it on the out-breath);
* ``asleep``: falls asleep at a random time. Drowsiness builds over about ten minutes
  (``_DROWSY_TAU_S``: nobody drops off a minute in) toward a level that grows with calm
  slow breathing and with sound the listener likes and falls with loud sound; the chance
  of falling asleep per hour is ``sleep_per_h`` times the drowsiness. Asleep, breathing
  steadies and the heart slows;
* ``coherence``: the HeartMath-style coherence such a heart would show (high with slow,
  steady breathing), the model's truth for tests and fast simulations.

A :class:`~device.sim.pulse.PulseModel` passed as ``pulse`` is driven every step through
``set_heart(mean_bpm, rsa_bpm)`` and ``set_breathing(rate_bpm)``. :class:`IdealHeart` turns
a listener into the heart state a perfect analyser would report, for simulations without
PPG (``device.sim.ideal_heart``).

Everything random comes from ``seed``, and each random process has its own stream
(:data:`PROCESSES`, named, so adding a draw to one never shifts another): the breathing's
wander, the swing's wander and the moment of falling asleep. The moment of falling asleep
is one exponential draw, the listener's need for sleep, met when the accumulated chance
reaches it: the same whatever the step size.
"""

from __future__ import annotations

import math
import random
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Protocol

from device.sim.ideal_heart import IdealHeart
from device.sim.listener_kinds import KINDS, PARAMETERS, resolve
from device.sound.targets import OFF_DB, SoundTargets

__all__ = ["KINDS", "PARAMETERS", "PROCESSES", "IdealHeart", "Listener", "resonance_response"]

#: Time constants: breathing wander, HR following its target, s.
_WANDER_TAU_S = 40.0
_HR_TAU_S = 60.0
#: Without a pacer, breathing returns toward its resting rate with this time constant, s.
_UNPACED_TAU_S = 900.0
#: Asleep, breathing settles at this share of the resting rate.
_ASLEEP_BREATH_SHARE = 0.85
#: Breathing rate the listener's calm is measured toward, breaths/min.
_CALM_BPM = 6.0
#: The baroreflex part of the swing adds this many times the rest swing at resonance
#: (5x rest at the peak: within the 4-10x of Lehrer & Gevirtz, and a swing the beat
#: detector still follows).
_RESONANCE_RISE = 4.0
#: Time constants: the swing building up to a new breathing rate; its random wander, s.
_SWING_TAU_S = 15.0
_SWING_WANDER_TAU_S = 20.0
#: Spread of the swing's random wander, a share of it.
_SWING_WANDER = 0.05
#: Time constant of drowsiness building up toward what the calm and the sound bring, s
#: (sleep onset latency: healthy adults take 10-20 min to fall asleep).
_DROWSY_TAU_S = 600.0

#: The listener's random processes, each drawing from its own named stream.
PROCESSES = ("breathing", "swing", "sleep")


def streams(seed: int) -> dict[str, random.Random]:
    """One random stream per process of :data:`PROCESSES`, named and seeded from ``seed``."""
    return {name: random.Random(f"listener|{seed}|{name}") for name in PROCESSES}


def resonance_response(rate_bpm: float, resonance_bpm: float, width_bpm: float) -> float:
    """Gain of a second-order resonance at ``rate_bpm``, 1 at its peak ``resonance_bpm``.

    Vaschillo's model of the baroreflex loop: the heart's answer to breathing at a rate
    ``f`` is ``1 / sqrt((1 - x^2)^2 + (x / Q)^2)`` with ``x = f / resonance_bpm`` and a
    quality ``Q = resonance_bpm / width_bpm``; divided by ``Q`` so the peak is 1.
    """
    q = resonance_bpm / width_bpm
    x = rate_bpm / resonance_bpm
    return 1.0 / math.sqrt((1.0 - x * x) ** 2 + (x / q) ** 2) / q


class PulseInputs(Protocol):
    """What the listener drives on a pulse model (``device.sim.pulse.PulseModel``)."""

    def set_heart(self, mean_bpm: float, rsa_bpm: float) -> None: ...

    def set_breathing(self, rate_bpm: float) -> None: ...


class Listener:
    """A simulated sleeper; ``kind`` is a built-in name, a dict of parameters or a TOML file.

    A TOML file holds the parameters of :data:`PARAMETERS` at top level or under a
    ``[listener]`` table, optionally with ``kind = "restless"`` to start from a built-in and a
    ``[listener.likes]`` table such as ``pad_preset = "deep"``.
    """

    def __init__(
        self,
        kind: str | Path | Mapping[str, Any] = "compliant",
        seed: int = 0,
        *,
        likes: Mapping[str, str] | None = None,
        pulse: PulseInputs | None = None,
    ) -> None:
        name, params, file_likes = resolve(kind)
        self.kind = name
        self.seed = seed
        self.params = params
        #: Options this listener responds to (for example ``{"pad_preset": "deep"}``).
        self.likes: dict[str, str] = {**file_likes, **(likes or {})}
        self.pulse = pulse
        #: The random stream of each process (:data:`PROCESSES`).
        self.streams = streams(seed)
        # The need for sleep: asleep once the accumulated chance reaches it.
        self._sleep_need = self.streams["sleep"].expovariate(1.0)
        self._sleep_chance = 0.0
        #: Drowsiness now: the share of ``sleep_per_h`` that is the chance of sleep per hour.
        self.drowsiness = 0.0
        self._breath_mean = params["breathing_bpm"]
        self._wander = 0.0
        self._swing_wander = 0.0
        #: Breathing phase in cycles (the fractional part 0-0.5 is the in-breath).
        self.breath_phase = 0.0
        self._t0: float | None = None
        self._t = 0.0
        #: Breathing rate now, breaths/min.
        self.breathing_bpm = params["breathing_bpm"]
        #: Mean heart rate now, beats/min.
        self.hr_mean_bpm = params["hr_bpm"]
        #: RSA swing now (peak to trough over a breath), beats/min.
        self.rsa_bpm = params["rsa_bpm"]
        #: True once the listener has fallen asleep.
        self.asleep = False
        #: Time the listener fell asleep, s (``None`` while awake).
        self.asleep_t: float | None = None
        #: Share 0..1 of the liked options the sound currently plays.
        self.liked = 0.0
        self._drive_pulse(force=True)

    # --- stepping ----------------------------------------------------------------------------

    def step(
        self, t: float, dt: float, pacer_bpm: float | None, targets: SoundTargets | None = None
    ) -> None:
        """Advance the listener by ``dt`` s to time ``t`` s with what the box plays."""
        if dt < 0.0:
            raise ValueError(f"dt must be >= 0 s, not {dt!r}")
        if self._t0 is None:
            self._t0 = t - dt
        self._t = t
        audible = targets is None or targets.program_db > -40.0
        heard = pacer_bpm is not None and audible and (targets is None or targets.swell_db > 0.5)
        self.liked = self._liked(targets) if audible else 0.0
        self._breathe(dt, pacer_bpm if heard else None)
        self._beat(t, dt)
        if not self.asleep:
            self._doze(t, dt, targets is not None and _loud(targets))
        self._drive_pulse()

    def _breathe(self, dt: float, pacer_bpm: float | None) -> None:
        """Breathing: a lagged pull toward the pacer heard (``None``: none), plus a wander."""
        p = self.params
        rest = p["breathing_bpm"]
        if self.asleep:
            desired = _ASLEEP_BREATH_SHARE * rest
            wander_sd = 0.1 * p["breath_noise_bpm"]
        else:
            desired = rest
            if pacer_bpm is not None:
                desired = rest + p["compliance"] * (pacer_bpm - rest)
            wander_sd = p["breath_noise_bpm"]
        paced = not self.asleep and pacer_bpm is not None
        # Once the pacer stops, the breathing drifts back to rest only slowly.
        slow = not paced and (desired >= self._breath_mean or self.asleep)
        tau = _UNPACED_TAU_S if slow else p["lag_s"]
        self._breath_mean += (desired - self._breath_mean) * min(1.0, dt / tau)
        k = min(1.0, dt / _WANDER_TAU_S)
        draw = self.streams["breathing"].gauss(0, 1)
        self._wander += -self._wander * k + wander_sd * math.sqrt(2.0 * k) * draw
        self.breathing_bpm = min(30.0, max(3.0, self._breath_mean + self._wander))

    def _beat(self, t: float, dt: float) -> None:
        """Heart: calmer with slower breathing and liked sound, slower asleep; the swing."""
        p = self.params
        minutes = (t - (self._t0 or 0.0)) / 60.0
        target = (
            p["hr_bpm"]
            - p["relax_hr_bpm"] * self.calmness
            - p["like_hr_bpm"] * self.liked
            - (p["asleep_hr_bpm"] if self.asleep else 0.0)
            + p["hr_drift_bpm_per_min"] * minutes
        )
        target = min(125.0, max(38.0, target))
        self.hr_mean_bpm += (target - self.hr_mean_bpm) * min(1.0, dt / _HR_TAU_S)
        self.breath_phase += self.breathing_bpm / 60.0 * dt
        k = min(1.0, dt / _SWING_WANDER_TAU_S)
        draw = self.streams["swing"].gauss(0, 1)
        self._swing_wander += -self._swing_wander * k + _SWING_WANDER * math.sqrt(2.0 * k) * draw
        swing = self.resting_swing_bpm(self.breathing_bpm) * (1.0 + self._swing_wander)
        swing = min(25.0, 0.5 * self.hr_mean_bpm, max(0.0, swing))
        self.rsa_bpm += (swing - self.rsa_bpm) * min(1.0, dt / _SWING_TAU_S)

    def _doze(self, t: float, dt: float, loud: bool) -> None:
        """Drowsiness builds toward what calm and liked sound bring; asleep once due."""
        drive = (0.3 + self.calmness) * (1.0 + 2.0 * self.liked) * (0.3 if loud else 1.0)
        self.drowsiness += (drive - self.drowsiness) * min(1.0, dt / _DROWSY_TAU_S)
        self._sleep_chance += self.params["sleep_per_h"] / 3600.0 * self.drowsiness * dt
        if self._sleep_chance >= self._sleep_need:
            self.asleep = True
            self.asleep_t = t

    def resting_swing_bpm(self, rate_bpm: float) -> float:
        """The heart's steady breathing swing (bpm, without wander) breathing at ``rate_bpm``.

        ``rsa_bpm`` at the resting rate (less when faster), plus the baroreflex resonance.
        """
        p = self.params
        rest = p["breathing_bpm"]
        res, width = p["resonance_bpm"], p["resonance_width_bpm"]
        rise = resonance_response(rate_bpm, res, width) - resonance_response(rest, res, width)
        return p["rsa_bpm"] * (min(1.0, rest / rate_bpm) ** 1.5 + _RESONANCE_RISE * max(0.0, rise))

    @property
    def hr_now_bpm(self) -> float:
        """Heart rate at this point of the breath: the mean plus the swing's share, bpm."""
        swing = 0.5 * self.rsa_bpm * math.sin(2.0 * math.pi * self.breath_phase)
        return max(25.0, self.hr_mean_bpm + swing)

    @property
    def calmness(self) -> float:
        """How far breathing has slowed from rest toward 6/min, 0..1."""
        rest = self.params["breathing_bpm"]
        if rest <= _CALM_BPM:
            return 1.0
        return min(1.0, max(0.0, (rest - self.breathing_bpm) / (rest - _CALM_BPM)))

    @property
    def coherence(self) -> float:
        """HeartMath-style coherence ratio such a heart would show (about 0.2 .. 8)."""
        steady = 1.0 / (1.0 + (self.params["breath_noise_bpm"] / 0.6) ** 2)
        near = math.exp(-(((self.breathing_bpm - self.params["resonance_bpm"]) / 2.5) ** 2))
        return 0.2 + 6.0 * steady * near + 0.8 * self.liked

    def _liked(self, targets: SoundTargets | None) -> float:
        if not self.likes or targets is None:
            return 0.0
        hits = sum(1 for key, value in self.likes.items() if getattr(targets, key, None) == value)
        return hits / len(self.likes)

    def _drive_pulse(self, force: bool = False) -> None:
        if self.pulse is None:
            return
        self.pulse.set_heart(self.hr_mean_bpm, min(self.rsa_bpm, 0.8 * self.hr_mean_bpm))
        self.pulse.set_breathing(self.breathing_bpm)

    def __repr__(self) -> str:
        state = "asleep" if self.asleep else "awake"
        return (
            f"<Listener {self.kind} seed={self.seed} {state} breathing={self.breathing_bpm:.1f}/min"
            f" hr={self.hr_mean_bpm:.1f} rsa={self.rsa_bpm:.1f}>"
        )


def _loud(targets: SoundTargets) -> bool:
    """Sound loud enough to keep someone awake: any layer above -10 dB of the master."""
    levels = (targets.tones_db, targets.pad_db, targets.noise_db)
    return targets.program_db > -6.0 and max(levels) > -10.0 and max(levels) > OFF_DB
