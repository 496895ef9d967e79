"""The chooser judges calm from what is heard, likes make a track more likely, the scan
measures the audible span and a beat-level tempo (checked against librosa)."""

from __future__ import annotations

import itertools
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from device.music.analysis import analyse
from device.music.choice import Candidate, TrackChooser, judge
from device.music.index import MusicIndex, Track, scan
from device.music.player import MusicPlayer
from tests.support.music_tracks import beat_track, calm_and_tense_folder, calm_piece, march, write


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> list[Track]:
    root = tmp_path_factory.mktemp("calm")
    music = calm_and_tense_folder(root / "music")
    with MusicIndex(root / "music.db") as index:
        return scan(index, music)


def by_name(tracks: list[Track]) -> dict[str, Track]:
    return {t.name: t for t in tracks}


def test_the_scan_measures_the_audible_start_and_end(folder: list[Track]) -> None:
    t = by_name(folder)
    a = t["calm-a.flac"]  # 4 s of digital silence, 90 s of music, 6 s of silence
    assert a.audible_start_s == pytest.approx(4.0, abs=0.15)
    assert a.audible_end_s == pytest.approx(94.0, abs=0.5)
    b = t["calm-b.ogg"]
    assert b.audible_start_s == pytest.approx(0.0, abs=0.15)
    assert b.audible_end_s == pytest.approx(99.0, abs=0.5)
    assert a.to_json()["audible_start_s"] == pytest.approx(4.0, abs=0.15)


def test_calm_pieces_are_chosen_and_the_march_fanfare_and_silence_never(
    folder: list[Track],
) -> None:
    verdicts = {t.name: judge(t) for t in folder}
    assert verdicts["calm-a.flac"].ok and verdicts["calm-b.ogg"].ok
    assert not verdicts["march.flac"].ok and "busy" in verdicts["march.flac"].why
    assert verdicts["fanfare.wav"].why.startswith("shorter than")
    assert verdicts["silent.wav"].why == "nothing to hear"
    player = MusicPlayer(folder, 48000, TrackChooser(seed=11))
    got = Counter(Path(player._next_cue().path).name for _ in range(200))  # type: ignore[union-attr]
    assert set(got) == {"calm-a.flac", "calm-b.ogg"}


def test_a_march_is_read_at_its_beat_not_folded_into_a_calm_60(tmp_path: Path) -> None:
    m = analyse(write(tmp_path / "m.wav", march(40.0, 120.0)))
    assert m.tempo_bpm == pytest.approx(120.0, rel=0.02) and m.tempo_confidence > 0.5
    assert m.onsets_per_min > 200.0


def test_tempo_agrees_with_librosa_at_the_beat_level(tmp_path: Path) -> None:
    librosa = pytest.importorskip("librosa")
    cases = {
        "march120": march(30.0, 120.0),
        "march100": march(30.0, 100.0),
        "beat66": beat_track(66.0, 30.0),
        "beat140": beat_track(140.0, 30.0),
        "calm60": calm_piece(45.0),
    }
    for name, x in cases.items():
        ours = analyse(write(tmp_path / f"{name}.wav", x))
        theirs, _ = librosa.beat.beat_track(y=x.mean(axis=1), sr=44100)
        assert ours.tempo_bpm == pytest.approx(float(np.atleast_1d(theirs)[0]), rel=0.04), name


def test_an_uncertain_tempo_never_calls_a_track_calm(folder: list[Track]) -> None:
    from dataclasses import replace

    fast = replace(by_name(folder)["calm-a.flac"], tempo_bpm=160.0, tempo_confidence=0.9)
    assert "tempo" in judge(fast).why
    unsure = replace(fast, tempo_confidence=0.1)  # a tempo read without confidence: unused
    assert "tempo" not in judge(unsure).why
    busy = replace(unsure, tempo_bpm=60.0, onsets_per_min=240.0)  # slow reading, busy surface
    assert not judge(busy).ok


KEYS = ("a", "b", "c", "d")
ACTION = st.tuples(
    st.sampled_from(KEYS),
    st.one_of(st.sampled_from(("like", "skip")), st.floats(-2.0, 2.0)),
)


def chooser_after(history: list[tuple[str, object]]) -> TrackChooser:
    c = TrackChooser(seed=1)
    for key, what in history:
        if isinstance(what, str):
            c.rate(key, what)
        else:
            c.credit(key, float(what))  # type: ignore[arg-type]
    return c


@given(st.lists(ACTION, max_size=12), st.sampled_from(KEYS))
def test_a_like_makes_a_track_more_likely_and_a_skip_less_for_any_history(
    history: list[tuple[str, object]], key: str
) -> None:
    tracks = [Candidate(k) for k in KEYS]
    before = chooser_after(history).chances(tracks)[key]
    liked = chooser_after([*history, (key, "like")]).chances(tracks)[key]
    skipped = chooser_after([*history, (key, "skip")]).chances(tracks)[key]
    if 0.0 < before < 1.0:
        assert liked > before > skipped
    else:
        assert liked >= before >= skipped


