"""GPIO backends: the fake chip's behaviour and log, and RPiGpio's use of the RPi.GPIO API."""

from __future__ import annotations

import sys
import types

import pytest

from device.drivers import fake_gpio
from device.drivers.fake_gpio import FakeGpio, PinChange
from device.drivers.gpio import (
    PULL_DOWN,
    PULL_UP,
    GpioBackend,
    RPiGpio,
    check_pin,
    has_pwm,
    open_gpio,
)
from device.exc import GpioError, HardwareError


class Clock:
    def __init__(self) -> None:
        self.t = 0.0

    def __call__(self) -> float:
        return self.t


def test_fake_is_a_backend():
    assert isinstance(FakeGpio(), GpioBackend)


def test_output_initial_level_and_log():
    clock = Clock()
    g = FakeGpio(clock)
    clock.t = 1.0
    g.setup_output(26, initial=0)
    clock.t = 2.5
    g.output(26, 1)
    g.output(26, 1)  # no change, no log entry
    clock.t = 3.0
    g.output(26, 0)
    assert list(g.log) == [
        PinChange(1.0, 26, 0, "setup"),
        PinChange(2.5, 26, 1, "output"),
        PinChange(3.0, 26, 0, "output"),
    ]
    assert g.history(26) == [(1.0, 0), (2.5, 1), (3.0, 0)]
    assert g.level_at(26, 2.9) == 1
    assert g.level_at(26, 0.5) is None
    g.assert_history(26, [0, 1, 0])
    with pytest.raises(AssertionError, match="went through"):
        g.assert_history(26, [0, 1])


def test_input_pulls_and_press_release():
    g = FakeGpio(active_low=True)
    g.setup_input(17, PULL_UP)
    g.setup_input(22, PULL_DOWN)
    assert g.input(17) == 1
    assert g.input(22) == 0
    g.press(17)
    assert g.input(17) == 0
    g.assert_level(17, 0)
    g.release(17)
    assert g.input(17) == 1
    with pytest.raises(AssertionError, match="pin 17 is 1, expected 0"):
        g.assert_level(17, 0)


def test_active_high_press():
    g = FakeGpio(active_low=False)
    g.setup_input(5, PULL_DOWN)
    g.press(5)
    assert g.input(5) == 1


def test_errors_name_the_pin():
    g = FakeGpio()
    with pytest.raises(GpioError, match="pin 4 is not set up"):
        g.input(4)
    g.setup_input(4)
    with pytest.raises(GpioError, match="pin 4 is an input"):
        g.output(4, 1)
    g.setup_output(5, initial=0)
    with pytest.raises(GpioError, match="pin 5 is an output"):
        g.press(5)
    with pytest.raises(GpioError, match="level 2 is not 0 or 1"):
        g.output(5, 2)
    with pytest.raises(GpioError, match="pull 'sideways'"):
        g.setup_input(6, "sideways")
    assert issubclass(GpioError, HardwareError)


@pytest.mark.parametrize("pin", [-1, 28, 40, True, "17", 3.0])
def test_check_pin_rejects_non_header_pins(pin):
    with pytest.raises(GpioError, match="not a BCM header pin"):
        check_pin(pin)


def test_check_pin_accepts_header_range():
    assert check_pin(0) == 0 and check_pin(27) == 27


def test_cleanup_releases_only_named_pins_and_is_idempotent():
    g = FakeGpio()
    g.setup_input(17)
    g.setup_output(26, initial=0)
    g.cleanup([17, 3])
    assert g.mode(17) is None and g.mode(26) == "out"
    assert g.released == {17}
    g.cleanup()
    g.cleanup()
    assert g.mode(26) is None and g.released == {17, 26}


def test_failing_pin():
    g = FakeGpio()
    g.fail(13)
    with pytest.raises(GpioError, match="busy"):
        g.setup_output(13, initial=0)
    g.fail(13, False)
    g.setup_output(13, initial=0)
    g.fail(13)
    with pytest.raises(GpioError, match="pin 13"):
        g.output(13, 1)


def test_repr_lists_pins():
    g = FakeGpio()
    assert repr(g) == "<FakeGpio no pins>"
    g.setup_output(26, initial=1)
    assert repr(g) == "<FakeGpio 26:out=1>"


# --- RPiGpio against a module with the RPi.GPIO API -----------------------------------------


class FakeRPiModule(types.SimpleNamespace):
    """Records calls the way RPi.GPIO / rpi-lgpio would receive them."""

    BCM, BOARD = 11, 10
    IN, OUT = 1, 0
    HIGH, LOW = 1, 0
    PUD_OFF, PUD_DOWN, PUD_UP = 20, 21, 22

    def __init__(self) -> None:
        super().__init__(calls=[], levels={})

    def setwarnings(self, flag):
        self.calls.append(("setwarnings", flag))

    def setmode(self, mode):
        self.calls.append(("setmode", mode))

    def setup(self, pin, direction, pull_up_down=None, initial=None):
        if pin == 13:
            raise RuntimeError("GPIO busy")
        self.calls.append(("setup", pin, direction, pull_up_down, initial))

    def input(self, pin):
        return self.levels.get(pin, 1)

    def output(self, pin, level):
        self.calls.append(("output", pin, level))

    def cleanup(self, pins=None):
        self.calls.append(("cleanup", pins))

    def PWM(self, pin, frequency):
        calls = self.calls
        calls.append(("PWM", pin, frequency))

        class Pwm:
            def start(self, dc):
                calls.append(("start", pin, dc))

            def ChangeDutyCycle(self, dc):
                calls.append(("duty", pin, dc))

            def stop(self):
                calls.append(("stop", pin))

        return Pwm()


