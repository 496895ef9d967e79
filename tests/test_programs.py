"""Therapy programs: the built-ins, every kind of error, and a continuous timeline."""

from __future__ import annotations

import math
import os
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from device.exc import ConfigError, ProgramError
from device.sound.targets import OFF_DB
from device.therapy.program import (
    BUILTIN_DIR,
    list_programs,
    load_program,
    parse_program,
    read_program,
)
from device.therapy.timeline import Timeline, curve_weight, interpolate

BUILTINS = (
    "wind-down", "sleep", "relax", "nap", "noise", "my-music", "compose",
    "wind-down-composed", "sleep-composed",
)

GOOD = """
name = "test"
description = "a test"

[[section]]
name = "one"
duration_s = 60
pacer_bpm = [10, 8]
entrain_hz = [10, 8]
pad_preset = "warm"
tones_db = -24

[[section]]
name = "two"
duration_s = 120
transition = { duration_s = 20, curve = "S" }
pacer_bpm = [6, 6]
entrain_hz = 4
pad_preset = "deep"
tones_db = -40
pad_brightness = 0.1

[ending]
kind = "fade"
duration_s = 30
"""


def amp(db: float) -> float:
    return 0.0 if db <= OFF_DB else 10.0 ** (db / 20.0)


# --- built-ins -------------------------------------------------------------------------------


@pytest.mark.parametrize("name", BUILTINS)
def test_every_builtin_loads_and_plays_to_silence(name: str) -> None:
    program = load_program(name, [])
    assert program.name == name
    assert program.description
    assert program.path is not None and program.path.parent == BUILTIN_DIR
    timeline = Timeline(program)
    assert timeline.at(0.0).phase == "section"
    end = timeline.at(program.duration_s + 1.0)
    assert end.phase == "done" and end.remaining_s == 0.0
    if program.ending.kind != "wake":
        assert end.targets.program_db == OFF_DB


def test_builtin_lengths_and_endings() -> None:
    minutes = {p.name: p.duration_s / 60.0 for p in list_programs([])}
    assert minutes == {
        "wind-down": 20,
        "sleep": 45,
        "relax": 10,
        "nap": 23,
        "noise": 65,
        "my-music": 40,
        "compose": 30,
        "wind-down-composed": 20,
        "sleep-composed": 45,
    }
    assert load_program("wind-down").ending.duration_s == 120
    assert load_program("relax").ending.duration_s == 60
    nap = load_program("nap").ending
    assert (nap.kind, nap.duration_s, nap.chime) == ("wake", 180, True)


@pytest.mark.parametrize("base", ["wind-down", "sleep"])
def test_the_composed_variants_are_their_program_with_composed_music_in_the_pads_place(
    base: str,
) -> None:
    """``wind-down-composed`` and ``sleep-composed`` (issue 20, item 5: a listener picks
    composed music by picking the program) play exactly their base program's timeline with
    a composer style chosen, and offer the same choices plus the style (never "pad")."""
    plain, composed = load_program(base), load_program(f"{base}-composed")
    styles = composed.options["composer_style"]
    assert styles and "pad" not in styles
    assert {k: v for k, v in composed.options.items() if k != "composer_style"} == plain.options
    assert composed.duration_s == plain.duration_s
    assert composed.sections == plain.sections and composed.ending == plain.ending
    for style in styles:  # the personalisation always picks one of a program's options
        a = Timeline(plain, {"composer_style": style})
        b = Timeline(composed, {"composer_style": style})
        for t in np.arange(0.0, plain.duration_s + 30.0, 15.0):
            pa, pb = a.at(float(t)), b.at(float(t))
            assert (pa.section, pa.phase) == (pb.section, pb.phase)
            assert pa.targets == pb.targets, t
            if pb.phase == "section":
                assert pb.targets.composer_db > OFF_DB and pb.targets.pad_db == OFF_DB


