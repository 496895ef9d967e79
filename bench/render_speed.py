"""Benchmark of ``bedside render`` against a straightforward numpy renderer of the same mix.

Both render the full product mix of the ``sleep`` program's first section into a WAV file
(48 kHz stereo int16): isochronic tones (4 harmonics of the carrier, raised-cosine pulses),
the ambient pad (3 chord notes, each with an upper partial and a chorus twin: 9 sines),
pink noise, the breath swell, per-block control changes, a fade-in, a peak limiter.

* **ours**: ``device.cli.render.render_to`` - the program's timeline through the engine,
  as ``bedside render`` runs it (the engine's segments, tables and closed-form glides).
* **reference**: written here for the comparison, the way one would write it first: per
  block of 1024 frames, ``np.sin`` of phase arrays for every sine, the pulse envelope from
  ``np.cos`` of its phase, pink noise from white noise through an IIR filter
  (``scipy.signal.lfilter``), gains as per-block ``np.linspace`` ramps, the limiter as a
  per-block peak gain, int16 conversion and the standard library's ``wave`` writer. No
  tables, no segments.

Prints CPU s per second of audio for both (after one short warm-up render that builds the
process's noise loops), their ratio, the wall time of ours, and the wall time and CPU of
rendering a whole 45-minute program including that set-up (``--full``). Targets (issue 13.4): ours
<= 0.004 CPU s/s, at least 4x cheaper than the reference, a 45-minute program in < 15 s.

Run: ``.venv/bin/python bench/render_speed.py`` (``--seconds 600``, ``--full``).
"""

from __future__ import annotations

import os

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import argparse
import json
import math
import tempfile
import time
import wave
from pathlib import Path

import numpy as np
from scipy import signal

from device.cli.render import render_to
from device.config import load_config

RATE = 48000
#: Pink noise filter (Paul Kellet's "economy" pink: -3 dB/octave within 0.5 dB, 10 Hz-20 kHz)
PINK_B = np.array([0.049922035, -0.095993537, 0.050612699, -0.004408786])
PINK_A = np.array([1.0, -2.494956002, 2.017265875, -0.522189400])
TARGET_CPU = 0.004
TARGET_RATIO = 4.0
TARGET_45_MIN_WALL_S = 15.0


class Reference:
    """The straightforward renderer: per block np.sin of phase arrays, no tables."""

    def __init__(self, block: int, seed: int = 0) -> None:
        self.block = block
        self.rng = np.random.default_rng(seed)
        self.n = np.arange(block)
        # tones: 4 harmonics of the carrier
        self.tone_ratio = np.array([1.0, 1.5, 2.0, 3.0])
        self.tone_amp = np.array([1.0, 0.45, 0.3, 0.18])
        self.tone_phase = np.zeros(4)
        # pad: 3 notes x (main, upper partial, chorus twin)
        notes = 73.42 * np.array([1.0, 1.5, 2.4])
        self.pad_freq = np.concatenate([notes, 2.0 * notes, notes + 0.3])
        self.pad_amp = np.concatenate([np.ones(3), 0.5 * np.ones(3), 0.3 * np.ones(3)])
        self.pad_pan = np.tile([0.5, 0.2, 0.8], 3)
        self.pad_phase = np.zeros(9)
        self.pulse_phase = 0.0
        self.breath_phase = 0.0
        self.zi = np.zeros(3)
        self.gain = 1.0
        self.t = 0.0

    def block_out(self, carrier: float, rate_hz: float, pacer_bpm: float) -> np.ndarray:
        """Render one block (frames, 2) float64 for the given control values."""
        b, n, fs = self.block, self.n, RATE
        out = np.zeros((b, 2))
        # tones, gated by the isochronic pulse
        tones = np.zeros(b)
        for i in range(4):
            w = 2 * math.pi * carrier * self.tone_ratio[i] / fs
            ph = self.tone_phase[i] + w * n
            tones += self.tone_amp[i] * np.sin(ph)
            self.tone_phase[i] = (ph[-1] + w) % (2 * math.pi)
        pulse_ph = (self.pulse_phase + rate_hz / fs * n) % 1.0
        self.pulse_phase = (self.pulse_phase + rate_hz / fs * b) % 1.0
        on = np.clip(np.minimum(pulse_ph / 0.09, (0.45 - pulse_ph) / 0.18), 0.0, 1.0)
        env = 0.5 - 0.5 * np.cos(math.pi * on)
        tones *= env * 0.06
        # pad
        pad_l = np.zeros(b)
        pad_r = np.zeros(b)
        for i in range(9):
            w = 2 * math.pi * self.pad_freq[i] / fs
            ph = self.pad_phase[i] + w * n
            s = self.pad_amp[i] * np.sin(ph)
            self.pad_phase[i] = (ph[-1] + w) % (2 * math.pi)
            pad_l += s * math.cos(self.pad_pan[i] * math.pi / 2)
            pad_r += s * math.sin(self.pad_pan[i] * math.pi / 2)
        # pink noise, two channels
        white = self.rng.standard_normal(b)
        pink, self.zi = signal.lfilter(PINK_B, PINK_A, white, zi=self.zi)
        # breath swell and bed pulse (depth 0.7), per-block gain ramps
        bp0 = self.breath_phase
        self.breath_phase = (bp0 + pacer_bpm / 60.0 * b / fs) % 1.0
        g0 = 10 ** (-6 * (0.5 - 0.5 * math.cos(2 * math.pi * bp0)) / 20)
        g1 = 10 ** (-6 * (0.5 - 0.5 * math.cos(2 * math.pi * self.breath_phase)) / 20)
        swell = np.linspace(g0, g1, b, endpoint=False)
        bed_gate = 1.0 - 0.7 * (1.0 - env)
        fade = min(1.0, self.t / 30.0)
        master = np.linspace(fade, min(1.0, (self.t + b / fs) / 30.0), b, endpoint=False)
        self.t += b / fs
        out[:, 0] = tones + (0.1 * pad_l + 0.05 * pink) * swell * bed_gate
        out[:, 1] = tones + (0.1 * pad_r + 0.05 * np.roll(pink, 7)) * swell * bed_gate
        out *= (master * 0.5)[:, None]
        # limiter: one gain per block from its peak
        peak = np.abs(out).max()
        need = min(1.0, 0.5 / peak) if peak > 0 else 1.0
        self.gain = min(need, self.gain * 1.01)
        out *= self.gain
        return out


