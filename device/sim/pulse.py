"""A physiological finger PPG, generated causally in chunks: the simulated listener's pulse.

The heart beats at a rate that swings with the breathing phase (respiratory sinus
arrhythmia, RSA: faster on the in-breath, slower on the out-breath), plus a slow random
drift and a little beat-to-beat jitter. Each beat adds a pulse with a systolic peak, a
dicrotic notch and a diastolic wave; the blood it brings absorbs light, so the photocurrent
*dips* at each systolic peak. On top: baseline wander with breathing and slow drift, sensor
noise, motion artefacts, and finger removal (the light falls to the stray level, no pulse).

Inputs are explicit (the listener model drives them): :meth:`PulseModel.set_heart`,
:meth:`~PulseModel.set_breathing`, :meth:`~PulseModel.set_contact`,
:meth:`~PulseModel.set_motion`, :meth:`~PulseModel.set_perfusion`,
:meth:`~PulseModel.set_light`. :meth:`PulseModel.render` returns the IR and Red photocurrent
per mA of LED drive for successive, increasing time vectors; what it returned never depends on
later calls, and splitting a time vector into chunks gives the same values as one call.
``beat_times`` holds the true systolic-peak times for tests.
"""

from __future__ import annotations

import math
from collections import deque

import numpy as np

#: Scale of the pulse shape at 70 bpm; the shape narrows at faster rates.
_REF_RR_S = 60.0 / 70.0
#: Beats are scheduled this far beyond the rendered time (a pulse starts ~0.25 s before its peak).
_SCHEDULE_AHEAD_S = 0.6
#: A pulse's tail is negligible this long after its peak (in units of the shape scale).
_TAIL_S = 1.3
#: Finger pressing on and lifting off takes this long (time constant).
_CONTACT_TAU_S = 0.15
#: Motion artefacts decay with this time constant.
_MOTION_TAU_S = 0.8


