"""Buttons, status LED and amplifier enable, driven through the fake GPIO with a fake clock."""

from __future__ import annotations

import itertools
import math

import pytest

from device.controls.panel import FAULT_CODES, Button, Controls, FaultCode, StatusLed
from device.drivers.fake_gpio import FakeGpio
from device.exc import GpioError

POLL = 0.01
PINS = {"start_stop": 17, "volume_up": 27, "volume_down": 22, "like": 23, "skip": 24}


class Clock:
    def __init__(self) -> None:
        self.t = 0.0

    def __call__(self) -> float:
        return self.t


class Level:
    """A stand-in for the engine's output level in dB."""

    def __init__(self) -> None:
        self.db = -math.inf

    def __call__(self) -> float:
        return self.db


@pytest.fixture
def rig():
    clock = Clock()
    gpio = FakeGpio(clock)
    level = Level()
    controls = Controls(
        gpio,
        pins=PINS,
        led_pin=13,
        amp_pin=26,
        poll_s=POLL,
        debounce_s=0.03,
        long_press_s=1.0,
        repeat_s=0.4,
    )

    def run(seconds: float) -> list[str]:
        actions = []
        for _ in range(round(seconds / POLL)):
            clock.t = round(clock.t + POLL, 9)
            actions += controls.poll(clock.t, audio_level_db=level.db)
        return actions

    return clock, gpio, level, controls, run


# --- Button debounce ---------------------------------------------------------------------


def test_button_needs_n_equal_reads():
    b = Button("like", 23, stable_reads=3)
    assert b.update(0, 0.00) == []
    assert b.update(0, 0.01) == []
    assert b.update(0, 0.02) == ["press"]
    assert b.pressed
    assert b.update(0, 0.03) == []


def test_button_bounce_resets_the_count():
    b = Button("like", 23, stable_reads=3)
    reads = [0, 1, 0, 0, 1, 0, 1, 1, 0]  # contact bounce: never 3 equal lows in a row
    assert [e for i, r in enumerate(reads) for e in b.update(r, i * 0.01)] == []
    assert not b.pressed


def test_button_active_high():
    b = Button("skip", 24, stable_reads=2, active_low=False)
    b.update(1, 0.0)
    assert b.update(1, 0.01) == ["press"]


def test_button_rejects_zero_reads():
    with pytest.raises(ValueError, match="stable_reads"):
        Button("x", 1, stable_reads=0)


def test_bouncy_press_gives_exactly_one_like(rig):
    _, gpio, _, _, run = rig
    for level in (0, 1, 0, 1, 0):  # 10 ms of bounce on each edge
        (gpio.press if level == 0 else gpio.release)(23)
        assert run(POLL) == []
    assert run(0.05) == ["like"]
    for level in (1, 0, 1, 0, 1):
        (gpio.press if level == 0 else gpio.release)(23)
        run(POLL)
    assert run(0.2) == []


def test_glitch_shorter_than_debounce_is_ignored(rig):
    _, gpio, _, _, run = rig
    gpio.press(24)
    run(0.02)  # 20 ms < 30 ms debounce
    gpio.release(24)
    assert run(0.2) == []


# --- long press, short press, repeat ---------------------------------------------------------


def test_short_press_of_start_stop_is_sent_on_release(rig):
    _, gpio, _, _, run = rig
    gpio.press(17)
    assert run(0.3) == []
    gpio.release(17)
    assert run(0.1) == ["start_stop"]


def test_long_press_of_start_stop_is_stop_fade_once(rig):
    _clock, gpio, _, _, run = rig
    gpio.press(17)
    actions = run(0.99)
    assert actions == []
    actions = run(0.1)
    assert actions == ["stop_fade"]
    assert run(3.0) == []  # still held: no repeat of the long press
    gpio.release(17)
    assert run(0.1) == []  # and no short press on release after a long one


