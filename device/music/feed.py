"""The music decoder: a thread that decodes tracks ahead into two preallocated ring buffers.

Two decks (:class:`Deck`) take turns: the one the audio path plays and the one that holds the
start of the next track, so the voice can crossfade from one to the other at the end of a
track or at once on a skip. The thread decodes with libsndfile (``soundfile``), resamples to
the engine's rate with libsoxr (``soxr.ResampleStream``: a streaming resampler keeps its
filter state across chunks, so chunk edges leave no seams, which ``resample_poly`` on
chunks would; and it keeps scipy out of the audio process), applies the track's loudness
normalisation gain and the warmth low shelf, and writes into the deck's ring.

Hand-over between the threads: each deck's ``written`` (decoder) and ``read`` (audio) are
frame counters that only their owner advances (single producer, single consumer); a deck's
``state`` moves EMPTY -> LOADED (decoder) -> PLAYING (audio, claimed with a non-blocking
lock so a reload by the decoder never races it) -> SPENT (audio) -> EMPTY (decoder).
"""

from __future__ import annotations

import contextlib
import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from device.dsp.biquad import Biquad, SosFilter

EMPTY, LOADED, PLAYING, SPENT = range(4)
#: Loudness every track is normalised to before ``music_db`` applies, LUFS.
REFERENCE_LUFS = -18.0
#: Largest normalisation boost, dB (a near-silent file is not raised into noise).
MAX_BOOST_DB = 24.0
#: Warmth shelf: first-order low shelf turning over at this frequency, Hz.
WARMTH_SHELF_HZ = 150.0
#: Low-shelf boost at warmth 1, dB.
WARMTH_MAX_DB = 6.0


@dataclass(frozen=True, slots=True)
class Cue:
    """A track to play: its file, an id the chooser knows it by, and its measured loudness."""

    path: str
    key: str
    lufs: float
    tempo_bpm: float | None = None
    #: The audible part of the file (s; the scan measured it): decoding starts at
    #: ``start_s`` and the track ends at ``end_s`` (``None``: the file's end), so crossfades
    #: lie between what can be heard, not over a silent head or tail.
    start_s: float = 0.0
    end_s: float | None = None

    @property
    def gain(self) -> float:
        """Linear normalisation gain to :data:`REFERENCE_LUFS`."""
        return 10.0 ** (min(MAX_BOOST_DB, REFERENCE_LUFS - self.lufs) / 20.0)


class Deck:
    """One track's ring buffer: channel-major float32 ``(2, capacity)``."""

    def __init__(self, capacity: int) -> None:
        self.buf = np.zeros((2, capacity), np.float32)
        self.capacity = capacity
        self.lock = threading.Lock()
        self.state = EMPTY
        self.cue: Cue | None = None
        self.written = 0
        self.read = 0
        #: Frames of the whole track once the decoder reached its end, else -1.
        self.total = -1
        #: Start this deck as soon as it is armed (a cued track), not at the end of the other.
        self.urgent = False

    def available(self) -> int:
        """Frames decoded and not yet played."""
        return self.written - self.read

    def reset(self) -> None:
        """Back to EMPTY (decoder side)."""
        self.cue = None
        self.written = self.read = 0
        self.total = -1
        self.urgent = False
        self.state = EMPTY


def _lowpass1(cutoff_hz: float, rate_hz: float) -> Biquad:
    """First-order low-pass (bilinear, pre-warped) as a degenerate biquad."""
    k = math.tan(math.pi * cutoff_hz / rate_hz)
    return Biquad(k / (1.0 + k), k / (1.0 + k), 0.0, (k - 1.0) / (k + 1.0), 0.0)


def warmth_gain(warmth: float) -> float:
    """Shelf coefficient ``k`` of ``y = x + k * lowpass(x)`` (DC gain ``1 + k``)."""
    return 10.0 ** (WARMTH_MAX_DB * min(1.0, max(0.0, warmth)) / 20.0) - 1.0


