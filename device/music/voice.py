"""The music voice: the listener's tracks, played from the decoder's rings into the bed.

A :class:`MusicVoice` is one voice of the engine (``name = "music"``: its level is
``SoundTargets.music_db``; ``bed = True``: the breath swell applies to it as to the pad and
noise; with ``entrain_bed`` the isochronic envelope too, but at the music's own, subtle depth:
``SoundTargets.music_pulse_index``, a modulation index, 0.2 by default). It reads what
:class:`~device.music.feed.MusicFeed` decoded ahead, already loudness-normalised and
warmed, and only copies, ramps and adds in the audio path: no decoding, allocation, lock
wait or file access. Tracks follow each other with an equal-power crossfade (cos/sin gains
over ``music_crossfade_s``, evaluated at segment edges and linear inside a segment); one
track alone loops through the same crossfade from its end into its start. A skip starts
the crossfade into the next track as soon as the decoder has its start ready. A ring that
runs dry plays silence for the missing frames and counts a stall.

When the engine skips the voice (music level off) the music pauses where it is.
"""

from __future__ import annotations

import math

import numpy as np

from device.music.feed import LOADED, PLAYING, SPENT, Cue, Deck, MusicFeed
from device.sound.targets import SoundTargets

#: Decoded frames a next track needs before it may start (unless it is shorter), seconds.
ARM_S = 1.0
#: Fade-in of a track that starts from silence (nothing was playing), seconds.
START_FADE_S = 1.0
_HALF_PI = 0.5 * math.pi


def pulse_depth(index: float) -> float:
    """Envelope depth ``d`` (gain ``1 - d * (1 - env)``) whose modulation index
    ``(max - min) / (max + min)`` is ``index``: ``d = 2 m / (1 + m)``."""
    m = min(0.5, max(0.0, float(index)))
    return 2.0 * m / (1.0 + m)