def test_volume_repeats_while_held(rig):
    _, gpio, _, _, run = rig
    gpio.press(27)
    actions = run(1.0)
    # pressed at ~30 ms, repeats every 0.4 s after that: at ~0.43 and ~0.83
    assert actions == ["volume_up", "volume_up", "volume_up"]
    gpio.release(27)
    assert run(0.5) == []


def test_two_buttons_at_once(rig):
    _, gpio, _, _, run = rig
    gpio.press(22)
    gpio.press(24)
    assert sorted(run(0.1)) == ["skip", "volume_down"]


def test_task_returns_next_deadline_and_dispatches(rig):
    _clock, gpio, _, controls, _ = rig
    seen: list[str] = []
    task = controls.task(seen.append, lambda: -math.inf)
    gpio.press(23)
    deadline = 1.0
    for _ in range(5):
        deadline = task(deadline)
    assert deadline == pytest.approx(1.05)
    assert seen == ["like"]


# --- status LED --------------------------------------------------------------------------------


def duty_over(gpio: FakeGpio, pin: int, t0: float, t1: float) -> float:
    """Fraction of [t0, t1) the pin was high, from the timestamped log."""
    changes = [(t, lv) for t, lv in gpio.history(pin)]
    on = 0.0
    level = gpio.level_at(pin, t0) or 0
    last = t0
    for t, lv in changes:
        if t0 < t < t1:
            on += (t - last) * level
            last, level = t, lv
    on += (t1 - last) * level
    return on / (t1 - t0)


def test_led_breathes_at_the_pacer_rate(rig):
    clock, gpio, _, controls, run = rig
    controls.breathe(6.0, clock.t)  # one breath every 10 s
    run(20.0)
    t0 = 0.0
    # Dark at the start of each breath, brightest halfway, dark again at the end.
    assert duty_over(gpio, 13, t0 + 0.2, t0 + 0.6) < 0.05
    assert duty_over(gpio, 13, t0 + 4.8, t0 + 5.2) == pytest.approx(0.6, abs=0.1)
    assert duty_over(gpio, 13, t0 + 9.5, t0 + 9.9) < 0.05
    assert duty_over(gpio, 13, t0 + 14.8, t0 + 15.2) == pytest.approx(0.6, abs=0.1)


def test_led_follows_a_change_of_pacer(rig):
    clock, gpio, _, controls, run = rig
    controls.breathe(6.0, clock.t)
    run(10.0)
    controls.breathe(4.5, clock.t)  # 13.33 s per breath from here, phase carried on
    assert controls.led.pacer_bpm == 4.5
    run(14.0)
    top = 10.0 + 60.0 / 4.5 / 2
    assert duty_over(gpio, 13, top - 0.2, top + 0.2) == pytest.approx(0.6, abs=0.1)
    assert duty_over(gpio, 13, 10.0 + 60.0 / 4.5 - 0.3, 10.0 + 60.0 / 4.5) < 0.05
    assert duty_over(gpio, 13, 9.8, 10.2) < 0.05  # no jump at the change


def test_led_off_when_no_pacer(rig):
    clock, gpio, _, controls, run = rig
    controls.breathe(None, clock.t)
    run(2.0)
    assert duty_over(gpio, 13, 0.0, 2.0) == 0.0


def test_led_uses_library_pwm_when_the_backend_has_it():
    """With RPi.GPIO-style PWM the carrier runs by itself; the loop only moves the duty."""
    clock = Clock()
    gpio = FakeGpio(clock, pwm=True)
    c = Controls(gpio, pins={}, led_pin=13, poll_s=POLL)
    for i in range(1, 2001):  # 20 s at 6 breaths/min: two breaths
        clock.t = i * POLL
        c.poll(clock.t, pacer_bpm=6.0)

    def duty_at(t: float) -> float:
        return next((d for tt, _, d in reversed(gpio.pwm_log) if tt <= t + 1e-9), 0.0)

    assert duty_at(0.3) < 0.01
    assert duty_at(5.0) == pytest.approx(0.6, abs=0.01)
    assert duty_at(10.0) < 0.01
    assert duty_at(15.0) == pytest.approx(0.6, abs=0.01)
    # Only real changes reach the library (not one call per poll), and no on/off toggling.
    assert 100 < len(gpio.pwm_log) < 1000
    assert [lv for _, lv in gpio.history(13)].count(1) <= 2
    c.close()
    assert gpio.duty(13) == 0.0 and gpio.level(13) == 0


