"""Test tracks made on the spot (never shipped binaries): beats, noise beds, sines, any format."""

from __future__ import annotations

from pathlib import Path

import numpy as np

#: (extension, soundfile format, subtype) of every format the library reads.
FORMATS = (
    ("wav", "WAV", "PCM_16"),
    ("flac", "FLAC", "PCM_24"),
    ("ogg", "OGG", "VORBIS"),
    ("mp3", "MP3", "MPEG_LAYER_III"),
)


def beat_track(bpm: float, seconds: float, rate: int = 44100, level: float = 0.3) -> np.ndarray:
    """A steady beat (a kick on every beat, a hi-hat between) over a soft chord, (n, 2)."""
    rng = np.random.default_rng(round(bpm * 10))
    n = int(seconds * rate)
    t = np.arange(n) / rate
    x = 0.05 * np.sin(2 * np.pi * 220 * t) + 0.03 * np.sin(2 * np.pi * 330 * t)
    period = 60.0 / bpm
    kt = np.arange(int(0.12 * rate)) / rate
    kick = np.sin(2 * np.pi * (60 + 90 * np.exp(-kt * 30)) * kt) * np.exp(-kt * 25)
    hl = int(0.03 * rate)
    hat = 0.3 * rng.standard_normal(hl) * np.exp(-np.arange(hl) / rate * 150)
    k = 0
    while k * period < seconds:
        for start, sound in ((k * period, kick), ((k + 0.5) * period, hat)):
            i = round(start * rate)
            seg = sound[: max(0, min(len(sound), n - i))]
            x[i : i + len(seg)] += seg
        k += 1
    x = x / np.abs(x).max() * level
    return np.stack([x, 0.9 * x], 1).astype(np.float32)


def noise_bed(seconds: float, rate: int = 44100, level: float = 0.1, seed: int = 0) -> np.ndarray:
    """Band-limited stereo noise with no beat (a steady, beat-free texture), (n, 2)."""
    rng = np.random.default_rng(seed)
    n = int(seconds * rate)
    spec = np.fft.rfft(rng.standard_normal((2, n)), axis=1)
    f = np.fft.rfftfreq(n, 1.0 / rate)
    spec *= ((f > 100) & (f < 2000))[None, :]
    x = np.fft.irfft(spec, n, axis=1).T
    return (x / np.sqrt(np.mean(x**2)) * level).astype(np.float32)


def write(path: Path, x: np.ndarray, rate: int = 44100) -> Path:
    """Write ``x`` in the format its extension names."""
    import soundfile as sf

    ext = path.suffix[1:]
    fmt = {e: (f, s) for e, f, s in FORMATS}[ext]
    # in chunks: libsndfile 1.2.2's Vorbis encoder crashes on one very large write
    with sf.SoundFile(str(path), "w", rate, x.shape[1], fmt[1], format=fmt[0]) as f:
        for i in range(0, len(x), 1 << 16):
            f.write(x[i : i + (1 << 16)])
    return path


def _tone(f: float, n: int, rate: int, harmonics: int = 3, bright: float = 0.3) -> np.ndarray:
    t = np.arange(n) / rate
    return sum(bright ** (h - 1) * np.sin(2 * np.pi * f * h * t) for h in range(1, harmonics + 1))


def calm_piece(
    seconds: float, rate: int = 44100, level: float = 0.2, head_s: float = 0.0, tail_s: float = 0.0
) -> np.ndarray:
    """A slow sustained piece: soft chords that swell in and out over 6 s each, one note a
    second of a gentle melody on top (60 events a minute), digital silence around it, (n, 2)."""
    n = int(seconds * rate)
    x = np.zeros(n)
    chords = ((220.0, 277.2, 329.6), (196.0, 246.9, 293.7), (174.6, 220.0, 261.6))
    span = int(6.0 * rate)
    shape = np.sin(np.pi * np.arange(2 * span) / (2 * span)) ** 2
    for k, i in enumerate(range(0, n, span)):
        seg = min(2 * span, n - i)
        for f in chords[k % 3]:
            x[i : i + seg] += 0.3 * _tone(f, seg, rate, 2, 0.2) * shape[:seg]
    note = int(1.0 * rate)
    env = (1 - np.exp(-np.arange(note) / (0.08 * rate))) * np.exp(-np.arange(note) / (0.6 * rate))
    for k, i in enumerate(range(0, n - note, note)):
        f = (440.0, 493.9, 554.4, 493.9)[k % 4]
        x[i : i + note] += 0.25 * _tone(f, note, rate, 2, 0.15) * env
    x = x / np.abs(x).max() * level
    pad = (np.zeros(int(head_s * rate)), x, np.zeros(int(tail_s * rate)))
    y = np.concatenate(pad)
    return np.stack([y, 0.95 * y], 1).astype(np.float32)


def march(seconds: float, bpm: float = 120.0, rate: int = 44100, level: float = 0.5) -> np.ndarray:
    """A fast dense march: kick on every beat, snare on 2 and 4, hats on the eighths and
    bright brass stabs, (n, 2)."""
    rng = np.random.default_rng(7)
    n = int(seconds * rate)
    x = np.zeros(n)
    eighth = 30.0 / bpm
    kl, sl = int(0.12 * rate), int(0.15 * rate)
    kt = np.arange(kl) / rate
    kick = np.sin(2 * np.pi * (55 + 80 * np.exp(-kt * 30)) * kt) * np.exp(-kt * 20)
    snare = rng.standard_normal(sl) * np.exp(-np.arange(sl) / rate * 25)
    hat = (
        0.3
        * rng.standard_normal(int(0.03 * rate))
        * np.exp(-np.arange(int(0.03 * rate)) / rate * 150)
    )
    bl = int(eighth * rate)
    brass = _tone(349.2, bl, rate, 8, 0.8) * np.exp(-np.arange(bl) / rate * 6)
    k = 0
    while k * eighth < seconds - 0.3:
        i = round(k * eighth * rate)
        parts = [hat, brass * 0.5]
        if k % 2 == 0:
            parts.append(kick)
        if k % 4 == 2:
            parts.append(snare * 0.7)
        for p in parts:
            seg = p[: max(0, min(len(p), n - i))]
            x[i : i + len(seg)] += seg
        k += 1
    x = x / np.abs(x).max() * level
    return np.stack([x, x], 1).astype(np.float32)


def fanfare(seconds: float = 5.0, rate: int = 44100) -> np.ndarray:
    """A short bright brass fanfare, (n, 2)."""
    n = int(seconds * rate)
    x = np.zeros(n)
    step = n // 5
    for k, f in enumerate((392.0, 523.3, 659.3, 784.0, 1046.5)):
        x[k * step : (k + 1) * step] = _tone(f, step, rate, 8, 0.85)
    x = x / np.abs(x).max() * 0.8
    return np.stack([x, x], 1).astype(np.float32)


def calm_and_tense_folder(folder: Path, minutes: float = 1.5, rate: int = 44100) -> Path:
    """A slow sustained piece (twice), a fast dense march, a fanfare and a silent file."""
    folder.mkdir(parents=True, exist_ok=True)
    s = minutes * 60.0
    write(folder / "calm-a.flac", calm_piece(s, rate, head_s=4.0, tail_s=6.0), rate)
    write(folder / "calm-b.ogg", calm_piece(s * 1.1, rate, level=0.15, tail_s=3.0), rate)
    write(folder / "march.flac", march(s, rate=rate), rate)
    write(folder / "fanfare.wav", fanfare(5.0, rate), rate)
    write(folder / "silent.wav", np.zeros((int(10 * rate), 2), np.float32), rate)
    return folder