def test_rpigpio_uses_bcm_initial_and_cleans_only_its_pins():
    m = FakeRPiModule()
    g = RPiGpio(m)
    g.setup_output(26, initial=0)
    g.setup_input(17, PULL_UP)
    g.output(26, 1)
    m.levels[17] = 0
    assert g.input(17) == 0
    g.cleanup()
    g.cleanup()
    assert m.calls == [
        ("setwarnings", False),
        ("setmode", m.BCM),
        ("setup", 26, m.OUT, None, m.LOW),
        ("setup", 17, m.IN, m.PUD_UP, None),
        ("output", 26, m.HIGH),
        ("cleanup", [17, 26]),
    ]
    with pytest.raises(GpioError, match="closed"):
        g.input(17)
    assert repr(g) == "<RPiGpio closed>"


def test_rpigpio_pwm_start_change_stop():
    m = FakeRPiModule()
    g = RPiGpio(m)
    g.setup_output(12, initial=0)
    m.calls.clear()
    g.set_pwm(12, 0.25, 400.0)
    g.set_pwm(12, 0.5)
    g.set_pwm(12, 0.0)
    g.set_pwm(12, 0.0)
    assert m.calls == [
        ("PWM", 12, 400.0),
        ("start", 12, 25.0),
        ("duty", 12, 50.0),
        ("stop", 12),
        ("output", 12, m.LOW),
    ]
    with pytest.raises(GpioError, match=r"duty 1\.5 is outside"):
        g.set_pwm(12, 1.5)
    g.set_pwm(12, 0.1)
    g.cleanup()
    assert m.calls[-2] == ("stop", 12)  # a running PWM is stopped before release


def test_fake_pwm_logs_duty_and_refuses_without_pwm():
    clock = Clock()
    g = FakeGpio(clock, pwm=True)
    g.setup_output(13, initial=0)
    clock.t = 1.0
    g.set_pwm(13, 0.3)
    g.set_pwm(13, 0.3)
    assert list(g.pwm_log) == [(1.0, 13, 0.3)] and g.duty(13) == 0.3
    assert has_pwm(g) and not has_pwm(FakeGpio()) and has_pwm(RPiGpio(FakeRPiModule()))
    with pytest.raises(GpioError, match="no PWM"):
        FakeGpio().set_pwm(13, 0.5)


def test_rpigpio_wraps_library_errors():
    g = RPiGpio(FakeRPiModule())
    with pytest.raises(GpioError, match="setup of output pin 13 failed: GPIO busy"):
        g.setup_output(13, initial=0)


def test_rpigpio_missing_module_is_a_clear_error(monkeypatch):
    monkeypatch.setitem(sys.modules, "RPi", None)
    monkeypatch.setitem(sys.modules, "RPi.GPIO", None)
    with pytest.raises(GpioError, match="rpi-lgpio"):
        RPiGpio()


def test_rpigpio_off_pi_runtime_error_is_a_clear_error(monkeypatch):
    pkg = types.ModuleType("RPi")
    pkg.__path__ = []  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "RPi", pkg)
    monkeypatch.delitem(sys.modules, "RPi.GPIO", raising=False)

    class Finder:
        def find_spec(self, name, path=None, target=None):
            if name == "RPi.GPIO":
                raise RuntimeError("This module can only be run on a Raspberry Pi!")
            return None

    monkeypatch.setattr(sys, "meta_path", [Finder(), *sys.meta_path])
    with pytest.raises(GpioError, match="cannot run here: This module can only be run"):
        RPiGpio()


def test_open_gpio_names():
    assert isinstance(open_gpio("fake"), FakeGpio)
    assert open_gpio("none") is None
    with pytest.raises(GpioError, match="'pigpio' is not one of rpi, fake, none"):
        open_gpio("pigpio")


def test_the_fake_chips_logs_are_bounded():
    """A night of the simulated LED's toggling keeps the last LOG_ENTRIES changes only."""
    g = FakeGpio(pwm=True)
    g.setup_output(26, 0)
    for i in range(fake_gpio.LOG_ENTRIES + 500):
        g.output(26, i % 2)
        g.set_pwm(26, (i % 10) / 10)
    assert len(g.log) == fake_gpio.LOG_ENTRIES
    assert len(g.pwm_log) <= fake_gpio.LOG_ENTRIES
    assert g.log[-1].level == (fake_gpio.LOG_ENTRIES + 499) % 2