def test_fault_code_blinks_count_then_pause(rig):
    clock, gpio, _, controls, run = rig
    controls.breathe(6.0, clock.t)
    controls.show_fault("storage", clock.t)
    assert controls.led.fault_code == FAULT_CODES["storage"] == 3
    n = len(gpio.history(13))
    run(FaultCode(3).period_s * 2 - 0.05)
    rises = [t for t, lv in gpio.history(13)[n:] if lv == 1]
    assert len(rises) == 6  # 3 blinks per pattern, 2 patterns
    gaps = [b - a for a, b in itertools.pairwise(rises)]
    assert gaps[0] == pytest.approx(0.5, abs=0.02)
    assert gaps[2] == pytest.approx(0.5 + 1.5, abs=0.02)  # the pause between patterns
    controls.show_fault(None, clock.t)
    assert controls.led.fault_code is None


def test_fault_names_are_checked(rig):
    _, _, _, controls, _ = rig
    with pytest.raises(ValueError, match="unknown fault 'smoke'"):
        controls.show_fault("smoke", 0.0)


def test_led_rejects_bad_values():
    g = FakeGpio()
    with pytest.raises(ValueError, match="max_duty"):
        StatusLed(g, 13, max_duty=1.5)
    led = StatusLed(g, 12)
    with pytest.raises(ValueError, match="pacer rate"):
        led.breathe(0.0, 0.0)
    with pytest.raises(ValueError, match="fault code 12"):
        led.fault(12, 0.0)


# --- amplifier enable: no pop ----------------------------------------------------------------


def test_amp_starts_low_and_goes_on_at_the_first_quiet_poll(rig):
    _clock, gpio, _level, controls, run = rig
    assert gpio.history(26) == [(0.0, 0)]  # claimed low: no glitch high
    controls.amp(True)  # before any poll: nothing known about the output yet
    assert not controls.ready_for_fade_in
    run(POLL)
    assert controls.ready_for_fade_in
    assert gpio.history(26) == [(0.0, 0), (POLL, 1)]


def test_amp_sequence_around_a_session(rig):
    """amp on only while the signal is silent: before fade-in, after fade-out + settle."""
    clock, gpio, level, controls, _run = rig
    levels: list[tuple[float, float]] = []

    def step(seconds: float) -> None:
        for _ in range(round(seconds / POLL)):
            clock.t = round(clock.t + POLL, 9)
            controls.poll(clock.t, audio_level_db=level.db)
            levels.append((clock.t, level.db))

    controls.amp(True)
    while not controls.ready_for_fade_in:
        step(POLL)
    level.db = -40.0  # fade-in starts only now
    step(2.0)
    controls.amp(False)  # stop pressed: the fade-out is running, the amp must wait
    step(1.0)
    assert controls.amp_enable.enabled
    level.db = -math.inf  # faded out
    step(0.1)
    assert controls.amp_enable.enabled  # the buffered blocks are not all zeros yet
    step(0.2)
    assert not controls.amp_enable.enabled
    # Every switch of the amp pin happened while the signal had been silent for 0.2 s.
    for t, _lv in gpio.history(26)[1:]:
        quiet = [db for tt, db in levels if t - 0.2 <= tt <= t]
        assert quiet and all(db == -math.inf for db in quiet), t
    gpio.assert_history(26, [0, 1, 0])


def test_amp_switches_at_once_when_asked_after_primed_silence(rig):
    """The Box asks for the amp right before its fade-in: the pin must be up before sound."""
    clock, gpio, level, controls, run = rig
    run(0.5)  # stream running with zeros
    controls.amp(True)
    assert controls.amp_enable.enabled and gpio.level(26) == 1
    assert gpio.history(26)[-1] == (clock.t, 1)
    level.db = -50.0
    run(1.0)
    gpio.assert_history(26, [0, 1])


