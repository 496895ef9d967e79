"""The once-per-second status line: human text or one JSON object per line."""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from device.heart.analysis import HeartState
    from device.sound.engine import Engine
    from device.sound.targets import SoundTargets

#: Keys every JSON status line carries (scripts rely on them).
JSON_KEYS = (
    "t",
    "state",
    "program",
    "hr",
    "quality",
    "contact",
    "breathing",
    "pacer",
    "entrain_hz",
    "volume_db",
    "underruns",
    "overruns",
)


def _num(value: object, digits: int) -> float | None:
    if value is None or not isinstance(value, int | float) or not math.isfinite(value):
        return None
    return round(float(value), digits)


def _count(value: object) -> int:
    return int(value) if isinstance(value, int | float) and math.isfinite(value) else 0


def status_json(status: Mapping[str, object]) -> str:
    """One JSON object (one line) with at least :data:`JSON_KEYS`."""
    out = {
        "t": _num(status.get("t"), 3),
        "state": status.get("state"),
        "program": status.get("program"),
        "hr": _num(status.get("hr"), 1),
        "quality": _num(status.get("quality"), 3) or 0.0,
        "contact": bool(status.get("contact")),
        "breathing": _num(status.get("breathing"), 2),
        "pacer": _num(status.get("pacer"), 2),
        "entrain_hz": _num(status.get("entrain_hz"), 3),
        "volume_db": _num(status.get("volume_db"), 1),
        "underruns": _count(status.get("underruns")),
        "overruns": _count(status.get("overruns")),
    }
    for key in (
        "entrain_kind",
        "section",
        "remaining_s",
        "rmssd",
        "coherence",
        "loop_state",
        "late_blocks",
        "level_db",
        "sensor",
        "storage",
        "sim_hr",
        "sim_breathing",
        "sim_asleep",
        "config_error",
        "track",
        "track_tempo_bpm",
        "music",
        "music_dropouts",
    ):
        if key in status:
            value = status[key]
            out[key] = _num(value, 3) if isinstance(value, float) else value
    return json.dumps(out, separators=(",", ":"))


def _clock(seconds: float) -> str:
    s = int(max(0.0, seconds))
    return f"{s // 3600:02d}:{s // 60 % 60:02d}:{s % 60:02d}"


def status_text(status: Mapping[str, object]) -> str:
    """A line a person can read at a terminal, ``--`` where a figure is not known."""

    def fmt(key: str, spec: str, unit: str = "") -> str:
        value = _num(status.get(key), 6)
        return "--" if value is None else f"{value:{spec}}{unit}"

    return (
        f"{_clock(_num(status.get('t'), 3) or 0.0)} {status.get('state')!s:<8}"
        f" HR {fmt('hr', '.0f')}"
        f"  q {fmt('quality', '.2f')}"
        f"  breath {fmt('breathing', '.1f')}"
        f"  pacer {fmt('pacer', '.1f', '/min')}"
        f"  entrain {fmt('entrain_hz', '.1f', ' Hz')}"
        f"  vol {fmt('volume_db', '.1f', ' dB')}"
        f"  underruns {_count(status.get('underruns'))}"
        f"  overruns {_count(status.get('overruns'))}"
    )


@dataclass(frozen=True, slots=True)
class SoundFigures:
    """The engine's figures for one status: user volume and cap (dB), present level (dBFS)."""

    volume_db: float
    cap_dbfs: float
    level_db: float
    #: Entrainment the engine plays (``None``: as the targets say).
    entrain_kind: str | None
    binaural_as_monaural: bool

    @classmethod
    def of(cls, engine: Engine) -> SoundFigures:
        """The figures of ``engine`` now."""
        estat = engine.status()
        kind = estat.get("entrain_kind")
        return cls(
            volume_db=engine.volume_db,
            cap_dbfs=engine.cap_dbfs,
            level_db=engine.level_db,
            entrain_kind=None if kind is None else str(kind),
            binaural_as_monaural=bool(estat.get("binaural_as_monaural", False)),
        )


@dataclass(frozen=True, slots=True)
class LoopFigures:
    """The loop's figures for one status."""

    overruns: int
    late_blocks: int
    uptime_s: float


def choice_text(chosen: object) -> str | None:
    """The personalisation's choice as one value, ``entrain_kind=isochronic,pad_preset=choir``
    (``None``: no session or nothing chosen), so the status keeps one key set whether or not
    a session plays."""
    if not isinstance(chosen, Mapping) or not chosen:
        return None
    return ",".join(f"{k}={v}" for k, v in sorted(chosen.items()))


def assemble_status(
    *,
    t: float,
    session: Mapping[str, object],
    targets: SoundTargets | None,
    heart: HeartState,
    sound: SoundFigures,
    loop: LoopFigures,
    health: Mapping[str, object],
    extra: Mapping[str, object] | None = None,
    music: Mapping[str, object] | None = None,
) -> dict[str, object]:
    """Everything the status line and ``STATUS?`` show, from the parts' own figures.

    :param t: loop time, s.
    :param session: the session runner's part (state, program, section, times, pacer ...).
    :param targets: the sound targets of the session playing (``None``: no session).
    :param heart: the heart state now (withheld figures are ``None``).
    :param sound: the engine's figures.
    :param loop: the loop's figures.
    :param health: sensor, storage, audio and config health.
    :param extra: further keys (a simulated run's listener figures; never on a real box).
    :param music: the music player's ``track`` and ``track_tempo_bpm`` (``None``: no music).
    """
    out: dict[str, object] = {
        "t": t,
        **{k: session.get(k) for k in ("state", "program", "section", "elapsed_s", "remaining_s")},
        **_heart_part(heart),
        "pacer": session.get("pacer"),
        "loop_state": session.get("loop_state"),
        "chosen": choice_text(session.get("chosen")),
        "why": session.get("why"),
        **_music_part(music),
        **_sound_part(sound, targets),
        "overruns": loop.overruns,
        "late_blocks": loop.late_blocks,
        "uptime_s": loop.uptime_s,
        **health,
        "loop_reason": session.get("loop_reason"),
    }
    if extra:
        out.update(extra)
    return out


def _heart_part(heart: HeartState) -> dict[str, object]:
    """The heart's figures of the status (withheld ones ``None``)."""
    return {
        "hr": heart.hr_bpm,
        "quality": heart.quality,
        "contact": heart.contact,
        "rmssd": heart.rmssd_ms,
        "coherence": heart.coherence,
        "breathing": heart.breathing_bpm,
    }


def _music_part(music: Mapping[str, object] | None) -> dict[str, object]:
    """The music player's figures of the status (all ``None`` without music)."""
    keys = ("track", "track_tempo_bpm", "music", "music_dropouts")
    return {k: None if music is None else music.get(k) for k in keys}


def _sound_part(sound: SoundFigures, targets: SoundTargets | None) -> dict[str, object]:
    """The sound's figures of the status: what entrains, and the levels."""
    entrain_kind = sound.entrain_kind
    if entrain_kind is None and targets is not None:
        entrain_kind = targets.entrain_kind
    entrain_hz = None
    if targets is not None and targets.entrain_kind != "none":
        entrain_hz = targets.entrain_hz
    return {
        "entrain_kind": entrain_kind,
        "binaural_as_monaural": sound.binaural_as_monaural,
        "entrain_hz": entrain_hz,
        "volume_db": sound.volume_db,
        "cap_dbfs": sound.cap_dbfs,
        "level_db": sound.level_db,
    }
