"""The sound engine: every voice of the box mixed into fixed blocks, cheaply and click-free.

Expensive work happens a *segment* at a time (0.17-0.34 s, a whole number of blocks),
fully vectorised: one sine per oscillator row for the tone voices and the pad, a matrix
product to mix the rows into stereo with gains interpolated across the segment, table
reads for the noise bed and the isochronic envelope, the breath swell and the limiter.
``render()`` then hands out the segment block by block as views, so most blocks cost a
few microseconds and no block allocates.

Every parameter glides to its target at a bounded rate (frequencies with their phase
kept, levels in dB/s), so changes take effect within one segment (at most 0.4 s) and never
click. Urgent requests (fades, a lower cap) cut the current segment short at the next
block instead of waiting for its end.
"""

from __future__ import annotations

import math

import numpy as np

from device.dsp.chimes import KINDS as CHIME_KINDS
from device.dsp.chimes import ChimePlayer
from device.dsp.isochronic import DUTY_RANGE, RATE_RANGE, PulseEnvelope
from device.dsp.limiter import SegmentLimiter
from device.dsp.noise import NoiseBed
from device.dsp.oscillators import OscillatorBank
from device.dsp.pad import ROWS as PAD_ROWS
from device.dsp.pad import Pad
from device.dsp.ramps import Fade, Glide, LevelGlide, amp_to_db, db_to_amp, fade_gain
from device.dsp.swell import DEPTH_RANGE, INHALE_RANGE, PACER_RANGE, BreathSwell
from device.dsp.targets import (
    ENTRAIN_KINDS,
    NOISE_COLOURS,
    OFF_DB,
    PAD_PRESETS,
    SoundTargets,
)

OUTPUTS = ("speaker", "headphones")
#: Frames of audio rendered ahead per segment (rounded to whole blocks; about 0.34 s).
SEGMENT_TARGET_FRAMES = 16384
#: At most this many blocks per segment, so one segment's work stays a small share of a
#: block period even for small blocks (p99.9 block time).
SEGMENT_MAX_BLOCKS = 16
#: ... but never fewer frames than numpy's ufunc buffer (8192 elements): below that,
#: broadcasting ufuncs allocate an iteration buffer on every call.
SEGMENT_MIN_FRAMES = 8192
#: Tone voices: frequency ratios to the carrier and their relative amplitudes.
TONE_RATIOS = (1.0, 1.5, 2.0, 3.0)
TONE_AMPS = (1.0, 0.45, 0.3, 0.18)
#: Carrier range (Hz) and glide speed (Hz/s).
CARRIER_RANGE = (100.0, 1000.0)
CARRIER_RATE = 20.0
#: Beat / pulse rate glide speed (Hz/s).
BEAT_RATE = 1.0
#: Seconds to crossfade from one entrainment form to another.
KIND_XFADE_S = 2.0
#: Depth of the isochronic envelope on the pad/noise bed (1 = full on/off).
BED_PULSE_DEPTH = 0.7
#: Layer and program level speed (dB/s) and user volume speed (dB/s).
LEVEL_RATE = 15.0
VOLUME_RATE = 3.0
#: Allowed user volume and cap (dBFS).
VOLUME_RANGE = (-100.0, 0.0)
CAP_RANGE = (-60.0, 0.0)
#: Shortest fade in seconds (a fade of 0 s would click).
MIN_FADE_S = 0.05
#: The limiter keeps peaks this far below the cap (covers int16 rounding).
CAP_MARGIN = 0.99
#: Unweighted RMS per channel of the tone layer at 0 dB.
TONE_REF_RMS = 0.25


def _check_range(name: str, value: float, lo: float, hi: float, unit: str = "") -> float:
    v = float(value)
    if not (lo <= v <= hi):
        raise ValueError(f"SoundTargets.{name} = {value!r} is outside {lo:g}..{hi:g}{unit}")
    return v


