"""The composer's synthesiser: FluidSynth with a General MIDI SoundFont, behind a Protocol.

FluidSynth (Debian ``libfluidsynth3``) is reached through ``pyfluidsynth`` (PyPI), imported
only when a composer starts: ``import device`` never needs it. pyfluidsynth's own
``get_samples`` allocates a new buffer and an int16 array per call, so the audio path calls
``fluid_synth_write_float`` itself (through ctypes on pyfluidsynth's library handle) into
the voice's preallocated float32 rows; the note and controller calls are plain ctypes calls
too. Everything slow happens in :meth:`FluidSynthBackend.__init__` (loading the SoundFont,
selecting every style's instruments on its own channel, building the tunings), before the
audio path ever sees the synth; FluidSynth's own API lock is then never contended.

SoundFont: FluidR3_GM (Debian ``fluid-soundfont-gm``, MIT licence, 142 MB on disk). With
``synth.dynamic-sample-loading`` only the samples of the selected instruments are read
(about 30 MB of memory, 0.1 s to load here). MuseScore General (``musescore-general-
soundfont``, MIT, SF3) is used when FluidR3 is absent; its compressed samples cost about
1.3 s of CPU and 100 MB to decode at load.

Chorus is off (it detunes: beats); the reverb is FluidSynth's own (its Freeverb-style
reverb), set once. Tuning: one key tuning per pad preset (bank 0, program = the preset's
index), every key retuned to the just ratios of ``device/music/composer/harmony.py``.
"""

from __future__ import annotations

import contextlib
import ctypes
import io
import math
import os
from typing import Any, Protocol

from device.exc import BedsideError
from device.music.composer.harmony import key_hz, tonic_key_of
from device.music.composer.styles import ROLES, STYLES, channel
from device.sound.tuning import PRESETS

#: SoundFonts tried in order (Debian's paths).
SOUNDFONTS = (
    "/usr/share/sounds/sf2/FluidR3_GM.sf2",
    "/usr/share/sounds/sf3/MuseScore_General.sf3",
    "/usr/share/sounds/sf2/default-GM.sf2",
    "/usr/share/sounds/sf3/default-GM.sf3",
)
#: How to install what is missing (one line, for errors and the status).
INSTALL_HINT = (
    "install it: apt-get install libfluidsynth3 fluid-soundfont-gm; "
    "pip install pyfluidsynth (the 'compose' extra)"
)
#: FluidSynth settings: voices at once (tails included), output gain, reverb.
POLYPHONY = 16
GAIN = 0.6
#: CC 74 at 0 lowers every voice's low-pass cutoff by this much (cents): 4 octaves.
BRIGHTNESS_CENTS = 4800.0
#: FluidSynth's modulator flags and the SoundFont generator of the filter cutoff.
MOD_CC, MOD_NEGATIVE, GEN_FILTERFC = 16, 1, 8
#: Sample interpolation: 1 = linear (FluidSynth's default is 4th order): the samples are
#: played near their recorded pitch, and linear costs about 15 % less here.
INTERPOLATION = 1
REVERB = {"roomsize": 0.75, "damping": 0.45, "width": 0.9, "level": 0.9}
#: SoundFont generator of the volume envelope's release (timecents) and the offset added to
#: it on every channel at load: -2400 timecents shortens every release four times (FluidR3's
#: slow strings ring 5 s after their note off, its harp 9 s; measured, those tails were a
#: third of the voices FluidSynth renders). The reverb carries the notes' ends.
GEN_VOLENVRELEASE = 38
RELEASE_TIMECENTS = -2400.0


class ComposerUnavailable(BedsideError, RuntimeError):
    """The composer cannot play: FluidSynth or a SoundFont is missing (the message says
    what to install)."""


class SynthBackend(Protocol):
    """What the composer voice needs of a synthesiser (every call cheap and non-blocking)."""

    def write(self, left: int, right: int, frames: int) -> None:
        """Render ``frames`` float32 frames at the addresses ``left`` and ``right``."""

    def event(self, kind: int, chan: int, a: int, b: int) -> None:
        """Apply one composer event (``device.music.composer.score``: OFF, TUNE, CC, ON)."""

    def silence(self) -> None:
        """Stop every note at once (used only while the voice is inaudible)."""

    def voices(self) -> int:
        """Voices sounding now."""

    def close(self) -> None:
        """Free the synthesiser."""


def find_soundfont(paths: tuple[str, ...] = SOUNDFONTS) -> str:
    """The first SoundFont of ``paths`` that exists (:class:`ComposerUnavailable` if none)."""
    for p in paths:
        if os.path.isfile(p):
            return p
    raise ComposerUnavailable(f"no General MIDI SoundFont in {', '.join(paths)}: {INSTALL_HINT}")


def _import_fluidsynth() -> Any:
    try:
        # pyfluidsynth prints where it found the library to stdout when the environment
        # has CI set (its find_libfluidsynth): stdout is the box's status stream.
        with contextlib.redirect_stdout(io.StringIO()):
            import fluidsynth  # pyfluidsynth: raises ImportError when libfluidsynth is missing
    except ImportError as exc:
        raise ComposerUnavailable(f"FluidSynth is not available ({exc}): {INSTALL_HINT}") from None
    return fluidsynth


def tuning_cents(preset: str) -> list[float]:
    """Pitch of every MIDI key (absolute cents, 6900 = A4 440 Hz) in the just tuning on the
    root of pad preset ``preset``."""
    root = PRESETS[preset].root_hz
    tonic = tonic_key_of(root)
    return [6900.0 + 1200.0 * math.log2(key_hz(tonic, root, k) / 440.0) for k in range(128)]


