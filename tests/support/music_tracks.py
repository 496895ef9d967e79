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