def test_wind_down_paces_10_to_6_and_alpha_to_theta_while_darkening() -> None:
    timeline = Timeline(load_program("wind-down"))
    start, end = timeline.at(0.0).targets, timeline.at(18 * 60.0 - 0.01).targets
    assert start.pacer_bpm == pytest.approx(10.0) and end.pacer_bpm == pytest.approx(6.0, abs=0.01)
    assert start.entrain_hz == pytest.approx(10.0) and end.entrain_hz == pytest.approx(
        6.0, abs=0.01
    )
    assert end.pad_brightness < start.pad_brightness - 0.2


def test_sleep_drops_10_to_2_hz_exponentially_then_beds_on_pink_noise() -> None:
    timeline = Timeline(load_program("sleep"))
    assert timeline.at(0.0).targets.entrain_hz == pytest.approx(10.0)
    # Geometric descent: halfway through it is at the geometric mean sqrt(10 * 2).
    assert timeline.at(15 * 60.0).targets.entrain_hz == pytest.approx(math.sqrt(20.0), rel=1e-3)
    assert timeline.at(30 * 60.0 - 0.01).targets.entrain_hz == pytest.approx(2.0, abs=0.01)
    bed = timeline.at(35 * 60.0)
    assert bed.section == "bed"
    assert bed.targets.pacer_bpm is None and bed.targets.tones_db == OFF_DB
    assert bed.targets.noise_colour == "pink" and bed.targets.pad_db > OFF_DB
    assert timeline.at(44 * 60.0).phase == "ending"


def test_noise_plays_no_tones_and_no_pacer_at_any_time() -> None:
    timeline = Timeline(load_program("noise"))
    for t in range(0, int(timeline.duration_s), 30):
        targets = timeline.at(float(t)).targets
        assert targets.pacer_bpm is None and targets.entrain_kind == "none"
        assert targets.tones_db == OFF_DB and targets.pad_db == OFF_DB


def test_nap_wakes_with_brighter_faster_sound_and_no_pacer() -> None:
    timeline = Timeline(load_program("nap"))
    before, after = timeline.at(20 * 60.0).targets, timeline.at(23 * 60.0).targets
    assert after.entrain_hz == pytest.approx(10.0) and before.entrain_hz < 5.0
    assert after.pad_brightness > before.pad_brightness
    assert after.pacer_bpm is None and after.program_db == 0.0


# --- finding programs ------------------------------------------------------------------------


def test_user_program_shadows_builtin_and_loads_by_path(tmp_path: Path) -> None:
    (tmp_path / "sleep.toml").write_text(GOOD.replace('name = "test"', 'name = "sleep"'))
    assert load_program("sleep", [tmp_path]).duration_s == 210
    assert load_program(str(tmp_path / "sleep.toml")).name == "sleep"
    assert load_program(tmp_path / "sleep.toml").sections[1].name == "two"


def test_unknown_program_names_the_known_ones() -> None:
    with pytest.raises(ProgramError, match=r"no program named 'dream'.*sleep.*wind-down"):
        load_program("dream", [])
    with pytest.raises(ProgramError, match="no such program file"):
        load_program("/nowhere/x.toml", [])


def test_list_programs_skips_bad_files_and_reports_them(tmp_path: Path) -> None:
    (tmp_path / "mine.toml").write_text(GOOD.replace('name = "test"', 'name = "mine"'))
    (tmp_path / "broken.toml").write_text("name = ")
    errors: list[ProgramError] = []
    names = [p.name for p in list_programs([tmp_path, tmp_path / "absent"], errors)]
    assert names == sorted([*BUILTINS, "mine"])
    assert len(errors) == 1 and "broken.toml" in str(errors[0])


def test_program_name_defaults_to_the_file_stem(tmp_path: Path) -> None:
    path = tmp_path / "evening.toml"
    path.write_text(GOOD.replace('name = "test"\n', ""))
    assert read_program(path).name == "evening"


# --- errors ----------------------------------------------------------------------------------

