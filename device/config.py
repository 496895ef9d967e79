"""Configuration: a TOML file validated against a schema kept as data.

Search order: ``--config FILE``, ``$BEDSIDE_CONFIG``, ``/etc/bedside/config.toml``, then the
built-in defaults. Every value is checked at start; an error names the file, ``section.key``,
the value found and what is allowed, and unknown sections or keys are errors (they are
almost always typos). The same validator checks values set from the console
(``CFG SET``), and saves are atomic.
"""

from __future__ import annotations

import math
import os
import tomllib
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

from device.exc import ConfigError

#: The system-wide configuration file read when nothing else is named.
SYSTEM_CONFIG = Path("/etc/bedside/config.toml")
#: Environment variable naming a configuration file.
ENV_CONFIG = "BEDSIDE_CONFIG"


@dataclass(frozen=True, slots=True)
class Key:
    """One configuration key: its type, default, allowed values and meaning."""

    kind: type
    default: object
    doc: str
    min: float | None = None
    max: float | None = None
    choices: tuple[object, ...] | None = None
    #: Service keys may only be changed from the console after a PIN login.
    service: bool = False

    def allowed(self) -> str:
        """Describe the allowed values in words, for error messages and ``--commented``."""
        if self.choices is not None:
            return "one of " + ", ".join(_toml_value(c) for c in self.choices)
        name = {bool: "true or false", int: "a whole number", float: "a number", str: "a string"}
        text = name[self.kind]
        if self.min is not None and self.max is not None:
            text += f" from {_fmt_num(self.min)} to {_fmt_num(self.max)}"
        elif self.min is not None:
            text += f" of at least {_fmt_num(self.min)}"
        elif self.max is not None:
            text += f" of at most {_fmt_num(self.max)}"
        return text


def _fmt_num(x: float) -> str:
    return str(int(x)) if float(x).is_integer() else str(x)


_BAUDS = (9600, 19200, 38400, 57600, 115200, 230400, 460800, 921600)

