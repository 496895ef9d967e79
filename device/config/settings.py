"""Frozen, typed settings of the running box, built once from a validated config.

The config keeps its values as plain ``object``: it validated them against its schema but
its getters cannot say which type each key has. These dataclasses name every key the box
uses with its type, so the rest of the box reads ``settings.audio.sample_rate`` (an
``int``) instead of casting ``cfg.audio.sample_rate`` wherever it is needed. A field's
name is its key in the section of the same name.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import TypeVar

from device.config import Config
from device.exc import ConfigError

_S = TypeVar("_S")

_TYPES: dict[str, type] = {"int": int, "float": float, "str": str, "bool": bool}


def _section(cls: type[_S], cfg: Config, name: str) -> _S:
    """Build ``cls`` from the config section ``name`` (field name = key name)."""
    values: dict[str, object] = {}
    for f in fields(cls):  # type: ignore[arg-type]
        want = _TYPES[str(f.type)]
        raw = cfg.get(f"{name}.{f.name}")
        ok = isinstance(raw, want) and not (want is not bool and isinstance(raw, bool))
        if want is float and isinstance(raw, int) and not isinstance(raw, bool):
            ok = True
        if not ok:
            raise ConfigError(
                f"{name}.{f.name} must be {want.__name__}, not {type(raw).__name__}",
                key=f"{name}.{f.name}",
            )
        values[f.name] = want(raw)
    return cls(**values)


@dataclass(frozen=True, slots=True)
class AudioSettings:
    """The ``[audio]`` section: engine, sink and fades (rates in Hz, levels in dB, s)."""

    backend: str
    device: str
    output: str
    sample_rate: int
    block_frames: int
    buffer_blocks: int
    sample_format: str
    wav_path: str
    volume_db: float
    cap_dbfs: float
    fade_in_s: float
    fade_out_s: float
    stop_fade_s: float

    @classmethod
    def from_config(cls, cfg: Config) -> AudioSettings:
        """The audio settings of ``cfg``."""
        return _section(cls, cfg, "audio")


@dataclass(frozen=True, slots=True)
class SensorSettings:
    """The ``[sensor]`` section: the MAX30102's bus, ADC and LEDs, and the poll period (s)."""

    backend: str
    i2c_bus: int
    address: int
    sample_rate_sps: int
    averaging: int
    pulse_width_us: int
    adc_range_na: int
    led_red_ma: float
    led_ir_ma: float
    poll_interval_s: float

    @classmethod
    def from_config(cls, cfg: Config) -> SensorSettings:
        """The sensor settings of ``cfg``."""
        return _section(cls, cfg, "sensor")


@dataclass(frozen=True, slots=True)
class SimSettings:
    """The ``[sim]`` section: the simulated listener and its finger (used only with --sim)."""

    listener: str
    seed: int
    finger_off_at_s: float
    finger_off_for_s: float

    @classmethod
    def from_config(cls, cfg: Config) -> SimSettings:
        """The simulation settings of ``cfg``."""
        return _section(cls, cfg, "sim")


@dataclass(frozen=True, slots=True)
class TherapySettings:
    """The ``[therapy]`` section, read afresh at each session start (``CFG SET`` applies)."""

    program: str
    programs_dir: str
    pacer_target_bpm: float
    profile: str
    personalise: bool

    @classmethod
    def from_config(cls, cfg: Config) -> TherapySettings:
        """The therapy settings of ``cfg``."""
        return _section(cls, cfg, "therapy")


@dataclass(frozen=True, slots=True)
class GpioSettings:
    """The ``[gpio]`` section: BCM pins (-1 = none), button polarity and timing."""

    backend: str
    pin_start_stop: int
    pin_volume_up: int
    pin_volume_down: int
    pin_like: int
    pin_skip: int
    pin_led: int
    pin_amp_enable: int
    buttons_active_low: bool
    debounce_ms: int
    long_press_s: float

    @classmethod
    def from_config(cls, cfg: Config) -> GpioSettings:
        """The GPIO settings of ``cfg``."""
        return _section(cls, cfg, "gpio")

    def button_pins(self) -> dict[str, int]:
        """Button role -> BCM pin."""
        return {
            "start_stop": self.pin_start_stop,
            "volume_up": self.pin_volume_up,
            "volume_down": self.pin_volume_down,
            "like": self.pin_like,
            "skip": self.pin_skip,
        }


@dataclass(frozen=True, slots=True)
class ConsoleSettings:
    """The ``[console]`` section: serial port (empty = none) and baud rate."""

    port: str
    baud: int

    @classmethod
    def from_config(cls, cfg: Config) -> ConsoleSettings:
        """The console settings of ``cfg``."""
        return _section(cls, cfg, "console")


@dataclass(frozen=True, slots=True)
class StoreSettings:
    """The ``[store]`` section: state directory and retention in days."""

    state_dir: str
    retention_days: int

    @classmethod
    def from_config(cls, cfg: Config) -> StoreSettings:
        """The store settings of ``cfg``."""
        return _section(cls, cfg, "store")


@dataclass(frozen=True, slots=True)
class ServiceSettings:
    """The ``[service]`` section: status period (s) and whether the program starts itself."""

    status_interval_s: float
    auto_start: bool

    @classmethod
    def from_config(cls, cfg: Config) -> ServiceSettings:
        """The service settings of ``cfg``."""
        return _section(cls, cfg, "service")


@dataclass(frozen=True, slots=True)
class BoxSettings:
    """Every section the running box reads, built once at start-up."""

    audio: AudioSettings
    sensor: SensorSettings
    sim: SimSettings
    therapy: TherapySettings
    gpio: GpioSettings
    console: ConsoleSettings
    store: StoreSettings
    service: ServiceSettings

    @classmethod
    def from_config(cls, cfg: Config) -> BoxSettings:
        """All the box's settings of ``cfg``."""
        return cls(
            audio=AudioSettings.from_config(cfg),
            sensor=SensorSettings.from_config(cfg),
            sim=SimSettings.from_config(cfg),
            therapy=TherapySettings.from_config(cfg),
            gpio=GpioSettings.from_config(cfg),
            console=ConsoleSettings.from_config(cfg),
            store=StoreSettings.from_config(cfg),
            service=ServiceSettings.from_config(cfg),
        )


@dataclass(frozen=True, slots=True)
class SessionSettings:
    """What a session start reads, taken from the running config at that moment.

    ``CFG SET therapy.program ...`` on the console applies to the next session, so these
    are built afresh for each start rather than once at boot.
    """

    program: str
    programs_dir: str
    pacer_target_bpm: float
    profile: str
    personalise: bool
    #: Fade-in at a session start, s.
    fade_in_s: float
    #: Fade-out on a stop, at a program's end and on exit, s.
    stop_fade_s: float

    @classmethod
    def from_config(cls, cfg: Config) -> SessionSettings:
        """The session settings of ``cfg`` now."""
        t = TherapySettings.from_config(cfg)
        a = AudioSettings.from_config(cfg)
        return cls(
            program=t.program,
            programs_dir=t.programs_dir,
            pacer_target_bpm=t.pacer_target_bpm,
            profile=t.profile,
            personalise=t.personalise,
            fade_in_s=a.fade_in_s,
            stop_fade_s=a.stop_fade_s,
        )
