"""How one run of the box was asked for: the command line, over the config."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class RunOptions:
    """How this run of the box was asked for (command line over config)."""

    sim: bool = False
    #: ``"pyaudio"``, ``"wav:PATH"`` or ``"null"``; ``None`` = from config.
    audio: str | None = None
    program: str | None = None
    #: Stop the box after this many seconds of audio; ``None`` = run until stopped.
    duration_s: float | None = None
    #: Virtual-clock speed factor; ``None`` = as fast as possible. Ignored with a sound card.
    speed: float | None = 1.0
    serial: str | None = None
    #: ``"text"``, ``"json"`` or ``"none"``.
    status: str = "text"
    listener: str | None = None
    seed: int | None = None
    state_dir: str | None = None
    #: Under systemd: a bad config falls back to defaults, the store lives in $STATE_DIRECTORY.
    service: bool = False
    #: End the run when the session's program has ended (``bedside render``).
    exit_when_done: bool = False
    #: Minutes for the first session (``None`` = the program's own length).
    minutes: float | None = None
    #: Error text of a configuration that was refused (service mode fell back to defaults).
    config_error: str | None = None
    config_path: str | None = None
