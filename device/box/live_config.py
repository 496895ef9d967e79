"""The running configuration: console changes validated and applied, volume and cap ramped.

:class:`LiveConfig` holds the box's present :class:`~device.config.Config`. ``CFG SET``
validates a value exactly as the file would be; the listener volume and the hard cap go
to the engine at once (ramped there); everything else applies where it is next read (a
session start reads the therapy keys afresh). ``CFG SAVE`` writes it atomically.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable
from pathlib import Path

from device.box.api import OffLoop
from device.config import Config, save_config
from device.config.settings import AudioSettings
from device.exc import StorageError
from device.sound.engine import Engine

#: Lowest listener volume, dBFS.
VOLUME_MIN_DB = -60.0
#: Where ``CFG SAVE`` writes without ``--config`` or ``$BEDSIDE_CONFIG``.
SYSTEM_CONFIG = "/etc/bedside/config.toml"


class LiveConfig:
    """The box's running configuration.

    :param cfg: the configuration the box started with.
    :param engine: the sound engine (volume and cap apply to it).
    :param path: the file the box was started with (``--config``), or ``None``.
    :param on_saved: called with the file written by :meth:`save`.
    """

    def __init__(
        self,
        cfg: Config,
        engine: Engine,
        *,
        path: str | None,
        on_saved: Callable[[Path], None],
    ) -> None:
        self.config = cfg
        self._engine = engine
        self._path = path
        self._on_saved = on_saved

    def set_volume_db(self, db: float) -> None:
        """Set the listener volume in dBFS (ramped at <= 3 dB/s).

        :raises ValueError: above the hard cap (the message names the cap) or below -60.
        """
        db, cap = float(db), self._engine.cap_dbfs
        if not math.isfinite(db) or db > cap:
            raise ValueError(f"volume {db:g} dB is above the cap of {cap:g} dBFS")
        if db < VOLUME_MIN_DB:
            raise ValueError(f"volume {db:g} dB is below the minimum of -60 dBFS")
        self._engine.set_volume_db(db)
        self.config = self.config.with_value("audio.volume_db", db)

    def set_cap_dbfs(self, db: float) -> None:
        """Set the hard cap in dBFS (service); a volume above it comes down with it.

        Volume and cap change in one config update (the config refuses a volume above the
        cap, so the volume goes first); a cap that is refused changes nothing.
        """
        db = float(db)
        self.config = _with_cap(self.config, db)
        self._engine.set_cap_dbfs(db)
        if self._engine.volume_db > db:
            self._engine.set_volume_db(max(db, VOLUME_MIN_DB))

    def set(self, key: str, text: str) -> None:
        """Validate and apply ``key = text`` here and now (as the config file would be)."""
        self.set_job(key, text).run()

    def set_job(self, key: str, text: str) -> OffLoop[Config]:
        """``key = text`` validated off the loop (a program key loads the program file), then
        applied on the loop; the config in effect is the answer."""
        base = self.config

        def apply(new: Config) -> Config:
            value = new.get(key)
            if key == "audio.volume_db" and isinstance(value, int | float):
                self.set_volume_db(float(value))
            elif key == "audio.cap_dbfs" and isinstance(value, int | float):
                self.set_cap_dbfs(float(value))
            elif self.config is base:
                self.config = new
            else:  # changed meanwhile (a button, the volume): apply the checked value to it
                self.config = self.config.with_value(key, value)
            return self.config

        def work() -> Config:
            if key != "audio.cap_dbfs":
                return base.with_value(key, text)
            # The cap alone is checked first: the volume then follows it down.
            cap = base.with_value("audio.volume_db", VOLUME_MIN_DB).with_value(key, text)
            return _with_cap(base, float(str(cap.get(key))))

        return OffLoop(work, apply)

    def path(self) -> Path:
        """The file ``CFG SAVE`` writes."""
        return Path(self._path or os.environ.get("BEDSIDE_CONFIG") or SYSTEM_CONFIG)

    def save(self) -> Path:
        """Save the running configuration atomically here and now; return the file written.

        :raises StorageError: the file cannot be written.
        """
        return self.save_job().run()

    def save_job(self) -> OffLoop[Path]:
        """Save the configuration as it is now: written off the loop, noted on it."""
        cfg, path = self.config, self.path()

        def work() -> Path:
            try:
                save_config(cfg, path)
            except StorageError:
                raise  # it names the file already
            except OSError as exc:
                raise StorageError(f"cannot save {path}: {exc}") from exc
            return path

        def apply(written: Path) -> Path:
            self._on_saved(written)
            return written

        return OffLoop(work, apply)

    def defaults(self) -> None:
        """Return every key to its built-in default (volume and cap included, ramped)."""
        defaults = Config.defaults()
        audio = AudioSettings.from_config(defaults)
        self._engine.set_cap_dbfs(audio.cap_dbfs)
        self._engine.set_volume_db(min(audio.volume_db, audio.cap_dbfs))
        self.config = defaults


def _with_cap(cfg: Config, db: float) -> Config:
    """``cfg`` with the cap ``db`` and a volume above it brought down to it (one update)."""
    volume = cfg.get("audio.volume_db")
    if isinstance(volume, int | float) and volume > db:
        cfg = cfg.with_value("audio.volume_db", max(db, VOLUME_MIN_DB))
    return cfg.with_value("audio.cap_dbfs", db)