#: The whole schema: section -> key -> :class:`Key`.
SCHEMA: dict[str, dict[str, Key]] = {
    "audio": {
        "backend": Key(
            str,
            "pyaudio",
            "Audio output: pyaudio (the sound card), wav or null.",
            choices=("pyaudio", "wav", "null"),
            service=True,
        ),
        "device": Key(
            str,
            "",
            "PyAudio output device: a name substring or an index; empty = default.",
            service=True,
        ),
        "output": Key(
            str,
            "speaker",
            "What the listener hears through: speaker or headphones "
            "(binaural beats only with headphones or pillow speakers).",
            choices=("speaker", "headphones"),
            service=True,
        ),
        "sample_rate": Key(int, 48000, "Sample rate in Hz.", choices=(44100, 48000), service=True),
        "block_frames": Key(
            int,
            1024,
            "Frames per rendered block (the loop's tick).",
            choices=(256, 512, 1024, 2048, 4096),
            service=True,
        ),
        "buffer_blocks": Key(
            int,
            8,
            "Output buffer depth in blocks (deep buffers absorb stalls).",
            min=2,
            max=32,
            service=True,
        ),
        "sample_format": Key(
            str,
            "int16",
            "Sample format sent to the sound card.",
            choices=("int16", "float32"),
            service=True,
        ),
        "wav_path": Key(str, "bedside.wav", "File written when backend = wav."),
        "volume_db": Key(
            float, -12.0, "Listener volume in dBFS (at most the cap).", min=-60.0, max=0.0
        ),
        "cap_dbfs": Key(
            float,
            -6.0,
            "Hard output cap in dBFS that nothing can exceed.",
            min=-40.0,
            max=0.0,
            service=True,
        ),
        "fade_in_s": Key(
            float, 30.0, "Fade-in at the start of a session, seconds.", min=0.0, max=600.0
        ),
        "fade_out_s": Key(
            float, 120.0, "Default fade-out at the end of a program, seconds.", min=0.0, max=900.0
        ),
        "stop_fade_s": Key(float, 2.0, "Fade-out on stop or SIGTERM, seconds.", min=0.05, max=2.0),
    },
    "sensor": {
        "backend": Key(
            str,
            "max30102",
            "Pulse sensor: max30102 (real, I2C), sim or none.",
            choices=("max30102", "sim", "none"),
            service=True,
        ),
        "i2c_bus": Key(
            int, 1, "I2C bus number (/dev/i2c-N); 1 on the Pi header.", min=0, max=31, service=True
        ),
        "address": Key(
            int,
            0x57,
            "7-bit I2C address of the MAX30102 (87 = 0x57).",
            min=0x08,
            max=0x77,
            service=True,
        ),
        "sample_rate_sps": Key(
            int,
            100,
            "ADC sample rate in samples/s.",
            choices=(50, 100, 200, 400, 800, 1000, 1600),
            service=True,
        ),
        "averaging": Key(
            int,
            1,
            "On-chip sample averaging (output rate = rate / averaging).",
            choices=(1, 2, 4, 8, 16, 32),
            service=True,
        ),
        "pulse_width_us": Key(
            int,
            411,
            "LED pulse width in µs (sets ADC resolution).",
            choices=(69, 118, 215, 411),
            service=True,
        ),
        "adc_range_na": Key(
            int, 4096, "ADC full scale in nA.", choices=(2048, 4096, 8192, 16384), service=True
        ),
        "led_red_ma": Key(
            float, 7.0, "Initial red LED current in mA.", min=0.0, max=51.0, service=True
        ),
        "led_ir_ma": Key(
            float, 7.0, "Initial infrared LED current in mA.", min=0.0, max=51.0, service=True
        ),
        "poll_interval_s": Key(
            float, 0.1, "FIFO poll period in seconds.", min=0.02, max=0.3, service=True
        ),
    },
    "sim": {
        "listener": Key(
            str,
            "compliant",
            "Simulated listener: compliant, restless, "
            "non-compliant, or a path to a listener TOML file.",
        ),
        "seed": Key(
            int, 0, "Seed of the simulated listener, pulse and sound.", min=0, max=2**31 - 1
        ),
        "finger_off_at_s": Key(
            float,
            -1.0,
            "Simulated finger removal at this session time (s); negative = never.",
            min=-1.0,
        ),
        "finger_off_for_s": Key(
            float, 0.0, "How long the simulated finger stays off (s).", min=0.0
        ),
    },
    "therapy": {
        "program": Key(str, "wind-down", "Program played when a session starts."),
        "programs_dir": Key(
            str, "/etc/bedside/programs", "Directory of user program files.", service=True
        ),
        "pacer_target_bpm": Key(
            float, 6.0, "Breathing pacer target in breaths/min.", min=4.5, max=7.0
        ),
        "profile": Key(str, "default", "Listener profile whose preferences are learned."),
        "personalise": Key(bool, True, "Learn which sounds work for this listener."),
    },
    "console": {
        "port": Key(
            str,
            "/dev/serial0",
            "Serial port of the technician console "
            "(a device or any pyserial URL); empty = no console.",
            service=True,
        ),
        "baud": Key(int, 115200, "Baud rate (8N1).", choices=_BAUDS, service=True),
    },
    "gpio": {
        "backend": Key(
            str,
            "rpi",
            "GPIO access: rpi (RPi.GPIO API, rpi-lgpio), fake or none.",
            choices=("rpi", "fake", "none"),
            service=True,
        ),
        "pin_start_stop": Key(
            int, 17, "BCM pin of the start/stop button; -1 = none.", min=-1, max=27, service=True
        ),
        "pin_volume_up": Key(
            int, 27, "BCM pin of the volume-up button; -1 = none.", min=-1, max=27, service=True
        ),
        "pin_volume_down": Key(
            int, 22, "BCM pin of the volume-down button; -1 = none.", min=-1, max=27, service=True
        ),
        "pin_like": Key(
            int, 23, "BCM pin of the like button; -1 = none.", min=-1, max=27, service=True
        ),
        "pin_skip": Key(
            int, 24, "BCM pin of the skip button; -1 = none.", min=-1, max=27, service=True
        ),
        "pin_led": Key(
            int, 13, "BCM pin of the status LED; -1 = none.", min=-1, max=27, service=True
        ),
        "pin_amp_enable": Key(
            int,
            26,
            "BCM pin of the amplifier enable; -1 = none "
            "(for example when the kernel overlay owns SD_MODE).",
            min=-1,
            max=27,
            service=True,
        ),
        "buttons_active_low": Key(
            bool, True, "Buttons pull the pin low when pressed.", service=True
        ),
        "debounce_ms": Key(
            int, 30, "A button must read the same for this long.", min=5, max=200, service=True
        ),
        "long_press_s": Key(
            float, 1.0, "Hold time of a long press in seconds.", min=0.3, max=5.0, service=True
        ),
    },
    "store": {
        "state_dir": Key(
            str,
            "/var/lib/bedside",
            "Directory of the session store, PIN and learned preferences.",
            service=True,
        ),
        "retention_days": Key(
            int, 30, "Sessions older than this are deleted.", min=1, max=3650, service=True
        ),
    },
    "music": {
        "dir": Key(
            str,
            "/var/lib/bedside/music",
            "Folder of the listener's music (WAV, FLAC, OGG/Vorbis, MP3); a USB stick works.",
        ),
        "crossfade_s": Key(
            float, 6.0, "Equal-power crossfade between tracks, seconds.", min=0.5, max=30.0
        ),
    },
    "service": {
        "status_interval_s": Key(
            float, 1.0, "Period of the status line, seconds.", min=0.2, max=60.0
        ),
        "auto_start": Key(bool, True, "Start the configured program when the box starts."),
    },
}