ERRORS = [
    # (replace this, with that, message fragments, key)
    ("pacer_bpm = [10, 8]", "pacer_bpm = [13, 8]", ["13", "4.5 .. 12"], 'section "one".pacer_bpm'),
    ("entrain_hz = 4", "entrain_hz = 41", ["41", "0.5 .. 40 Hz"], 'section "two".entrain_hz'),
    ("entrain_hz = 4", 'entrain_hz = "off"', ["'off'", "0.5 .. 40"], 'section "two".entrain_hz'),
    ("tones_db = -24", "carrier_hz = 50", ["50", "100 .. 1000 Hz"], 'section "one".carrier_hz'),
    ("tones_db = -24", "tones_db = 3", ["3", "-90 .. 0 dB"], 'section "one".tones_db'),
    ("tones_db = -24", "tones_db = true", ["True", '"off"'], 'section "one".tones_db'),
    (
        'pad_preset = "warm"',
        'pad_preset = "harp"',
        ["'harp'", "warm, glass"],
        'section "one".pad_preset',
    ),
    ("tones_db = -24", "volume = 3", ["unknown key", "pacer_bpm"], 'section "one".volume'),
    (
        'curve = "S"',
        'curve = "cubic"',
        ["'cubic'", "linear, exponential, S"],
        'section "two".transition.curve',
    ),
    (
        "duration_s = 20,",
        "duration_s = 200,",
        ["200", "longer than the section"],
        'section "two".transition',
    ),
    ("pacer_bpm = [10, 8]", "pacer_bpm = [10, 8, 6]", ["[from, to]"], 'section "one".pacer_bpm'),
    ("duration_s = 60", "duration_min = 0", ["0", "more than 0"], 'section "one".duration_min'),
    ("duration_s = 60", "", ["missing"], 'section "one".duration_s'),
    (
        "duration_s = 60",
        "duration_s = 60\nduration_min = 1",
        ["not both"],
        'section "one".duration_s',
    ),
    ('name = "two"', 'name = "one"', ["two sections"], 'section "one".name'),
    ('kind = "fade"', 'kind = "explode"', ["'explode'", "fade, quiet-bed, wake"], "[ending].kind"),
    ('kind = "fade"', 'kind = "fade"\nchime = true', ["unknown key"], "[ending].chime"),
    ('description = "a test"', 'colour = "red"', ["unknown key", "section"], "colour"),
    (
        'description = "a test"',
        '[options]\npad_preset = ["warm", "harp"]',
        ["'harp'"],
        "[options].pad_preset",
    ),
    (
        'description = "a test"',
        '[options]\nentrain_kind = ["none"]',
        ['"none"'],
        "[options].entrain_kind",
    ),
    ('description = "a test"', "[options]\nvolume = [1]", ["unknown key"], "[options].volume"),
]


@pytest.mark.parametrize(("old", "new", "fragments", "key"), ERRORS)
def test_every_error_names_file_section_key_and_value(
    tmp_path: Path, old: str, new: str, fragments: list[str], key: str
) -> None:
    assert old in GOOD
    path = tmp_path / "bad.toml"
    path.write_text(GOOD.replace(old, new, 1))
    with pytest.raises(ProgramError) as info:
        load_program(path, [])
    message = str(info.value)
    assert message.startswith(str(path))
    assert info.value.file == str(path)
    assert info.value.key == key
    section = key.split(".")[0]
    if section.startswith(("section", "[")):
        assert section in message
    for fragment in fragments:
        assert fragment in message
    assert isinstance(info.value, ConfigError) and isinstance(info.value, ValueError)


def test_bad_toml_and_no_sections_are_refused_with_the_file_name() -> None:
    with pytest.raises(ProgramError, match=r"^my\.toml: not valid TOML"):
        parse_program("name = [", file="my.toml")
    with pytest.raises(ProgramError, match=r"my\.toml: section: a program needs at least one"):
        parse_program('name = "x"', file="my.toml")


