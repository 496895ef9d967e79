"""Silence the ALSA and JACK probing noise of ``PyAudio()`` at its source.

``Pa_Initialize`` opens every PCM name in the ALSA configuration and tries the JACK server,
and each failure is printed to stderr by the library itself: about 60 lines (``ALSA lib
pcm.c:2666:(snd_pcm_open_noupdate) Unknown PCM cards.pcm.front``, ``jack server is not
running or cannot be started``) in the journal at every start. They are not errors of the
box: a real failure to open the card comes back from PortAudio as an error code.

:func:`quiet_probing` installs a silent ``snd_lib_error_set_handler`` for the probing only
(ALSA's own messages after it, such as an underrun, still reach the journal), and silent
JACK error and info functions (libjack has no getter for the old ones; PortAudio uses JACK
only while it probes). ``JACK_NO_START_SERVER=1`` keeps libjack from starting a server.
File descriptor 2 is never touched, so the box's own log lines are never lost.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import os
from collections.abc import Iterator
from typing import Any

# void handler(const char *file, int line, const char *function, int err, const char *fmt, ...)
# (variadic: the extra arguments are ignored by a handler that does nothing).
_ALSA_HANDLER = ctypes.CFUNCTYPE(
    None, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p
)
_JACK_HANDLER = ctypes.CFUNCTYPE(None, ctypes.c_char_p)


def _ignore_alsa(file: bytes, line: int, function: bytes, err: int, fmt: bytes) -> None:
    return None


def _ignore_jack(message: bytes) -> None:
    return None


# Kept alive for the life of the process: the libraries hold raw pointers to them.
_alsa_silent = _ALSA_HANDLER(_ignore_alsa)
_jack_silent = _JACK_HANDLER(_ignore_jack)
_libs: dict[str, Any] = {}


def _load(name: str) -> Any:
    if name not in _libs:
        path = ctypes.util.find_library(name)
        try:
            _libs[name] = ctypes.CDLL(path or f"lib{name}.so")
        except OSError:
            _libs[name] = None
    return _libs[name]


def _silence_jack() -> None:
    os.environ.setdefault("JACK_NO_START_SERVER", "1")
    jack = _load("jack")
    if jack is None:
        return
    with contextlib.suppress(AttributeError):
        jack.jack_set_error_function(_jack_silent)
        jack.jack_set_info_function(_jack_silent)


@contextlib.contextmanager
def quiet_probing() -> Iterator[None]:
    """While inside, ALSA and JACK print nothing to stderr (PortAudio's device probing)."""
    _silence_jack()
    asound = _load("asound")
    if asound is None:
        yield
        return
    asound.snd_lib_error_set_handler(_alsa_silent)
    try:
        yield
    finally:
        asound.snd_lib_error_set_handler(None)  # back to ALSA's default (stderr)
