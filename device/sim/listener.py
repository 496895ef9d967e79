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
* ``asleep``: falls asleep at a random time whose rate grows with calm slow breathing, with
  sound the listener likes, and falls with loud sound; asleep, breathing steadies and the
  heart slows;
* ``coherence``: the HeartMath-style coherence such a heart would show (high with slow,
  steady breathing), the model's truth for tests and fast simulations.

A :class:`~device.sim.pulse.PulseModel` passed as ``pulse`` is driven every step through
``set_heart(mean_bpm, rsa_bpm)`` and ``set_breathing(rate_bpm)``. :class:`IdealHeart` turns
a listener into the heart state a perfect analyser would report, for simulations without
PPG. Everything random comes from ``seed``.
"""

from __future__ import annotations

import math
import random
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Protocol

from device.exc import ConfigError
from device.sound.targets import OFF_DB, SoundTargets

#: Parameter name -> (low, high, default, meaning with unit).
PARAMETERS: dict[str, tuple[float, float, float, str]] = {
    "hr_bpm": (35.0, 130.0, 68.0, "resting heart rate, beats/min"),
    "breathing_bpm": (4.0, 30.0, 13.0, "resting breathing rate, breaths/min"),
    "compliance": (0.0, 1.0, 0.9, "share of the pacer's pull the breathing follows"),
    "lag_s": (1.0, 300.0, 20.0, "time constant of breathing following the pacer, s"),
    "breath_noise_bpm": (0.0, 5.0, 0.2, "spread of the breathing's random wander, breaths/min"),
    "rsa_bpm": (0.0, 20.0, 3.0, "RSA swing at the resting breathing rate, beats/min"),
    "relax_hr_bpm": (0.0, 20.0, 6.0, "HR fall when breathing has slowed fully to 6/min, bpm"),
    "hr_drift_bpm_per_min": (-2.0, 2.0, 0.0, "steady HR drift (restless: rising), bpm/min"),
    "sleep_per_h": (0.0, 30.0, 1.5, "base rate of falling asleep, per hour"),
    "asleep_hr_bpm": (0.0, 20.0, 6.0, "HR fall once asleep, bpm"),
    "like_hr_bpm": (0.0, 15.0, 4.0, "HR fall while the sound is one the listener likes, bpm"),
    "resonance_bpm": (4.5, 7.0, 6.0, "breathing rate at which the heart swings most, /min"),
    "resonance_width_bpm": (
        0.3,
        3.0,
        1.0,
        "width of the resonance peak (full width at half power), breaths/min",
    ),
}

#: The built-in kinds of listener.
KINDS: dict[str, dict[str, Any]] = {
    "compliant": {
        "hr_bpm": 68.0,
        "breathing_bpm": 13.0,
        "compliance": 0.95,
        "lag_s": 20.0,
        "breath_noise_bpm": 0.2,
        "rsa_bpm": 3.0,
        "sleep_per_h": 2.0,
    },
    "restless": {
        "hr_bpm": 76.0,
        "breathing_bpm": 15.0,
        "compliance": 0.2,
        "lag_s": 40.0,
        "breath_noise_bpm": 1.5,
        "rsa_bpm": 1.5,
        "relax_hr_bpm": 2.0,
        "hr_drift_bpm_per_min": 0.4,
        "sleep_per_h": 0.05,
    },
    "non-compliant": {
        "hr_bpm": 72.0,
        "breathing_bpm": 12.0,
        "compliance": 0.15,
        "lag_s": 30.0,
        "breath_noise_bpm": 0.15,
        "rsa_bpm": 2.5,
        "sleep_per_h": 0.8,
    },
}

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


def _parameters(spec: Mapping[str, Any], file: str | None) -> tuple[dict[str, float], dict]:
    where = f"{file}: " if file else ""
    params = {name: default for name, (_, _, default, _) in PARAMETERS.items()}
    likes: dict[str, str] = {}
    for key, value in spec.items():
        if key == "likes":
            if not isinstance(value, Mapping) or not all(
                isinstance(v, str) for v in value.values()
            ):
                raise ConfigError(
                    f"{where}listener.likes: {value!r} must be a table of option = choice",
                    file=file,
                    key="listener.likes",
                    value=value,
                )
            likes = {str(k): v for k, v in value.items()}
            continue
        if key not in PARAMETERS:
            raise ConfigError(
                f"{where}listener.{key}: unknown key (allowed {', '.join(sorted(PARAMETERS))},"
                " likes)",
                file=file,
                key=f"listener.{key}",
                value=value,
            )
        low, high, _, meaning = PARAMETERS[key]
        ok = isinstance(value, int | float) and not isinstance(value, bool)
        if not ok or not low <= float(value) <= high:
            raise ConfigError(
                f"{where}listener.{key}: {value!r} is out of range (allowed {low:g} .. {high:g}:"
                f" {meaning})",
                file=file,
                key=f"listener.{key}",
                value=value,
            )
        params[key] = float(value)
    return params, likes


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
        file: str | None = None
        spec: dict[str, Any]
        if isinstance(kind, Mapping):
            spec, name = dict(kind), "custom"
        elif isinstance(kind, Path) or str(kind).endswith(".toml") or "/" in str(kind):
            file = str(kind)
            spec, name = _read_file(Path(kind)), Path(kind).stem
        elif kind in KINDS:
            spec, name = dict(KINDS[kind]), str(kind)
        else:
            raise ValueError(
                f"listener kind must be one of {', '.join(KINDS)}, a dict or a .toml file, "
                f"not {kind!r}"
            )
        base = spec.pop("kind", None)
        if base is not None:
            if base not in KINDS:
                raise ConfigError(
                    f"{file or 'listener'}: kind: {base!r} is not one of {', '.join(KINDS)}",
                    file=file,
                    key="listener.kind",
                    value=base,
                )
            spec = {**KINDS[base], **spec}
            name = f"{name} ({base})"
        params, file_likes = _parameters(spec, file)
        self.kind = name
        self.seed = seed
        self.params = params
        #: Options this listener responds to (for example ``{"pad_preset": "deep"}``).
        self.likes: dict[str, str] = {**file_likes, **(likes or {})}
        self.pulse = pulse
        self._rng = random.Random(f"listener|{seed}")
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
        p = self.params
        audible = targets is None or targets.program_db > -40.0
        swell = targets is None or targets.swell_db > 0.5
        self.liked = self._liked(targets) if audible else 0.0

        # Breathing: a lagged pull toward the pacer, plus a slow wander.
        rest = p["breathing_bpm"]
        if self.asleep:
            desired = _ASLEEP_BREATH_SHARE * rest
            wander_sd = 0.1 * p["breath_noise_bpm"]
        else:
            desired = rest
            if pacer_bpm is not None and audible and swell:
                desired = rest + p["compliance"] * (pacer_bpm - rest)
            wander_sd = p["breath_noise_bpm"]
        paced = not self.asleep and pacer_bpm is not None and audible and swell
        # Once the pacer stops, the breathing drifts back to rest only slowly.
        tau = (
            p["lag_s"]
            if paced or (desired < self._breath_mean and not self.asleep)
            else _UNPACED_TAU_S
        )
        self._breath_mean += (desired - self._breath_mean) * min(1.0, dt / tau)
        k = min(1.0, dt / _WANDER_TAU_S)
        self._wander += -self._wander * k + wander_sd * math.sqrt(2.0 * k) * self._rng.gauss(0, 1)
        self.breathing_bpm = min(30.0, max(3.0, self._breath_mean + self._wander))

        # Heart: calmer with slower breathing and liked sound; slower asleep; restless drifts up.
        calm = self.calmness
        minutes = (t - self._t0) / 60.0
        target = (
            p["hr_bpm"]
            - p["relax_hr_bpm"] * calm
            - p["like_hr_bpm"] * self.liked
            - (p["asleep_hr_bpm"] if self.asleep else 0.0)
            + p["hr_drift_bpm_per_min"] * minutes
        )
        target = min(125.0, max(38.0, target))
        self.hr_mean_bpm += (target - self.hr_mean_bpm) * min(1.0, dt / _HR_TAU_S)
        self.breath_phase += self.breathing_bpm / 60.0 * dt
        k = min(1.0, dt / _SWING_WANDER_TAU_S)
        self._swing_wander += -self._swing_wander * k + _SWING_WANDER * math.sqrt(
            2.0 * k
        ) * self._rng.gauss(0, 1)
        swing = self.resting_swing_bpm(self.breathing_bpm) * (1.0 + self._swing_wander)
        swing = min(25.0, 0.5 * self.hr_mean_bpm, max(0.0, swing))
        self.rsa_bpm += (swing - self.rsa_bpm) * min(1.0, dt / _SWING_TAU_S)

        # Falling asleep: a random event whose rate depends on what is played.
        if not self.asleep:
            rate = p["sleep_per_h"] / 3600.0 * (0.3 + calm) * (1.0 + 2.0 * self.liked)
            if targets is not None and _loud(targets):
                rate *= 0.3
            if self._rng.random() < rate * dt:
                self.asleep = True
                self.asleep_t = t
        self._drive_pulse()

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


def _read_file(path: Path) -> dict[str, Any]:
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read listener file: {exc}", file=str(path)) from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}", file=str(path)) from None
    if "listener" in data:
        extra = sorted(set(data) - {"listener"})
        if extra:
            raise ConfigError(
                f"{path}: {extra[0]}: unknown key beside [listener]", file=str(path), key=extra[0]
            )
        data = data["listener"]
        if not isinstance(data, dict):
            raise ConfigError(f"{path}: [listener] must be a table", file=str(path))
    return dict(data)


class IdealHeart:
    """The heart state a perfect analyser would report for a listener (no PPG needed).

    The breathing estimate lags the true rate like a spectral estimate over a window of
    ``breath_window_s``; the coherence is the listener's model coherence through the same
    lag. The beat-to-beat rate is the listener's :attr:`Listener.hr_now_bpm` taken at each
    whole beat and held to the next, so the heart's breathing swing shows in it as in a
    real interval series. ``contact`` and ``quality`` can be set to simulate finger removal.
    """

    def __init__(
        self, listener: Listener, *, breath_window_s: float = 64.0, warmup_s: float = 0.0
    ) -> None:
        self.listener = listener
        self.breath_window_s = breath_window_s
        self.warmup_s = warmup_s
        self._good_since: float | None = None
        self.contact = True
        self.quality = 0.95
        self._breath: float | None = None
        self._coherence: float | None = None
        self._t_last: float | None = None
        self._beats = 0.0
        self._beat_bpm: float | None = None

    def snapshot(self, t: float) -> Any:
        """A ``device.heart.analysis.HeartState`` at ``t`` s (figures ``None`` without contact)."""
        from device.heart.analysis import HeartState

        lst = self.listener
        dt = 0.0 if self._t_last is None else max(0.0, t - self._t_last)
        self._t_last = t
        if self._breath is None or self._coherence is None:
            self._breath, self._coherence = lst.breathing_bpm, lst.coherence
        else:
            k = min(1.0, dt / (self.breath_window_s / 2.0))
            self._breath += (lst.breathing_bpm - self._breath) * k
            self._coherence += (lst.coherence - self._coherence) * k
        good = self.contact and self.quality >= 0.6
        if good:
            before = int(self._beats)
            self._beats += lst.hr_now_bpm / 60.0 * dt
            if self._beat_bpm is None or int(self._beats) != before:
                self._beat_bpm = lst.hr_now_bpm
            if self._good_since is None:
                self._good_since = t
        else:
            self._good_since = None
            self._beat_bpm = None
        # Like a spectral estimate, breathing and coherence need warmup_s of good signal.
        warm = good and self._good_since is not None and t - self._good_since >= self.warmup_s
        rmssd = 10.0 + 4.0 * lst.rsa_bpm if good else None
        return HeartState(
            t=t,
            hr_bpm=lst.hr_mean_bpm if good else None,
            hr_beat_bpm=self._beat_bpm if good else None,
            rmssd_ms=rmssd,
            sdnn_ms=None if rmssd is None else 1.2 * rmssd,
            rmssd_session_ms=rmssd,
            sdnn_session_ms=None if rmssd is None else 1.2 * rmssd,
            coherence=self._coherence if warm else None,
            breathing_bpm=self._breath if warm else None,
            quality=self.quality if self.contact else 0.0,
            contact=self.contact,
            beats=int(self._beats),
        )

    def __repr__(self) -> str:
        return f"<IdealHeart contact={self.contact} quality={self.quality:.2f}>"