def test_quiet_bed_ending_must_fit_its_glide_and_fade() -> None:
    text = GOOD.replace('kind = "fade"\nduration_s = 30', 'kind = "quiet-bed"\nduration_s = 100')
    with pytest.raises(ProgramError, match=r"\[ending\]: fade_s: .*longer than the ending"):
        parse_program(text, file="q.toml")


# --- the timeline ----------------------------------------------------------------------------


def test_curves_run_from_0_to_1_and_exponential_slides_are_geometric() -> None:
    for curve in ("linear", "exponential", "S"):
        assert curve_weight(0.0, curve) == 0.0 and curve_weight(1.0, curve) == 1.0
        weights = [curve_weight(i / 50, curve) for i in range(51)]
        assert weights == sorted(weights)
    assert curve_weight(0.5, "S") == 0.5 and curve_weight(0.25, "S") < 0.25
    assert curve_weight(0.25, "exponential") > 0.25
    assert interpolate(10.0, 2.5, 0.5, "exponential") == pytest.approx(5.0)
    assert interpolate(10.0, 2.0, 0.5, "linear") == pytest.approx(6.0)


def test_crossfade_starts_where_the_last_section_ended_and_lands_on_the_new_one() -> None:
    timeline = Timeline(parse_program(GOOD))
    end_of_one = timeline.at(59.999).targets
    at_boundary = timeline.at(60.0).targets
    assert at_boundary.pacer_bpm == pytest.approx(end_of_one.pacer_bpm, abs=1e-3)
    assert at_boundary.entrain_hz == pytest.approx(8.0, abs=1e-3)
    assert at_boundary.tones_db == pytest.approx(-24.0, abs=1e-3)
    middle = timeline.at(70.0).targets
    assert middle.pacer_bpm == pytest.approx(7.0) and middle.tones_db == pytest.approx(-32.0)
    landed = timeline.at(80.0).targets
    assert (landed.pacer_bpm, landed.entrain_hz, landed.tones_db) == (6.0, 4.0, -40.0)
    # A discrete choice switches at the middle of the transition, not at its edges.
    assert timeline.at(69.9).targets.pad_preset == "warm"
    assert timeline.at(70.1).targets.pad_preset == "deep"


@pytest.mark.parametrize("name", [*BUILTINS, "GOOD"])
def test_timelines_are_continuous(name: str) -> None:
    program = parse_program(GOOD) if name == "GOOD" else load_program(name)
    timeline = Timeline(program)
    dt = 0.25
    prev = timeline.at(0.0).targets
    worst: dict[str, float] = {}
    for i in range(1, int(timeline.duration_s / dt) + 8):
        now = timeline.at(i * dt).targets
        for field in ("entrain_hz", "carrier_hz", "pad_brightness", "noise_tone", "swell_db"):
            step = abs(getattr(now, field) - getattr(prev, field))
            worst[field] = max(worst.get(field, 0.0), step)
        for field in ("tones_db", "pad_db", "noise_db", "program_db"):
            step = abs(amp(getattr(now, field)) - amp(getattr(prev, field)))
            worst[field] = max(worst.get(field, 0.0), step)
        if now.pacer_bpm is not None and prev.pacer_bpm is not None:
            worst["pacer_bpm"] = max(
                worst.get("pacer_bpm", 0.0), abs(now.pacer_bpm - prev.pacer_bpm)
            )
        elif now.pacer_bpm != prev.pacer_bpm:
            # The pacer only switches on or off with the swell already at 0 dB depth.
            assert (
                now.swell_db == 0.0
                or prev.swell_db == 0.0
                or min(now.swell_db, prev.swell_db) < 0.1
            )
        prev = now
    assert worst["pacer_bpm"] < 0.1 if "pacer_bpm" in worst else True
    assert worst["entrain_hz"] < 0.15
    assert worst["carrier_hz"] < 1.0
    assert worst["pad_brightness"] < 0.02 and worst["noise_tone"] < 0.02
    assert worst["swell_db"] < 0.3
    for field in ("tones_db", "pad_db", "noise_db", "program_db"):
        assert worst[field] < 0.02, field  # at most 2 % of full scale per 0.25 s tick


