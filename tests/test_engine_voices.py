"""Voices as plug-ins: the engine loops over any list of voices that keep the contract."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from device.dsp.oscillators import OscillatorBank
from device.sound.engine import Engine
from device.sound.targets import CHECKS, OFF_DB, SoundTargets, validate_targets
from device.sound.voice import Voice, VoiceContext
from device.sound.voices import BUILTIN_VOICES


class HumVoice:
    """The example of docs/sound.md: a 60 Hz sine in both ears (a bed voice)."""

    bed = True

    def __init__(self, name: str = "pad") -> None:
        self.name = name
        self.calls: list[tuple[str, int, float, float]] = []

    def prepare(self, sample_rate: int, segment_frames: int) -> None:
        self.bank = OscillatorBank(1, segment_frames, sample_rate)
        self.bank.reset_rows(0, 1, 60.0)
        self.ramp = np.zeros(segment_frames, np.float32)
        self.n = np.arange(segment_frames, dtype=np.float32)

    def set_targets(self, targets: SoundTargets) -> None:
        pass

    def render(self, out: np.ndarray, frames: int, g0: float, g1: float) -> bool:
        self.calls.append(("render", frames, g0, g1))
        row = self.bank.render(frames)[0]
        gain = self.ramp[:frames]
        np.multiply(self.n[:frames], (g1 - g0) / frames, out=gain)
        gain += g0
        gain *= 0.3536  # RMS 0.25 (-12 dBFS) at 0 dB, like the other voices
        np.multiply(row, gain, out=row)
        out[0, :frames] += row
        out[1, :frames] += row
        self.bank.commit(frames)
        return True

    def skip(self, frames: int) -> None:
        self.calls.append(("skip", frames, 0.0, 0.0))
        self.bank.skip(frames)
        self.bank.commit(frames)


def hum_only(ctx: VoiceContext) -> Voice:
    return HumVoice()


def test_a_new_voice_plays_through_the_engine_at_its_level() -> None:
    e = Engine(voices=[hum_only], volume_db=-6.0, cap_dbfs=0.0)
    assert [v.name for v in e.voices] == ["pad"]
    e.set_targets(SoundTargets(pad_db=0.0, pacer_bpm=None), immediate=True)
    e.fade_in(0.05)
    x = np.concatenate([e.render().astype(np.float64) for _ in range(100)])[24000:]
    spec = np.abs(np.fft.rfft(x[:, 0] * np.hanning(len(x))))
    f = np.fft.rfftfreq(len(x), 1 / 48000)
    assert f[np.argmax(spec)] == pytest.approx(60.0, abs=1.0)
    # level 0 dB (RMS 0.25), volume -6 dB
    rms = float(np.sqrt(np.mean(x[:, 0] ** 2)))
    assert rms == pytest.approx(0.25 * 10 ** (-6 / 20), rel=0.02)
    voice = e.voices[0]
    assert isinstance(voice, HumVoice)
    # one call per segment, always a whole segment
    assert {c[1] for c in voice.calls} == {e.segment_frames}


def test_each_segment_is_one_call_and_gains_join_up() -> None:
    e = Engine(voices=[hum_only])
    voice = e.voices[0]
    assert isinstance(voice, HumVoice)
    e.fade_in(0.0)
    e.set_targets(SoundTargets(pad_db=-10.0, pacer_bpm=None))
    for _ in range(6 * e.blocks_per_segment):
        e.render()
    e.set_targets(SoundTargets(pad_db=OFF_DB, pacer_bpm=None))
    for _ in range(30 * e.blocks_per_segment):
        e.render()
    renders = [c for c in voice.calls if c[0] == "render"]
    # the level ramps up from silence and back down, each segment starting where the last ended
    for a, b in itertools.pairwise(renders):
        assert b[2] == pytest.approx(a[3])
    assert renders[-1][3] == 0.0 and voice.calls[-1][0] == "skip"
    # fades and a lower cap re-shape the master stage: they never re-render a voice
    n = len(voice.calls)
    e.set_targets(SoundTargets(pad_db=0.0, pacer_bpm=None))
    e.render()
    e.fade_out(1.0)
    e.render()
    e.set_cap_dbfs(-20.0)
    e.render()
    assert len(voice.calls) <= n + 2


def test_a_voice_needs_its_level_in_the_target_table() -> None:
    e = Engine(voices=BUILTIN_VOICES)
    with pytest.raises(ValueError, match="hum_db"):
        e.add_voice(HumVoice("hum"))
    with pytest.raises(ValueError, match="already"):
        e.add_voice(HumVoice("pad"))
    assert [v.name for v in e.voices] == ["tones", "pad", "noise", "composer"]


def test_a_voice_added_to_a_sounding_engine_fades_up() -> None:
    e = Engine(voices=[], volume_db=-6.0, cap_dbfs=0.0)
    e.fade_in(0.0)
    for _ in range(20):
        assert not np.any(e.render())
    e.add_voice(HumVoice())
    e.set_targets(SoundTargets(pad_db=0.0, pacer_bpm=None))
    first = [float(np.abs(e.render()).max()) for _ in range(20 * e.blocks_per_segment)]
    assert first[0] < 1e-3 and first[-1] > 0.05  # starts silent, glides up at 15 dB/s


def test_one_table_checks_every_field() -> None:
    fields = set(SoundTargets.__dataclass_fields__)
    assert set(CHECKS) == fields
    good = SoundTargets()
    validate_targets(good)
    bad = {
        "pacer_bpm": 1.0,
        "inhale_fraction": float("nan"),
        "entrain_kind": "gamma",
        "entrain_hz": 41.0,
        "carrier_hz": 99.0,
        "duty": 0.3,
        "pad_preset": "organ",
        "pad_brightness": 1.5,
        "noise_colour": "blue",
        "noise_tone": -0.1,
        "entrain_bed": "yes",
        "tones_db": 0.5,
        "pad_db": float("nan"),
        "noise_db": "loud",
        "swell_db": 25.0,
        "program_db": 1.0,
        "music_db": 0.5,
        "music_crossfade_s": 0.1,
        "music_pulse_index": 0.6,
        "warmth": 1.5,
        "composer_db": 0.5,
        "composer_style": "organ",
        "composer_energy": -0.1,
        "composer_theme": -1,
        "heart_bpm": 300.0,
    }
    assert set(bad) == fields
    for name, value in bad.items():
        with pytest.raises(ValueError, match=f"SoundTargets.{name} ="):
            validate_targets(good.with_changes(**{name: value}))
    validate_targets(good.with_changes(pacer_bpm=None, tones_db=float("-inf")))
    with pytest.raises(TypeError):
        validate_targets({"pad_db": 0.0})