def test_a_like_outweighs_a_heart_credit_and_likes_keep_raising_the_chance() -> None:
    tracks = [Candidate(f"t{i}") for i in range(40)]
    c = TrackChooser(seed=2)
    base = c.chances(tracks)["t0"]
    seen = [base]
    for _ in range(5):
        c.rate("t0", "like")
        seen.append(c.chances(tracks)["t0"])
    assert all(b > a for a, b in itertools.pairwise(seen))
    c = TrackChooser(seed=2)
    c.rate("t0", "like")
    c.credit("t0", -1.38)
    assert c.chances(tracks)["t0"] > base


def quiet_runs_s(x: np.ndarray, rate: int, below_dbfs: float = -60.0) -> list[float]:
    """Lengths (s) of the stretches whose 50 ms RMS stays below ``below_dbfs``."""
    win = rate // 20
    n = x.shape[1] // win
    rms = np.sqrt(np.mean(x[:, : n * win].reshape(2, n, win) ** 2, axis=(0, 2)))
    quiet = 20.0 * np.log10(np.maximum(rms, 1e-12)) < below_dbfs
    runs, k = [], 0
    for q in quiet:
        k = k + 1 if q else 0
        if k == 1:
            runs.append(0)
        if q:
            runs[-1] = k * win / rate
    return runs


def test_no_silence_at_a_track_change(tmp_path: Path) -> None:
    music = tmp_path / "music"
    music.mkdir()
    rate = 44100
    write(music / "a.flac", calm_piece(68.0, rate, head_s=3.0, tail_s=8.0), rate)
    write(music / "b.flac", calm_piece(68.0, rate, level=0.1, head_s=5.0, tail_s=6.0), rate)
    with MusicIndex(tmp_path / "music.db") as index:
        tracks = scan(index, music)
    player = MusicPlayer(tracks, 48000, TrackChooser(seed=3))
    block, seconds = 1024, 170.0
    out = np.zeros((2, round(seconds * 48000 / block) * block), np.float32)
    for i in range(0, out.shape[1], block):
        while player.feed.step():
            pass
        player.voice.render(out[:, i : i + block], block, 0.5, 0.5)
    player.close()
    assert player.voice.changes >= 3  # the start and at least two track changes
    runs = quiet_runs_s(out[:, 48000:], 48000)  # after the first track's 1 s fade-in
    assert max(runs, default=0.0) <= 0.5, runs


@pytest.mark.parametrize("sync", [False, True])
def test_a_virtual_clock_waits_for_a_slow_decoder_and_a_dropout_is_counted(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, sync: bool
) -> None:
    import time

    from device.music import feed as music_feed

    music = tmp_path / "music"
    music.mkdir()
    write(music / "a.flac", calm_piece(70.0), 44100)
    with MusicIndex(tmp_path / "music.db") as index:
        tracks = scan(index, music)
    read = music_feed._Source.read

    def slow(self: music_feed._Source, warmth_k: float) -> np.ndarray:
        time.sleep(0.02)  # a loaded CPU: a quarter second decoded in 20 ms, not instantly
        return read(self, warmth_k)

    monkeypatch.setattr(music_feed._Source, "read", slow)
    player = MusicPlayer(tracks, 48000, TrackChooser(seed=1))
    player.sync = sync
    player.feed.start()
    out = np.zeros((2, 1024), np.float32)
    while player.voice.playing is None:  # the first track starts (paced like a sound card)
        player.voice.render(out, 1024, 1.0, 1.0)
        time.sleep(0.02)
    for i in range(round(20.0 * 48000 / 1024)):  # 20 s of audio as fast as the CPU goes
        if i % 12 == 0:  # the control tick, four times a second
            player.tick(0.25, progress=0.1, hr_bpm=None, coherence=None)
        player.voice.render(out, 1024, 1.0, 1.0)
    player.close()
    status = player.status_fields()
    assert status["music_dropouts"] == player.voice.dropouts
    if sync:
        assert player.voice.dropouts == 0 and player.voice.missing_frames == 0
    else:
        assert player.voice.dropouts >= 1 and player.voice.missing_frames > 0


def test_skips_under_the_pulse_lower_its_depth_for_this_listener(folder: list[Track]) -> None:
    from device.music.player import stand_in
    from device.sound.targets import SoundTargets

    player = MusicPlayer(folder, 48000, TrackChooser(seed=1))
    out = np.zeros((2, 1024), np.float32)
    while player.voice.playing is None:
        while player.feed.step():
            pass
        player.voice.render(out, 1024, 1.0, 1.0)
    pulsed = SoundTargets(entrain_bed=True, music_db=-6.0, music_pulse_index=0.2)
    assert stand_in(pulsed, player).music_pulse_index == pytest.approx(0.2)
    player.skip()
    player.skip()
    lowered = stand_in(pulsed, player).music_pulse_index
    assert lowered == pytest.approx(0.2 * 0.75**2)
    player.like()  # a like under the pulse wins one step back
    assert stand_in(pulsed, player).music_pulse_index == pytest.approx(0.2 * 0.75)
    # skips without the pulse on the music teach its depth nothing
    plain = stand_in(pulsed.with_changes(entrain_bed=False), player)
    player.skip()
    assert plain.music_pulse_index == 0.2
    assert stand_in(pulsed, player).music_pulse_index == pytest.approx(0.2 * 0.75)
    player.close()
