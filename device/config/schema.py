"""The configuration schema, kept as data: every section, key, type, default and range.

:mod:`device.config` validates files against it; ``bedside config show --commented``
and the console's ``CFG`` commands read it. :func:`format_value` writes a value as TOML
on one line, short enough for an error message.
"""

from __future__ import annotations

from dataclasses import dataclass

#: Longest rendering of a value in an error message, in characters.
MAX_VALUE_TEXT = 60


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
            return "one of " + ", ".join(format_value(c) for c in self.choices)
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


#: MAX30102 data sheet Table 11 (SpO2 mode): the LED pulse widths (µs) the chip can fit
#: into one sample period at each sample rate. The driver's ``SPO2_ALLOWED_PW_US`` is this
#: table; it lives here so that checking a file needs no numpy, which the driver imports.
PULSE_WIDTHS_AT_RATE_US: dict[int, tuple[int, ...]] = {
    50: (69, 118, 215, 411),
    100: (69, 118, 215, 411),
    200: (69, 118, 215, 411),
    400: (69, 118, 215, 411),
    800: (69, 118, 215),
    1000: (69, 118),
    1600: (69,),
}

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


_ESCAPES = {
    '"': '\\"',
    "\\": "\\\\",
    "\n": "\\n",
    "\t": "\\t",
    "\r": "\\r",
    "\b": "\\b",
    "\f": "\\f",
}


def toml_string(text: str) -> str:
    """``text`` as a TOML basic string: quotes, backslashes and control characters escaped."""
    out = []
    for ch in text:
        if ch in _ESCAPES:
            out.append(_ESCAPES[ch])
        elif ord(ch) < 0x20 or ord(ch) == 0x7F:
            out.append(f"\\u{ord(ch):04x}")
        else:
            out.append(ch)
    return '"' + "".join(out) + '"'


def format_value(value: object, *, limit: int | None = None) -> str:
    """Write a scalar as TOML on one line; arrays and tables are named, not printed.

    ``limit`` shortens the text (an ellipsis marks the cut), for messages about
    absurd values such as a 5000-digit number.
    """
    text = _value_text(value)
    if limit is not None and len(text) > limit:
        text = text[: limit - 1] + "…"
    return text


def _value_text(value: object) -> str:
    """``value`` as TOML text, or a name in parentheses for what is not a scalar."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value) if value.bit_length() < 4000 else "(a number of over 1200 digits)"
    if isinstance(value, float):
        return repr(value)
    if isinstance(value, str):
        return toml_string(value)
    if isinstance(value, list):
        return "(an array)"
    if isinstance(value, dict):
        return "(a table)"
    return f"({type(value).__name__})"
