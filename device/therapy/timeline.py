"""Evaluate a program at a time: the plain (open-loop) sound a session plays.

:class:`Timeline` turns a :class:`~device.therapy.program.Program` into
:class:`~device.sound.targets.SoundTargets` at any time ``t`` (seconds since the session
started). Everything numeric is continuous in time: slides follow their curve, transitions
crossfade from where the previous section ended, levels move in dB (a layer switched off
fades from -80 dB, which is inaudible under any master level), the breath swell's depth
goes to 0 before the pacer is switched off. Discrete choices (pad preset, noise colour,
entrainment kind) switch at the middle of a transition; the engine crossfades them.
"""

from __future__ import annotations

import bisect
import math
from dataclasses import dataclass, fields
from typing import Any

from device.sound.targets import OFF_DB, SoundTargets
from device.therapy.program import Program, Section

#: Level fields, in dB, that may be off.
LEVELS = ("tones_db", "pad_db", "noise_db", "music_db", "composer_db")

#: A layer fading in or out moves from/to this level in dB, then switches off.
FADE_FLOOR_DB = -80.0

#: Steepness of the "exponential" ease used where a geometric slide is impossible.
_EXP_K = 4.0

_FIELDS = tuple(f.name for f in fields(SoundTargets))

State = dict[str, Any]


def curve_weight(u: float, curve: str) -> float:
    """Weight 0..1 at progress ``u`` (0..1) along ``curve`` ("linear", "exponential", "S")."""
    u = 0.0 if u <= 0.0 else 1.0 if u >= 1.0 else u
    if curve == "S":
        return u * u * (3.0 - 2.0 * u)
    if curve == "exponential":
        return (1.0 - math.exp(-_EXP_K * u)) / (1.0 - math.exp(-_EXP_K))
    return u


def interpolate(a: float, b: float, u: float, curve: str) -> float:
    """Value at progress ``u`` from ``a`` to ``b`` along ``curve``.

    "exponential" between two positive values is geometric (equal ratios per unit time,
    like SBaGen's drop: 10 Hz -> 2 Hz halves the rate at equal steps); otherwise it eases.
    """
    if curve == "exponential" and a > 0.0 and b > 0.0:
        u = 0.0 if u <= 0.0 else 1.0 if u >= 1.0 else u
        return a * (b / a) ** u
    return a + (b - a) * curve_weight(u, curve)


def _mix_db(a: float, b: float, w: float) -> float:
    if a <= OFF_DB and b <= OFF_DB:
        return OFF_DB
    a, b = max(a, FADE_FLOOR_DB), max(b, FADE_FLOOR_DB)
    value = a + (b - a) * w
    return OFF_DB if value <= FADE_FLOOR_DB else value


def blend(a: State, b: State, u: float, curve: str) -> State:
    """The state at progress ``u`` (0..1) from state ``a`` to ``b`` along ``curve``."""
    w = curve_weight(u, curve)
    out: State = {}
    for name in _FIELDS:
        if name != "pacer_bpm" and name != "swell_db":
            out[name] = _blend_field(name, a[name], b[name], u, w, curve)
    out["pacer_bpm"], out["swell_db"] = _blend_breath(a, b, u, w, curve)
    return out


def _blend_field(name: str, va: Any, vb: Any, u: float, w: float, curve: str) -> Any:
    """One field between two states: levels in dB, names and flags switched half way,
    numbers along the curve."""
    if name in LEVELS or name == "program_db":
        return _mix_db(va, vb, w)
    if isinstance(va, str | bool) or isinstance(vb, str | bool) or va is None or vb is None:
        return va if w < 0.5 else vb
    return interpolate(va, vb, u, curve)


def _blend_breath(a: State, b: State, u: float, w: float, curve: str) -> tuple[float | None, float]:
    """The pacer and swell depth between two states: the swell depth fades to 0 before the
    pacer goes off, and grows from 0 when it starts."""
    pa, pb = a["pacer_bpm"], b["pacer_bpm"]
    sa = a["swell_db"] if pa is not None else 0.0
    sb = b["swell_db"] if pb is not None else 0.0
    if pa is None and pb is None:
        return None, 0.0
    if pa is None:
        pacer = pb
    elif pb is None:
        pacer = pa if u < 1.0 else None
    else:
        pacer = interpolate(pa, pb, u, curve)
    swell = sa + (sb - sa) * w
    return pacer, (swell if pacer is not None else 0.0)


@dataclass(frozen=True, slots=True)
class TimelinePoint:
    """The plain timeline at one time.

    ``phase`` is "section", "ending" or "done"; ``section`` the section name (or "ending:
    <kind>", or "done"); times in seconds.
    """

    targets: SoundTargets
    phase: str
    section: str
    section_index: int
    section_remaining_s: float
    remaining_s: float


def _off_to_db(name: str, value: float | None) -> float | None:
    if name in LEVELS and value is None:
        return OFF_DB
    return value