class _Source:
    """Decoder-thread state of one deck: the open file, its resampler and shelf filters."""

    def __init__(self, cue: Cue, rate: int, chunk: int) -> None:
        import soundfile as sf
        import soxr

        self.file: Any = sf.SoundFile(cue.path)
        src_rate = self.file.samplerate
        total = self.file.frames if self.file.frames > 0 else 1 << 62  # unknown length
        first = min(max(0, round(cue.start_s * src_rate)), max(0, total - 1))
        if first > 0 and self.file.seekable():
            self.file.seek(first)
        else:
            first = 0
        #: Source frames left to decode (the audible end; the file's end without one).
        self.left = total - first
        if cue.end_s is not None:
            self.left = max(1, min(self.left, round(cue.end_s * src_rate) - first))
        self.gain = np.float32(cue.gain)
        self.chunk = max(1, round(chunk * self.file.samplerate / rate))
        self.resampler: Any = None
        if self.file.samplerate != rate:
            self.resampler = soxr.ResampleStream(
                self.file.samplerate, rate, 2, dtype="float32", quality="HQ"
            )
        self.shelf = [SosFilter([_lowpass1(WARMTH_SHELF_HZ, rate)], block=64) for _ in range(2)]
        self.k = 0.0
        self.ended = False

    def read(self, warmth_k: float) -> np.ndarray:
        """The next chunk as (frames, 2) float32 at the engine's rate (may be empty at EOF)."""
        want = min(self.chunk, self.left)
        x = self.file.read(want, dtype="float32", always_2d=True)
        self.left -= len(x)
        last = len(x) < want or self.left <= 0
        x = np.repeat(x, 2, axis=1) if x.shape[1] == 1 else x[:, :2]
        if self.resampler is not None:
            x = self.resampler.resample_chunk(np.ascontiguousarray(x), last=last)
        x = x * self.gain
        if warmth_k > 0.0 or self.k > 0.0:
            n = len(x)
            ramp = self.k + (warmth_k - self.k) * (np.arange(n) + 1.0) / max(1, n)
            for c in range(2):
                x[:, c] += (ramp * self.shelf[c].process(x[:, c])).astype(np.float32)
            self.k = warmth_k
        self.ended = last
        return x

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self.file.close()