def _check_level(name: str, value: float, hi: float = 0.0) -> float:
    v = float(value)
    if math.isnan(v) or v > hi:
        raise ValueError(f"SoundTargets.{name} = {value!r} dB is not a level at most {hi:g} dB")
    return v


def _check_choice(name: str, value: str, choices: tuple[str, ...]) -> str:
    if value not in choices:
        raise ValueError(f"SoundTargets.{name} = {value!r} is not one of {', '.join(choices)}")
    return value


def validate_targets(t: SoundTargets) -> None:
    """Raise ``ValueError`` naming the first field of ``t`` that the engine cannot play."""
    if not isinstance(t, SoundTargets):
        raise TypeError(f"set_targets needs a SoundTargets, not {type(t).__name__}")
    p = t.pacer_bpm
    # fast path (the closed loop calls this several times a second); NaN fails every test
    if (
        (p is None or PACER_RANGE[0] <= p <= PACER_RANGE[1])
        and INHALE_RANGE[0] <= t.inhale_fraction <= INHALE_RANGE[1]
        and t.entrain_kind in ENTRAIN_KINDS
        and RATE_RANGE[0] <= t.entrain_hz <= RATE_RANGE[1]
        and CARRIER_RANGE[0] <= t.carrier_hz <= CARRIER_RANGE[1]
        and DUTY_RANGE[0] <= t.duty <= DUTY_RANGE[1]
        and t.pad_preset in PAD_PRESETS
        and 0.0 <= t.pad_brightness <= 1.0
        and t.noise_colour in NOISE_COLOURS
        and 0.0 <= t.noise_tone <= 1.0
        and t.tones_db <= 0.0
        and t.pad_db <= 0.0
        and t.noise_db <= 0.0
        and t.program_db <= 0.0
        and DEPTH_RANGE[0] <= t.swell_db <= DEPTH_RANGE[1]
    ):
        return
    if t.pacer_bpm is not None:
        _check_range("pacer_bpm", t.pacer_bpm, *PACER_RANGE, " breaths/min")
    _check_range("inhale_fraction", t.inhale_fraction, *INHALE_RANGE)
    _check_choice("entrain_kind", t.entrain_kind, ENTRAIN_KINDS)
    _check_range("entrain_hz", t.entrain_hz, *RATE_RANGE, " Hz")
    _check_range("carrier_hz", t.carrier_hz, *CARRIER_RANGE, " Hz")
    _check_range("duty", t.duty, *DUTY_RANGE)
    _check_choice("pad_preset", t.pad_preset, PAD_PRESETS)
    _check_range("pad_brightness", t.pad_brightness, 0.0, 1.0)
    _check_choice("noise_colour", t.noise_colour, NOISE_COLOURS)
    _check_range("noise_tone", t.noise_tone, 0.0, 1.0)
    for name in ("tones_db", "pad_db", "noise_db", "program_db"):
        _check_level(name, getattr(t, name))
    _check_range("swell_db", t.swell_db, *DEPTH_RANGE, " dB")