class Timeline:
    """A program laid out in time; :meth:`at` evaluates it.

    ``overrides`` replaces a discrete choice everywhere in the program (the personalisation's
    chosen ``pad_preset``, ``noise_colour`` or ``entrain_kind``; an ``entrain_kind`` override
    leaves sections that play no tones at "none").
    """

    def __init__(self, program: Program, overrides: dict[str, str] | None = None) -> None:
        self.program = program
        self.overrides = dict(overrides or {})
        self._starts: list[float] = []
        self._from: list[State] = []
        self._to: list[State] = []
        state: State = {name: getattr(SoundTargets(), name) for name in _FIELDS}
        t = 0.0
        for section in program.sections:
            start, end = dict(state), dict(state)
            for name, value in section.values.items():
                if isinstance(value, tuple):
                    start[name] = _off_to_db(name, value[0])
                    end[name] = _off_to_db(name, value[1])
                else:
                    start[name] = end[name] = value
            for state_ in (start, end):
                self._apply_overrides(state_)
            self._starts.append(t)
            self._from.append(start)
            self._to.append(end)
            t += section.duration_s
            state = end
        self.body_s = t
        self.duration_s = t + program.ending.duration_s
        self._last = dict(state)
        self._ending_target = self._ending_state(self._last)
        paced = [st["pacer_bpm"] for st in self._from + self._to if st["pacer_bpm"] is not None]
        #: Slowest pacer rate the program asks for (breaths/min), or ``None`` if it never paces.
        self.min_pacer_bpm: float | None = min(paced) if paced else None
        #: Pacer rate at the start of the program (breaths/min), or ``None``.
        self.start_pacer_bpm: float | None = self._from[0]["pacer_bpm"]

    def _apply_overrides(self, state: State) -> None:
        for name, value in self.overrides.items():
            if name == "entrain_kind" and state[name] == "none":
                continue
            state[name] = value
        style = self.overrides.get("composer_style", "pad")
        if style != "pad" and state["pad_db"] > OFF_DB:
            # a chosen composer style plays composed music in the pad's place, at its level
            state["composer_db"], state["pad_db"] = state["pad_db"], OFF_DB

    def _ending_state(self, last: State) -> State:
        ending = self.program.ending
        target = dict(last)
        if ending.kind == "quiet-bed":
            target.update(ending.values)
            target["tones_db"] = OFF_DB
            target["pacer_bpm"] = None
            self._apply_overrides(target)
        elif ending.kind == "wake":
            target.update(ending.values)
            target["pacer_bpm"] = None
        return target

    def _section_state(self, i: int, tau: float) -> State:
        section: Section = self.program.sections[i]
        own = blend(self._from[i], self._to[i], tau / section.duration_s, section.curve)
        tr = section.transition
        if i == 0 or tr.duration_s <= 0.0 or tau >= tr.duration_s:
            return own
        return blend(self._to[i - 1], own, tau / tr.duration_s, tr.curve)

    def _ending_at(self, tau: float) -> State:
        ending = self.program.ending
        if ending.kind == "fade":
            state = dict(self._last)
            state["program_db"] = _fade_db(
                1.0 - curve_weight(tau / ending.duration_s, ending.curve)
            )
            return state
        if ending.kind == "quiet-bed":
            state = blend(
                self._last, self._ending_target, tau / max(ending.transition_s, 1e-9), ending.curve
            )
            fade_start = ending.duration_s - ending.fade_s
            if tau > fade_start:
                u = (tau - fade_start) / max(ending.fade_s, 1e-9)
                state["program_db"] = _fade_db(1.0 - curve_weight(u, ending.curve))
            return state
        return blend(self._last, self._ending_target, tau / ending.duration_s, ending.curve)

    def state_at(self, t: float) -> tuple[State, int, str]:
        """The raw state dict at ``t`` s, the section index (-1 in the ending) and the phase."""
        if t < 0.0:
            t = 0.0
        if t < self.body_s:
            i = bisect.bisect_right(self._starts, t) - 1
            return self._section_state(i, t - self._starts[i]), i, "section"
        if t < self.duration_s:
            return self._ending_at(t - self.body_s), -1, "ending"
        state = self._ending_at(self.program.ending.duration_s)
        if self.program.ending.kind != "wake":
            state["program_db"] = OFF_DB
        return state, -1, "done"

    def at(self, t: float) -> TimelinePoint:
        """The plain timeline at ``t`` seconds since the session started."""
        state, i, phase = self.state_at(t)
        if state["pacer_bpm"] is None:
            state["swell_db"] = 0.0  # no pacer, no swell (whatever depth a section carries)
        remaining = max(0.0, self.duration_s - t)
        if phase == "section":
            name = self.program.sections[i].name
            section_remaining = self._starts[i] + self.program.sections[i].duration_s - t
        elif phase == "ending":
            name = f"ending:{self.program.ending.kind}"
            section_remaining = remaining
        else:
            name, section_remaining = "done", 0.0
        return TimelinePoint(
            targets=SoundTargets(**state),
            phase=phase,
            section=name,
            section_index=i,
            section_remaining_s=max(0.0, section_remaining),
            remaining_s=remaining,
        )

    def __repr__(self) -> str:
        return (
            f"<Timeline {self.program.name!r} {self.duration_s:.0f} s overrides={self.overrides}>"
        )


def _fade_db(gain: float) -> float:
    """Program gain in dB for an amplitude ``gain`` 0..1 (off below -80 dB)."""
    if gain <= 10.0 ** (FADE_FLOOR_DB / 20.0):
        return OFF_DB
    return 20.0 * math.log10(gain)
