"""Soft chimes for events: session start (rising), end (falling) and wake (three notes).

Each chime is a few bell-like notes (a sine with gentle inharmonic partials, a 15 ms
raised-cosine attack and an exponential decay that ends at exact zero). The waveforms are
made once; :meth:`ChimePlayer.trigger` mixes one into a ring buffer ahead of the play
position (outside the audio path), and each segment adds the ring's slice to the output.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np

KINDS = ("start", "end", "wake")
#: Notes of each chime: (onset s, frequency Hz).
NOTES: dict[str, tuple[tuple[float, float], ...]] = {
    "start": ((0.0, 523.25), (0.35, 783.99)),
    "end": ((0.0, 783.99), (0.35, 523.25)),
    "wake": ((0.0, 523.25), (0.3, 659.26), (0.6, 783.99)),
}
#: Partials of one note: (frequency ratio, amplitude, decay time constant s).
PARTIALS = ((1.0, 1.0, 0.9), (2.01, 0.25, 0.5), (3.03, 0.08, 0.3))
NOTE_S = 2.5
ATTACK_S = 0.015
TAIL_S = 0.2
#: Peak level of a chime relative to the master volume (dB).
CHIME_DB = -18.0


@lru_cache(maxsize=8)
def chime_wave(kind: str, sample_rate: int) -> np.ndarray:
    """The stereo float32 (2, n) waveform of chime ``kind`` at ``sample_rate``, peak 1."""
    if kind not in KINDS:
        raise ValueError(f"chime kind {kind!r} is not one of {', '.join(KINDS)}")
    notes = NOTES[kind]
    n_note = round(NOTE_S * sample_rate)
    t = np.arange(n_note) / sample_rate
    env = np.exp(-t / 0.9)
    na = round(ATTACK_S * sample_rate)
    env[:na] *= 0.5 - 0.5 * np.cos(np.pi * np.arange(na) / na)
    nt = round(TAIL_S * sample_rate)
    env[-nt:] *= 0.5 + 0.5 * np.cos(np.pi * np.arange(nt) / nt)
    total = round((notes[-1][0] + NOTE_S) * sample_rate)
    wave = np.zeros((2, total))
    for i, (onset, f) in enumerate(notes):
        note = np.zeros(n_note)
        for ratio, amp, tau in PARTIALS:
            note += amp * np.exp(-t / tau) * np.sin(2 * np.pi * f * ratio * t)
        note *= env
        start = round(onset * sample_rate)
        pan = 0.5 + 0.25 * (i % 2 * 2 - 1) * (len(notes) > 1)
        wave[0, start : start + n_note] += note * np.sqrt(1.0 - pan)
        wave[1, start : start + n_note] += note * np.sqrt(pan)
    wave /= np.max(np.abs(wave))
    out = wave.astype(np.float32)
    out.setflags(write=False)
    return out


class ChimePlayer:
    """A ring of pending chime audio mixed into the output segment by segment."""

    def __init__(self, max_frames: int, sample_rate: int) -> None:
        self.sample_rate = int(sample_rate)
        longest = max(chime_wave(k, self.sample_rate).shape[1] for k in KINDS)
        self.size = 2 * longest + 2 * max_frames
        self.ring = np.zeros((2, self.size), np.float32)
        self.pos = 0
        #: Frames from ``pos`` that still hold chime audio.
        self.remaining = 0
        self.played = 0
        self._frames = 0
        self._gain = 10.0 ** (CHIME_DB / 20.0)
        self._tmp = np.zeros((2, max_frames), np.float32)

    def trigger(self, kind: str) -> None:
        """Mix chime ``kind`` in, starting at the next segment (overlapping chimes add)."""
        wave = chime_wave(kind, self.sample_rate)
        n = wave.shape[1]
        # the current segment is already mixed: start where the next one will
        at = (self.pos + self._frames) % self.size
        first = min(n, self.size - at)
        self.ring[:, at : at + first] += wave[:, :first] * self._gain
        if first < n:
            self.ring[:, : n - first] += wave[:, first:] * self._gain
        self.remaining = max(self.remaining, self._frames + n)
        self.played += 1

    @property
    def active(self) -> bool:
        """True while chime audio is still to be played."""
        return self.remaining > 0

    def render(self, out: np.ndarray, frames: int, gain: float) -> None:
        """Add the next ``frames`` frames of chime audio times ``gain`` into ``out`` (2, frames)."""
        self._frames = frames
        if self.remaining <= 0:
            return
        first = min(frames, self.size - self.pos)
        tmp = self._tmp[:, :first]
        np.multiply(self.ring[:, self.pos : self.pos + first], gain, out=tmp)
        out[:, :first] += tmp
        if first < frames:
            tmp = self._tmp[:, : frames - first]
            np.multiply(self.ring[:, : frames - first], gain, out=tmp)
            out[:, first:frames] += tmp

    def skip(self, frames: int) -> None:
        """Plan a stretch of ``frames`` frames without mixing anything (the output is silent)."""
        self._frames = frames

    def commit(self, played: int) -> None:
        """Clear and pass ``played`` frames of the ring."""
        if self.remaining <= 0:
            self.pos = (self.pos + played) % self.size
            return
        first = min(played, self.size - self.pos)
        self.ring[:, self.pos : self.pos + first] = 0.0
        if first < played:
            self.ring[:, : played - first] = 0.0
        self.pos = (self.pos + played) % self.size
        self.remaining = max(0, self.remaining - played)
