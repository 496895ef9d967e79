"""The simulated listener's parameters and built-in kinds, and reading them from a file.

:data:`PARAMETERS` declares each parameter of a :class:`~device.sim.listener.Listener` with
its range, default and meaning; :data:`KINDS` are the built-in listeners (a follower, a
sleeper, a restless and a non-compliant one); :func:`resolve` turns a kind name, a dict or
a TOML file into a name, parameters and likes, with a clear error for anything wrong.
"""

from __future__ import annotations

import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from device.exc import ConfigError

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
    "sleeper": {
        "hr_bpm": 66.0,
        "breathing_bpm": 13.0,
        "compliance": 0.95,
        "lag_s": 20.0,
        "breath_noise_bpm": 0.2,
        "rsa_bpm": 3.0,
        "sleep_per_h": 12.0,
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


def resolve(
    kind: str | Path | Mapping[str, Any],
) -> tuple[str, dict[str, float], dict[str, str]]:
    """A listener's name, parameters and likes from a built-in kind, a dict or a TOML file.

    :raises ValueError: ``kind`` is none of those.
    :raises ConfigError: the file or dict holds an unknown key, a value out of range or an
        unknown base ``kind``.
    """
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
        raise ValueError(f"no listener {kind!r}: use {', '.join(KINDS)} or a listener's .toml file")
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
    params, likes = _parameters(spec, file)
    return name, params, likes


def _parameters(spec: Mapping[str, Any], file: str | None) -> tuple[dict[str, float], dict]:
    """The listener's parameters (defaults filled in) and ``likes`` from ``spec``, checked."""
    where = f"{file}: " if file else ""
    params = {name: default for name, (_, _, default, _) in PARAMETERS.items()}
    likes: dict[str, str] = {}
    for key, value in spec.items():
        if key == "likes":
            likes = _likes(value, where, file)
        else:
            params[key] = _parameter(key, value, where, file)
    return params, likes


def _likes(value: object, where: str, file: str | None) -> dict[str, str]:
    """The ``likes`` table (option = choice), checked."""
    if not isinstance(value, Mapping) or not all(isinstance(v, str) for v in value.values()):
        raise ConfigError(
            f"{where}listener.likes: {value!r} must be a table of option = choice",
            file=file,
            key="listener.likes",
            value=value,
        )
    return {str(k): v for k, v in value.items()}


def _parameter(key: str, value: object, where: str, file: str | None) -> float:
    """One listener parameter: a known key, a number inside its range."""
    if key not in PARAMETERS:
        raise ConfigError(
            f"{where}listener.{key}: unknown key (allowed {', '.join(sorted(PARAMETERS))}, likes)",
            file=file,
            key=f"listener.{key}",
            value=value,
        )
    low, high, _, meaning = PARAMETERS[key]
    ok = isinstance(value, int | float) and not isinstance(value, bool)
    if not ok or not low <= float(value) <= high:  # type: ignore[arg-type]
        raise ConfigError(
            f"{where}listener.{key}: {value!r} is out of range (allowed {low:g} .. {high:g}:"
            f" {meaning})",
            file=file,
            key=f"listener.{key}",
            value=value,
        )
    return float(value)  # type: ignore[arg-type]


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
