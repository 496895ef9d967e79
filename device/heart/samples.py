"""The block of PPG samples a pulse sensor hands to the heart analysis."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import numpy as np


@dataclass(slots=True)
class SampleBlock:
    """Samples read from the pulse sensor in one poll.

    Sample ``i`` of the block was taken at ``(start_index + i) / rate_hz`` seconds after the
    sensor stream started: timestamps come from the sample index and the rate, never from the
    time of the read.
    """

    #: Index of ``ir[0]`` since the sensor stream started.
    start_index: int
    #: Output sample rate in Hz (after on-chip averaging).
    rate_hz: float
    #: Infrared channel, raw 18-bit ADC counts as float64.
    ir: np.ndarray
    #: Red channel, raw 18-bit ADC counts as float64.
    red: np.ndarray
    #: Samples were lost before this block (FIFO overflow, sensor replugged).
    gap_before: bool = False
    #: Samples disturbed by an LED current step (bool mask), or ``None`` when there was none.
    led_step: np.ndarray | None = None
    #: Finger contact (with hysteresis) at the end of the block.
    contact: bool = True

    @property
    def t0(self) -> float:
        """Time of the first sample in seconds since the stream started."""
        return self.start_index / self.rate_hz

    def __len__(self) -> int:
        return len(self.ir)