def test_pacer_switching_off_fades_the_swell_first() -> None:
    timeline = Timeline(load_program("sleep"))
    start = 30 * 60.0
    depths = [timeline.at(start + s).targets for s in (0.0, 30.0, 45.0, 60.0, 89.9)]
    assert all(t.pacer_bpm is not None for t in depths)
    swell = [t.swell_db for t in depths]
    assert swell == sorted(swell, reverse=True) and swell[-1] < 0.01
    assert timeline.at(start + 90.0).targets.pacer_bpm is None


def test_overrides_replace_choices_everywhere_except_silent_tones() -> None:
    timeline = Timeline(
        load_program("wind-down"), {"pad_preset": "glass", "entrain_kind": "monaural"}
    )
    for t in (0.0, 300.0, 900.0, 1150.0):
        targets = timeline.at(t).targets
        assert targets.pad_preset == "glass" and targets.entrain_kind == "monaural"
    noise = Timeline(load_program("noise"), {"entrain_kind": "monaural", "noise_colour": "brown"})
    assert noise.at(10.0).targets.entrain_kind == "none"
    assert noise.at(10.0).targets.noise_colour == "brown"


def test_timeline_reports_section_and_remaining_time() -> None:
    timeline = Timeline(parse_program(GOOD))
    point = timeline.at(100.0)
    assert (point.section, point.section_index) == ("two", 1)
    assert point.section_remaining_s == pytest.approx(80.0)
    assert point.remaining_s == pytest.approx(110.0)
    assert timeline.at(190.0).section == "ending:fade"
    assert timeline.at(-5.0).section == "one"


def test_quiet_bed_ending_glides_to_pad_and_noise_then_fades() -> None:
    text = GOOD.replace(
        'kind = "fade"\nduration_s = 30',
        'kind = "quiet-bed"\nduration_min = 10\ntransition_s = 60\nfade_s = 120\n'
        'noise_db = -30\nnoise_colour = "brown"',
    )
    timeline = Timeline(parse_program(text))
    assert timeline.duration_s == 180 + 600
    bed = timeline.at(180.0 + 300.0).targets
    assert bed.tones_db == OFF_DB and bed.pacer_bpm is None and bed.swell_db == 0.0
    assert (bed.noise_db, bed.noise_colour, bed.pad_db) == (-30.0, "brown", -26.0)
    assert bed.program_db == 0.0
    assert -80.0 < timeline.at(180.0 + 540.0).targets.program_db < -3.0
    assert timeline.at(780.0).targets.program_db == OFF_DB


# --- property: any valid program plays continuously ------------------------------------------

_RANGES = {
    "pacer_bpm": (4.5, 12.0),
    "entrain_hz": (0.5, 40.0),
    "carrier_hz": (100.0, 1000.0),
    "pad_brightness": (0.0, 1.0),
    "tones_db": (-90.0, 0.0),
    "noise_db": (-90.0, 0.0),
    "swell_db": (0.0, 12.0),
}


@st.composite
def programs(draw: st.DrawFn) -> str:
    curves = st.sampled_from(["linear", "exponential", "S"])
    lines = ['name = "prop"']
    for i in range(draw(st.integers(1, 4))):
        duration = draw(st.integers(5, 600))
        lines += ["[[section]]", f'name = "s{i}"', f"duration_s = {duration}"]
        lines.append(f'curve = "{draw(curves)}"')
        if i:
            t_s = draw(st.integers(1, duration))
            lines.append(f'transition = {{ duration_s = {t_s}, curve = "{draw(curves)}" }}')
        for key, (low, high) in _RANGES.items():
            choice = draw(st.sampled_from(["skip", "hold", "slide", "off"]))
            values = st.floats(low, high, allow_nan=False).map(lambda x: round(x, 3))
            if choice == "hold":
                lines.append(f"{key} = {draw(values)}")
            elif choice == "slide":
                lines.append(f"{key} = [{draw(values)}, {draw(values)}]")
            elif choice == "off" and key in ("pacer_bpm", "tones_db", "noise_db"):
                lines.append(f'{key} = "off"')
        if draw(st.booleans()):
            lines.append(f'pad_preset = "{draw(st.sampled_from(["warm", "deep", "glass"]))}"')
    kind = draw(st.sampled_from(["fade", "quiet-bed", "wake"]))
    lines += ["[ending]", f'kind = "{kind}"', "duration_s = 200"]
    if kind == "quiet-bed":
        lines += ["transition_s = 20", "fade_s = 30"]
    return "\n".join(lines) + "\n"


