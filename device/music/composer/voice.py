"""The composer as an engine voice: composed events in, synthesised audio out.

Composing (choosing notes: Python objects, lists, randomness) never runs on the audio
path of the box: a worker thread (:meth:`ComposerVoice.start_worker`) loads the synthesiser
and writes each phrase's events, a few seconds ahead, into a preallocated ring of numbers.
The audio path (:meth:`ComposerVoice.render`) only reads the events due in its segment,
applies them at their exact frames between FluidSynth renders into preallocated rows, and
adds the rows at the engine's gain. It never waits: events that arrive late are played at
the segment's start and counted (``late``), a segment with nothing composed for it is
counted (``starved``).

Without a worker (``bedside render``, tests, benchmarks) the voice composes *inline*, in
the segment that needs the next phrase: the same phrases from the same targets, but on the
caller's thread, so an offline render is the same whatever the machine's load.

The voice is a bed voice (``bed = True``): the breath swell and, with ``entrain_bed``, the
isochronic envelope apply to it as to the listener's music. A missing FluidSynth or
SoundFont is an explicit fault (:attr:`ComposerVoice.error`, in the status), never a silent
substitute.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterable
from dataclasses import replace

import numpy as np

from device.music.composer.level import Leveller
from device.music.composer.score import Composer
from device.music.composer.synth import ComposerUnavailable, FluidSynthBackend, SynthBackend
from device.music.composer.timing import Breath
from device.music.composer.upsample import Upsampler
from device.sound.swell import BreathSwell
from device.sound.targets import OFF_DB, SoundTargets

log = logging.getLogger(__name__)

#: Events the ring holds (a phrase is 20-80 events).
RING = 4096
#: Seconds of music composed ahead of the play position.
LEAD_S = 3.0
#: Worker poll interval, seconds.
POLL_S = 0.05
#: Gain from the synthesiser's output to the voice's 0 dB: measured on renders, the piano
#: style at energy 0.5 is about -18 LUFS at 0 dB (the loudness the listener's music is
#: normalised to, ``device.music.feed.REFERENCE_LUFS``); at energy 0.8, -11 to -13 LUFS.
#: Raised by 2 dB on 2026-12-07: with the texture on GM 48 (styles.py) and the leveller the
#: steady piece (energy 0.8, -6 dB) measured -20.3 LUFS where it had measured -18.0.
REF_GAIN = 10.0 ** (23.0 / 20.0)

#: Render the synthesiser at half the engine's rate and double it (``upsample.py``): half
#: the synthesiser's cost, the treble above about 10 kHz given up.
HALF_RATE = True
#: Weight of the first difference's power in the leveller's loudness estimate.
TREBLE_WEIGHT = 20.0

SynthFactory = Callable[[int], SynthBackend]


class ComposerVoice:
    """Engine voice playing the composer through a synthesiser (see the module doc).

    ``seed`` seeds the composition; ``synth`` builds the synthesiser for a sample rate
    (default FluidSynth); ``theme`` is the listener's theme number.
    """

    name = "composer"
    bed = True

    def __init__(
        self, swell: BreathSwell, seed: int = 0, synth: SynthFactory | None = None
    ) -> None:
        self.swell = swell
        self.seed = int(seed)
        self._factory: SynthFactory = synth or FluidSynthBackend
        self.synth: SynthBackend | None = None
        #: Why the composer cannot play (``None``: it can, or it was never asked to).
        self.error: str | None = None
        #: Events applied after their frame, segments with nothing composed, phrases that
        #: found the ring full.
        self.late = self.starved = self.overflows = 0
        self.rate = 48000
        self.composer = Composer(self.seed, self.rate)
        self._targets = SoundTargets()
        self._frame = 0
        self._breath = Breath(0, 0.0, None)
        self._worker: threading.Thread | None = None
        #: True: the audio path composes what it needs itself (offline renders); False: a
        #: worker (or the caller, through :meth:`compose_ahead`) does.
        self.inline = True
        self._stop = threading.Event()
        #: Set when targets ask for music (or at close): the worker sleeps on it meanwhile, so
        #: a night without composed music costs no wake-up at all.
        self._wake = threading.Event()
        self._silenced = True
        self._ev_frame = np.zeros(RING, np.int64)
        self._ev = np.zeros((RING, 4), np.int32)
        self._written = 0
        self._read = 0
        self._buf = np.zeros((2, 0), np.float32)
        self._div = 1
        self._up: Upsampler | None = None
        #: The slow leveller (steady short-term loudness) and the gain it gave last.
        self.leveller = Leveller(self.rate)
        self._level = 1.0

    # --- set-up and control side ------------------------------------------------------------

    def prepare(self, sample_rate: int, segment_frames: int) -> None:
        """Preallocate the rows, the gain ramp and a composer for ``sample_rate``."""
        s = segment_frames
        self.rate = int(sample_rate)
        self.composer = Composer(self.seed, self.rate, self.composer.theme_number)
        self.leveller = Leveller(self.rate)
        self._buf = np.zeros((2, s), np.float32)
        self._tmp = np.zeros((2, s), np.float32)
        self._ramp = np.zeros(s, np.float32)
        self._n = np.arange(s, dtype=np.float32)
        # the synthesiser renders at half rate when the segment splits in two (upsample.py)
        self._div = 2 if HALF_RATE and s % 2 == 0 else 1
        self._up = Upsampler(2, s) if self._div == 2 else None
        self._addr = (
            (self._buf[0].ctypes.data, self._buf[1].ctypes.data)
            if self._up is None
            else (self._up.input(0), self._up.input(1))
        )

    def set_theme(self, theme: int) -> None:
        """Play the listener's theme ``theme`` (before the piece starts)."""
        if theme != self.composer.theme_number and self.composer.index == 0:
            self.composer = Composer(self.seed, self.rate, theme)

    def wanted(self, t: SoundTargets) -> bool:
        """True when targets ``t`` ask for composed music."""
        return t.composer_db > OFF_DB and t.composer_style != "pad"

    def set_targets(self, targets: SoundTargets) -> None:
        """Take the targets; the first that ask for music load the synthesiser (inline: at
        once, here on the control side; with a worker: on the worker)."""
        self._targets = targets
        self.set_theme(int(targets.composer_theme))
        if self.wanted(targets):
            self._wake.set()
        if self.inline and self.wanted(targets) and self.synth is None and not self.load():
            # offline: say so at once, never play a silent stand-in
            raise ComposerUnavailable(self.error or "the composer cannot play")

    def load(self) -> bool:
        """Load the synthesiser (slow: seconds); on failure set :attr:`error`. True if ready."""
        if self.synth is not None:
            return True
        if self.error is not None:
            return False
        try:
            self.synth = self._factory(self.rate // self._div)
        except ComposerUnavailable as exc:
            self.error = str(exc)
            return False
        return True

    def start_worker(self) -> None:
        """Compose and load on a worker thread from now on (the box; idempotent)."""
        if self._worker is None:
            self.inline = False
            self._worker = threading.Thread(target=self._work, name="composer", daemon=True)
            self._worker.start()

    def close(self) -> None:
        """Stop the worker and free the synthesiser."""
        self._stop.set()
        self._wake.set()
        if self._worker is not None:
            self._worker.join(timeout=5.0)
        if self.synth is not None:
            self.synth.close()
            self.synth = None

    def _work(self) -> None:
        while not self._stop.is_set():
            if not self.wanted(self._targets):
                self._wake.clear()
                if not self.wanted(self._targets) and not self._stop.is_set():
                    self._wake.wait()  # checked again after the clear: no wake-up is lost
                continue
            if self._stop.wait(POLL_S):
                break
            if self.synth is None and self.error is None and not self.load():
                log.error("composer: %s", self.error)  # a fault in MUSIC? and the status
            if self.synth is not None:
                self.compose_ahead(self._frame + self.frames_per_block)

    @property
    def frames_per_block(self) -> int:
        """Frames of one segment."""
        return self._buf.shape[1]

    def compose_ahead(self, until: int) -> None:
        """Compose phrases until the music reaches ``LEAD_S`` past frame ``until``."""
        lead = round(LEAD_S * self.rate)
        while self.composer.horizon < until + lead:
            events = self.composer.compose(self._targets, self._breath, self._frame)
            if self._written + len(events) - self._read > RING:
                self.overflows += 1
                return
            for frame, kind, ch, a, b in events:
                i = self._written % RING
                self._ev_frame[i] = frame
                self._ev[i] = (kind, ch, a, b)
                self._written += 1

    # --- audio path -------------------------------------------------------------------------

    def render(self, out: np.ndarray, frames: int, g0: float, g1: float) -> bool:
        """Add the next ``frames`` frames of music with gain ``g0`` -> ``g1``."""
        self._breath = Breath(
            self._frame,
            self.swell.phase,
            self.swell.bpm.value if self.swell.on else None,
            self.swell.inhale.value,
        )
        synth = self.synth
        if synth is None or not self.wanted(self._targets):
            self.skip(frames)
            return False
        if self.inline:
            self.compose_ahead(self._frame + frames)
        end = self._frame + frames
        if self.composer.horizon < end:
            self.starved += 1
        buf = self._buf
        left, right = self._addr
        div = self._div
        pos = 0
        while self._read < self._written:
            i = self._read % RING
            at = int(self._ev_frame[i]) - self._frame
            if at >= frames:
                break
            if at < 0:
                self.late += 1
                at = 0
            at //= div  # in the synthesiser's frames
            if at > pos:
                synth.write(left + 4 * pos, right + 4 * pos, at - pos)
                pos = at
            e = self._ev[i]
            synth.event(int(e[0]), int(e[1]), int(e[2]), int(e[3]))
            self._read += 1
        if pos < frames // div:
            synth.write(left + 4 * pos, right + 4 * pos, frames // div - pos)
        if self._up is not None:
            self._up.run(buf, frames // div)
        self._silenced = False
        # the leveller's gain glides from the last segment's to this one's with the level
        lev0, lev1 = self._level, self.leveller.update(self._loudness_power(frames), frames)
        self._level = lev1
        a0, a1 = REF_GAIN * g0 * lev0, REF_GAIN * g1 * lev1
        ramp = self._ramp[:frames]
        np.multiply(self._n[:frames], (a1 - a0) / frames, out=ramp)
        ramp += a0
        tmp = self._tmp[:, :frames]
        np.multiply(buf[:, :frames], ramp, out=tmp)
        out[:, :frames] += tmp
        self._frame = end
        return True

    def _loudness_power(self, frames: int) -> float:
        """Mean power of the synthesiser's segment, weighted roughly as loudness is (ITU-R
        BS.1770's K-weighting lifts the treble by 4 dB: the first difference, x
        :data:`TREBLE_WEIGHT`, adds about that from 2 kHz up and little below 1 kHz)."""
        power = 0.0
        diff = self._tmp[0, : frames - 1]
        for row in self._buf[:, :frames]:
            np.subtract(row[1:], row[:-1], out=diff)
            power += float(np.vdot(row, row)) + TREBLE_WEIGHT * float(np.vdot(diff, diff))
        return power / (2 * frames)

    def skip(self, frames: int) -> None:
        """Silent segment: drop the events due in it; notes stop (nothing is heard)."""
        end = self._frame + frames
        while self._read < self._written and int(self._ev_frame[self._read % RING]) < end:
            self._read += 1
        if not self._silenced and self.synth is not None:
            self.synth.silence()
            self._silenced = True
            self.leveller.reset()  # the music comes back as a new piece: levelled anew
            if self._up is not None:
                self._up.reset()
            self._level = 1.0
        self._frame = end

    def describe(self) -> dict[str, object]:
        """``MUSIC?`` while composing: style, key, tempo, theme, section (or the fault)."""
        st = self.status()
        return {k: st.get(k) for k in _describe_keys()}

    def status(self) -> dict[str, object]:
        """What the composer plays and its health, for ``MUSIC?`` and the status."""
        info: dict[str, object] = (
            {"composed": False} if not self.composer.info else dict(self.composer.info)
        )
        info["composed"] = bool(info.get("composed")) and self.wanted(self._targets)
        info.update(
            composer="fault" if self.error else "ok",
            composer_error=self.error,
            composer_late=self.late,
            composer_starved=self.starved,
        )
        return info


def composer_in(voices: Iterable[object]) -> ComposerVoice | None:
    """The composer among an engine's ``voices`` (``engine.voices``), if it has one."""
    return next((v for v in voices if isinstance(v, ComposerVoice)), None)


def composer_stand_in(targets: SoundTargets, composer: ComposerVoice | None) -> SoundTargets:
    """``targets`` with the pad in the composer's place while the composer cannot play.

    A program (or the personalisation's ``composer_style``) may put composed music in the
    pad's place; on a box whose FluidSynth or SoundFont is missing that place would be
    silent for the whole night. The fault stays visible (``MUSIC?``, the status's
    ``composer=fault``); the listener hears the pad, at the composer's level, meanwhile.
    """
    if composer is None or composer.error is None or not composer.wanted(targets):
        return targets
    return replace(targets, pad_db=max(targets.pad_db, targets.composer_db), composer_db=OFF_DB)


def _describe_keys() -> tuple[str, ...]:
    return ("composed", "style", "key", "tempo_bpm", "theme", "section", "composer_error")