class FluidSynthBackend:
    """FluidSynth rendering at ``rate`` Hz from ``soundfont`` (default: :func:`find_soundfont`).

    :raises ComposerUnavailable: FluidSynth or the SoundFont is missing or cannot be loaded.
    """

    def __init__(self, rate: int, soundfont: str | None = None) -> None:
        fs = _import_fluidsynth()
        path = soundfont or find_soundfont()
        settings = {
            "synth.chorus.active": 0,
            "synth.reverb.active": 1,
            "synth.dynamic-sample-loading": 1,
            "synth.polyphony": POLYPHONY,
            "synth.cpu-cores": 1,
        }
        self._fs = fs.Synth(gain=GAIN, samplerate=float(rate), channels=16, **settings)
        self.soundfont = path
        try:
            sfid = self._fs.sfload(path)
            if sfid < 0:
                raise ComposerUnavailable(f"FluidSynth could not load the SoundFont {path}")
            self._brightness_mod(fs._fl)
            self._select(sfid, fs._fl)
            self._tunings(fs)
            self._fs.set_reverb(**REVERB)
        except BaseException:
            self._fs.delete()
            raise
        self._bind(fs._fl)

    def _brightness_mod(self, lib: Any) -> None:
        """CC 74 (brightness) to the voices' low-pass cutoff: 127 leaves the sound as the
        SoundFont made it, 0 lowers the cutoff by :data:`BRIGHTNESS_CENTS` (GM defines no
        such modulator, so FluidSynth adds it to every voice as a default modulator)."""
        vp, i = ctypes.c_void_p, ctypes.c_int
        lib.new_fluid_mod.restype = vp
        for name, args in (
            ("fluid_mod_set_source1", [vp, i, i]),
            ("fluid_mod_set_source2", [vp, i, i]),
            ("fluid_mod_set_dest", [vp, i]),
            ("fluid_mod_set_amount", [vp, ctypes.c_double]),
            ("fluid_synth_add_default_mod", [vp, vp, i]),
            ("delete_fluid_mod", [vp]),
        ):
            getattr(lib, name).argtypes = args
        mod = lib.new_fluid_mod()
        lib.fluid_mod_set_source1(mod, 74, MOD_CC | MOD_NEGATIVE)
        lib.fluid_mod_set_source2(mod, 0, 0)
        lib.fluid_mod_set_dest(mod, GEN_FILTERFC)
        lib.fluid_mod_set_amount(mod, -BRIGHTNESS_CENTS)
        lib.fluid_synth_add_default_mod(self._fs.synth, mod, 1)  # FLUID_SYNTH_ADD
        lib.delete_fluid_mod(mod)

    def _select(self, sfid: int, lib: Any) -> None:
        set_gen = lib.fluid_synth_set_gen
        set_gen.argtypes = [ctypes.c_void_p, ctypes.c_int, ctypes.c_int, ctypes.c_float]
        for name, style in STYLES.items():
            for role in range(len(ROLES)):
                ch = channel(name, role)
                if self._fs.program_select(ch, sfid, 0, style.programs[role]):
                    raise ComposerUnavailable(
                        f"the SoundFont {self.soundfont} has no GM program {style.programs[role]}"
                    )
                set_gen(self._fs.synth, ch, GEN_VOLENVRELEASE, RELEASE_TIMECENTS)

    def _tunings(self, fs: Any) -> None:
        for prog, preset in enumerate(PRESETS):
            pitch = (ctypes.c_double * 128)(*tuning_cents(preset))
            fs.fluid_synth_activate_key_tuning(self._fs.synth, 0, prog, preset.encode(), pitch, 0)

    def _bind(self, lib: Any) -> None:
        """Plain ctypes prototypes for the audio path (no pyfluidsynth wrapper per call)."""
        vp, i = ctypes.c_void_p, ctypes.c_int
        self._write = lib.fluid_synth_write_float
        self._write.argtypes = [vp, i, vp, i, i, vp, i, i]
        self._write.restype = i
        self._on = lib.fluid_synth_noteon
        self._off = lib.fluid_synth_noteoff
        self._cc = lib.fluid_synth_cc
        for f in (self._on, self._off, self._cc):
            f.argtypes = [vp, i, i, i][: 4 if f is not self._off else 3]
            f.restype = i
        self._tune = lib.fluid_synth_activate_tuning
        self._tune.argtypes = [vp, i, i, i, i]
        self._tune.restype = i
        self._all_off = lib.fluid_synth_all_sounds_off
        self._all_off.argtypes = [vp, i]
        self._all_off.restype = i
        interp = lib.fluid_synth_set_interp_method
        interp.argtypes = [vp, i, i]
        interp(self._fs.synth, -1, INTERPOLATION)
        self._count = lib.fluid_synth_get_active_voice_count
        self._count.argtypes = [vp]
        self._count.restype = i
        self._synth = self._fs.synth

    # --- audio path -------------------------------------------------------------------------

    def write(self, left: int, right: int, frames: int) -> None:
        """Render ``frames`` frames into the float32 rows at ``left`` and ``right``."""
        self._write(self._synth, frames, left, 0, 1, right, 0, 1)

    def event(self, kind: int, chan: int, a: int, b: int) -> None:
        """Apply one event: 0 note off, 1 tuning, 2 controller, 3 note on."""
        if kind == 3:
            self._on(self._synth, chan, a, b)
        elif kind == 0:
            self._off(self._synth, chan, a)
        elif kind == 2:
            self._cc(self._synth, chan, a, b)
        else:
            self._tune(self._synth, chan, 0, a, 1)

    def silence(self) -> None:
        """All sounds off on every channel."""
        self._all_off(self._synth, -1)

    def voices(self) -> int:
        """Voices sounding now (release tails included)."""
        return int(self._count(self._synth))

    def close(self) -> None:
        """Free FluidSynth."""
        self._fs.delete()