class Section(Mapping[str, object]):
    """Read-only view of one configuration section, with attribute access."""

    __slots__ = ("_name", "_values")

    def __init__(self, name: str, values: dict[str, object]) -> None:
        self._name = name
        self._values = values

    def __getattr__(self, key: str) -> object:
        try:
            return self._values[key]
        except KeyError:
            raise AttributeError(f"no key {self._name}.{key}") from None

    def __getitem__(self, key: str) -> object:
        return self._values[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._values)

    def __len__(self) -> int:
        return len(self._values)

    def __repr__(self) -> str:
        return f"<Section [{self._name}] {self._values!r}>"


class Config:
    """A validated configuration: every key of :data:`SCHEMA` with its effective value.

    Immutable: :meth:`with_value` returns a new object. ``cfg.audio.volume_db`` and
    ``cfg.get("audio.volume_db")`` read a value; ``source`` names the file it came from
    (``None`` for the built-in defaults).
    """

    def __init__(self, values: dict[str, dict[str, object]], source: str | None = None) -> None:
        self._values = values
        self.source = source

    @classmethod
    def defaults(cls) -> Config:
        """Return the built-in defaults."""
        return cls({s: {k: key.default for k, key in keys.items()} for s, keys in SCHEMA.items()})

    def __getattr__(self, section: str) -> Section:
        if section.startswith("_"):
            raise AttributeError(section)
        try:
            return Section(section, self._values[section])
        except KeyError:
            raise AttributeError(f"no config section [{section}]") from None

    def get(self, dotted: str) -> object:
        """Return the value of ``section.key``; ``ConfigError`` if there is no such key."""
        section, key = _split_key(dotted, self.source)
        return self._values[section][key]

    def items(self) -> Iterator[tuple[str, object]]:
        """Yield ``("section.key", value)`` for every key, in schema order."""
        for section, keys in SCHEMA.items():
            for key in keys:
                yield f"{section}.{key}", self._values[section][key]

    def with_value(self, dotted: str, value: object, *, file: str | None = None) -> Config:
        """Return a copy with ``section.key`` set, validated as the file's values are.

        A string ``value`` is parsed as a TOML value (``-12.5``, ``true``, ``"a b"``); a bare
        word that is not TOML is taken as a string, so ``CFG SET audio.output headphones``
        works at a terminal.
        """
        section, key = _split_key(dotted, file)
        if isinstance(value, str):
            value = parse_value_text(value)
        checked = _check(section, key, value, file)
        values = {s: dict(v) for s, v in self._values.items()}
        values[section][key] = checked
        _check_together(values, file)
        return Config(values, self.source)

    def to_toml(self, *, commented: bool = False, only_changed: bool = False) -> str:
        """Render as TOML; ``commented`` adds each key's meaning and allowed values."""
        lines: list[str] = []
        if commented:
            lines += [
                "# Bedside configuration. Every key is optional: a missing key takes the",
                "# default shown. Check a file with: bedside config check FILE",
                "",
            ]
        for section, keys in SCHEMA.items():
            body: list[str] = []
            for name, key in keys.items():
                value = self._values[section][name]
                if only_changed and value == key.default:
                    continue
                if commented:
                    service = " Service key (PIN)." if key.service else ""
                    body.append(f"# {key.doc} Allowed: {key.allowed()}.{service}")
                body.append(f"{name} = {_toml_value(value)}")
            if body:
                lines.append(f"[{section}]")
                lines += body
                lines.append("")
        return "\n".join(lines)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Config) and self._values == other._values

    def __repr__(self) -> str:
        return f"<Config from {self.source or 'built-in defaults'}>"


def _split_key(dotted: str, file: str | None) -> tuple[str, str]:
    section, _, key = dotted.partition(".")
    if section not in SCHEMA:
        raise ConfigError(
            f"{_where(file)}unknown section [{section}] in {dotted!r} "
            f"(sections: {', '.join(SCHEMA)})",
            file=file,
            key=dotted,
        )
    if key not in SCHEMA[section]:
        raise ConfigError(
            f"{_where(file)}unknown key {dotted!r} (keys in [{section}]: "
            f"{', '.join(SCHEMA[section])})",
            file=file,
            key=dotted,
        )
    return section, key


def _where(file: str | None) -> str:
    return f"{file}: " if file else ""


def parse_value_text(text: str) -> object:
    """Parse console or command-line text as a TOML value; a bare word is a string."""
    try:
        return tomllib.loads(f"v = {text}")["v"]
    except tomllib.TOMLDecodeError:
        return text


