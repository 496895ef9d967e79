"""The composer: deterministic, tempo below the heart and gliding, phrases on the breath,
the theme returning, chords that never beat, an allocation-free audio path, a clear error
without FluidSynth. The synthesiser is the real FluidSynth playing a SoundFont made here
(``tests/support/sf2_tiny.py``): tests never read the system's SoundFonts."""

from __future__ import annotations

import sys
import tracemalloc
from pathlib import Path

import numpy as np
import pytest

from device.music.composer import form, timing
from device.music.composer.harmony import MODES, Voicer, partials, pure_chords, tonic_key_of
from device.music.composer.score import ON, Composer
from device.music.composer.styles import STYLES, channel
from device.music.composer.synth import ComposerUnavailable, FluidSynthBackend, find_soundfont
from device.music.composer.theme import make_theme, theme_seed
from device.music.composer.voice import ComposerVoice, composer_in, composer_stand_in
from device.sound.engine import Engine
from device.sound.targets import OFF_DB, SoundTargets
from device.sound.tuning import PRESETS, carrier_on_grid, conflicts
from device.therapy.program import load_program
from device.therapy.timeline import Timeline
from tests.support import sf2_tiny

RATE = 48000
BASE = SoundTargets(
    composer_db=-6.0,
    tones_db=OFF_DB,
    pad_db=OFF_DB,
    noise_db=OFF_DB,
    pacer_bpm=6.0,
    swell_db=0.0,
    heart_bpm=72.0,
    composer_energy=0.6,
)


def compose(seed: int, phrases: int, t: SoundTargets = BASE, bpm: float | None = 6.0):
    c = Composer(seed, RATE, theme=theme_seed("ann"))
    breath = timing.Breath(0, 0.0, bpm, 0.4)
    out = []
    for _ in range(phrases):
        events = c.compose(t, breath, 0)
        out.append((c.phrase_start, c.horizon, events))
    return c, out


def melody_keys(events, style: str = "piano") -> tuple[int, ...]:
    ch = channel(style, 0)
    return tuple(e[3] for e in events if e[1] == ON and e[2] == ch)


def test_same_seed_same_music_other_seed_other_music() -> None:
    _, a = compose(3, 12)
    _, b = compose(3, 12)
    _, c = compose(4, 12)
    assert [x[2] for x in a] == [x[2] for x in b]
    assert [x[2] for x in a] != [x[2] for x in c]


def test_tempo_is_below_the_heart_and_in_the_calm_range() -> None:
    assert timing.tempo_target(100.0, 1.0) == pytest.approx(70.0)  # 30 % below
    assert timing.tempo_target(100.0, 0.0) == pytest.approx(55.0)  # 45 % below near sleep
    assert timing.tempo_target(60.0, 1.0) == 50.0  # clamped up to the calm range
    assert timing.tempo_target(140.0, 1.0) == 80.0  # clamped down
    for hr in range(50, 200, 7):
        for e in (0.0, 0.5, 1.0):
            t = timing.tempo_target(float(hr), e)
            assert 50.0 <= t <= 80.0
            assert t < hr or t == 50.0
    assert timing.tempo_target(110.0, 0.2) < timing.tempo_target(110.0, 0.8)


def test_tempo_glides_beat_by_beat_never_jumps() -> None:
    clock = timing.BeatClock(RATE, 75.0)
    frames = clock.beats(200, 50.0)  # the heart calmed at once: the music slows gradually
    tempi = 60.0 * RATE / np.diff(frames)
    assert np.all(np.abs(np.diff(tempi)) <= timing.TEMPO_STEP + 1e-9)
    assert tempi[0] > 74.0 and tempi[-1] == pytest.approx(50.0)


def test_one_phrase_per_breath_starting_on_the_inhale() -> None:
    for bpm in (6.0, 8.5):
        c, phrases = compose(1, 14, BASE.with_changes(pacer_bpm=bpm), bpm=bpm)
        period = 60.0 / bpm * RATE
        beat = 60.0 / c.clock.tempo * RATE
        starts = [p[0] for p in phrases[1:]]  # the first starts at once, wherever the breath is
        for s in starts:
            off = (s / period) % 1.0
            assert min(off, 1.0 - off) * period <= 0.5 * beat + 1.0
        assert np.allclose(np.diff(starts), period, atol=beat)


def test_melody_rises_over_the_inhale_and_falls_over_the_exhale() -> None:
    rises = falls = 0
    _, phrases = compose(5, 24)
    for start, end, events in phrases[1:]:
        ch = channel("piano", 0)
        notes = [(e[0], e[3]) for e in events if e[1] == ON and e[2] == ch]
        top_at = start + 0.4 * (end - start)
        before = [k for f, k in notes if f < top_at]
        after = [k for f, k in notes if f >= top_at]
        if len(before) >= 2 and after:
            rises += max(before) > before[0]
            falls += after[-1] < max(before + after)
    assert rises >= 15 and falls >= 15


