"""The music voice: real files of every format through the decoder decks into the bed."""

from __future__ import annotations

import itertools
import time
import tracemalloc
from pathlib import Path

import numpy as np
import pytest

from device.music.analysis import analyse
from device.music.feed import Cue, MusicFeed
from device.music.voice import MusicVoice
from device.sound.isochronic import PulseEnvelope
from device.sound.targets import SoundTargets
from tests.support.music_tracks import FORMATS, noise_bed, write
from tests.test_sound_clicks import clicks

RATE = 48000
BLOCK = 1024


def cue_of(path: Path) -> Cue:
    return Cue(str(path), path.name, analyse(path).lufs)


def make(cues: list[Cue], **kw: object) -> tuple[MusicFeed, MusicVoice]:
    cycle = itertools.cycle(cues)
    feed = MusicFeed(RATE, lambda: next(cycle), **kw)  # type: ignore[arg-type]
    voice = MusicVoice(feed)
    voice.prepare(RATE, BLOCK)
    return feed, voice


def play(
    feed: MusicFeed, voice: MusicVoice, seconds: float, *, decode: bool = True, on_block=None
) -> np.ndarray:
    """Render ``seconds`` at gain 1, the decoder run to idle before each block; (2, n)."""
    out = []
    for i in range(round(seconds * RATE / BLOCK)):
        if on_block is not None:
            on_block(i)
        while decode and feed.step():
            pass
        o = np.zeros((2, BLOCK), np.float32)
        voice.render(o, BLOCK, 1.0, 1.0)
        out.append(o)
    return np.concatenate(out, axis=1)


