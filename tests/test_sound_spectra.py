"""What the engine plays, checked in the frequency domain."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import signal

from device.sound.engine import Engine
from device.sound.targets import OFF_DB, SoundTargets
from device.sound.voices.noise import a_weighting

RATE = 48000


def play(engine: Engine, seconds: float, skip: float = 0.5) -> np.ndarray:
    """Fade in quickly, drop ``skip`` seconds, return the next ``seconds`` as (n, 2) float64."""
    engine.fade_in(0.05)
    b = engine.block_frames
    for _ in range(round(skip * RATE / b)):
        engine.render()
    return np.concatenate(
        [engine.render().astype(np.float64) for _ in range(round(seconds * RATE / b))]
    )


def tones_only(**kw: object) -> SoundTargets:
    base = {"pad_db": OFF_DB, "noise_db": OFF_DB, "pacer_bpm": None, "tones_db": 0.0}
    base.update(kw)
    return SoundTargets(**base)  # type: ignore[arg-type]


def peak_hz(x: np.ndarray, lo: float, hi: float) -> float:
    """Frequency of the strongest spectral line of ``x`` between ``lo`` and ``hi`` Hz."""
    spec = np.abs(np.fft.rfft(x * np.hanning(len(x))))
    f = np.fft.rfftfreq(len(x), 1.0 / RATE)
    band = (f >= lo) & (f <= hi)
    k = np.flatnonzero(band)[np.argmax(spec[band])]
    # parabolic interpolation between bins
    a, b, c = np.log(spec[k - 1 : k + 2] + 1e-30)
    return float(f[k] + 0.5 * (a - c) / (a - 2 * b + c) * (f[1] - f[0]))


def engine_with(targets: SoundTargets, volume_db: float = -6.0, **kw: object) -> Engine:
    e = Engine(sample_rate=RATE, volume_db=volume_db, cap_dbfs=0.0, **kw)  # type: ignore[arg-type]
    e.set_targets(targets, immediate=True)
    return e


def test_isochronic_carrier_and_pulse_rate() -> None:
    e = engine_with(tones_only(entrain_kind="isochronic", carrier_hz=300.0, entrain_hz=7.0))
    x = play(e, 4.0)[:, 0]
    assert peak_hz(x, 100, 2000) == pytest.approx(300.0, abs=0.3)
    # the envelope: square-law detection then the spectrum below 50 Hz
    env = signal.decimate(x * x, 40, ftype="fir")
    env = env - env.mean()
    f = np.fft.rfftfreq(len(env), 40.0 / RATE)
    spec = np.abs(np.fft.rfft(env * np.hanning(len(env))))
    band = (f > 1.0) & (f < 50.0)
    assert f[band][np.argmax(spec[band])] == pytest.approx(7.0, abs=0.3)
    assert e.status()["entrain_kind"] == "isochronic"


def test_isochronic_pulses_are_gated_with_the_duty_cycle() -> None:
    e = engine_with(
        tones_only(entrain_kind="isochronic", carrier_hz=400.0, entrain_hz=4.0, duty=0.4)
    )
    x = play(e, 2.0)[:, 0]
    # RMS over one period of the tone complex (5 ms), as an amplitude envelope
    win = RATE // 200
    env = np.sqrt(np.convolve(x * x, np.ones(win) / win, mode="same"))
    on = env > 0.5 * env.max()
    assert on.mean() == pytest.approx(0.4, abs=0.05)
    assert env.min() < 0.01 * env.max()


def test_binaural_beat_each_ear_on_headphones() -> None:
    e = engine_with(
        tones_only(entrain_kind="binaural", carrier_hz=250.0, entrain_hz=6.0), output="headphones"
    )
    x = play(e, 4.0)
    # the low tone on the carrier, the high tone the beat above it
    assert peak_hz(x[:, 0], 150, 350) == pytest.approx(250.0, abs=0.3)
    assert peak_hz(x[:, 1], 150, 350) == pytest.approx(256.0, abs=0.3)
    st = e.status()
    assert st["entrain_kind"] == "binaural" and not st["binaural_as_monaural"]


def test_binaural_on_a_speaker_is_monaural_and_status_says_so() -> None:
    e = engine_with(tones_only(entrain_kind="binaural", carrier_hz=250.0, entrain_hz=6.0))
    x = play(e, 4.0)
    for ch in (0, 1):
        spec = np.abs(np.fft.rfft(x[:, ch] * np.hanning(len(x))))
        f = np.fft.rfftfreq(len(x), 1.0 / RATE)
        lo = spec[np.argmin(np.abs(f - 250.0))]
        hi = spec[np.argmin(np.abs(f - 256.0))]
        assert lo == pytest.approx(hi, rel=0.1)  # both tones in both ears
    np.testing.assert_allclose(x[:, 0], x[:, 1], atol=1e-6)
    st = e.status()
    assert st["entrain_kind"] == "monaural"
    assert st["requested_kind"] == "binaural" and st["binaural_as_monaural"]


def noise_only(colour: str, tone: float = 0.5) -> np.ndarray:
    t = SoundTargets(
        pad_db=OFF_DB,
        tones_db=OFF_DB,
        pacer_bpm=None,
        noise_db=0.0,
        noise_colour=colour,
        noise_tone=tone,
    )
    e = engine_with(t, volume_db=-24.0)
    x = play(e, 6.0)
    assert e.status()["limiter_segments"] == 0
    return x


def slope_db_per_octave(x: np.ndarray, lo: float = 100.0, hi: float = 8000.0) -> float:
    f, p = signal.welch(x, RATE, nperseg=8192)
    band = (f >= lo) & (f <= hi)
    return float(np.polyfit(np.log2(f[band]), 10 * np.log10(p[band]), 1)[0])


@pytest.mark.parametrize(("colour", "slope"), [("white", 0.0), ("pink", -3.01), ("brown", -6.02)])
def test_noise_slopes(colour: str, slope: float) -> None:
    x = noise_only(colour)
    for ch in (0, 1):
        assert slope_db_per_octave(x[:, ch]) == pytest.approx(slope, abs=0.5)
    # the two ears are uncorrelated
    assert abs(np.corrcoef(x[:, 0], x[:, 1])[0, 1]) < 0.05


def a_weighted_db(x: np.ndarray) -> float:
    spec = np.fft.rfft(x)
    f = np.fft.rfftfreq(len(x), 1.0 / RATE)
    return float(10 * np.log10(np.sum(np.abs(spec * a_weighting(f)) ** 2)))


def test_colours_and_tone_settings_are_equally_loud() -> None:
    levels = [a_weighted_db(noise_only(c)[:, 0]) for c in ("white", "pink", "brown")]
    levels.append(a_weighted_db(noise_only("pink", tone=0.0)[:, 0]))
    levels.append(a_weighted_db(noise_only("brown", tone=1.0)[:, 0]))
    assert max(levels) - min(levels) < 0.5


def test_tone_control_tilts_the_spectrum() -> None:
    dark = slope_db_per_octave(noise_only("pink", tone=0.0)[:, 0], 200, 5000)
    bright = slope_db_per_octave(noise_only("pink", tone=1.0)[:, 0], 200, 5000)
    assert dark < -4.0 and bright > -2.0


def test_breath_swell_follows_the_pacer_with_a_longer_exhale() -> None:
    t = SoundTargets(
        pad_db=OFF_DB,
        tones_db=OFF_DB,
        noise_db=0.0,
        pacer_bpm=10.0,
        inhale_fraction=0.4,
        swell_db=12.0,
    )
    e = engine_with(t, volume_db=-24.0)
    x = play(e, 24.0)[:, 0]
    win = RATE // 20  # 50 ms RMS windows
    env = 10 * np.log10(np.mean(x[: len(x) // win * win].reshape(-1, win) ** 2, axis=1))
    smooth = np.convolve(env, np.ones(5) / 5, mode="valid")  # 250 ms: noise's own wobble out
    assert smooth.max() - smooth.min() == pytest.approx(12.0, abs=1.5)
    f = np.fft.rfftfreq(len(env), 1 / 20)
    spec = np.abs(np.fft.rfft(env - env.mean()))
    assert f[np.argmax(spec)] == pytest.approx(10 / 60, abs=0.02)
    # within each 6 s breath the rise (inhale) takes 40 % and the fall 60 %
    period = 120  # windows per breath
    rises = []
    for k in range(1, 3):
        cyc = smooth[k * period : (k + 1) * period + period // 2]
        lo = int(np.argmin(cyc[:period]))
        hi = lo + int(np.argmax(cyc[lo : lo + period]))
        rises.append((hi - lo) / period)
    assert np.mean(rises) == pytest.approx(0.4, abs=0.06)


def test_44k1_and_odd_block_sizes_play_the_same_beat() -> None:
    e = Engine(sample_rate=44100, block_frames=1000, output="headphones", volume_db=-6.0)
    e.set_targets(
        tones_only(entrain_kind="binaural", carrier_hz=400.0, entrain_hz=10.0), immediate=True
    )
    e.fade_in(0.05)
    x = np.concatenate([e.render().astype(np.float64) for _ in range(200)])[44100:]
    for ch, f in ((0, 400.0), (1, 410.0)):
        spec = np.abs(np.fft.rfft(x[:, ch] * np.hanning(len(x))))
        freqs = np.fft.rfftfreq(len(x), 1 / 44100)
        band = (freqs > 300) & (freqs < 500)
        assert freqs[band][np.argmax(spec[band])] == pytest.approx(f, abs=0.5)


def test_pad_is_three_notes_with_quiet_twins_on_a_chord_spread_in_stereo() -> None:
    t = SoundTargets(
        tones_db=OFF_DB,
        noise_db=OFF_DB,
        pacer_bpm=None,
        pad_db=0.0,
        pad_preset="warm",
        pad_brightness=0.0,
    )
    e = engine_with(t, volume_db=-12.0)
    x = play(e, 16.0)
    mono = x[:, 0] + x[:, 1]
    spec = np.abs(np.fft.rfft(mono * np.hanning(len(mono))))
    f = np.fft.rfftfreq(len(mono), 1.0 / RATE)
    band = (f > 100) & (f < 250)
    s, fb = spec[band], f[band]
    is_peak = (s[1:-1] > s[:-2]) & (s[1:-1] > s[2:]) & (s[1:-1] > 0.05 * s.max())
    peaks = fb[1:-1][is_peak]
    root = 130.81  # C, the warm preset's first chord: C E G in just intonation
    for note in (root, root * 5 / 4, root * 3 / 2):
        near = np.flatnonzero(np.abs(peaks - note) < note * 0.01)
        assert len(near) == 2, (note, peaks[near])  # the note and its chorus twin
        assert peaks[near[0]] == pytest.approx(note, abs=0.05)  # the note on the tuning
        assert 0.2 <= peaks[near[1]] - peaks[near[0]] < 0.5  # the twin just above
        amp = s[1:-1][is_peak][near]
        assert amp[1] / amp[0] == pytest.approx(0.3, abs=0.08)  # quiet: chorus, not tremolo
    assert len(peaks) == 6
    # spread: the ears differ, but not entirely
    c = np.corrcoef(x[:, 0], x[:, 1])[0, 1]
    assert 0.2 < c < 0.95


def test_pad_moves_to_the_next_chord() -> None:
    t = SoundTargets(
        tones_db=OFF_DB, noise_db=OFF_DB, pacer_bpm=None, pad_db=0.0, pad_preset="glass"
    )
    e = engine_with(t, volume_db=-12.0)
    e.fade_in(0.05)
    for _ in range(round(26.0 * RATE / e.block_frames)):  # glass: 24 s chords, 6 s fades
        e.render()
    assert e.mixer.pad.chord == 1 and e.status()["pad_chord"] == 1