class MusicFeed:
    """Decodes the tracks ``next_track()`` hands out into two decks, ahead of the audio path.

    ``next_track`` runs on the decoder thread and returns a :class:`Cue` or ``None`` (nothing
    to play yet). ``capacity_s`` is each ring's length, ``chunk_s`` one decode step.
    """

    def __init__(
        self,
        sample_rate: int,
        next_track: Callable[[], Cue | None],
        *,
        capacity_s: float = 8.0,
        chunk_s: float = 0.25,
        on_error: Callable[[Cue, str], None] | None = None,
    ) -> None:
        self.sample_rate = int(sample_rate)
        self.decks = (Deck(round(capacity_s * sample_rate)), Deck(round(capacity_s * sample_rate)))
        self.chunk = round(chunk_s * sample_rate)
        self._next_track = next_track
        self._on_error = on_error
        self._sources: list[_Source | None] = [None, None]
        self._cue: Cue | None = None
        self._cue_lock = threading.Lock()  # control side and decoder only, never audio
        self.warmth = 0.0
        #: A track should be loaded (the player has tracks to choose from).
        self.wanted = False
        #: Files that failed while playing (opened but then could not be read).
        self.errors = 0
        self.last_error = ""
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        #: No thread: the owner calls :meth:`decode` between blocks (an offline render,
        #: whose output is then the same on every run however loaded the machine is).
        self.synchronous = False

    # --- control side -------------------------------------------------------------------------

    def start(self) -> None:
        """Start the decoder thread (idempotent; none when :attr:`synchronous`)."""
        if self._thread is None and not self.synchronous:
            self._thread = threading.Thread(target=self._main, name="music-feed", daemon=True)
            self._thread.start()

    def close(self) -> None:
        """Stop the thread and close the files (idempotent)."""
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout=5.0)
            self._thread = None
        for i, src in enumerate(self._sources):
            if src is not None:
                src.close()
                self._sources[i] = None

    def cue(self, cue: Cue) -> None:
        """Play ``cue`` next, at once (with the crossfade): replaces a preloaded next track."""
        with self._cue_lock:
            self._cue = cue
        self._wake.set()

    def ready(self, frames: int) -> bool:
        """True when every deck in play holds ``frames`` decoded frames ahead (or its whole
        rest), and a track is loaded whenever ``wanted``."""
        live = [d for d in self.decks if d.state in (LOADED, PLAYING)]
        if self.wanted and not live:
            return False
        need = [min(frames, d.capacity // 2) for d in live]
        return all(d.total >= 0 or d.available() >= n for d, n in zip(live, need, strict=True))

    def wait_ready(self, frames: int, timeout_s: float) -> bool:
        """Wait (control side of a virtual-clock box only) until :meth:`ready`; False on
        timeout. The audio path never calls this: a real-time box never waits for its decoder."""
        deadline = time.monotonic() + timeout_s
        while not self.ready(frames):
            if self._thread is None:
                if not self.step():
                    return self.ready(frames)
                continue
            if time.monotonic() >= deadline:
                return False
            self._wake.set()
            time.sleep(0.002)
        return True

    def poke(self) -> None:
        """Wake the decoder (the audio path consumed frames or the playlist changed)."""
        self._wake.set()

    def decode(self) -> None:
        """Do all the decoder work there is now (:attr:`synchronous` feeds, between blocks)."""
        while self.step():
            pass

    # --- decoder thread -----------------------------------------------------------------------

    def step(self) -> bool:
        """One round of decoder work; True if it did something.

        The thread (:meth:`start`) calls this in a loop. Without the thread, calling it until
        it returns False between audio blocks decodes synchronously: the tests do that, so a
        run is the same on a loaded machine (the product always runs the thread).
        """
        busy = False
        for i, deck in enumerate(self.decks):
            if deck.state == SPENT:
                self._drop(i)
                busy = True
        with self._cue_lock:
            cue, self._cue = self._cue, None
        if cue is not None:
            busy |= self._load_cued(cue)
        if not any(d.state == LOADED for d in self.decks):
            busy |= self._load_next()
        order = sorted(range(2), key=lambda j: self.decks[j].state != PLAYING)
        for i in order:
            busy |= self._fill(i)
        return busy

    def _drop(self, i: int) -> None:
        src = self._sources[i]
        if src is not None:
            src.close()
            self._sources[i] = None
        self.decks[i].reset()

    def _load_cued(self, cue: Cue) -> bool:
        for i, deck in enumerate(self.decks):
            if deck.state in (EMPTY, LOADED):
                with deck.lock:
                    if deck.state not in (EMPTY, LOADED):
                        continue
                    self._drop(i)
                    if self._open(i, cue):
                        deck.urgent = True
                return True
        with self._cue_lock:  # both decks busy (a crossfade): try again next round
            if self._cue is None:
                self._cue = cue
        return False

    def _load_next(self) -> bool:
        for i, deck in enumerate(self.decks):
            if deck.state == EMPTY:
                cue = self._next_track()
                return cue is not None and self._open(i, cue)
        return False

    def _open(self, i: int, cue: Cue) -> bool:
        try:
            self._sources[i] = _Source(cue, self.sample_rate, self.chunk)
        except Exception as exc:  # libsndfile errors have no common base with OSError
            self._failed(cue, exc)
            return False
        deck = self.decks[i]
        deck.cue = cue
        deck.state = LOADED
        return True

    def _failed(self, cue: Cue, exc: Exception) -> None:
        self.errors += 1
        self.last_error = f"{cue.path}: {exc}"
        if self._on_error is not None:
            self._on_error(cue, self.last_error)

    def _fill(self, i: int) -> bool:
        deck, src = self.decks[i], self._sources[i]
        if src is None or deck.total >= 0 or deck.state not in (LOADED, PLAYING):
            return False
        if deck.capacity - deck.available() < 2 * self.chunk:
            return False
        try:
            x = src.read(warmth_gain(self.warmth))
        except Exception as exc:
            if deck.cue is not None:
                self._failed(deck.cue, exc)
            x, src.ended = np.zeros((0, 2), np.float32), True
        n = len(x)
        start = deck.written % deck.capacity
        first = min(n, deck.capacity - start)
        deck.buf[:, start : start + first] = x[:first].T
        deck.buf[:, : n - first] = x[first:].T
        deck.written += n
        if src.ended:
            deck.total = deck.written
            src.close()
            self._sources[i] = None
        return True

    def _main(self) -> None:
        while not self._stop.is_set():
            try:
                busy = self.step()
            except Exception as exc:  # a chooser or library fault must not end the music
                self.errors += 1
                self.last_error = f"decoder: {type(exc).__name__}: {exc}"
                busy = False
            if not busy:
                self._wake.wait(0.05)
                self._wake.clear()
