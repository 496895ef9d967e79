"""Choosing tracks (taste, tempo steering), the my-music program and the MusicPlayer."""

from __future__ import annotations

import itertools
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from device.music.choice import (
    Candidate,
    TrackChooser,
    track_reward,
    wind_down_score,
)
from device.music.index import MusicIndex, scan
from device.music.player import MIN_CREDIT_S, MusicPlayer
from device.sound.targets import OFF_DB
from device.therapy.program import load_program
from device.therapy.timeline import Timeline
from tests.support.music_tracks import beat_track, calm_piece, noise_bed, write

RATE = 48000


def picks(chooser: TrackChooser, tracks, n: int = 200, **kw) -> Counter[str]:
    out: Counter[str] = Counter()
    for _ in range(n):
        got = chooser.choose(tracks, **kw)
        assert got is not None
        out[got[0].key] += 1
    return out


def test_winding_down_prefers_tracks_no_faster_than_the_heart() -> None:
    tracks = [Candidate("a78", 78.0), Candidate("b62", 62.0), Candidate("c64", 64.0)]
    assert wind_down_score(78.0, progress=0.2, heart_bpm=64.0) == 0.0
    assert wind_down_score(None, progress=0.9, heart_bpm=50.0) == 0.0
    early = picks(TrackChooser(seed=2), tracks, progress=0.2, heart_bpm=64.0)
    late = picks(TrackChooser(seed=2), tracks, progress=0.8, heart_bpm=64.0)
    assert early["a78"] > 40  # all calm: taste (all equal) decides, about a third each
    assert late["a78"] < 10


def test_likes_skips_and_the_heart_teach_the_taste_per_profile() -> None:
    tracks = [Candidate(k, 70.0) for k in ("x", "y", "z", "v", "w")]
    c = TrackChooser(seed=3, profile="ana")
    for _ in range(4):
        c.rate("x", "like")
        c.rate("z", "skip")
        c.credit("x", track_reward(70.0, 64.0, 1.0, 3.0))
    assert picks(c, tracks)["z"] == 0  # skipped twice: not back tonight
    c.new_night()
    got = picks(c, tracks)
    assert got["x"] > got["y"] > got["z"]
    other = TrackChooser(seed=3, profile="ben", state=c.to_state())
    assert other.taste("x") == (0.0, 0.0)
    again = TrackChooser(seed=3, profile="ana", state=c.to_state())
    assert again.taste("x") == c.taste("x") and again.taste("x")[1] == 8
    assert track_reward(70.0, 50.0, 0.0, 10.0) == 2.0
    with pytest.raises(ValueError, match="rating"):
        c.rate("x", "love")


def test_the_same_track_is_not_chosen_twice_unless_alone() -> None:
    c = TrackChooser(seed=4)
    two = [Candidate("a", 70.0), Candidate("b", 70.0)]
    keys = [c.choose(two)[0].key for _ in range(10)]  # type: ignore[index]
    assert all(p != q for p, q in itertools.pairwise(keys))
    assert c.choose([Candidate("a")])[0].key == "a"  # type: ignore[index]
    assert c.choose([]) is None


def test_my_music_program_plays_the_music_with_entrainment_on_it() -> None:
    program = load_program("my-music", [])
    tl = Timeline(program)
    start, mid = tl.at(10.0).targets, tl.at(20 * 60.0).targets
    assert start.music_db == -6.0 and start.entrain_bed and start.entrain_kind == "isochronic"
    assert start.pad_db == OFF_DB and start.noise_db == OFF_DB and start.tones_db == OFF_DB
    assert start.music_crossfade_s == 6.0 and start.pacer_bpm is not None
    assert -10.0 < mid.music_db < -6.0 and mid.entrain_hz < 10.0
    assert tl.at(program.duration_s + 1).targets.program_db == OFF_DB


def library(tmp_path: Path) -> Path:
    lib = tmp_path / "music"
    lib.mkdir()
    write(lib / "a-calm.flac", calm_piece(70.0))
    write(lib / "b-fast.ogg", beat_track(120.0 * 1.3, 70.0))
    write(lib / "c-bed.wav", noise_bed(70.0))
    (lib / "d-broken.mp3").write_bytes(b"\0" * 100)
    with MusicIndex.in_state_dir(tmp_path / "state") as index:
        scan(index, lib)
    return lib


def run(player: MusicPlayer, seconds: float) -> None:
    for _ in range(round(seconds * RATE / 1024)):
        while player.feed.step():
            pass
        out = np.zeros((2, 1024), np.float32)
        player.voice.render(out, 1024, 1.0, 1.0)


def test_player_lists_plays_skips_and_reports(tmp_path) -> None:
    lib = library(tmp_path)
    player = MusicPlayer.open(lib, tmp_path / "state", RATE, TrackChooser(seed=5))
    names = [t["name"] for t in player.listing()]
    assert names == ["a-calm.flac", "b-fast.ogg", "c-bed.wav"]  # the broken file is not offered
    assert player.describe()["track"] is None
    run(player, 2.0)
    first = player.describe()
    assert first["track"] in names and first["n"] is not None and first["tracks"] == 3
    assert player.status_fields()["track"] == first["track"]
    assert player.play(3) == {"n": 3, "name": "c-bed.wav"}
    run(player, 5.0)
    assert player.describe()["track"] == "c-bed.wav"
    assert player.status_fields() == {
        "track": "c-bed.wav", "track_tempo_bpm": None, "music": None, "music_dropouts": 0
    }  # fmt: skip
    with pytest.raises(ValueError, match="no track 4"):
        player.play(4)
    skipped = player.skip()
    assert skipped is not None and skipped.endswith("c-bed.wav")
    mean, n = player.chooser.taste(skipped)
    assert mean < 0.0 and n == 1
    run(player, 7.0)
    assert player.describe()["track"] != "c-bed.wav"
    liked = player.like()
    assert liked is not None and player.chooser.taste(liked)[0] > 0.0
    player.close()


def test_player_credits_the_heart_response_when_a_track_ends(tmp_path) -> None:
    lib = library(tmp_path)
    player = MusicPlayer.open(lib, tmp_path / "state", RATE, TrackChooser(seed=6))
    run(player, 1.5)
    key = player.describe()["track"]
    hr = 72.0
    reward = None
    for _ in range(int(MIN_CREDIT_S) + 1):  # a minute of a falling heart rate on one track
        assert player.tick(1.0, progress=0.3, hr_bpm=hr, coherence=1.0) is None
        hr -= 0.1
    player.skip()
    run(player, 7.0)
    reward = player.tick(1.0, progress=0.3, hr_bpm=hr, coherence=1.0)
    assert reward is not None and reward > 1.0
    credited = next(p for p in (t.path for t in player._tracks) if Path(p).name == key)
    _, n = player.chooser.taste(credited)
    assert n == 2  # the skip and the heart's response
    player.close()
