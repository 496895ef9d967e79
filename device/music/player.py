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
import time
from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path

from device.exc import StateError
from device.music.choice import Candidate, TrackChooser, Verdict, judge, track_reward
from device.music.feed import Cue, MusicFeed
from device.music.index import INDEX_FILE, MusicIndex, Track
from device.music.voice import MusicVoice
from device.sound.targets import OFF_DB, SoundTargets

log = logging.getLogger(__name__)

#: The pad's usual level, dB: where it stands in for missing music.
_PAD_DB = SoundTargets().pad_db

#: Decoded audio a virtual-clock box waits for at each tick, s (and the longest wait).
AHEAD_S = 2.0
AHEAD_WAIT_S = 2.0

#: A new night starts this long after the last one began, s.
NIGHT_S = 12 * 3600.0

#: A track must play this long before the heart's response is credited to it, seconds.
MIN_CREDIT_S = 60.0


class MusicPlayer:
    """Plays the playable ``tracks`` through a :class:`MusicFeed` and a :class:`MusicVoice`."""

    def __init__(
        self,
        tracks: Sequence[Track],
        sample_rate: int,
        chooser: TrackChooser,
        folder: str = "",
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._clock = clock
        self._night_t: float | None = None
        #: A virtual-clock box: each tick waits until the decoder is :data:`AHEAD_S` ahead.
        self.sync = False
        #: The isochronic pulse is on the music now (set each tick by :func:`stand_in`).
        self.pulse_on = False
        #: What the box's scan is doing (``scanning n/N``, ``ready`` ...; set by the box).
        self.scan_state: Callable[[], str] | None = None
        self._tracks = _playable(tracks)
        #: Crossfade the calm verdicts were made for, s (a track must outlast it by a minute).
        self.crossfade_s = SoundTargets().music_crossfade_s
        self._verdicts = self._judge(self._tracks)
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
        """A player over the indexed tracks under ``music_dir`` (index in ``state_dir``).

        A box whose music folder does not exist and that has no index yet gets a player
        without tracks and no index file: only a scan makes one.
        """
        index_file = Path(state_dir) / INDEX_FILE
        if not Path(music_dir).is_dir() and not index_file.exists():
            return cls([], sample_rate, chooser, str(music_dir))
        with MusicIndex.in_state_dir(state_dir) as index:
            return cls(index.tracks(music_dir), sample_rate, chooser, str(music_dir))

    def set_tracks(self, tracks: Sequence[Track]) -> int:
        """Play from ``tracks`` (a fresh scan's rows) from the next choice on; any thread.

        The playing track plays on. Returns how many tracks are playable now.
        """
        playable = _playable(tracks)
        verdicts = self._judge(playable)
        with self._lock:
            self._tracks = playable
            self._verdicts = verdicts
            self._disabled &= {t.path for t in playable}
        if playable:
            self._told_empty = False
        self.feed.poke()
        return len(playable)

    def _judge(self, tracks: Sequence[Track]) -> dict[str, Verdict]:
        return {t.path: judge(t, self.crossfade_s) for t in tracks}

    @property
    def has_tracks(self) -> bool:
        """True when at least one indexed track may be chosen (calm, audible, long enough)."""
        return any(v.ok for v in self._verdicts.values())

    def verdict(self, path: str) -> Verdict | None:
        """The chooser's judgement of an indexed track (``None``: not indexed)."""
        return self._verdicts.get(path)

    # --- decoder thread -----------------------------------------------------------------------

    def _cue(self, t: Track) -> Cue:
        assert t.lufs is not None
        return Cue(t.path, t.path, t.lufs, t.tempo_bpm, t.audible_start_s or 0.0, t.audible_end_s)

    def _next_cue(self) -> Cue | None:
        with self._lock:
            if self.voice.crossfade_s != self.crossfade_s:  # a program with its own crossfade
                self.crossfade_s = self.voice.crossfade_s
                self._verdicts = self._judge(self._tracks)
            tracks, verdicts = self._tracks, self._verdicts
            pool = [
                Candidate(t.path, t.tempo_bpm, verdicts[t.path].calm)
                for t in tracks
                if t.path not in self._disabled and verdicts[t.path].ok
            ]
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
        """Start decoding (the first track is chosen at once; silence while there is none).

        A session that starts :data:`NIGHT_S` or more after the night's first one begins a
        new night: tracks skipped twice may come back.
        """
        now = self._clock()
        if self._night_t is None or now - self._night_t >= NIGHT_S:
            with self._lock:
                self.chooser.new_night()
            self._night_t = now
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
                if self.pulse_on:  # skipped under the pulse: it plays shallower from now on
                    self.chooser.rate_pulse("skip")
        self.voice.request_skip()
        return key

    def like(self) -> str | None:
        """Like button: rate the playing track as liked; return its key (``None``: nothing)."""
        key = self._playing_key()
        if key is not None:
            with self._lock:
                self.chooser.rate(key, "like")
                if self.pulse_on:
                    self.chooser.rate_pulse("like")
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
            "dropouts": self.voice.dropouts,
            "errors": self.feed.errors,
        }  # fmt: skip

    def status_fields(self) -> dict[str, object]:
        """``track``, ``track_tempo_bpm``, ``music`` (the scan: ``scanning n/N``, ``ready``)
        and ``music_dropouts`` (times the decoder fell behind) for the status."""
        d = self.describe()
        return {
            "track": d["track"],
            "track_tempo_bpm": d["tempo_bpm"],
            "music": None if self.scan_state is None else self.scan_state(),
            "music_dropouts": self.voice.dropouts,
        }

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
        self.feed.wanted = self.has_tracks
        if self.sync:  # a virtual clock waits for the decoder; a real one never does
            self.feed.wait_ready(round(AHEAD_S * self.feed.sample_rate), AHEAD_WAIT_S)
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
    """``targets`` for a session with the listener's music: the pulse on it as deep as this
    listener takes it (:func:`personal_pulse`), and a stand-in while it has no track.

    A program that plays only music (``my-music``: pad, tones and noise off) would be silent
    without it, its pacer, swell and entrainment laid on nothing. Until tracks are indexed the
    pad stands in, at the pad's usual level (no louder than the music's), under the same
    swell and entrainment; the engine ramps the change both ways.
    """
    if music is not None:
        targets = personal_pulse(targets, music)
    if targets.music_db <= OFF_DB or targets.pad_db > OFF_DB:
        return targets
    if music is not None and music.has_tracks:
        return targets
    return replace(targets, pad_db=min(targets.music_db, _PAD_DB))


def personal_pulse(targets: SoundTargets, music: MusicPlayer) -> SoundTargets:
    """``targets`` with the pulse on the music as deep as this listener takes it: the
    program's ``music_pulse_index`` lowered by :meth:`TrackChooser.pulse_scale` (skips made
    under the pulse lower it, likes under it win it back)."""
    on = (
        targets.entrain_bed
        and targets.entrain_kind != "none"
        and targets.music_pulse_index > 0.0
        and targets.music_db > OFF_DB
    )
    music.pulse_on = on
    if not on:
        return targets
    with music._lock:
        scale = music.chooser.pulse_scale()
    return replace(targets, music_pulse_index=targets.music_pulse_index * scale)