class Engine:
    """Renders the box's sound in fixed stereo blocks; see ``docs/architecture.md``.

    An engine starts silent: call :meth:`fade_in`. ``render()`` returns a float32
    ``(block_frames, 2)`` view (channel-major storage, so not C-contiguous) that stays
    valid until the next ``render()``.
    """

    def __init__(
        self,
        *,
        sample_rate: int = 48000,
        block_frames: int = 1024,
        output: str = "speaker",
        cap_dbfs: float = -6.0,
        volume_db: float = -20.0,
        seed: int = 0,
    ) -> None:
        if not 8000 <= int(sample_rate) <= 192000:
            raise ValueError(f"sample_rate {sample_rate!r} Hz is outside 8000..192000")
        if not 32 <= int(block_frames) <= 16384:
            raise ValueError(f"block_frames {block_frames!r} is outside 32..16384")
        if output not in OUTPUTS:
            raise ValueError(f"output {output!r} is not one of {', '.join(OUTPUTS)}")
        self.sample_rate = int(sample_rate)
        self.block_frames = int(block_frames)
        self.output = output
        self.seed = int(seed)
        #: Frames rendered so far.
        self.frames = 0
        #: Segments that failed to render (played as silence) and the last failure.
        self.render_errors = 0
        self.last_error = ""
        b = self.block_frames
        self.blocks_per_segment = max(
            -(-SEGMENT_MIN_FRAMES // b), min(SEGMENT_MAX_BLOCKS, round(SEGMENT_TARGET_FRAMES / b))
        )
        s = self.segment_frames = b * self.blocks_per_segment
        self._seg_s = s / self.sample_rate

        self._mix = np.zeros((2, s), np.float32)
        self._bed = np.zeros((2, s), np.float32)
        self._acc = np.zeros((4, s), np.float32)
        self._gate = np.zeros(s, np.float32)
        self._tmp = np.zeros(s, np.float32)
        self._ramp = (np.arange(s, dtype=np.float64) / s).astype(np.float32)
        out_t = self._mix.T
        self._views = [out_t[i * b : (i + 1) * b] for i in range(self.blocks_per_segment)]
        self._block = self.blocks_per_segment
        self._started = False
        self._idle = False
        #: Times the engine went quiet and stopped rendering its voices (silence is free).
        self.idle_segments_started = 0
        self._cut = False

        self._tones = OscillatorBank(8, s, self.sample_rate)
        self._gt = np.zeros((4, 8), np.float32)
        self._pad_bank = OscillatorBank(PAD_ROWS, s, self.sample_rate)
        self._gp = np.zeros((4, PAD_ROWS), np.float32)
        self.pad = Pad(self._pad_bank, self.sample_rate, self.seed)
        self.noise = NoiseBed(s, self.sample_rate, self.seed)
        self.pulse = PulseEnvelope(s, self.sample_rate)
        self.swell = BreathSwell(self.sample_rate)
        self.chimes = ChimePlayer(s, self.sample_rate)
        self.limiter = SegmentLimiter(s, self.sample_rate)

        ratios = np.array(TONE_RATIOS)
        amps = np.array(TONE_AMPS)
        self._ratios = ratios
        self._tone_amp = amps * (TONE_REF_RMS / math.sqrt(float(np.sum(amps**2)) / 2.0))

        self.carrier = Glide(200.0, CARRIER_RATE)
        self.beat = Glide(10.0, BEAT_RATE)
        self.rate = Glide(10.0, BEAT_RATE)
        self.duty = Glide(0.45, 0.05)
        #: Weight of each entrainment form (crossfaded), in ENTRAIN_KINDS order.
        self.kind_w = [
            Glide(1.0 if k == "isochronic" else 0.0, 1.0 / KIND_XFADE_S) for k in ENTRAIN_KINDS
        ]
        self.bed_w = Glide(0.0, 1.0 / KIND_XFADE_S)
        self._w0 = [0.0] * len(ENTRAIN_KINDS)
        self._w1 = [0.0] * len(ENTRAIN_KINDS)
        self.levels = {
            "tones": LevelGlide(OFF_DB, LEVEL_RATE),
            "pad": LevelGlide(OFF_DB, LEVEL_RATE),
            "noise": LevelGlide(OFF_DB, LEVEL_RATE),
            "program": LevelGlide(0.0, LEVEL_RATE),
        }
        self.volume = LevelGlide(0.0, VOLUME_RATE)
        self.set_volume_db(volume_db)
        self.volume.value = self.volume.end = self.volume.target
        self.fade = Fade(self.sample_rate)
        self._fade_gain = np.zeros(s, np.float32)
        self._n = np.arange(s, dtype=np.float32)
        self._cap_dbfs = 0.0
        self.set_cap_dbfs(cap_dbfs)
        self._cut = False
        self._glides = [
            self.carrier,
            self.beat,
            self.rate,
            self.duty,
            self.bed_w,
            self.volume,
            *self.kind_w,
            *self.levels.values(),
        ]
        self._targets = SoundTargets()
        self.set_targets(self._targets)
        self._apply_now()

    # --- control (outside the audio path) ---------------------------------------------------

    def _render_kind(self, kind: str) -> str:
        if kind == "binaural" and self.output != "headphones":
            return "monaural"
        return kind

    def set_targets(self, targets: SoundTargets, *, immediate: bool = False) -> None:
        """Glide towards ``targets`` (starting within one segment: at most 0.4 s).

        ``immediate=True`` jumps straight to them instead, but only while the output is
        silent (before a fade-in, or after a fade-out); otherwise it glides as usual.
        """
        validate_targets(targets)
        t = targets
        self._targets = t
        kind = self._render_kind(t.entrain_kind)
        for k, g in zip(ENTRAIN_KINDS, self.kind_w, strict=True):
            g.target = 1.0 if k == kind else 0.0
        self.carrier.target = t.carrier_hz
        self.beat.target = t.entrain_hz if kind in ("monaural", "binaural") else 0.0
        self.rate.target = t.entrain_hz
        self.duty.target = t.duty
        self.bed_w.target = 1.0 if (t.entrain_bed and kind != "none") else 0.0
        self.pad.set_preset(t.pad_preset)
        self.pad.brightness.target = t.pad_brightness
        self.noise.set_colour(t.noise_colour)
        self.noise.tone.target = t.noise_tone
        # anything at or below OFF_DB (even -inf) is "off": keep the glides finite
        self.levels["tones"].target = max(t.tones_db, OFF_DB)
        self.levels["pad"].target = max(t.pad_db, OFF_DB)
        self.levels["noise"].target = max(t.noise_db, OFF_DB)
        self.levels["program"].target = max(t.program_db, OFF_DB)
        self.swell.set(t.pacer_bpm, t.inhale_fraction, t.swell_db)
        if immediate and self.faded_out:
            self._apply_now()
            self._cut = self._started

    def _apply_now(self) -> None:
        """Jump the glides that start a fresh engine to their targets (nothing sounds yet)."""
        for g in (self.carrier, self.beat, self.rate, self.duty, self.bed_w, *self.kind_w):
            g.value = g.end = g.target
        for g in self.levels.values():
            g.value = g.end = g.target
        self.pad.brightness.value = self.pad.brightness.target
        if self.noise.pending is not None:
            self.noise.colour = self.noise.old_colour = self.noise.pending
            self.noise.pending = None
        if self.pad.pending_preset is not None:
            self.pad.select(self.pad.pending_preset)
        self.noise.tone.value = self.noise.tone.target
        self.swell.bpm.value = self.swell.bpm.target
        self.swell.depth.value = self.swell.depth.target
        self.swell.inhale.value = self.swell.inhale.target
        self._set_tone_freqs(self.carrier.value, self.beat.value, self._tones.freq)
        self._tones.freq_end[:] = self._tones.freq

    @property
    def volume_db(self) -> float:
        """The user volume target in dBFS (the level glides to it at 3 dB/s at most)."""
        return self.volume.target

    def set_volume_db(self, db: float) -> None:
        """Set the user volume in dBFS; ramped at no more than 3 dB/s."""
        v = float(db)
        if not VOLUME_RANGE[0] <= v <= VOLUME_RANGE[1]:
            raise ValueError(
                f"volume {db!r} dB is outside {VOLUME_RANGE[0]:g}..{VOLUME_RANGE[1]:g} dBFS"
            )
        self.volume.target = v

    @property
    def cap_dbfs(self) -> float:
        """The hard output cap in dBFS: no sample ever exceeds it."""
        return self._cap_dbfs

    def set_cap_dbfs(self, db: float) -> None:
        """Set the hard cap in dBFS; a lower cap holds from the next block on."""
        v = float(db)
        if not CAP_RANGE[0] <= v <= CAP_RANGE[1]:
            raise ValueError(f"cap {db!r} dBFS is outside {CAP_RANGE[0]:g}..{CAP_RANGE[1]:g}")
        if v < self._cap_dbfs:
            self._cut = True
        self._cap_dbfs = v
        self._threshold = 10.0 ** (v / 20.0) * CAP_MARGIN

    def fade_in(self, seconds: float) -> None:
        """Fade from the present level up to full over ``seconds`` (from silence: all of it)."""
        s = float(seconds)
        if not s >= 0.0 or math.isinf(s):
            raise ValueError(f"fade-in time {seconds!r} s must be a finite number >= 0")
        self.fade.rate = 1.0 / max(s, MIN_FADE_S)
        self.fade.target = 1.0
        self._cut = True

    def fade_out(self, seconds: float) -> None:
        """Fade to silence within ``seconds``; :attr:`faded_out` becomes True at silence."""
        s = float(seconds)
        if not s >= 0.0 or math.isinf(s):
            raise ValueError(f"fade-out time {seconds!r} s must be a finite number >= 0")
        # the fade starts at the next block: finish in time
        lead = self.block_frames / self.sample_rate
        self.fade.rate = 1.0 / max(s - lead, MIN_FADE_S)
        self.fade.target = 0.0
        self._cut = True

    @property
    def faded_out(self) -> bool:
        """True when the output is silent after a fade-out (or before the first fade-in)."""
        if self.fade.target != 0.0 or self.chimes.active:
            return False
        if self.fade.value == 0.0:
            return True
        zero = self.fade.zero_frame()
        return zero is not None and self._block * self.block_frames >= zero

    def chime(self, kind: str) -> None:
        """Play a soft chime (``start``, ``end`` or ``wake``) at the user volume, over fades."""
        if kind not in CHIME_KINDS:
            raise ValueError(f"chime kind {kind!r} is not one of {', '.join(CHIME_KINDS)}")
        self.chimes.trigger(kind)

    @property
    def level_db(self) -> float:
        """Present output gain in dB: volume, program level and fade (``-inf`` when silent)."""
        frac = self._block / self.blocks_per_segment if self._started else 0.0
        g = (
            db_to_amp(self.volume.at(frac))
            * fade_gain(self.fade.at_frame(round(frac * self.segment_frames)))
            * db_to_amp(self.levels["program"].at(frac))
        )
        return amp_to_db(g)

    def status(self) -> dict:
        """What the engine is doing, for STATUS and the logs."""
        req = self._targets.entrain_kind
        kind = self._render_kind(req)
        if self.fade.target == 1.0 and self.fade.value < 1.0:
            fade = "in"
        elif self.fade.target == 0.0:
            fade = "silent" if self.faded_out else "out"
        else:
            fade = "full"
        return {
            "entrain_kind": kind,
            "requested_kind": req,
            "binaural_as_monaural": req == "binaural" and kind != "binaural",
            "output": self.output,
            "frames": self.frames,
            "segment_frames": self.segment_frames,
            "volume_db": self.volume_db,
            "cap_dbfs": self.cap_dbfs,
            "level_db": self.level_db,
            "fade": fade,
            "faded_out": self.faded_out,
            "pad_preset": self.pad.preset_name,
            "pad_chord": self.pad.chord,
            "noise_colour": self.noise.colour,
            "limiter_gain_db": amp_to_db(self.limiter.gain),
            "limiter_segments": self.limiter.active_segments,
            "peak_dbfs": amp_to_db(self.limiter.peak),
            "chimes": self.chimes.played,
            "render_errors": self.render_errors,
            "nonfinite_segments": self.limiter.nonfinite,
            "gains_db": self.gains_db(),
        }

    def gains_db(self) -> dict[str, float]:
        """Levels in dB of every gain the engine moves, at the end of the last block rendered."""
        played = self._block * self.block_frames if self._started else 0
        frac = played / self.segment_frames
        out = {name: g.at(frac) for name, g in self.levels.items()}
        out["volume"] = self.volume.at(frac)
        out["fade"] = amp_to_db(fade_gain(self.fade.at_frame(played)))
        return out

    def __repr__(self) -> str:
        state = "faded out" if self.faded_out else f"level {self.level_db:.1f} dB"
        return (
            f"<Engine {self.sample_rate} Hz block={self.block_frames} {self.output} "
            f"{state} cap={self.cap_dbfs:g} dBFS t={self.frames / self.sample_rate:.1f} s>"
        )

    # --- audio path -------------------------------------------------------------------------

    def render(self) -> np.ndarray:
        """Render the next block: float32 ``(block_frames, 2)`` view, valid until the next call."""
        if self._block >= self.blocks_per_segment or self._cut:
            if self._started and not self._idle:
                self._commit(self._block * self.block_frames)
            self._started = True
            self._cut = False
            if self.fade.target == 0.0 and self.fade.value == 0.0 and not self.chimes.active:
                # Silent (before the first fade-in, or after a fade-out): nothing can be heard,
                # so the voices are not rendered and keep their state for the next fade-in.
                # Most of a night is this silence; it costs almost nothing.
                if not self._idle:
                    self._mix.fill(0.0)
                    self._idle = True
                    self.idle_segments_started += 1
            else:
                self._idle = False
                try:
                    self._segment()
                except Exception as exc:  # the sound must go on: silence this segment, count it
                    self._mix.fill(0.0)
                    self.render_errors += 1
                    self.last_error = f"{type(exc).__name__}: {exc}"
            self._block = 0
        view = self._views[self._block]
        self._block += 1
        self.frames += self.block_frames
        return view

    def _commit(self, played: int) -> None:
        frac = played / self.segment_frames
        self.fade.commit(played)
        for g in self._glides:
            g.commit(frac)
        self._tones.commit(played)
        self._pad_bank.commit(played)
        self.pad.commit(played)
        self.pulse.commit(played)
        self.noise.commit(played)
        self.swell.commit(played)
        self.chimes.commit(played)
        self.limiter.commit(played)

    def _set_tone_freqs(self, carrier: float, beat: float, dst: np.ndarray) -> None:
        dst[:4] = self._ratios * carrier - 0.5 * beat
        dst[4:] = self._ratios * carrier + 0.5 * beat

    def _tone_gains(self, row: int, amp: float, w: list[float]) -> None:
        # rows: lo voices 0-3, hi voices 4-7; w = (none, isochronic, monaural, binaural)
        plain = w[0] + w[1]
        a = self._tone_amp * amp
        g = self._gt
        g[row, :4] = a * (plain + 0.5 * w[2] + w[3])
        g[row + 1, :4] = a * (plain + 0.5 * w[2])
        g[row, 4:] = a * (0.5 * w[2])
        g[row + 1, 4:] = a * (0.5 * w[2] + w[3])

    def _interp(self, dst: np.ndarray, frames: int, add: bool) -> None:
        """dst (2, frames) (+)= acc rows 0-1 (start gains) blended into rows 2-3 (end gains)."""
        a = self._acc
        d = a[2:4, :frames]
        np.subtract(d, a[0:2, :frames], out=d)
        np.multiply(d, self._ramp[:frames], out=d)
        if add:
            dst += a[0:2, :frames]
            dst += d
        else:
            np.add(a[0:2, :frames], d, out=dst)

    def _gate_into(self, env: np.ndarray, w0: float, w1: float, depth: float) -> np.ndarray:
        """gate = 1 - depth*w(n)*(1 - env), with w ramping w0 -> w1 across the segment."""
        gate = self._gate
        np.subtract(1.0, env, out=gate)
        if w0 == w1:
            gate *= depth * w0
        else:
            np.multiply(self._ramp, depth * (w1 - w0), out=self._tmp)
            self._tmp += depth * w0
            gate *= self._tmp
        np.subtract(1.0, gate, out=gate)
        return gate

    def _segment(self) -> None:
        s = self.segment_frames
        sec = self._seg_s
        mix = self._mix
        # master: user volume x program level x fade
        v0, v1 = self.volume.amp, db_to_amp(self.volume.plan(sec))
        lv = self.levels
        p0, p1 = lv["program"].amp, db_to_amp(lv["program"].plan(sec))
        self.fade.plan(s)
        fading = self.fade.moving
        # a moving fade is applied per sample below; a steady one folds into the master
        f0 = f1 = 1.0 if fading else fade_gain(self.fade.value)
        m0, m1 = v0 * p0 * f0, v1 * p1 * f1
        t0, t1 = lv["tones"].amp * m0, db_to_amp(lv["tones"].plan(sec)) * m1
        pa0, pa1 = lv["pad"].amp, db_to_amp(lv["pad"].plan(sec))
        n0, n1 = lv["noise"].amp, db_to_amp(lv["noise"].plan(sec))
        sg0, sg1, bo0, bo1 = self.swell.plan(s)
        pa0, pa1 = pa0 * sg0 * m0, pa1 * sg1 * m1
        n0, n1 = n0 * sg0 * m0, n1 * sg1 * m1

        w0, w1 = self._w0, self._w1
        for i, g in enumerate(self.kind_w):
            w0[i] = g.value
            w1[i] = g.plan(sec)
        c1 = self.carrier.plan(sec)
        b1 = self.beat.plan(sec)
        r1 = self.rate.plan(sec)
        duty = self.duty.plan(sec)
        self._set_tone_freqs(c1, b1, self._tones.freq_end)
        iso0, iso1 = w0[1], w1[1]
        bw0, bw1 = self.bed_w.value, self.bed_w.plan(sec)
        rate = 0.5 * (self.rate.value + r1)

        pulse_needed = (iso0 > 0 or iso1 > 0) and (t0 > 0 or t1 > 0)
        bed_pulse = (bw0 > 0 or bw1 > 0) and (pa0 > 0 or pa1 > 0 or n0 > 0 or n1 > 0)
        if pulse_needed or bed_pulse:
            self.pulse.set_shape(duty, rate)
            env = self.pulse.render(s, rate)
        else:
            self.pulse.skip(s, rate)

        # tones
        wrote = False
        if t0 > 0 or t1 > 0:
            self._tone_gains(0, t0, w0)
            self._tone_gains(2, t1, w1)
            glide = self.carrier.moving or self.beat.moving
            bank = self._tones.render(s, glide=glide)
            np.matmul(self._gt, bank, out=self._acc)
            self._interp(mix, s, add=False)
            if pulse_needed:
                # the gate is one gain per sample for every tone row: apply it after mixing
                mix *= self._gate_into(env, iso0, iso1, 1.0)
            wrote = True
        else:
            self._tones.skip(s)

        # bed: pad + noise, optionally pulsed
        bed = self._bed
        lo, hi = self.pad.plan(self._gp, s, pa0, pa1, (bo0, bo1))
        bed_on = False
        if pa0 > 0 or pa1 > 0:
            rows = self._pad_bank.render(s, lo, hi, glide=False)  # chords never glide
            np.matmul(self._gp[:, lo:hi], rows, out=self._acc)
            self._interp(bed, s, add=False)
            bed_on = True
        else:
            self._pad_bank.skip(s)
        if not bed_on and (n0 > 0 or n1 > 0):
            bed.fill(0.0)
        bed_on = self.noise.render(bed, s, n0, n1) or bed_on
        if bed_on:
            if bed_pulse:
                bed *= self._gate_into(env, bw0, bw1, BED_PULSE_DEPTH)
            if wrote:
                mix += bed
            else:
                np.copyto(mix, bed)
                wrote = True
        if not wrote:
            mix.fill(0.0)
        elif fading:
            mix *= self.fade.curve(self._fade_gain, self._n)
        self.chimes.render(mix, s, v0 if v0 == v1 else 0.5 * (v0 + v1))
        self.limiter.process(mix, self._threshold)
