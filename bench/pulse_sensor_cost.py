"""CPU cost of the pulse sensor path: the simulated chip, the driver, and PulseSensor.poll.

Runs the box's sensor task (a poll every 0.1 s) over simulated time as fast as it can and
prints CPU seconds per hour of signal and the share of one core, for:

* ``chip+driver``: the simulated MAX30102 and ``MAX30102.read_fifo`` alone;
* ``sensor``: ``PulseSensor.poll`` on top (LED control, contact, recovery bookkeeping);
* ``sensor, LED out of window``: a finger whose DC the control keeps chasing (the beat-phase
  search runs on every poll), the worst case for the control.

Usage: ``python bench/pulse_sensor_cost.py [--minutes M] [--rate-hz R]``
"""

from __future__ import annotations

import argparse
import time

from device.drivers.max30102 import MAX30102
from device.drivers.pulse_sensor import PulseSensor
from device.sim.max30102 import SimulatedMAX30102
from device.sim.pulse import PulseModel

POLL_S = 0.1


class Clock:
    def __init__(self) -> None:
        self.t = 0.0

    def __call__(self) -> float:
        return self.t


def chip(clock: Clock, ir_gain: float) -> SimulatedMAX30102:
    model = PulseModel(seed=1)
    model.set_heart(65.0, 6.0)
    model.set_breathing(6.0)
    model.ir_gain, model.red_gain = ir_gain, 0.7 * ir_gain
    return SimulatedMAX30102(clock, model)


def run_driver(minutes: float, sps: int) -> float:
    clock = Clock()
    drv = MAX30102(chip(clock, 300.0), sample_rate_sps=sps)
    start = time.process_time()
    for k in range(1, round(minutes * 60 / POLL_S) + 1):
        clock.t = k * POLL_S
        drv.read_fifo()
    return time.process_time() - start


def run_sensor(minutes: float, sps: int, ir_gain: float, control: bool = True) -> float:
    clock = Clock()
    sim = chip(clock, ir_gain)
    sensor = PulseSensor(lambda: sim, clock=clock, sample_rate_sps=sps, led_control=control)
    start = time.process_time()
    for k in range(1, round(minutes * 60 / POLL_S) + 1):
        clock.t = k * POLL_S
        sensor.poll()
    return time.process_time() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=10.0, help="simulated minutes per case")
    parser.add_argument("--rate-hz", type=int, default=100, choices=(50, 100, 200, 400))
    args = parser.parse_args()
    cases = [
        ("chip+driver", lambda: run_driver(args.minutes, args.rate_hz)),
        ("sensor", lambda: run_sensor(args.minutes, args.rate_hz, 300.0)),
        # 25 mA cannot lift this finger into the window: the control looks for diastole
        # on every poll (and steps every 2 s until it reaches its current limit).
        ("sensor, LED out of window", lambda: run_sensor(args.minutes, args.rate_hz, 25.0)),
    ]
    print(f"{args.rate_hz} Hz, poll every {POLL_S} s, {args.minutes:g} simulated minutes per case")
    print(f"{'case':<28}{'CPU s/h':>10}{'% core':>9}")
    for name, fn in cases:
        per_hour = fn() * 60.0 / args.minutes
        print(f"{name:<28}{per_hour:>10.2f}{per_hour / 36.0:>9.3f}")


if __name__ == "__main__":
    main()