def run_reference(path: Path, seconds: float, block: int) -> dict:
    """Render ``seconds`` of the reference mix into ``path``; return its timing."""
    ref = Reference(block)
    blocks = round(seconds * RATE / block)
    cpu0, wall0 = time.process_time(), time.monotonic()
    with wave.open(str(path), "wb") as w:
        w.setnchannels(2)
        w.setsampwidth(2)
        w.setframerate(RATE)
        for i in range(blocks):
            t = i * block / RATE
            carrier = 200.0 - 50.0 * min(1.0, t / 600.0)
            x = ref.block_out(carrier, 10.0 - 8.0 * min(1.0, t / 600.0), 6.0)
            w.writeframes(np.clip(np.rint(x * 32767.0), -32768, 32767).astype("<i2").tobytes())
    audio = blocks * block / RATE
    cpu = time.process_time() - cpu0
    return {
        "audio_s": audio,
        "cpu_s": cpu,
        "wall_s": time.monotonic() - wall0,
        "cpu_s_per_s": cpu / audio,
    }


def run_ours(path: Path, seconds: float | None, program: str) -> dict:
    """Render ``program`` (``seconds`` of it, or all) as ``bedside render`` does."""
    cfg = load_config(None)
    minutes = None if seconds is None else seconds / 60.0
    r = render_to(cfg, str(path), program=program, minutes=minutes)
    return {
        "audio_s": r.audio_s,
        "cpu_s": r.cpu_s,
        "wall_s": r.wall_s,
        "cpu_s_per_s": r.cpu_per_audio_s,
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=300.0, help="audio seconds per renderer")
    ap.add_argument("--block", type=int, default=1024, help="reference block size (frames)")
    ap.add_argument("--program", default="sleep")
    ap.add_argument("--full", action="store_true", help="also render the whole program")
    ap.add_argument("--json", help="also write the JSON here")
    args = ap.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        d = Path(tmp)
        # build the process's noise loops and chime waves once (0.4 s, as any render pays
        # once): the figures below are the cost per second of audio
        run_ours(d / "warm.wav", 1.0, args.program)
        ours = run_ours(d / "ours.wav", args.seconds, args.program)
        ref = run_reference(d / "ref.wav", args.seconds, args.block)
        full = run_ours(d / "full.wav", None, args.program) if args.full else None
    ratio = ref["cpu_s_per_s"] / ours["cpu_s_per_s"]
    print(f"{'renderer':<28} {'audio s':>8} {'CPU s':>7} {'wall s':>7} {'CPU s/s':>9}")
    rows = [("ours (bedside render)", ours), (f"reference (block {args.block})", ref)]
    if full is not None:
        rows.append((f"ours, whole {args.program}", full))
    for name, r in rows:
        print(
            f"{name:<28} {r['audio_s']:>8.1f} {r['cpu_s']:>7.2f} {r['wall_s']:>7.2f}"
            f" {r['cpu_s_per_s']:>9.5f}"
        )
    print(f"reference / ours: {ratio:.1f}x")
    verdict = {
        "cpu_ok": ours["cpu_s_per_s"] <= TARGET_CPU,
        "ratio_ok": ratio >= TARGET_RATIO,
    }
    if full is not None:
        verdict["full_wall_ok"] = full["wall_s"] < TARGET_45_MIN_WALL_S
    doc = {
        "bench": "render_speed",
        "numpy": np.__version__,
        "cpus": os.cpu_count(),
        "load_avg": os.getloadavg(),
        "ours": ours,
        "reference": ref,
        "full": full,
        "ratio": ratio,
        "targets": {
            "cpu_s_per_s": TARGET_CPU,
            "ratio": TARGET_RATIO,
            "full_wall_s": TARGET_45_MIN_WALL_S,
        },
        "verdict": verdict,
    }
    text = json.dumps(doc, indent=2)
    if args.json:
        Path(args.json).write_text(text + "\n")
    print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