def rms_db(x: np.ndarray, win: int = RATE // 20) -> np.ndarray:
    """50 ms RMS envelope of the left channel, in dB, hop 25 ms."""
    s = x[0].astype(np.float64)
    n = (len(s) - win) // (win // 2)
    frames = np.stack([s[i * win // 2 : i * win // 2 + win] for i in range(n)])
    return 10 * np.log10(np.mean(frames**2, axis=1) + 1e-20)


def sine(freq: float, seconds: float, rate: int = 44100, level: float = 0.3) -> np.ndarray:
    t = np.arange(int(seconds * rate)) / rate
    x = level * np.sin(2 * np.pi * freq * t)
    # 20 ms raised-cosine edges: a real track starts and ends without a click
    edge = int(0.02 * rate)
    w = 0.5 - 0.5 * np.cos(np.pi * np.arange(edge) / edge)
    x[:edge] *= w
    x[-edge:] *= w[::-1]
    return np.stack([x, x], 1).astype(np.float32)


@pytest.mark.parametrize(("ext", "fmt", "subtype"), FORMATS)
def test_every_format_plays_resampled_to_the_engine_rate(tmp_path, ext, fmt, subtype) -> None:
    path = write(tmp_path / f"s.{ext}", sine(1000.0, 4.0))
    feed, voice = make([cue_of(path)])
    x = play(feed, voice, 2.5)[:, RATE : 2 * RATE]  # one second well inside the track
    spec = np.abs(np.fft.rfft(x[0] * np.hanning(RATE)))
    assert abs(np.argmax(spec) - 1000) <= 1  # 1 Hz bins: the pitch survived 44.1 -> 48 kHz
    assert voice.playing is not None and voice.playing.key == f"s.{ext}"
    assert voice.stalls == 0 and feed.errors == 0


def test_tracks_12_db_apart_play_within_1_db(tmp_path) -> None:
    loud = write(tmp_path / "loud.flac", noise_bed(10.0, level=0.2, seed=1))
    quiet = write(tmp_path / "quiet.ogg", noise_bed(10.0, level=0.05, seed=2))
    feed, voice = make([cue_of(loud), cue_of(quiet)], capacity_s=4.0)
    voice.crossfade_s = 1.0
    x = play(feed, voice, 20.0)
    env = rms_db(x)
    a = np.median(env[round(3 / 0.025) : round(7 / 0.025)])  # inside the first track
    b = np.median(env[round(13 / 0.025) : round(16 / 0.025)])  # inside the second
    assert abs(a - b) < 1.0


def test_track_changes_have_no_gap_click_or_level_jump(tmp_path) -> None:
    a = write(tmp_path / "a.wav", noise_bed(7.0, level=0.1, seed=3))
    b = write(tmp_path / "b.mp3", noise_bed(7.0, level=0.3, seed=4))
    feed, voice = make([cue_of(a), cue_of(b)], capacity_s=3.0)
    voice.set_targets(SoundTargets(music_crossfade_s=2.0))
    x = play(feed, voice, 24.0)
    assert voice.changes >= 4 and voice.stalls == 0
    env = rms_db(x)[round(2.0 / 0.025) :]  # past the start fade-in
    steady = np.median(env)
    assert env.min() > steady - 3.0 and env.max() < steady + 3.0  # no gap, no bump
    assert np.abs(np.diff(env)).max() < 2.5  # no jump between neighbouring 50 ms windows


def test_crossfade_of_tones_is_click_free(tmp_path) -> None:
    a = write(tmp_path / "a.flac", sine(300.0, 5.0))
    b = write(tmp_path / "b.flac", sine(450.0, 5.0, level=0.1))
    feed, voice = make([cue_of(a), cue_of(b)])
    voice.crossfade_s = 1.5
    x = play(feed, voice, 14.0)
    assert voice.changes >= 3
    assert clicks(x.T.astype(np.float64), 450.0).size == 0
    # the detector does find a hard cut between the two tracks
    cut = np.concatenate([x[:, : RATE * 2], x[:, RATE * 2 :][:, ::-1]], axis=1)
    assert clicks(cut.T.astype(np.float64), 450.0).size > 0


def test_one_track_loops_seamlessly(tmp_path) -> None:
    only = write(tmp_path / "only.ogg", noise_bed(4.0, level=0.1, seed=5))
    feed, voice = make([cue_of(only)], capacity_s=2.0)
    voice.crossfade_s = 1.0
    x = play(feed, voice, 15.0)
    env = rms_db(x)[round(1.5 / 0.025) :]
    assert voice.changes >= 4
    assert env.min() > np.median(env) - 3.0


def test_skip_crossfades_into_the_next_track_at_once(tmp_path) -> None:
    a = write(tmp_path / "a.flac", noise_bed(30.0, seed=6))
    b = write(tmp_path / "b.flac", noise_bed(30.0, seed=7))
    feed, voice = make([cue_of(a), cue_of(b)])
    voice.crossfade_s = 2.0
    play(feed, voice, 3.0)
    assert voice.playing is not None and voice.playing.key == "a.flac"
    voice.request_skip()
    play(feed, voice, 0.9)
    assert voice.playing.key == "a.flac"  # not yet half-way through the 2 s crossfade
    play(feed, voice, 0.3)
    assert voice.playing.key == "b.flac"
    assert voice.position_s == pytest.approx(1.2, abs=0.05)


def test_cue_replaces_the_preloaded_next_track(tmp_path) -> None:
    a, b, c = (write(tmp_path / f"{n}.wav", noise_bed(20.0, seed=i)) for i, n in enumerate("abc"))
    feed, voice = make([cue_of(a), cue_of(b)])
    voice.crossfade_s = 1.0
    play(feed, voice, 2.0)
    feed.cue(cue_of(c))
    play(feed, voice, 1.5)
    assert voice.playing is not None and voice.playing.key == "c.wav"


def test_a_stalled_decoder_plays_silence_and_is_counted(tmp_path) -> None:
    a = write(tmp_path / "a.flac", noise_bed(20.0, seed=8))
    feed, voice = make([cue_of(a)], capacity_s=1.5)
    play(feed, voice, 2.0)
    before = voice.stalls
    x = play(feed, voice, 3.0, decode=False)  # the decoder is starved of CPU
    assert voice.stalls > before
    assert np.all(x[:, -RATE:] == 0.0)  # the ring ran dry: silence, not garbage
    y = play(feed, voice, 1.0)
    assert np.sqrt(np.mean(y[:, RATE // 2 :] ** 2)) > 0.01  # and it recovers


def test_undecodable_track_is_counted_and_skipped(tmp_path) -> None:
    good = write(tmp_path / "good.wav", noise_bed(5.0, seed=9))
    bad = tmp_path / "bad.mp3"
    bad.write_bytes(b"\0" * 64)
    errors: list[str] = []
    cues = [Cue(str(bad), "bad.mp3", -20.0), cue_of(good)]
    feed, voice = make(cues, on_error=lambda cue, text: errors.append(cue.key))
    play(feed, voice, 2.0)
    assert errors and errors[0] == "bad.mp3" and feed.errors >= 1
    assert voice.playing is not None and voice.playing.key == "good.wav"


def test_warmth_is_a_low_shelf_and_changes_without_a_click(tmp_path) -> None:
    t = np.arange(44100 * 30) / 44100
    x = 0.1 * (np.sin(2 * np.pi * 50 * t) + np.sin(2 * np.pi * 3000 * t))
    path = write(tmp_path / "two.flac", np.stack([x, x], 1).astype(np.float32))
    feed, voice = make([cue_of(path)], capacity_s=1.5)  # the shelf lags by the ring's lead
    flat = play(feed, voice, 3.0)[:, RATE:]
    voice.set_targets(SoundTargets(warmth=1.0))
    ramp = play(feed, voice, 6.0)
    warm = ramp[:, -2 * RATE :]

    def band(y: np.ndarray, f: float) -> float:
        spec = np.abs(np.fft.rfft(y[0, : 2 * RATE] * np.hanning(2 * RATE)))
        return float(20 * np.log10(spec[round(f * 2)]))

    assert band(warm, 50) - band(flat, 50) == pytest.approx(6.0, abs=0.6)
    assert abs(band(warm, 3000) - band(flat, 3000)) < 0.3
    assert clicks(ramp.T.astype(np.float64), 3000.0).size == 0


def test_entrain_bed_envelope_pulses_the_music_as_the_engine_applies_it(tmp_path) -> None:
    from device.sound.mixer import BED_PULSE_DEPTH

    path = write(tmp_path / "n.flac", noise_bed(12.0, level=0.1, seed=10))
    feed, voice = make([cue_of(path)])
    pulse = PulseEnvelope(BLOCK, RATE)
    pulse.set_shape(0.45, 4.0)
    out = []
    for _ in range(round(8 * RATE / BLOCK)):
        while feed.step():
            pass
        bed = np.zeros((2, BLOCK), np.float32)
        assert voice.render(bed, BLOCK, 1.0, 1.0) or not out
        env = pulse.render(BLOCK, 4.0)
        bed *= 1.0 - BED_PULSE_DEPTH * (1.0 - env)  # the engine's bed gate at full weight
        pulse.commit(BLOCK)
        out.append(bed)
    x = np.concatenate(out, axis=1)[0, 2 * RATE :]
    power = np.convolve(x.astype(np.float64) ** 2, np.ones(480) / 480, mode="valid")[::480]
    spec = np.abs(np.fft.rfft(power - power.mean()))
    freqs = np.fft.rfftfreq(len(power), 0.01)
    assert abs(freqs[np.argmax(spec[1:]) + 1] - 4.0) < 0.1  # the music pulses at 4 Hz


def test_the_voice_contract(tmp_path) -> None:
    path = write(tmp_path / "a.wav", noise_bed(3.0, seed=11))
    feed, voice = make([cue_of(path)])
    assert voice.name == "music" and voice.bed is True
    out = np.zeros((2, BLOCK), np.float32)
    assert voice.render(out, BLOCK, 1.0, 1.0) is False  # nothing decoded yet: wrote nothing
    play(feed, voice, 0.5)
    voice.skip(BLOCK)  # level off: paused
    pos = voice.position_s
    voice.skip(BLOCK)
    assert voice.position_s == pos
    out[:] = 1.0
    assert voice.render(out, 512, 0.0, 0.0) is True
    assert np.all(out[:, 512:] == 1.0)  # adds only into out[:, :frames]
    with pytest.raises(ValueError, match="44100"):
        voice.prepare(44100, BLOCK)
    assert voice.status()["track"] == "a.wav"


def test_the_decoder_thread_keeps_up(tmp_path) -> None:
    paths = [write(tmp_path / f"{i}.mp3", noise_bed(4.0, seed=i)) for i in range(2)]
    feed, voice = make([cue_of(p) for p in paths], capacity_s=5.0)
    voice.crossfade_s = 1.0
    feed.start()
    try:
        deadline = time.monotonic() + 60.0
        while feed.decks[0].total < 0 and time.monotonic() < deadline:  # a loaded CI box
            time.sleep(0.01)
        for _ in range(round(6 * RATE / BLOCK)):  # paced at twice real time
            o = np.zeros((2, BLOCK), np.float32)
            voice.render(o, BLOCK, 1.0, 1.0)
            time.sleep(BLOCK / RATE / 2)
    finally:
        feed.close()
        feed.close()
    assert voice.changes >= 2 and voice.stalls == 0


def test_render_allocates_nothing(tmp_path) -> None:
    a = write(tmp_path / "a.flac", noise_bed(3.0, seed=12))
    b = write(tmp_path / "b.ogg", noise_bed(3.0, seed=13))
    feed, voice = make([cue_of(a), cue_of(b)], capacity_s=1.0)
    voice.crossfade_s = 0.5
    for _ in range(300):  # warm: starts, crossfades, ring wraps
        while feed.step():
            pass
        o = np.zeros((2, BLOCK), np.float32)
        voice.render(o, BLOCK, 0.5, 0.6)
    out = np.zeros((2, BLOCK), np.float32)
    changes = voice.changes
    worst = 0
    only_voice = [tracemalloc.Filter(True, "*music_voice.py")]
    tracemalloc.start()
    try:
        for i in range(640):
            if i % 4 == 0:
                while feed.step():  # the decoder (its own thread in the box) allocates freely
                    pass
            if i == 40:
                before = tracemalloc.take_snapshot().filter_traces(only_voice)
            tracemalloc.reset_peak()
            start = tracemalloc.get_traced_memory()[0]
            voice.render(out, BLOCK, 0.5, 0.6)
            worst = max(worst, tracemalloc.get_traced_memory()[1] - start)
        after = tracemalloc.take_snapshot().filter_traces(only_voice)
    finally:
        tracemalloc.stop()
    assert voice.changes - changes >= 4  # crossfades and ring wraps were measured too
    grown = sum(d.size_diff for d in after.compare_to(before, "filename"))
    assert grown < 256  # render keeps nothing it made
    assert worst < 2048  # small Python objects only: a block of samples is 8 kB


def test_the_decoder_thread_survives_a_failing_chooser(tmp_path) -> None:
    path = write(tmp_path / "a.wav", noise_bed(3.0, seed=14))
    calls = []

    def next_track() -> Cue:
        calls.append(1)
        if len(calls) == 1:
            raise RuntimeError("library went away")
        return cue_of(path)

    feed = MusicFeed(RATE, next_track)
    feed.start()
    try:
        deadline = time.monotonic() + 30.0
        while feed.decks[0].available() + feed.decks[1].available() == 0:
            assert time.monotonic() < deadline
            time.sleep(0.02)
    finally:
        feed.close()
    assert feed.errors == 1 and "library went away" in feed.last_error
