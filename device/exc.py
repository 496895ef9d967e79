"""The one exception tree of the Bedside box.

Every error the box raises on purpose derives from :class:`BedsideError`. Leaves also
inherit the builtin a caller would naturally catch (``ValueError`` for bad values,
``OSError`` for hardware, ``TimeoutError`` for waits), as gpiozero's ``exc.py`` does, so
code that knows nothing of Bedside still handles them sensibly.

Conditions the box survives (a sensor gone, a fallback taken) are reported as warnings
derived from :class:`BedsideWarning`, or counted and shown in the status, never raised
out of the audio loop.
"""

from __future__ import annotations


class BedsideError(Exception):
    """Base class of every error raised by the Bedside box."""


# --- configuration and input ------------------------------------------------------------


class ConfigError(BedsideError, ValueError):
    """A configuration file or value is invalid.

    The message names the file (when there is one), ``section.key``, the value found and
    what is allowed.
    """

    def __init__(
        self,
        message: str,
        *,
        file: str | None = None,
        key: str | None = None,
        value: object = None,
    ) -> None:
        super().__init__(message)
        self.file = file
        self.key = key
        self.value = value


class ProgramError(ConfigError):
    """A therapy program file is invalid (the message names file, section and key)."""


class UsageError(BedsideError, ValueError):
    """A command line was used wrongly (exit status 2).

    :param command: the command that refused it (``bedside run``), named in the message's
        prefix; ``None`` for ``bedside``.
    """

    def __init__(self, message: str, *, command: str | None = None) -> None:
        super().__init__(message)
        self.command = command


class InputFileError(BedsideError, ValueError):
    """An input data file (for example a PPG CSV) is malformed; the message names the row."""


class SettingError(BedsideError, ValueError):
    """A hardware setting the datasheet forbids (for example 1600 sps with 411 µs pulses)."""


# --- hardware -----------------------------------------------------------------------------


class HardwareError(BedsideError, OSError):
    """A piece of hardware failed or is missing."""


class BusError(HardwareError):
    """An I2C transaction failed after its retries (wraps the errno of the last attempt)."""


class SensorNotFound(HardwareError):
    """The pulse sensor did not answer, or answered with the wrong identity."""


class SensorTimeout(HardwareError, TimeoutError):
    """The pulse sensor did not finish an operation (such as a reset) in time."""


class AudioDeviceError(HardwareError):
    """The audio output device could not be opened or failed while playing."""


class GpioError(HardwareError):
    """A GPIO pin could not be set up or driven."""


class SerialPortError(HardwareError):
    """The console's serial port could not be opened or failed."""


# --- state, storage, access ----------------------------------------------------------------


class StateError(BedsideError, RuntimeError):
    """The request is not allowed in the box's current state (console error 4)."""


class StorageError(BedsideError, OSError):
    """The session store or a saved file could not be read or written."""


class AuthError(BedsideError, PermissionError):
    """A service command was refused: no valid PIN login, or AUTH locked out."""


# --- warnings --------------------------------------------------------------------------------


class BedsideWarning(Warning):
    """Base class of the conditions the box survives and reports."""


class SensorFallbackWarning(BedsideWarning):
    """No sensor could be used; the box plays open loop (the plain timeline)."""


class ConfigFallbackWarning(BedsideWarning):
    """The configuration file was invalid; the service runs on built-in defaults."""
