"""Property test: random sequences of parameter changes never break the engine's promises."""

from __future__ import annotations

import math

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from device.dsp.ramps import SILENT_DB
from device.sound.engine import LEVEL_RATE, VOLUME_RATE, Engine
from device.sound.targets import (
    DEPTH_RANGE,
    ENTRAIN_KINDS,
    INHALE_RANGE,
    NOISE_COLOURS,
    OFF_DB,
    PACER_RANGE,
    PAD_PRESETS,
    SoundTargets,
)
from device.sound.tuning import carrier_on_grid

levels = st.one_of(st.sampled_from((OFF_DB, -math.inf, -200.0)), st.floats(-60.0, 0.0))
targets = st.builds(
    SoundTargets,
    pacer_bpm=st.one_of(st.none(), st.floats(*PACER_RANGE)),
    inhale_fraction=st.floats(*INHALE_RANGE),
    entrain_kind=st.sampled_from(ENTRAIN_KINDS),
    entrain_hz=st.floats(0.5, 40.0),
    carrier_hz=st.floats(100.0, 1000.0),
    duty=st.floats(0.35, 0.5),
    pad_preset=st.sampled_from(PAD_PRESETS),
    pad_brightness=st.floats(0.0, 1.0),
    noise_colour=st.sampled_from(NOISE_COLOURS),
    noise_tone=st.floats(0.0, 1.0),
    entrain_bed=st.booleans(),
    tones_db=levels,
    pad_db=levels,
    noise_db=levels,
    swell_db=st.floats(*DEPTH_RANGE),
    program_db=st.one_of(st.just(-math.inf), st.floats(-40.0, 0.0)),
)
actions = st.one_of(
    st.tuples(st.just("targets"), targets),
    st.tuples(st.just("volume"), st.floats(-60.0, 0.0)),
    st.tuples(st.just("cap"), st.floats(-40.0, 0.0)),
    st.tuples(st.just("fade_in"), st.floats(0.0, 3.0)),
    st.tuples(st.just("fade_out"), st.floats(0.0, 3.0)),
    st.tuples(st.just("chime"), st.sampled_from(("start", "end", "wake"))),
)
script = st.lists(st.tuples(st.integers(1, 12), actions), min_size=1, max_size=10)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(script=script, output=st.sampled_from(("speaker", "headphones")), hot=st.booleans())
def test_random_changes_keep_cap_finite_and_ramp_limits(script, output, hot) -> None:
    e = Engine(block_frames=512, output=output, volume_db=0.0 if hot else -20.0, cap_dbfs=-3.0)
    e.fade_in(0.0)
    rate = e.sample_rate
    prev = e.gains_db()
    prev_frames = e.frames
    for blocks, (kind, value) in script:
        if kind == "targets":
            e.set_targets(value)
        elif kind == "volume":
            e.set_volume_db(value)
        elif kind == "cap":
            e.set_cap_dbfs(value)
        elif kind == "fade_in":
            e.fade_in(value)
        elif kind == "fade_out":
            e.fade_out(value)
        else:
            e.chime(value)
        cap = 10.0 ** (e.cap_dbfs / 20.0)
        for _ in range(blocks):
            x = e.render()
            assert np.all(np.isfinite(x))
            assert float(np.abs(x).max()) <= cap
            g = e.gains_db()
            dt = (e.frames - prev_frames) / rate
            # levels move no faster than their dB/s limits (the silence floor is a switch)
            for name, limit in (
                ("tones", LEVEL_RATE),
                ("pad", LEVEL_RATE),
                ("noise", LEVEL_RATE),
                ("program", LEVEL_RATE),
                ("volume", VOLUME_RATE),
            ):
                a, b = prev[name], g[name]
                if a > SILENT_DB and b > SILENT_DB:
                    assert abs(b - a) <= limit * dt + 1e-6, (name, a, b, dt)
            prev, prev_frames = g, e.frames
    st_ = e.status()
    assert st_["nonfinite_segments"] == 0 and st_["render_errors"] == 0
    assert all(not math.isnan(v) for v in st_["gains_db"].values())
    assert math.isfinite(st_["cap_dbfs"])
    assert st_["binaural_as_monaural"] == (
        st_["requested_kind"] == "binaural" and output == "speaker"
    )


