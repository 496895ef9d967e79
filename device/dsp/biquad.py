"""Stateful IIR filters in pure numpy: Butterworth biquad sections run block by block.

Sections are designed at construction with the bilinear transform (RBJ cookbook form,
pre-warped at the cut-off, so the cut-off is exact). A :class:`SosFilter` cascades them and
runs the cascade as one state-space system. A block of ``m`` samples is filtered exactly by
matrix products with tables computed once (the first ``m`` samples of the impulse response,
the powers of the state matrix), so there is no per-sample Python loop and the state carries
from block to block: the output does not depend on how the stream is cut into blocks (up to
float rounding).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

__all__ = ["Biquad", "SosFilter", "butterworth_highpass", "butterworth_lowpass"]


@dataclass(frozen=True, slots=True)
class Biquad:
    """One second-order section ``(b0 + b1 z^-1 + b2 z^-2) / (1 + a1 z^-1 + a2 z^-2)``."""

    b0: float
    b1: float
    b2: float
    a1: float
    a2: float

    @classmethod
    def lowpass(cls, cutoff_hz: float, rate_hz: float, q: float = math.sqrt(0.5)) -> Biquad:
        """Second-order low-pass with cut-off ``cutoff_hz`` (Hz) and quality factor ``q``."""
        cw, alpha = _prewarp(cutoff_hz, rate_hz, q)
        a0 = 1.0 + alpha
        return cls(
            (1.0 - cw) / 2.0 / a0, (1.0 - cw) / a0, (1.0 - cw) / 2.0 / a0, -2.0 * cw / a0,
            (1.0 - alpha) / a0,
        )  # fmt: skip

    @classmethod
    def highpass(cls, cutoff_hz: float, rate_hz: float, q: float = math.sqrt(0.5)) -> Biquad:
        """Second-order high-pass with cut-off ``cutoff_hz`` (Hz) and quality factor ``q``."""
        cw, alpha = _prewarp(cutoff_hz, rate_hz, q)
        a0 = 1.0 + alpha
        return cls(
            (1.0 + cw) / 2.0 / a0, -(1.0 + cw) / a0, (1.0 + cw) / 2.0 / a0, -2.0 * cw / a0,
            (1.0 - alpha) / a0,
        )  # fmt: skip

    def response(self, freq_hz: float | np.ndarray, rate_hz: float) -> complex | np.ndarray:
        """Complex frequency response at ``freq_hz`` (Hz) for sample rate ``rate_hz``."""
        z1 = np.exp(-2j * np.pi * np.asarray(freq_hz, dtype=float) / rate_hz)
        z2 = z1 * z1
        return (self.b0 + self.b1 * z1 + self.b2 * z2) / (1.0 + self.a1 * z1 + self.a2 * z2)


def _prewarp(cutoff_hz: float, rate_hz: float, q: float) -> tuple[float, float]:
    if not rate_hz > 0:
        raise ValueError(f"sample rate must be > 0 Hz, got {rate_hz!r}")
    if not 0.0 < cutoff_hz < rate_hz / 2.0:
        raise ValueError(
            f"cut-off {cutoff_hz!r} Hz must lie between 0 and half the sample rate "
            f"({rate_hz / 2.0:g} Hz)"
        )
    if not q > 0:
        raise ValueError(f"quality factor must be > 0, got {q!r}")
    w0 = 2.0 * math.pi * cutoff_hz / rate_hz
    return math.cos(w0), math.sin(w0) / (2.0 * q)


def _butterworth_qs(order: int) -> list[float]:
    if order < 2 or order % 2:
        raise ValueError(f"Butterworth order must be an even number >= 2, got {order!r}")
    return [1.0 / (2.0 * math.cos(math.pi * (2 * k + 1) / (2 * order))) for k in range(order // 2)]


def butterworth_lowpass(order: int, cutoff_hz: float, rate_hz: float) -> list[Biquad]:
    """Sections of an even-order digital Butterworth low-pass (cut-off in Hz, -3 dB)."""
    return [Biquad.lowpass(cutoff_hz, rate_hz, q) for q in _butterworth_qs(order)]


def butterworth_highpass(order: int, cutoff_hz: float, rate_hz: float) -> list[Biquad]:
    """Sections of an even-order digital Butterworth high-pass (cut-off in Hz, -3 dB)."""
    return [Biquad.highpass(cutoff_hz, rate_hz, q) for q in _butterworth_qs(order)]


class SosFilter:
    """A cascade of biquads filtering a stream block by block, state kept between blocks.

    ``block`` is the longest run filtered by one set of matrix products; longer inputs are
    cut into runs of that length (a Python loop over runs, not samples).
    """

    def __init__(self, sections: Sequence[Biquad], *, block: int = 64) -> None:
        if not sections:
            raise ValueError("a filter needs at least one biquad section")
        if block < 1:
            raise ValueError(f"block must be >= 1 sample, got {block!r}")
        self.sections = tuple(sections)
        self.block = int(block)
        a, b, c, d = _state_space(self.sections)
        n = a.shape[0]
        m = self.block
        powers = np.empty((m + 1, n, n))
        powers[0] = np.eye(n)
        for k in range(1, m + 1):
            powers[k] = powers[k - 1] @ a
        #: A^k B for k = 0..m-1 (columns), used to push a run of input into the state.
        self._gain = np.stack([powers[k] @ b for k in range(m)], axis=1)
        #: C A^k for k = 0..m-1 (rows): what the state contributes to output k of a run.
        self._obs = np.stack([c @ powers[k] for k in range(m)], axis=0)
        impulse = np.empty(m)
        impulse[0] = d
        impulse[1:] = self._obs[:-1] @ b
        idx = np.arange(m)
        lag = idx[:, None] - idx[None, :]
        self._toeplitz = np.where(lag >= 0, impulse[np.clip(lag, 0, None)], 0.0)
        self._powers = powers
        self._a, self._b = a, b
        self._state = np.zeros(n)

    @property
    def order(self) -> int:
        """Filter order (twice the number of sections)."""
        return self._state.shape[0]

    def reset(self, value: float = 0.0) -> None:
        """Set the state to the steady state of a constant input ``value`` (no start-up step)."""
        n = self._state.shape[0]
        self._state = np.linalg.solve(np.eye(n) - self._a, self._b * float(value))

    def process(self, x: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
        """Filter ``x`` (1-D), continuing from the previous call; return the output.

        ``out`` (same length, float64) receives the result when given.
        """
        x = np.asarray(x, dtype=float)
        if x.ndim != 1:
            raise ValueError(f"input must be one-dimensional, got shape {x.shape}")
        if out is None:
            out = np.empty_like(x)
        m = self.block
        state = self._state
        for start in range(0, len(x), m):
            seg = x[start : start + m]
            k = len(seg)
            np.matmul(self._toeplitz[:k, :k], seg, out=out[start : start + k])
            out[start : start + k] += self._obs[:k] @ state
            state = self._powers[k] @ state + self._gain[:, k - 1 :: -1] @ seg
        self._state = state
        return out

    def response(self, freq_hz: float | np.ndarray, rate_hz: float) -> complex | np.ndarray:
        """Complex frequency response of the whole cascade."""
        h: complex | np.ndarray = 1.0
        for s in self.sections:
            h = h * s.response(freq_hz, rate_hz)
        return h

    def group_delay(self, freq_hz: float, rate_hz: float) -> float:
        """Group delay in seconds at ``freq_hz`` (numerical derivative of the phase)."""
        df = 1e-4 * rate_hz
        ph = np.unwrap(np.angle(self.response(np.array([freq_hz - df, freq_hz + df]), rate_hz)))
        return float(-(ph[1] - ph[0]) / (2.0 * np.pi * 2.0 * df))

    def __repr__(self) -> str:
        return f"<SosFilter order={self.order} sections={len(self.sections)} block={self.block}>"


def _state_space(
    sections: Sequence[Biquad],
) -> tuple[np.ndarray, np.ndarray, np.ndarray, float]:
    """State-space (A, B, C, D) of the cascade, built section by section (well conditioned)."""
    a = np.zeros((0, 0))
    b = np.zeros(0)
    c = np.zeros(0)
    d = 1.0
    for s in sections:
        # Transposed direct form II of one section.
        a2 = np.array([[-s.a1, 1.0], [-s.a2, 0.0]])
        b2 = np.array([s.b1 - s.a1 * s.b0, s.b2 - s.a2 * s.b0])
        c2 = np.array([1.0, 0.0])
        d2 = s.b0
        n = a.shape[0]
        na = np.zeros((n + 2, n + 2))
        na[:n, :n] = a
        na[n:, :n] = np.outer(b2, c)
        na[n:, n:] = a2
        a = na
        b = np.concatenate([b, b2 * d])
        c = np.concatenate([d2 * c, c2])
        d = d2 * d
    return a, b, c, d