@settings(max_examples=60, deadline=None)
@given(text=programs(), where=st.lists(st.floats(0.0, 1.0), min_size=20, max_size=20))
def test_any_valid_program_plays_continuously(text: str, where: list[float]) -> None:
    timeline = Timeline(parse_program(text, file="prop.toml"))
    program = timeline.program
    h = 1e-7
    # Random times, and just before every place where something starts or ends.
    edges, start = [program.body_s, timeline.duration_s - h], 0.0
    for section in program.sections:
        edges += [start, start + section.transition.duration_s]
        start += section.duration_s
    for t in [u * timeline.duration_s for u in where] + [max(0.0, e - h / 2) for e in edges]:
        a, b = timeline.at(t).targets, timeline.at(t + h).targets
        for field in ("entrain_hz", "carrier_hz", "pad_brightness", "swell_db"):
            assert abs(getattr(a, field) - getattr(b, field)) < 1e-3, (field, t)
        for field in ("tones_db", "noise_db", "program_db"):
            assert abs(amp(getattr(a, field)) - amp(getattr(b, field))) < 1e-3, (field, t)
        audible = max(a.swell_db, b.swell_db) >= 1e-3
        if a.pacer_bpm is not None and b.pacer_bpm is not None and audible:
            assert abs(a.pacer_bpm - b.pacer_bpm) < 1e-3, ("pacer_bpm", t)
        elif a.pacer_bpm is None or b.pacer_bpm is None:
            # The pacer goes off (or on) only where its swell is inaudible.
            assert a.pacer_bpm == b.pacer_bpm or max(a.swell_db, b.swell_db) < 1e-3


def test_program_file_over_64_kib_is_refused_without_reading_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    big = tmp_path / "big.toml"
    big.write_text(GOOD + "#" * (64 * 1024))
    reads: list[int] = []
    real_read = Path.read_text

    def no_read_text(self: Path, *args: object, **kwargs: object) -> str:
        reads.append(1)
        return real_read(self, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(Path, "read_text", no_read_text)
    with pytest.raises(ProgramError, match=r"big.toml: program file is larger than 64 KiB"):
        load_program(str(big))
    assert reads == []
    exact = tmp_path / "exact.toml"
    exact.write_text(GOOD + "#" * (64 * 1024 - len(GOOD.encode()) - 1) + "\n")
    assert exact.stat().st_size == 64 * 1024
    assert load_program(str(exact)).sections


def test_program_devices_pipes_and_long_names_are_errors(tmp_path: Path) -> None:
    with pytest.raises(ProgramError, match=r"not a regular file"):
        read_program("/dev/zero")
    fifo = tmp_path / "fifo.toml"
    os.mkfifo(fifo)
    with pytest.raises(ProgramError, match=r"no such program file|not a regular file"):
        load_program(str(fifo))  # never blocks waiting for a writer
    with pytest.raises(ProgramError, match=r"not a regular file"):
        read_program(fifo)
    with pytest.raises(ProgramError, match=r"1 to 64 characters"):
        load_program("x" * 300, [tmp_path])
    locked = tmp_path / "locked"
    locked.mkdir(mode=0o000)
    try:
        assert load_program("sleep", [locked]).name == "sleep"  # an unreadable dir is skipped
    finally:
        locked.chmod(0o755)