def _check(section: str, name: str, value: object, file: str | None) -> object:
    key = SCHEMA[section][name]
    dotted = f"{section}.{name}"

    def fail() -> ConfigError:
        return ConfigError(
            f"{_where(file)}{dotted} = {_toml_value(value)} is not allowed: expected "
            f"{key.allowed()}",
            file=file,
            key=dotted,
            value=value,
        )

    if key.kind is bool:
        if not isinstance(value, bool):
            raise fail()
    elif key.kind is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise fail()
    elif key.kind is float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise fail()
        value = float(value)
        if not math.isfinite(value):
            raise fail()
    elif key.kind is str and not isinstance(value, str):
        raise fail()
    if key.choices is not None and value not in key.choices:
        raise fail()
    if key.min is not None and value < key.min:  # type: ignore[operator]
        raise fail()
    if key.max is not None and value > key.max:  # type: ignore[operator]
        raise fail()
    return value


def _toml_value(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    text = str(value).replace("\\", "\\\\").replace('"', '\\"')
    return f'"{text}"'


def parse_config(text: str, *, file: str | None = None) -> Config:
    """Validate TOML text; return the effective configuration (defaults filled in)."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{_where(file)}not valid TOML: {exc}", file=file) from None
    cfg = Config.defaults()
    values = cfg._values
    for section, body in data.items():
        if section not in SCHEMA:
            raise ConfigError(
                f"{_where(file)}unknown section [{section}] (sections: {', '.join(SCHEMA)})",
                file=file,
                key=section,
            )
        if not isinstance(body, dict):
            raise ConfigError(
                f"{_where(file)}{section} must be a [section] table", file=file, key=section
            )
        for name, value in body.items():
            _split_key(f"{section}.{name}", file)
            values[section][name] = _check(section, name, value, file)
    _check_together(values, file)
    return Config(values, file)


def _check_together(values: dict[str, dict[str, object]], file: str | None) -> None:
    """Rules that tie keys together (each still names the key at fault)."""
    sensor, audio = values["sensor"], values["audio"]
    # The MAX30102 FIFO holds 32 samples; a poll can come up to one audio block late, and the
    # FIFO must not fill in between (or samples are lost every poll).
    rate = int(sensor["sample_rate_sps"]) / int(sensor["averaging"])  # type: ignore[arg-type]
    fill_s = 32 / rate
    block_s = int(audio["block_frames"]) / int(audio["sample_rate"])  # type: ignore[arg-type]
    poll_s = float(sensor["poll_interval_s"])  # type: ignore[arg-type]
    if poll_s + block_s > 0.9 * fill_s:
        raise ConfigError(
            f"{_where(file)}sensor.poll_interval_s = {_toml_value(poll_s)} is not allowed: with "
            f"audio.block_frames = {audio['block_frames']} polls may come "
            f"{poll_s + block_s:.3f} s apart, but the sensor FIFO fills in {fill_s:.3f} s at "
            f"{rate:g} samples/s; expected at most {max(0.0, 0.9 * fill_s - block_s):.3f}",
            file=file,
            key="sensor.poll_interval_s",
            value=sensor["poll_interval_s"],
        )
    vol, cap = values["audio"]["volume_db"], values["audio"]["cap_dbfs"]
    if vol > cap:  # type: ignore[operator]
        raise ConfigError(
            f"{_where(file)}audio.volume_db = {_toml_value(vol)} is not allowed: expected at "
            f"most audio.cap_dbfs ({_toml_value(cap)})",
            file=file,
            key="audio.volume_db",
            value=vol,
        )


def find_config(explicit: str | None = None, env: Mapping[str, str] | None = None) -> Path | None:
    """Return the configuration file to read, following the search order, or ``None``.

    A file named explicitly (``--config`` or ``$BEDSIDE_CONFIG``) must exist.
    """
    env = os.environ if env is None else env
    for named, how in ((explicit, "--config"), (env.get(ENV_CONFIG), f"${ENV_CONFIG}")):
        if named:
            path = Path(named)
            if not path.is_file():
                raise ConfigError(
                    f"{named}: configuration file named by {how} does not exist", file=named
                )
            return path
    return SYSTEM_CONFIG if SYSTEM_CONFIG.is_file() else None


def load_config(explicit: str | None = None, env: Mapping[str, str] | None = None) -> Config:
    """Find, read and validate the configuration; defaults when there is no file."""
    path = find_config(explicit, env)
    if path is None:
        return Config.defaults()
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: cannot read: {exc}", file=str(path)) from None
    return parse_config(text, file=str(path))


def save_config(cfg: Config, path: str | os.PathLike[str]) -> None:
    """Write the keys that differ from the defaults to ``path`` atomically."""
    from device.store.atomic import atomic_write_text

    atomic_write_text(Path(path), cfg.to_toml(only_changed=True))
