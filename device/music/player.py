"""The box's music control object: library, choice, decoder and voice behind one face.

The Box builds one :class:`MusicPlayer` at start (``MusicPlayer.open``), adds
:attr:`MusicPlayer.voice` to the engine's voices, calls :meth:`MusicPlayer.tick` once per
control tick and :meth:`MusicPlayer.close` at the end. The console's ``MUSIC?``,
``MUSIC LIST`` and ``MUSIC PLAY n`` and the like/skip buttons call :meth:`describe`,
:meth:`listing`, :meth:`play`, :meth:`like` and :meth:`skip`; the status line takes
:meth:`status_fields`. Everything here runs on the control side or the decoder thread, never
in the audio path. Tracks come from the music index: ``bedside music scan`` or the box's own
scan at start (:mod:`device.music.scan`, a child process), whose tracks arrive through
:meth:`set_tracks`. A player may start with no track at all: its voice plays silence and
``MUSIC?`` says ``track: None`` until tracks are indexed.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

from device.exc import StateError
from device.music.choice import Candidate, TrackChooser, track_reward
from device.music.feed import Cue, MusicFeed
from device.music.index import MusicIndex, Track
from device.music.voice import MusicVoice
from device.sound.targets import OFF_DB, SoundTargets

log = logging.getLogger(__name__)

#: The pad's usual level, dB: where it stands in for missing music.
_PAD_DB = SoundTargets().pad_db

#: A track must play this long before the heart's response is credited to it, seconds.
MIN_CREDIT_S = 60.0


class MusicPlayer:
    """Plays the playable ``tracks`` through a :class:`MusicFeed` and a :class:`MusicVoice`."""

    def __init__(
        self, tracks: Sequence[Track], sample_rate: int, chooser: TrackChooser, folder: str = ""
    ) -> None:
        self._tracks = _playable(tracks)
        #: The music folder the tracks come from (for messages).
        self.folder = folder
        self._told_empty = False
        self.chooser = chooser
        self._lock = threading.Lock()
        self._progress = 0.0
        self._heart: float | None = None
        self._disabled: set[str] = set()
        #: Why the last track was chosen (the chooser's words).
        self.why = ""
        self.feed = MusicFeed(sample_rate, self._next_cue, on_error=self._failed)
        self.voice = MusicVoice(self.feed)
        self._credit_key: str | None = None
        self._credit_start: tuple[float, float] | None = None
        self._credit_s = 0.0
        self._last: tuple[float, float] | None = None

    @classmethod
    def open(
        cls, music_dir: str | Path, state_dir: str | Path, sample_rate: int, chooser: TrackChooser
    ) -> MusicPlayer:
        """A player over the indexed tracks under ``music_dir`` (index in ``state_dir``)."""
        with MusicIndex.in_state_dir(state_dir) as index:
            return cls(index.tracks(music_dir), sample_rate, chooser, str(music_dir))

    def set_tracks(self, tracks: Sequence[Track]) -> int:
        """Play from ``tracks`` (a fresh scan's rows) from the next choice on; any thread.

        The playing track plays on. Returns how many tracks are playable now.
        """
        playable = _playable(tracks)
        with self._lock:
            self._tracks = playable
            self._disabled &= {t.path for t in playable}
        if playable:
            self._told_empty = False
        self.feed.poke()
        return len(playable)

    @property
    def has_tracks(self) -> bool:
        """True when at least one playable track is indexed."""
        return bool(self._tracks)

    # --- decoder thread -----------------------------------------------------------------------

    def _cue(self, t: Track) -> Cue:
        assert t.lufs is not None
        return Cue(t.path, t.path, t.lufs, t.tempo_bpm)

    def _next_cue(self) -> Cue | None:
        with self._lock:
            tracks = self._tracks
            pool = [Candidate(t.path, t.tempo_bpm) for t in tracks if t.path not in self._disabled]
            picked = self.chooser.choose(pool, progress=self._progress, heart_bpm=self._heart)
            if picked is None:
                return None
            self.why = picked[1]
            return self._cue(next(t for t in tracks if t.path == picked[0].key))

    def _failed(self, cue: Cue, error: str) -> None:
        with self._lock:
            self._disabled.add(cue.key)

    # --- control side -------------------------------------------------------------------------

    def start(self) -> None:
        """Start decoding (the first track is chosen at once; silence while there is none)."""
        if not self._tracks and not self._told_empty:
            self._told_empty = True
            log.info(
                "music: no playable track in %s yet; the session plays without music until "
                "the scan indexes some",
                self.folder or "the music folder",
            )
        self.feed.start()

    def close(self) -> None:
        """Stop the decoder thread (idempotent)."""
        self.feed.close()

    def listing(self) -> list[dict[str, object]]:
        """``MUSIC LIST``: one dict per playable track, numbered from 1."""
        return [
            {
                "n": i,
                "name": t.name,
                "duration_s": round(t.duration_s or 0.0, 1),
                "tempo_bpm": None if t.tempo_bpm is None else round(t.tempo_bpm, 1),
                "lufs": None if t.lufs is None else round(t.lufs, 1),
            }
            for i, t in enumerate(list(self._tracks), 1)
        ]

    def play(self, n: int) -> dict[str, object]:
        """``MUSIC PLAY n``: crossfade to track ``n`` (1-based).

        :raises StateError: no track is indexed. :raises ValueError: no track ``n``.
        """
        tracks = self._tracks
        if not tracks:
            raise StateError(f"no track to play: nothing indexed in {self.folder or 'the folder'}")
        if not 1 <= n <= len(tracks):
            raise ValueError(f"no track {n}: MUSIC LIST numbers the {len(tracks)} tracks from 1")
        t = tracks[n - 1]
        with self._lock:
            self.chooser.last = t.path
        self.feed.cue(self._cue(t))
        return {"n": n, "name": t.name}

    def _playing_key(self) -> str | None:
        cue = self.voice.playing
        return None if cue is None else cue.key

    def skip(self) -> str | None:
        """Skip button: rate the playing track as skipped and crossfade to the next one."""
        key = self._playing_key()
        if key is not None:
            with self._lock:
                self.chooser.rate(key, "skip")
        self.voice.request_skip()
        return key

    def like(self) -> str | None:
        """Like button: rate the playing track as liked; return its key (``None``: nothing)."""
        key = self._playing_key()
        if key is not None:
            with self._lock:
                self.chooser.rate(key, "like")
        return key

    def describe(self) -> dict[str, object]:
        """``MUSIC?``: the playing track, its number, tempo and position."""
        key, tracks = self._playing_key(), self._tracks
        n = next((i for i, t in enumerate(tracks, 1) if t.path == key), None)
        track = None if n is None else tracks[n - 1]
        return {
            "track": None if track is None else track.name,
            "n": n,
            "tempo_bpm": None if track is None or track.tempo_bpm is None
            else round(track.tempo_bpm, 1),
            "position_s": round(self.voice.position_s, 1),
            "tracks": len(tracks),
            "stalls": self.voice.stalls,
            "errors": self.feed.errors,
        }  # fmt: skip

    def status_fields(self) -> dict[str, object]:
        """``track`` and ``track_tempo_bpm`` for the status JSON."""
        d = self.describe()
        return {"track": d["track"], "track_tempo_bpm": d["tempo_bpm"]}

    def tick(
        self, dt_s: float, *, progress: float, hr_bpm: float | None, coherence: float | None
    ) -> float | None:
        """Once per control tick: steer the next choice and credit the heart's response.

        When the playing track changes, the one that ended is credited with
        :func:`track_reward` over its play (if it played :data:`MIN_CREDIT_S` or more with a
        pulse at both ends); return that reward, else ``None``.
        """
        with self._lock:
            self._progress = min(1.0, max(0.0, progress))
            self._heart = hr_bpm
        now = None if hr_bpm is None or coherence is None else (hr_bpm, coherence)
        key = self._playing_key()
        reward = None
        if key != self._credit_key:
            if (
                self._credit_key is not None
                and self._credit_start is not None
                and self._last is not None
                and self._credit_s >= MIN_CREDIT_S
            ):
                (h0, c0), (h1, c1) = self._credit_start, self._last
                reward = track_reward(h0, h1, c0, c1)
                with self._lock:
                    self.chooser.credit(self._credit_key, reward)
            self._credit_key, self._credit_start, self._credit_s = key, now, 0.0
        else:
            self._credit_s += dt_s
            if self._credit_start is None:
                self._credit_start = now
        if now is not None:
            self._last = now
        return reward


def _playable(tracks: Sequence[Track]) -> list[Track]:
    return [t for t in tracks if t.playable and t.lufs is not None]


def stand_in(targets: SoundTargets, music: MusicPlayer | None) -> SoundTargets:
    """``targets`` for a session whose music asks for a voice that has no track to play.

    A program that plays only music (``my-music``: pad, tones and noise off) would be silent
    without it, its pacer, swell and entrainment laid on nothing. Until tracks are indexed the
    pad stands in, at the pad's usual level (no louder than the music's), under the same
    swell and entrainment; the engine ramps the change both ways.
    """
    if targets.music_db <= OFF_DB or targets.pad_db > OFF_DB:
        return targets
    if music is not None and music.has_tracks:
        return targets
    return replace(targets, pad_db=min(targets.music_db, _PAD_DB))
