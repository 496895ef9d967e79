"""The sound engine: a list of voices mixed into fixed blocks, cheaply and click-free.

Expensive work happens a *segment* at a time (0.17-0.34 s, a whole number of blocks), in
two stages, both fully vectorised:

* **voices** (``device/sound/voice.py``): each voice of :attr:`Engine.voices` adds its next
  segment into a channel-major ``(2, s)`` float32 sum, with its level (``<name>_db``) glided
  across the segment; bed voices get the breath swell and, with ``entrain_bed``, the
  isochronic envelope;
* **master**: the sum times user volume, program level and fade, plus chimes, through the
  limiter into the output segment.

``render()`` then hands out the segment block by block as views, so most blocks cost a
few microseconds and no block allocates.

Every parameter glides to its target at a bounded rate (frequencies with their phase
kept, levels in dB/s), so changes take effect within one segment (at most 0.4 s) and never
click. Urgent requests (fades, a lower cap) re-plan the master stage from the next block
on: the voices' segment is kept (every frame a voice renders is played), only its gain,
chimes and limiting are redone for the rest of the segment.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import numpy as np

from device.dsp.ramps import LevelGlide, amp_to_db, fade_gain
from device.sound.chimes import KINDS as CHIME_KINDS
from device.sound.entrainment import OUTPUTS, Entrainment
from device.sound.master import LEVEL_RATE, VOLUME_RATE, Master
from device.sound.mixer import VoiceMixer
from device.sound.swell import BreathSwell
from device.sound.targets import OFF_DB, SoundTargets, validate_targets
from device.sound.voice import Voice, VoiceContext, VoiceFactory
from device.sound.voices import BUILTIN_VOICES

__all__ = ["LEVEL_RATE", "OUTPUTS", "VOLUME_RATE", "Engine", "validate_targets"]

#: Frames of audio rendered ahead per segment (rounded to whole blocks; about 0.34 s).
SEGMENT_TARGET_FRAMES = 16384
#: At most this many blocks per segment, so one segment's work stays a small share of a
#: block period even for small blocks (p99.9 block time).
SEGMENT_MAX_BLOCKS = 16
#: ... but never fewer frames than numpy's ufunc buffer (8192 elements): below that,
#: broadcasting ufuncs allocate an iteration buffer on every call.
SEGMENT_MIN_FRAMES = 8192
#: Allowed user volume and cap (dBFS).
VOLUME_RANGE = (-100.0, 0.0)
CAP_RANGE = (-60.0, 0.0)
#: Shortest fade in seconds (a fade of 0 s would click).
MIN_FADE_S = 0.05
#: The limiter keeps peaks this far below the cap (covers int16 rounding and the
#: inter-sample peaks of the smooth signals it passes).
CAP_MARGIN = 0.99


def _check_format(sample_rate: int, block_frames: int, output: str) -> None:
    """:raises ValueError: a rate, block size or output the engine cannot play."""
    if not 8000 <= int(sample_rate) <= 192000:
        raise ValueError(f"sample_rate {sample_rate!r} Hz is outside 8000..192000")
    if not 32 <= int(block_frames) <= 16384:
        raise ValueError(f"block_frames {block_frames!r} is outside 32..16384")
    if output not in OUTPUTS:
        raise ValueError(f"output {output!r} is not one of {', '.join(OUTPUTS)}")


class Engine:
    """Renders the box's sound in fixed stereo blocks; see ``docs/sound.md``.

    An engine starts silent: call :meth:`fade_in`. ``render()`` returns a float32
    ``(block_frames, 2)`` view (channel-major storage, so not C-contiguous) that stays
    valid until the next ``render()``. ``voices`` are the factories of the voices to play
    (default :data:`~device.sound.voices.BUILTIN_VOICES`).
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
        voices: Sequence[VoiceFactory] = BUILTIN_VOICES,
    ) -> None:
        _check_format(sample_rate, block_frames, output)
        self.sample_rate = rate = int(sample_rate)
        self.block_frames = b = int(block_frames)
        self.output = output
        self.seed = int(seed)
        #: Frames rendered so far.
        self.frames = 0
        #: Segments that failed to render (played as silence) and the last failure.
        self.render_errors = 0
        self.last_error = ""
        self.blocks_per_segment = max(
            -(-SEGMENT_MIN_FRAMES // b), min(SEGMENT_MAX_BLOCKS, round(SEGMENT_TARGET_FRAMES / b))
        )
        s = self.segment_frames = b * self.blocks_per_segment
        self._seg_s = s / rate
        self._mix = np.zeros((2, s), np.float32)
        out_t = self._mix.T
        self._views = [out_t[i * b : (i + 1) * b] for i in range(self.blocks_per_segment)]
        self._block = self.blocks_per_segment
        self._started = False
        self._idle = False
        #: Times the engine went quiet and stopped rendering its voices (silence is free).
        self.idle_segments_started = 0
        self._cut = False
        self._restart = False
        self._build_stages(rate, s, b, output, voices)
        self.set_volume_db(volume_db)
        self.volume.value = self.volume.end = self.volume.target
        self._cap_dbfs = 0.0
        self.set_cap_dbfs(cap_dbfs)
        self._cut = False
        self.set_targets(self._targets)
        self._apply_now()

    def _build_stages(
        self, rate: int, s: int, b: int, output: str, voices: Sequence[VoiceFactory]
    ) -> None:
        """The entrainment, swell, master and mixer stages, and the voices in the mixer."""
        self.entrainment = Entrainment(output)
        self.entrainment.prepare(rate, s)
        self.swell = BreathSwell(rate)
        self.master = Master(rate, s, b)
        self.chimes = self.master.chimes
        self.limiter = self.master.limiter
        self.fade = self.master.fade
        self.volume = self.master.volume
        self.mixer = VoiceMixer(rate, s, self.entrainment, self.swell)
        self._targets = SoundTargets()
        #: Level glide of every voice by name, and ``program``.
        self.levels: dict[str, LevelGlide] = {"program": self.master.program}
        context = VoiceContext(rate, s, output, self.seed, self.entrainment, self.swell)
        for factory in voices:
            self.add_voice(factory(context))

    # --- voices -----------------------------------------------------------------------------

    def add_voice(self, voice: Voice) -> None:
        """Add ``voice`` to the mix (control side); its level must be in the targets' table.

        It is prepared here and gets the present targets; on a sounding engine it starts
        silent and glides up to its level, on a silent one it starts at its level.
        """
        if voice.name in self.levels:
            raise ValueError(f"a voice named {voice.name!r} is already in the engine")
        silent = not self._started or self.faded_out
        self.levels[voice.name] = self.mixer.add(voice, self._targets, at_level=silent)

    @property
    def voices(self) -> list[Voice]:
        """The voices in mixing order (add with :meth:`add_voice`; look up with
        ``mixer.voice(name)``; the built-ins are ``mixer.tones``, ``.pad``, ``.noise``)."""
        return self.mixer.voices

    # --- control (outside the audio path) ---------------------------------------------------

    def set_targets(self, targets: SoundTargets, *, immediate: bool = False) -> None:
        """Glide towards ``targets`` (starting within one segment: at most 0.4 s).

        ``immediate=True`` jumps straight to them instead, but only while the output is
        silent (before a fade-in, or after a fade-out); otherwise it glides as usual.
        """
        validate_targets(targets)
        self._targets = t = targets
        self.mixer.set_targets(t)
        self.master.program.target = max(t.program_db, OFF_DB)
        self.swell.set(t.pacer_bpm, t.inhale_fraction, t.swell_db)
        if immediate and self.faded_out:
            self._apply_now()
            self._restart = self._started

    def _apply_now(self) -> None:
        """Jump every glide to its target (only while nothing sounds)."""
        self.mixer.jump()
        for g in (self.master.program, self.swell.bpm, self.swell.depth, self.swell.inhale):
            g.value = g.end = g.target

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
        """The hard output cap in dBFS: no sample, and no peak between samples, exceeds it."""
        return self._cap_dbfs

    def set_cap_dbfs(self, db: float) -> None:
        """Set the hard cap in dBFS; a lower cap holds from the next block on."""
        v = float(db)
        if not CAP_RANGE[0] <= v <= CAP_RANGE[1]:
            raise ValueError(f"cap {db!r} dBFS is outside {CAP_RANGE[0]:g}..{CAP_RANGE[1]:g}")
        if v < self._cap_dbfs:
            self._cut = True
        self._cap_dbfs = v
        self.master.set_cap(v, CAP_MARGIN)

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
    def _played(self) -> int:
        """Frames of the present segment handed out so far."""
        return self._block * self.block_frames if self._started else 0

    @property
    def faded_out(self) -> bool:
        """True when the output is silent after a fade-out (or before the first fade-in)."""
        if self.fade.target != 0.0 or self.chimes.active:
            return False
        return self.master.silent_now(self._played)

    def chime(self, kind: str) -> None:
        """Play a soft chime (``start``, ``end`` or ``wake``) at the user volume, over fades."""
        if kind not in CHIME_KINDS:
            raise ValueError(f"chime kind {kind!r} is not one of {', '.join(CHIME_KINDS)}")
        self.chimes.trigger(kind)

    @property
    def level_db(self) -> float:
        """Present output gain in dB: volume, program level and fade (``-inf`` when silent)."""
        return amp_to_db(self.master.gain_at(self._played))

    def status(self) -> dict:
        """What the engine is doing, for STATUS and the logs."""
        req = self._targets.entrain_kind
        kind = self.entrainment.render_kind(req)
        if self.fade.target == 1.0 and self.fade.value < 1.0:
            fade = "in"
        elif self.fade.target == 0.0:
            fade = "silent" if self.faded_out else "out"
        else:
            fade = "full"
        pad, noise = self.mixer.pad, self.mixer.noise
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
            "voices": list(self.mixer.names),
            "pad_preset": None if pad is None else pad.preset_name,
            "pad_chord": None if pad is None else pad.chord,
            "noise_colour": None if noise is None else noise.colour,
            "limiter_gain_db": amp_to_db(self.limiter.gain),
            "limiter_segments": self.limiter.active_segments,
            "peak_dbfs": amp_to_db(self.limiter.peak),
            "chimes": self.chimes.played,
            "render_errors": self.render_errors,
            "nonfinite_segments": self.limiter.nonfinite,
            "gains_db": self.gains_db(),
        }

    def gains_db(self) -> dict[str, float]:
        """Levels in dB of every gain the engine moves, at the end of the last block rendered.

        Voice levels by voice name, then ``program``, ``volume`` and ``fade``.
        """
        played = self._played
        frac = played / self.segment_frames
        out = self.mixer.gains_db(frac)
        mfrac = self.master.progress(played)
        out["program"] = self.master.program.at(mfrac)
        out["volume"] = self.volume.at(mfrac)
        out["fade"] = amp_to_db(fade_gain(self.fade.at_frame(played - self.master.start)))
        return out

    def __repr__(self) -> str:
        state = "faded out" if self.faded_out else f"level {self.level_db:.1f} dB"
        return (
            f"<Engine {self.sample_rate} Hz block={self.block_frames} {self.output} "
            f"voices={','.join(self.mixer.names)} {state} cap={self.cap_dbfs:g} dBFS "
            f"t={self.frames / self.sample_rate:.1f} s>"
        )

    # --- audio path -------------------------------------------------------------------------

    def render(self) -> np.ndarray:
        """Render the next block: float32 ``(block_frames, 2)`` view, valid until the next call."""
        played = self._played
        if not self._started or self._block >= self.blocks_per_segment or self._restart:
            if self._started:
                self.master.commit(played)
                self.mixer.commit(played / self.segment_frames)
            self._started = True
            self._cut = self._restart = False
            self._block = 0
            self._guarded(self._segment)
        elif self._cut:
            self._cut = False
            self.master.commit(played)
            if self._idle:  # sound comes back: render the voices from here
                self.mixer.commit(played / self.segment_frames)
                self._block = 0
                self._guarded(self._segment)
            else:
                self._guarded(self._master_from, played)
        view = self._views[self._block]
        self._block += 1
        self.frames += self.block_frames
        return view

    def _guarded(self, step: Callable[..., None], *args: int) -> None:
        try:
            step(*args)
        except Exception as exc:  # the sound must go on: silence the rest, count it
            self._mix[:, self._played :].fill(0.0)
            self.mixer.on = False  # a later cut of this segment must not use a partial sum
            self.render_errors += 1
            self.last_error = f"{type(exc).__name__}: {exc}"

    def _master_from(self, start: int) -> None:
        self.master.render(self.mixer.sum if self.mixer.on else None, self._mix, start)

    def _segment(self) -> None:
        if self.fade.target == 0.0 and self.fade.value == 0.0 and not self.chimes.active:
            # Silent (before the first fade-in, or after a fade-out): nothing can be heard,
            # so the voices only advance. Most of a night is this silence; it costs little.
            self.mixer.skip()
            if not self._idle:
                self._mix.fill(0.0)
                self._idle = True
                self.idle_segments_started += 1
            self.master.skip(0)
            return
        self._idle = False
        self.mixer.render()
        self._master_from(0)
