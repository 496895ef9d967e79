"""The box's health: which fault the LED blinks, when the watchdog is petted, the self-test.

:class:`Health` looks at the parts the box runs (sound sink, pulse sensor, store, config)
and says truthfully what is wrong: the fault the status LED blinks (codes in
:data:`device.controls.panel.FAULT_CODES`), whether the systemd watchdog may be petted (only
while the loop runs *and* the sound card works), the audio figures of the status, and the
``SELFTEST`` checks. A change of the sound card's health is logged once, not every second.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass

from device.box.wall_clock import WallClock
from device.controls.panel import Controls
from device.drivers.audio import AudioSink
from device.exc import StorageError
from device.heart.feed import HeartFeed
from device.store.recorder import Recorder

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Check:
    """One self-test result: its name, whether it passed, and what was seen."""

    name: str
    ok: bool
    detail: str

    def as_tuple(self) -> tuple[str, bool, str]:
        """``(name, ok, detail)`` as the console prints it."""
        return (self.name, self.ok, self.detail)


class Health:
    """Health of the running box's parts.

    :param sink: the sound sink.
    :param heart: the pulse sensor and its analysis.
    :param recorder: the session recorder (its storage fault).
    :param audio_spec: how the sink was asked for (``pyaudio``, ``wav:PATH``, ...).
    :param sensor_expected: a sensor is configured (``sensor.backend`` is not ``none``), so
        its absence is a fault.
    :param config_error: why the configuration was refused (service fallback), or ``None``.
    :param wall: whether the wall clock is set (default: the system clock).
    """

    def __init__(
        self,
        sink: AudioSink,
        heart: HeartFeed,
        recorder: Recorder,
        *,
        audio_spec: str,
        sensor_expected: bool,
        config_error: str | None = None,
        wall: WallClock | None = None,
    ) -> None:
        self.sink = sink
        self.heart = heart
        self.recorder = recorder
        self.audio_spec = audio_spec
        self.sensor_expected = sensor_expected
        self.config_error = config_error
        self.wall = WallClock() if wall is None else wall
        self._sink_was_healthy = True
        self._fault_shown: str | None = None

    # -- the sound card -------------------------------------------------------------------

    def sink_healthy(self) -> bool:
        """False while the sound sink cannot deliver sound; a change is logged once."""
        healthy = bool(self.sink.healthy)
        if healthy != self._sink_was_healthy:
            self._sink_was_healthy = healthy
            if healthy:
                log.warning(
                    "audio output works again (%s, %d reopen(s))",
                    self.audio_spec,
                    self.sink.reopens,
                )
            else:
                log.error(
                    "audio output failing (%s): %s; errors=%d (the box keeps retrying)",
                    self.audio_spec,
                    self.sink.last_error or "no detail",
                    self.sink.errors,
                )
        return healthy

    def audio_status(self) -> dict[str, object]:
        """The sound card's figures for the status."""
        healthy = self.sink_healthy()
        return {
            "audio": "ok" if healthy else "fault",
            "audio_error": None if healthy else (self.sink.last_error or "failing"),
            "audio_errors": int(self.sink.errors),
            "audio_reopens": int(self.sink.reopens),
            "underruns": int(self.sink.underruns),
        }

    def status(self) -> dict[str, object]:
        """The health part of the status: audio, sensor, storage, configuration and clock."""
        rec = self.recorder
        return {
            **self.audio_status(),
            "sensor": self.heart.status_word(),
            "storage": "ok" if rec.storage_error is None else "fault",
            "storage_error": rec.storage_error,
            "config_error": self.config_error,
            **self.wall.status(),
        }

    # -- LED and watchdog -----------------------------------------------------------------

    def fault(self) -> str | None:
        """The fault the LED shows (sensor over audio over storage over config), or ``None``."""
        if self.sensor_expected and not self.heart.sensor.present:
            return "sensor"
        if not self.sink_healthy():
            return "audio"
        if self.recorder.storage_error is not None:
            return "storage"
        if self.config_error:
            return "config"
        return None

    def show(self, controls: Controls | None, now: float) -> None:
        """Blink the code of the first fault on the LED, or let it breathe when there is none."""
        if controls is None:
            return
        fault = self.fault()
        if fault != self._fault_shown:
            controls.show_fault(fault, now)
            self._fault_shown = fault

    def may_pet_watchdog(self, ready: bool) -> bool:
        """Pet the watchdog only once ready and while the sound card works."""
        return ready and self.sink_healthy()

    # -- self-test --------------------------------------------------------------------------

    def selftest(
        self,
        *,
        now: float,
        blocks: int,
        audio_t: Callable[[], float],
        storage: tuple[str, bool, str] | None = None,
    ) -> list[tuple[str, bool, str]]:
        """Check sensor, audio, storage and clock; one ``(name, ok, detail)`` per check.

        :param now: loop time, s.
        :param blocks: blocks the loop has rendered.
        :param audio_t: seconds of audio rendered (the master clock).
        :param storage: the storage check's result when :meth:`storage_check` ran off the
            loop; ``None`` runs it here.
        """
        checks = [
            self._sensor(now),
            self._audio(blocks),
            Check(*storage) if storage is not None else self.storage_check()(),
            self._clock(now, audio_t()),
        ]
        return [c.as_tuple() for c in checks]

    def _sensor(self, now: float) -> Check:
        sensor = self.heart.sensor
        info = sensor.info()
        if not sensor.present:
            return Check("sensor", False, str(info.get("error") or "not present"))
        h = self.heart.state(now)
        part = info.get("part")
        part_text = f"0x{part:02x}" if isinstance(part, int) else "?"
        return Check(
            "sensor",
            True,
            f"part={part_text} rev={info.get('rev')} contact={str(bool(h.contact)).lower()} "
            f"quality={h.quality:.2f}",
        )

    def _audio(self, blocks: int) -> Check:
        healthy = self.sink_healthy()
        detail = (
            f"sink={self.audio_spec} blocks={blocks} underruns={self.sink.underruns} "
            f"errors={self.sink.errors} reopens={self.sink.reopens}"
        )
        if not healthy:
            detail += f" error={self.sink.last_error or 'failing'}"
        return Check("audio", healthy and blocks > 0, detail)

    def storage_check(self) -> Callable[[], Check]:
        """The storage check (sqlite's integrity check reads the whole file), to call off the
        loop: it reads through a connection of its own thread."""
        store, error = self.recorder.store, self.recorder.storage_error

        def check() -> Check:
            if store is None:
                return Check("storage", False, error or "no store")
            try:
                with store.reader() as reader:
                    return Check("storage", True, reader.check())
            except StorageError as exc:
                return Check("storage", False, str(exc))

        return check

    @staticmethod
    def _clock(now: float, audio_t: float) -> Check:
        drift = abs(now - audio_t)
        return Check("clock", drift < 1.0, f"loop_t={now:.3f} audio_t={audio_t:.3f}")