class MusicVoice:
    """Engine voice playing the decks of a :class:`MusicFeed`."""

    name = "music"
    bed = True

    def __init__(self, feed: MusicFeed) -> None:
        self.feed = feed
        self.sample_rate = feed.sample_rate
        self.crossfade_s = 6.0
        #: Segments in which the playing ring ran dry (the decoder fell behind), the
        #: dropouts they made (a run of dry segments is one) and the frames played as silence.
        self.stalls = 0
        self.dropouts = 0
        self.missing_frames = 0
        self._dry = False
        #: Crossfades started (track changes, loops and skips).
        self.changes = 0
        self._cur: Deck | None = None
        self._nxt: Deck | None = None
        self._xf_pos = 0
        self._xf_len = 0
        self._skip_req = 0
        self._skip_done = 0
        self._depth = self._depth_to = pulse_depth(SoundTargets().music_pulse_index)
        self.prepare(feed.sample_rate, 1024)

    # --- setup and control side ---------------------------------------------------------------

    def prepare(self, sample_rate: int, segment_frames: int) -> None:
        """Allocate the buffers for segments of up to ``segment_frames`` frames."""
        if sample_rate != self.feed.sample_rate:
            raise ValueError(
                f"music voice at {sample_rate} Hz but its feed decodes at {self.feed.sample_rate}"
            )
        self._n = np.arange(segment_frames, dtype=np.float32)
        self._ramp = np.zeros(segment_frames, np.float32)
        self._xr = np.zeros(segment_frames, np.float32)
        self._tmp = np.zeros((2, segment_frames), np.float32)
        self._arm = round(ARM_S * sample_rate)

    def set_targets(self, targets: SoundTargets) -> None:
        """Take the crossfade length, the pulse's modulation index and the warmth (the
        decoder applies the shelf)."""
        self.crossfade_s = float(targets.music_crossfade_s)
        self.feed.warmth = float(targets.warmth)
        self._depth_to = pulse_depth(targets.music_pulse_index)

    def pulse_depths(self) -> tuple[float, float]:
        """Depth of the isochronic envelope on the music across this segment (audio path):
        a new depth is reached over one segment, never stepped."""
        d0 = self._depth
        self._depth = self._depth_to
        return d0, self._depth_to

    def request_skip(self) -> None:
        """Move to the next track with the crossfade as soon as it is decoded (control side)."""
        self._skip_req += 1

    def _heard(self) -> Deck | None:
        if self._nxt is not None and (self._cur is None or 2 * self._xf_pos >= self._xf_len):
            return self._nxt
        return self._cur

    @property
    def playing(self) -> Cue | None:
        """The track heard now (the incoming one once a crossfade is past half-way)."""
        deck = self._heard()
        return None if deck is None else deck.cue

    @property
    def position_s(self) -> float:
        """Seconds played of the track heard now."""
        deck = self._heard()
        return 0.0 if deck is None else deck.read / self.sample_rate

    # --- audio path ---------------------------------------------------------------------------

    def _other(self) -> Deck | None:
        for deck in self.feed.decks:
            if deck is not self._cur and deck.state == LOADED:
                return deck
        return None

    def _claim(self, deck: Deck) -> bool:
        if not deck.lock.acquire(blocking=False):
            return False
        try:
            armed = deck.available() >= min(self._arm, deck.capacity // 2) or deck.total >= 0
            if deck.state != LOADED or deck.cue is None or not armed:
                return False
            deck.state = PLAYING
            return True
        finally:
            deck.lock.release()

    def _start_change(self, frames: int) -> None:
        cur = self._cur
        other = self._other()
        if other is None or self._nxt is not None:
            return
        xfade = max(frames, round(self.crossfade_s * self.sample_rate))
        if cur is None:
            length = max(frames, round(START_FADE_S * self.sample_rate))
        elif self._skip_req != self._skip_done or other.urgent:
            length = xfade
            if cur.total >= 0:
                length = max(frames, min(xfade, cur.total - cur.read))
        elif cur.total >= 0 and cur.total - cur.read <= xfade:
            length = max(frames, cur.total - cur.read)
        else:
            return
        if not self._claim(other):
            return
        self._skip_done = self._skip_req
        other.urgent = False
        self._nxt = other
        self._xf_pos = 0
        self._xf_len = length
        self.changes += 1

    def _add(self, deck: Deck, out: np.ndarray, gain: np.ndarray, frames: int) -> bool:
        k = min(frames, deck.available())
        dry = k < frames and deck.total < 0
        if dry:
            self.stalls += 1
            self.missing_frames += frames - k
            if not self._dry:
                self.dropouts += 1
        self._dry = dry
        if k <= 0:
            return False
        cap = deck.capacity
        r = deck.read % cap
        first = min(k, cap - r)
        tmp = self._tmp
        np.multiply(deck.buf[:, r : r + first], gain[:first], out=tmp[:, :first])
        out[:, :first] += tmp[:, :first]
        if first < k:
            rest = k - first
            np.multiply(deck.buf[:, :rest], gain[first:k], out=tmp[:, :rest])
            out[:, first:k] += tmp[:, :rest]
        deck.read += k
        return True

    def _xf_gain(self, ramp: np.ndarray, frames: int, fade_in: bool) -> np.ndarray:
        p0 = self._xf_pos / self._xf_len
        p1 = min(1.0, (self._xf_pos + frames) / self._xf_len)
        f = math.sin if fade_in else math.cos
        a0, a1 = f(p0 * _HALF_PI), f(p1 * _HALF_PI)
        xr = self._xr[:frames]
        np.multiply(self._n[:frames], (a1 - a0) / frames, out=xr)
        xr += a0
        xr *= ramp
        return xr

    def render(self, out: np.ndarray, frames: int, g0: float, g1: float) -> bool:
        """Add ``frames`` frames of music into ``out[:, :frames]`` with gain ``g0 -> g1``."""
        self._start_change(frames)
        cur, nxt = self._cur, self._nxt
        if cur is None and nxt is None:
            return False
        ramp = self._ramp[:frames]
        np.multiply(self._n[:frames], (g1 - g0) / frames, out=ramp)
        ramp += g0
        wrote = False
        if nxt is None:
            assert cur is not None
            wrote = self._add(cur, out, ramp, frames)
        else:
            if cur is not None:
                wrote = self._add(cur, out, self._xf_gain(ramp, frames, False), frames)
            wrote = self._add(nxt, out, self._xf_gain(ramp, frames, True), frames) or wrote
            self._xf_pos += frames
            if self._xf_pos >= self._xf_len:
                if cur is not None:
                    cur.state = SPENT
                self._cur, self._nxt = nxt, None
        cur = self._cur
        if cur is not None and self._nxt is None and 0 <= cur.total <= cur.read:
            cur.state = SPENT  # the track ended with nothing to follow it
            self._cur = None
        return wrote

    def skip(self, frames: int) -> None:
        """The music level is off: pause (nothing is consumed)."""

    def status(self) -> dict[str, object]:
        """Playing track, its tempo and the feed's health, for the status line (control side)."""
        cue = self.playing
        return {
            "track": None if cue is None else cue.key,
            "track_tempo_bpm": None if cue is None or cue.tempo_bpm is None
            else round(cue.tempo_bpm, 1),
            "music_stalls": self.stalls,
            "music_dropouts": self.dropouts,
            "music_errors": self.feed.errors,
        }  # fmt: skip