def test_the_theme_opens_every_a_section_and_the_piece_never_repeats() -> None:
    theme = make_theme(theme_seed("ann"))
    n = len(theme.steps)
    _, phrases = compose(2, 5 * form.SECTION_PHRASES)
    tunes = [melody_keys(p[2]) for p in phrases]
    a_starts = [i for i in range(len(tunes)) if form.role(i).theme]
    assert a_starts[:3] == [0, form.SECTION_PHRASES // 2, 2 * form.SECTION_PHRASES]
    heads = {tuple(np.diff(tunes[i][:n])) for i in a_starts}
    assert len(heads) == 1  # the same intervals at every return
    # no 30 s (three breaths) played twice, themes and all
    windows = [tunes[i] + tunes[i + 1] + tunes[i + 2] for i in range(len(tunes) - 2)]
    assert len(set(windows)) == len(windows)
    assert len(set(tunes)) >= 0.8 * len(tunes)


def test_every_chord_of_every_style_is_pure_and_leaves_the_carrier_alone() -> None:
    full = total = silent = 0
    for preset in PRESETS:
        root = PRESETS[preset].root_hz
        for carrier in (None, carrier_on_grid(200.0, preset), carrier_on_grid(150.0, preset)):
            for style in STYLES.values():
                v = Voicer(tonic_key_of(root), root)
                for chord in pure_chords(style.mode).values():
                    bass, keys = v.voice(chord, style.texture, style.bass, carrier)
                    notes = keys if bass is None else (bass, *keys)
                    assert v.clean(notes, carrier) or not notes
                    silent += not notes
                    full += len(keys) == 3 and bass is not None
                    total += 1
                    assert not conflicts(partials(tuple(v.hz(k) for k in notes)))
    assert full >= 0.8 * total and silent <= 0.05 * total  # full chords nearly always
    assert set(pure_chords("major")) >= {0, 3, 4, 5} and 1 not in pure_chords("major")
    assert all(0 in pure_chords(m) for m in MODES)


@pytest.fixture(scope="module")
def soundfont(tmp_path_factory) -> str:
    progs = tuple(p for s in STYLES.values() for p in s.programs)
    return str(sf2_tiny.write(tmp_path_factory.mktemp("sf") / "tiny.sf2", progs))


def engine_with(soundfont: str, **kw) -> tuple[Engine, ComposerVoice]:
    def factory(ctx):
        return ComposerVoice(ctx.swell, ctx.seed, lambda rate: FluidSynthBackend(rate, soundfont))

    engine = Engine(voices=[factory], **kw)
    voice = composer_in(engine.voices)
    assert voice is not None
    return engine, voice


def test_a_short_render_is_audible_and_under_the_cap(soundfont: str) -> None:
    engine, voice = engine_with(soundfont, volume_db=0.0, cap_dbfs=-6.0, block_frames=1024)
    engine.set_targets(BASE, immediate=True)
    engine.fade_in(1.0)
    out = np.concatenate([engine.render().copy() for _ in range(round(20 * RATE / 1024))])
    rms_db = 20 * np.log10(np.sqrt(np.mean(out[5 * RATE :] ** 2)))
    assert rms_db > -45.0
    assert np.abs(out).max() <= 10 ** (-6.0 / 20.0)
    st = voice.describe()
    assert st["composed"] is True and st["style"] == "piano" and st["composer_error"] is None
    assert voice.late == 0 and voice.starved == 0


def test_the_audio_path_allocates_nothing(soundfont: str) -> None:
    engine, voice = engine_with(soundfont, volume_db=-10.0, block_frames=1024)
    engine.set_targets(BASE, immediate=True)
    engine.fade_in(0.5)
    voice.inline = False  # as on the box: composing happens elsewhere (here: before)
    voice.compose_ahead(120 * RATE)
    # the level moves as programs move it (the targets are made before: the control side
    # allocates, the audio path may not)
    levels = [BASE.with_changes(composer_db=-6.0 - k) for k in range(4)]
    for _ in range(400):
        engine.render()
    tracemalloc.start()
    try:
        for _ in range(20):
            engine.render()
        before = tracemalloc.get_traced_memory()[0]
        worst = 0
        for i in range(800):
            if i % 50 == 0:
                engine.set_targets(levels[(i // 50) % 4])
            tracemalloc.reset_peak()
            start = tracemalloc.get_traced_memory()[0]
            engine.render()
            worst = max(worst, tracemalloc.get_traced_memory()[1] - start)
        after = tracemalloc.get_traced_memory()[0]
    finally:
        tracemalloc.stop()
    assert voice._read > 50 and voice.late == 0  # notes were played in the measured span
    assert after - before < 256
    assert worst < 4096


def test_the_worker_composes_ahead(soundfont: str) -> None:
    engine, voice = engine_with(soundfont, volume_db=-10.0, block_frames=16384)
    voice.start_worker()
    try:
        engine.set_targets(BASE, immediate=True)
        engine.fade_in(0.1)
        for _ in range(100):
            if voice.composer.horizon > 0:
                break
            voice._stop.wait(0.05)
        assert voice.composer.horizon > 0 and voice.synth is not None
        out = np.concatenate([engine.render().copy() for _ in range(30)])
        assert np.abs(out).max() > 1e-4
    finally:
        voice.close()


def test_without_fluidsynth_the_error_says_what_to_install(monkeypatch, soundfont) -> None:
    monkeypatch.setitem(sys.modules, "fluidsynth", None)  # import fluidsynth -> ImportError
    with pytest.raises(ComposerUnavailable, match="apt-get install libfluidsynth3"):
        FluidSynthBackend(RATE, soundfont)
    engine, voice = engine_with(soundfont)
    with pytest.raises(ComposerUnavailable, match="pip install pyfluidsynth"):
        engine.set_targets(BASE)
    assert voice.describe()["composer_error"] and voice.status()["composer"] == "fault"
    with pytest.raises(ComposerUnavailable, match="fluid-soundfont-gm"):
        find_soundfont((str(Path(soundfont).parent / "none.sf2"),))


def test_a_chosen_style_plays_composed_music_in_the_pads_place() -> None:
    program = load_program("sleep", [])
    # opt-in: the built-in program does not choose composed music by itself
    assert "composer_style" not in program.options
    plain = Timeline(program, {"composer_style": "pad"}).at(60.0).targets
    composed = Timeline(program, {"composer_style": "harp"}).at(60.0).targets
    assert plain.composer_db == OFF_DB and plain.pad_db > OFF_DB
    assert composed.pad_db == OFF_DB and composed.composer_db == plain.pad_db
    assert composed.composer_style == "harp"


def test_the_session_hands_the_heart_and_the_listeners_theme_to_the_composer() -> None:
    from types import SimpleNamespace

    from device.therapy.bandit import Chooser
    from device.therapy.session import TherapySession

    session = TherapySession(
        load_program("compose", []), chooser=Chooser(profile="ann"), closed_loop=False
    )
    heart = SimpleNamespace(contact=True, hr_bpm=84.0, coherence=None, quality=1.0)
    t = session.update(0.0, heart)
    assert t.heart_bpm == 84.0 and t.composer_theme == theme_seed("ann")
    assert t.composer_style in STYLES and t.composer_db > OFF_DB
    assert session.update(1.0, None).heart_bpm is None  # no contact: no heart rate


def test_the_pad_stands_in_while_the_composer_cannot_play(monkeypatch, soundfont) -> None:
    """A composed style chosen on a box without FluidSynth would leave the pad's place silent
    all night: the pad plays there instead, and the fault stays in the status."""
    program = load_program("sleep", [])
    composed = Timeline(program, {"composer_style": "harp"}).at(60.0).targets
    engine, voice = engine_with(soundfont)
    assert composer_stand_in(composed, voice) is composed  # it can play (or was never asked)
    monkeypatch.setitem(sys.modules, "fluidsynth", None)
    with pytest.raises(ComposerUnavailable):
        engine.set_targets(composed)
    assert voice.error is not None
    played = composer_stand_in(composed, voice)
    assert played.composer_db == OFF_DB and played.pad_db == composed.composer_db
    assert voice.status()["composer"] == "fault"
    plain = Timeline(program, {"composer_style": "pad"}).at(60.0).targets
    assert composer_stand_in(plain, voice) is plain


def test_a_worker_with_nothing_to_compose_sleeps(soundfont: str) -> None:
    """A night without composed music wakes the worker not once (it used to poll 20 times a
    second all night, allocating as it went), and music asked for wakes it."""
    import threading

    engine, voice = engine_with(soundfont)
    quiet = SoundTargets(composer_db=OFF_DB)
    engine.set_targets(quiet)
    voice.start_worker()
    try:
        worker = voice._worker  # (other tests' boxes may have composer threads too)
        assert worker is not None
        pause = threading.Event()
        pause.wait(0.2)  # let it reach its sleep
        tracemalloc.start()
        try:
            pause.wait(0.5)  # ten polls' worth
            snapshot = tracemalloc.take_snapshot()
        finally:
            tracemalloc.stop()
        polls = [s for s in snapshot.statistics("filename") if "threading" in str(s.traceback)]
        assert polls == [] and worker.is_alive()
        engine.set_targets(BASE)
        for _ in range(200):
            if voice.synth is not None:
                break
            threading.Event().wait(0.05)
        assert voice.synth is not None  # woken: it loaded the synthesiser for the music
    finally:
        voice.close()
    assert not worker.is_alive()


def test_loading_fluidsynth_prints_nothing_on_the_status_stream() -> None:
    """pyfluidsynth prints where it found the library when CI is set; the box's stdout is
    its JSON status stream, so the import must keep quiet (it broke every status reader)."""
    import os
    import subprocess

    code = "from device.music.composer.synth import _import_fluidsynth; _import_fluidsynth()"
    env = {**os.environ, "CI": "true", "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    out = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout == ""