def test_amp_quiet_threshold(rig):
    """A fade-in that began a moment early is still far below the quiet level."""
    _, gpio, level, controls, run = rig
    controls.amp(True)
    level.db = -80.0
    run(0.3)
    gpio.assert_history(26, [0, 1])


def test_led_follows_pacer_given_to_poll(rig):
    clock, gpio, _, controls, _ = rig
    for i in range(1, 1001):
        clock.t = i * POLL
        controls.poll(clock.t, pacer_bpm=6.0, audio_level_db=-math.inf)
    assert duty_over(gpio, 13, 4.8, 5.2) == pytest.approx(0.6, abs=0.1)
    controls.poll(clock.t + POLL, pacer_bpm=None)
    assert controls.led.pacer_bpm is None


def test_nonsense_pacer_darkens_the_led_instead_of_raising(rig):
    _clock, _gpio, _, controls, _run = rig
    controls.poll(0.01, pacer_bpm=6.0)
    controls.poll(0.02, pacer_bpm=-3.0)
    assert controls.led.pacer_bpm is None
    assert "pacer rate -3.0" in controls.last_error


def test_amp_asked_while_sound_plays_waits_for_quiet(rig):
    _, gpio, level, controls, run = rig
    level.db = -20.0
    controls.amp(True)
    run(0.5)
    gpio.assert_history(26, [0])  # never switched under sound
    level.db = -math.inf
    run(POLL)
    gpio.assert_history(26, [0, 1])
    assert controls.amp_enable.forced == 0


def test_amp_forced_on_rather_than_a_silent_box(rig):
    """Misuse (sound already up, no quiet in sight): after 1 s the amp goes on anyway."""
    _, gpio, level, controls, run = rig
    level.db = -20.0
    run(0.1)
    controls.amp(True)
    run(0.9)
    gpio.assert_history(26, [0])
    run(0.1)
    gpio.assert_history(26, [0, 1])
    assert controls.status()["amp_forced_on"] == 1


# --- configuration and failures ----------------------------------------------------------------


def test_pins_set_up_as_inputs_with_pull_up_and_outputs_low(rig):
    _, gpio, _, _, _ = rig
    for pin in PINS.values():
        assert gpio.mode(pin) == "in" and gpio.level(pin) == 1
    assert gpio.mode(13) == "out" and gpio.level(13) == 0
    assert gpio.mode(26) == "out" and gpio.level(26) == 0


def test_missing_pins_are_skipped():
    g = FakeGpio()
    c = Controls(g, pins={"start_stop": 17, "like": -1})
    assert [b.name for b in c.buttons] == ["start_stop"]
    assert c.led is None and c.amp_enable is None
    assert c.ready_for_fade_in
    c.breathe(6.0, 0.0)
    c.show_fault("sensor", 0.0)
    c.amp(True)


def test_pin_used_twice_is_an_error():
    with pytest.raises(GpioError, match="used twice"):
        Controls(FakeGpio(), pins={"like": 5, "skip": 5})


def test_unknown_role_is_an_error():
    with pytest.raises(ValueError, match=r"unknown button role.*snooze"):
        Controls(FakeGpio(), pins={"snooze": 5})


def test_failing_pin_is_counted_and_others_keep_working(rig):
    _clock, gpio, _, controls, run = rig
    gpio.fail(23)
    gpio.press(24)
    assert run(0.1) == ["skip"]
    assert controls.errors == 10
    assert "pin 23" in controls.last_error


def test_close_switches_outputs_off_and_releases_pins(rig):
    clock, gpio, _level, controls, run = rig
    controls.amp(True)
    controls.breathe(6.0, clock.t)
    run(5.0)
    controls.close()
    controls.close()
    assert gpio.level(26) == 0 and gpio.level(13) == 0
    assert gpio.released == {13, 26, *PINS.values()}
    assert controls.status()["amp"] is False
    assert controls.poll(99.0) == []
    assert "start_stop" in repr(controls)