def test_bad_targets_are_refused_by_name() -> None:
    e = Engine()
    good = SoundTargets()
    for field, value in (
        ("carrier_hz", 50.0),
        ("entrain_hz", float("nan")),
        ("duty", 0.9),
        ("entrain_kind", "gamma"),
        ("noise_colour", "blue"),
        ("pad_preset", "organ"),
        ("tones_db", 6.0),
        ("pacer_bpm", 0.0),
        ("swell_db", -1.0),
        ("inhale_fraction", 0.9),
    ):
        try:
            e.set_targets(good.with_changes(**{field: value}))
        except ValueError as exc:
            assert field in str(exc)
        else:
            raise AssertionError(f"{field}={value!r} was accepted")
    for bad in (
        lambda: e.set_volume_db(3.0),
        lambda: e.set_cap_dbfs(-80.0),
        lambda: e.fade_in(float("nan")),
        lambda: e.fade_out(-1.0),
        lambda: e.chime("doorbell"),
    ):
        try:
            bad()
        except ValueError:
            pass
        else:
            raise AssertionError("accepted")
    try:
        Engine(output="subwoofer")
    except ValueError as exc:
        assert "subwoofer" in str(exc)


def test_a_lower_cap_holds_from_the_next_block() -> None:
    e = Engine(volume_db=0.0, cap_dbfs=0.0)
    e.set_targets(SoundTargets(tones_db=0.0, pad_db=0.0, noise_db=0.0))
    e.fade_in(0.0)
    for _ in range(30):
        e.render()
    assert float(np.abs(e.render()).max()) > 10 ** (-12 / 20)
    e.set_cap_dbfs(-20.0)  # mid-segment
    for _ in range(40):
        assert float(np.abs(e.render()).max()) <= 10 ** (-20 / 20)
    assert e.status()["limiter_segments"] > 0


def test_engine_starts_silent_and_chimes_sound_over_a_fade() -> None:
    e = Engine()
    assert e.faded_out and e.level_db == -math.inf
    assert np.all(e.render() == 0.0)
    e.chime("wake")
    assert not e.faded_out
    out = np.concatenate([e.render().copy() for _ in range(200)])  # 4.3 s
    assert np.abs(out).max() > 0.01  # the chime plays although the sound is faded out
    assert e.faded_out  # and when it has rung out, the box is silent again
    assert "Engine" in repr(e) and "faded out" in repr(e)


def test_a_failing_segment_is_silence_not_an_exception(mocker) -> None:
    e = Engine()
    e.fade_in(0.0)
    for _ in range(20):
        e.render()
    mocker.patch.object(e.mixer.noise, "render", side_effect=RuntimeError("table gone"))
    for _ in range(e.blocks_per_segment):  # up to the next segment, which fails
        x = e.render()
        if e.render_errors:
            break
    assert np.all(x == 0.0)
    for _ in range(e.blocks_per_segment - 1):  # the whole failed segment is silence
        assert np.all(e.render() == 0.0)
    st_ = e.status()
    assert st_["render_errors"] == 1 and "table gone" in e.last_error
    mocker.stopall()
    e.fade_in(0.0)
    assert np.any(e.render() != 0.0)


def test_nan_never_reaches_the_output() -> None:
    e = Engine()
    e.fade_in(0.0)
    e.render()
    e.mixer.tones._amp[:] = np.nan  # a corrupted gain
    for _ in range(e.blocks_per_segment):  # up to the next segment
        x = e.render()
        if e.status()["nonfinite_segments"]:
            break
    assert np.all(x == 0.0)
    assert e.status()["nonfinite_segments"] == 1


def test_minus_infinity_levels_are_off_and_come_back_cleanly() -> None:
    e = Engine()
    e.fade_in(0.0)
    e.set_targets(SoundTargets(pad_db=-math.inf, program_db=-math.inf))
    for _ in range(300):  # long enough to reach silence
        e.render()
    e.set_targets(SoundTargets(pad_db=-10.0, program_db=0.0))
    for _ in range(e.blocks_per_segment + 1):  # into the segment that starts the ramp up
        e.render()
    e.fade_in(0.0)  # an urgent request cuts that segment mid-ramp
    for _ in range(200):
        e.render()
    st_ = e.status()
    assert st_["nonfinite_segments"] == 0
    assert all(math.isfinite(v) for v in st_["gains_db"].values())
    assert np.abs(e.render()).max() > 0.0


def test_immediate_targets_jump_only_while_silent() -> None:
    e = Engine()
    e.set_targets(
        SoundTargets(noise_colour="brown", pad_preset="deep", carrier_hz=400.0), immediate=True
    )
    assert e.mixer.noise.colour == "brown" and e.mixer.pad.preset_name == "deep"
    on_grid = carrier_on_grid(400.0, "deep")  # the pad plays: the carrier is on its tuning
    assert e.mixer.tones.carrier.value == on_grid and abs(on_grid / 400.0 - 1) < 0.06
    e.fade_in(0.0)
    e.render()
    e.set_targets(SoundTargets(noise_colour="white", carrier_hz=300.0), immediate=True)
    # audible: it glides
    assert e.mixer.noise.colour == "brown" and e.mixer.tones.carrier.value == on_grid