class PulseModel:
    """Finger photoplethysmogram with RSA, dicrotic notch, wander, noise, motion, removal.

    :param seed: seeds every random element (listener's finger optics, HRV, noise, motion);
        the same seed and the same inputs give the same signal.

    Output units are photocurrent in nA per mA of LED current (what a MAX30102 sees with the
    ambient light already cancelled); multiply by the LED current in mA to get nA.
    """

    def __init__(self, seed: int = 0) -> None:
        root = np.random.SeedSequence(seed)
        rng_person, rng_beats, rng_noise, rng_events, rng_jumps = (
            np.random.default_rng(s) for s in root.spawn(5)
        )
        self.seed = seed
        self._rng_beats = rng_beats
        self._rng_noise = rng_noise
        self._rng_events = rng_events
        self._rng_jumps = rng_jumps
        #: Finger optics of this listener: IR photocurrent per mA with a finger on, nA/mA.
        self.ir_gain = float(rng_person.uniform(330.0, 620.0))
        #: Red photocurrent per mA, nA/mA (red is absorbed more than IR).
        self.red_gain = self.ir_gain * float(rng_person.uniform(0.55, 0.8))
        #: Light reaching the photodiode without a finger (stray reflection), nA/mA.
        self.stray_gain = float(rng_person.uniform(3.0, 9.0))
        #: Height of the diastolic wave after the dicrotic notch, relative to the systolic peak.
        self.diastolic = float(rng_person.uniform(0.2, 0.4))
        # Slow baseline drift: a few slow sinusoids (relative DC change).
        self._drift_f = rng_person.uniform(0.004, 0.04, 3)
        self._drift_a = rng_person.uniform(0.001, 0.003, 3)
        self._drift_p = rng_person.uniform(0.0, 2 * math.pi, 3)

        self._mean_bpm = 64.0
        self._rsa_bpm = 4.0
        self._breath_bpm = 12.0
        self._breath_t0 = 0.0
        self._breath_phase0 = 0.0
        self._perfusion_pct = 1.5
        self._motion = 0.0
        self._light = False
        self._contact = True
        self._contact_t = -math.inf
        self._contact_from = 1.0

        self._t_last = -math.inf
        self._lf_bpm = 0.0
        self._next_beat: float | None = None
        self._beats: deque[tuple[float, float, float]] = deque()  # (peak time, scale, amplitude)
        self._beat_times: list[float] = []
        self._motion_state = 0.0

    # --- inputs ---------------------------------------------------------------------------

    def set_heart(self, mean_bpm: float, rsa_bpm: float) -> None:
        """Set the mean heart rate and the RSA swing (peak to trough over one breath), bpm."""
        if not 25.0 <= mean_bpm <= 220.0:
            raise ValueError(f"mean_bpm must be 25-220 bpm, not {mean_bpm!r}")
        if not 0.0 <= rsa_bpm <= 0.8 * mean_bpm:
            raise ValueError(f"rsa_bpm must be 0-{0.8 * mean_bpm:g} bpm, not {rsa_bpm!r}")
        self._mean_bpm = float(mean_bpm)
        self._rsa_bpm = float(rsa_bpm)

    def set_breathing(self, rate_bpm: float) -> None:
        """Set the breathing rate in breaths/min; the breathing phase continues smoothly."""
        if not 1.0 <= rate_bpm <= 60.0:
            raise ValueError(f"breathing rate must be 1-60 breaths/min, not {rate_bpm!r}")
        now = max(self._t_last, 0.0)
        self._breath_phase0 = float(self.breathing_phase(now))
        self._breath_t0 = now
        self._breath_bpm = float(rate_bpm)

    def set_contact(self, on: bool) -> None:
        """Put the finger on the sensor (``True``) or lift it off (``False``)."""
        if bool(on) == self._contact:
            return
        now = max(self._t_last, 0.0)
        self._contact_from = self._contact_level(np.array([now]))[0]
        self._contact_t = now
        self._contact = bool(on)

    def set_motion(self, level: float) -> None:
        """Set how much the hand moves, 0 (still) to 1 (restless): artefacts and noise."""
        if not 0.0 <= level <= 1.0:
            raise ValueError(f"motion level must be 0-1, not {level!r}")
        self._motion = float(level)

    def set_perfusion(self, index_pct: float) -> None:
        """Set the IR perfusion index (pulsatile / steady light) in percent, 0.01-20."""
        if not 0.01 <= index_pct <= 20.0:
            raise ValueError(f"perfusion index must be 0.01-20 %, not {index_pct!r}")
        self._perfusion_pct = float(index_pct)

    def set_light(self, bright: bool) -> None:
        """Switch a bright lamp on or off near the sensor (more than the chip can cancel)."""
        self._light = bool(bright)

    # --- state ---------------------------------------------------------------------------

    @property
    def contact(self) -> bool:
        """``True`` while the finger is on the sensor."""
        return self._contact

    @property
    def light_bright(self) -> bool:
        """``True`` while ambient light overwhelms the chip's ambient-light cancellation."""
        return self._light

    @property
    def motion(self) -> float:
        """The motion level, 0-1."""
        return self._motion

    @property
    def beat_times(self) -> list[float]:
        """True systolic-peak times (s) of every beat up to the last rendered time."""
        end = self._t_last
        times = self._beat_times
        n = len(times)
        while n and times[n - 1] > end:
            n -= 1
        return times[:n]

    def breathing_phase(self, t: float | np.ndarray) -> float | np.ndarray:
        """Breathing phase in cycles at time ``t`` (s); the fractional part 0-0.5 is in-breath."""
        return self._breath_phase0 + self._breath_bpm / 60.0 * (np.asarray(t) - self._breath_t0)

    def hr_bpm_at(self, t: float) -> float:
        """The instantaneous heart rate the model is driving at time ``t`` (without jitter)."""
        swing = 0.5 * self._rsa_bpm * math.sin(2 * math.pi * float(self.breathing_phase(t)))
        return min(220.0, max(25.0, self._mean_bpm + swing + self._lf_bpm))

    # --- output ----------------------------------------------------------------------------

    def render(self, t: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """IR and Red photocurrent (nA per mA of LED drive) at the increasing times ``t`` (s).

        :raises ValueError: if ``t`` does not increase or goes back before an earlier call.
        """
        t = np.asarray(t, dtype=np.float64)
        if t.ndim != 1:
            raise ValueError(f"render() needs a 1-D time vector, not shape {t.shape}")
        if t.size == 0:
            return np.zeros(0), np.zeros(0)
        if t[0] <= self._t_last or (t.size > 1 and np.any(np.diff(t) <= 0)):
            raise ValueError(
                f"render() times must increase: got {t[0]:.6f}.. after {self._t_last:.6f}"
            )
        self._schedule_beats(float(t[-1]) + _SCHEDULE_AHEAD_S, float(t[0]))
        pulse = self._pulse(t)
        contact = self._contact_level(t)
        phase = 2 * math.pi * self.breathing_phase(t)
        drift = np.zeros_like(t)
        for f, a, p in zip(self._drift_f, self._drift_a, self._drift_p, strict=True):
            drift += a * np.sin(2 * math.pi * f * t + p)
        wander = 1.0 + 0.004 * np.sin(phase) + drift + self._motion_artefact(t)
        # One (IR, Red) pair per sample, in order, so chunking never changes the noise.
        noise = self._rng_noise.standard_normal((t.size, 2))
        noise_ir, noise_red = noise[:, 0], noise[:, 1]
        noise_scale = 0.00012 * (1.0 + 4.0 * self._motion)
        pi = self._perfusion_pct / 100.0
        finger_ir = self.ir_gain * wander * (1.0 - pi * pulse)
        finger_red = self.red_gain * wander * (1.0 - 0.5 * pi * pulse)
        ir = contact * finger_ir + (1.0 - contact) * self.stray_gain
        red = contact * finger_red + (1.0 - contact) * 0.7 * self.stray_gain
        ir += noise_scale * self.ir_gain * noise_ir
        red += noise_scale * self.red_gain * noise_red
        self._t_last = float(t[-1])
        while self._beats and self._beats[0][0] + _TAIL_S * 1.4 < self._t_last:
            self._beats.popleft()
        return np.maximum(ir, 0.0), np.maximum(red, 0.0)

    # --- internals -------------------------------------------------------------------------

    def _schedule_beats(self, until: float, start: float) -> None:
        if self._next_beat is None:
            # The stream starts mid-cycle: the first beat falls within one interval.
            self._next_beat = start + self._rng_beats.uniform(0.05, 60.0 / self._mean_bpm)
        while self._next_beat <= until:
            beat = self._next_beat
            hr = self.hr_bpm_at(beat)
            rr = 60.0 / hr + self._rng_beats.normal(0.0, 0.006)
            rr = min(2.4, max(0.27, rr))
            # Slow random heart-rate drift (Ornstein-Uhlenbeck, 25 s, 1.2 bpm).
            decay = math.exp(-rr / 25.0)
            self._lf_bpm = (
                self._lf_bpm * decay + 1.2 * math.sqrt(1 - decay * decay) * self._rng_beats.normal()
            )
            # Stroke volume, and so pulse amplitude, dips a little on the in-breath.
            amplitude = 1.0 - 0.08 * math.sin(2 * math.pi * float(self.breathing_phase(beat)))
            amplitude *= 1.0 + self._rng_beats.normal(0.0, 0.03)
            scale = min(1.3, max(0.45, rr / _REF_RR_S))
            self._beats.append((beat, scale, amplitude))
            self._beat_times.append(beat)
            self._next_beat = beat + rr

    def _pulse(self, t: np.ndarray) -> np.ndarray:
        out = np.zeros_like(t)
        t0, t1 = t[0], t[-1]
        for peak, k, amplitude in self._beats:
            if peak - 0.4 * k > t1 or peak + _TAIL_S * k < t0:
                continue
            tau = (t - peak) / k
            rise = np.exp(-0.5 * (tau / 0.07) ** 2)
            fall = np.exp(-0.5 * (tau / 0.10) ** 2)
            systolic = np.where(tau < 0, rise, fall)
            diastolic = self.diastolic * np.exp(-0.5 * ((tau - 0.30) / 0.075) ** 2)
            runoff = 0.18 * np.exp(-0.5 * ((tau - 0.5) / 0.2) ** 2)
            # A fixed support per sample keeps the sum independent of the chunking.
            support = (tau >= -0.4) & (tau <= _TAIL_S)
            out += np.where(support, amplitude * (systolic + diastolic + runoff), 0.0)
        return out

    def _contact_level(self, t: np.ndarray) -> np.ndarray:
        target = 1.0 if self._contact else 0.0
        if not math.isfinite(self._contact_t):
            return np.full(t.shape, target)
        age = np.maximum(t - self._contact_t, 0.0)
        return target + (self._contact_from - target) * np.exp(-age / _CONTACT_TAU_S)

    def _motion_artefact(self, t: np.ndarray) -> np.ndarray:
        # Random draws per sample, whatever the level, so chunking never changes the signal.
        u = self._rng_events.random(t.size)
        jumps = self._rng_jumps.standard_normal(t.size)
        prev = self._t_last if math.isfinite(self._t_last) else t[0] - 0.01
        dt = np.diff(t, prepend=prev)
        events = np.flatnonzero(u < self._motion * 0.3 * dt)
        out = self._motion_state * np.exp(-(t - prev) / _MOTION_TAU_S)
        for i in events:
            out[i:] += 0.03 * self._motion * jumps[i] * np.exp(-(t[i:] - t[i]) / _MOTION_TAU_S)
        self._motion_state = float(out[-1])
        return out

    def __repr__(self) -> str:
        return (
            f"<PulseModel seed={self.seed} hr={self._mean_bpm:g}±{self._rsa_bpm / 2:g}bpm "
            f"breathing={self._breath_bpm:g}/min contact={self._contact} "
            f"motion={self._motion:g} t={self._t_last:.2f}s>"
        )
