"""The composer: one phrase per call, as timed note events for the synthesiser.

:meth:`Composer.compose` writes the next phrase (one breath) from the targets and the
breath the audio path last saw: its form role, chords, voicings, bass, texture and melody,
as events ``(frame, kind, channel, a, b)`` sorted by frame, every one inside the phrase
(``[start, end]``). Notes held from one chord to the next (common tones, the bass) are not
struck again. Everything random comes from streams seeded by the seed and the phrase number,
so the same seed and the same targets make the same music.
"""

from __future__ import annotations

import random
from collections.abc import Callable

from device.music.composer import form, melody, timing
from device.music.composer.harmony import (
    MODES,
    PENTATONIC,
    Chord,
    Voicer,
    approach_degree,
    cadence_degree,
    pure_chords,
    tonic_key_of,
)
from device.music.composer.styles import ROLES, SLEEP_DROP, STYLES, Style, channel
from device.music.composer.theme import Motif, make_theme, second_theme
from device.sound.targets import OFF_DB, SoundTargets
from device.sound.tuning import PRESETS, carrier_on_grid

#: Event kinds, in the order they apply at the same frame.
OFF, TUNE, CC, ON = 0, 1, 2, 3
Event = tuple[int, int, int, int, int]
#: MIDI controllers used.
CC_VOLUME, CC_EXPRESSION, CC_BRIGHTNESS, CC_REVERB, CC_CHORUS = 7, 11, 74, 91, 93
#: Frames between the request and the first phrase (so its first events are never late).
START_LEAD_S = 0.25
#: Share of a beat a melody note sounds (a breath of detaché between notes).
LEGATO = 0.92
#: The texture's breath swell: expression (CC 11) and brightness (share of the phrase's CC 74)
#: at the bottom of the breath (at its top: 127 and the phrase's brightness). The level
#: swings little (112/127: about -2 dB in FluidSynth's expression curve), the brightness more.
SWELL_FLOOR = 112
BRIGHT_FLOOR = 0.8
#: The texture's expression under a statement of the theme (share), and the velocity the
#: theme's notes gain there: the theme steps forward, the bed back.
SOLO_BED = 0.85
#: Velocity a melody note gains at the top of the phrase's arc (the arc is in the pitch
#: too; a wider velocity swing was most of the phrases' loudness swing).
HEIGHT_VELOCITY = 8
THEME_ACCENT = 12
#: Beats the last chord of a three-chord phrase (its cadence) lasts at least, where the
#: phrase is long enough: the tonic of a full cadence is heard as the phrase's goal.
CADENCE_CHORD_BEATS = 4


def brightness(energy: float) -> int:
    """CC 74 at ``energy`` (0..1): darker towards sleep (the cutoff's modulator: synth.py)."""
    return round(127 * (0.55 + 0.45 * energy))


def _range(register: tuple[int, int], drop: int) -> tuple[int, int]:
    return register[0] - drop, register[1] - drop


class Composer:
    """Composes phrase after phrase for one session (``theme``: the listener's theme
    number, :func:`~device.music.composer.theme.theme_seed`)."""

    def __init__(self, seed: int, rate: int, theme: int = 0) -> None:
        self.seed = int(seed)
        self.rate = int(rate)
        self.theme_number = int(theme)
        self.theme = make_theme(self.theme_number)
        self.second = second_theme(self.theme, self.theme_number)
        self.clock: timing.BeatClock | None = None
        #: Phrases composed so far; frame where the next phrase starts (events before it
        #: are final).
        self.index = 0
        self.horizon = 0
        #: Frame where the last phrase composed starts.
        self.phrase_start = 0
        self._held: dict[tuple[int, int], int] = {}
        #: Keys sounding at the end of the last phrase (bass and texture).
        self._closing: tuple[int, ...] = ()
        self._tuning = ""
        self._style = ""
        self._hr0: float | None = None
        #: What is playing, for ``MUSIC?`` and the status.
        self.info: dict[str, object] = {}

    # --- one phrase -------------------------------------------------------------------------

    def compose(self, t: SoundTargets, breath: timing.Breath, now: int) -> list[Event]:
        """The events of the next phrase, composed for targets ``t`` at frame ``now``."""
        energy = self._energy(t)
        target = timing.tempo_target(t.heart_bpm, energy)
        first = self.clock is None or self.clock.frame < now
        if first:
            # a new piece, or the music comes back after a pause: start at once (the first
            # phrase ends at an inhale, the next ones follow the breath)
            tempo = target if self.clock is None else self.clock.tempo
            self.clock = timing.BeatClock(self.rate, tempo)
            self.clock.frame = float(now + round(START_LEAD_S * self.rate))
        clock = self.clock
        assert clock is not None
        n = timing.phrase_beats(breath, clock.frame, clock.beat_frames, self.rate, first=first)
        beats = clock.beats(n, target)
        role = form.role(self.index)
        self.index += 1
        self.horizon = round(beats[-1])
        events: list[Event] = []
        start = self.phrase_start = round(beats[0])
        style_name = t.composer_style
        self._release_other_styles(style_name, start, events)
        if style_name not in STYLES:  # "pad": no composed music, the clock runs on
            self._release(set(), start, events)
            return events
        style = STYLES[style_name]
        self._setup(t, style_name, style, start, events)
        for r in range(len(ROLES)):
            events.append((start, CC, channel(style_name, r), CC_BRIGHTNESS, brightness(energy)))
        shape_in = (n, n * breath.inhale, energy)
        self._phrase(t, style_name, style, role, beats, shape_in, events)
        self.info = {
            "composed": True,
            "style": style_name,
            "key": f"{t.pad_preset} root {PRESETS[t.pad_preset].root_hz:g} Hz {style.mode}",
            "tempo_bpm": round(clock.tempo, 1),
            "tempo_target_bpm": round(target, 1),
            "theme": self.theme_number,
            "section": role.letter,
            "phrase": role.index,
            "energy": round(energy, 2),
        }
        events.sort()
        return events

    def _energy(self, t: SoundTargets) -> float:
        """The program's energy, lowered as the heart calms (up to 0.3 for 15 beats/min)."""
        e = t.composer_energy
        if t.heart_bpm is not None:
            if self._hr0 is None:
                self._hr0 = t.heart_bpm
            calm = min(1.0, max(0.0, (self._hr0 - t.heart_bpm) / 15.0))
            e -= 0.3 * calm
        return min(1.0, max(0.0, e))

    def _setup(
        self, t: SoundTargets, name: str, style: Style, start: int, events: list[Event]
    ) -> None:
        """Tuning and channel settings when the key or the style changes."""
        if t.pad_preset != self._tuning or name != self._style:
            prog = list(PRESETS).index(t.pad_preset)
            for role in range(len(ROLES)):
                events.append((start, TUNE, channel(name, role), prog, 0))
            self._tuning = t.pad_preset
        if name != self._style:
            for role in range(len(ROLES)):
                ch = channel(name, role)
                events.append((start, CC, ch, CC_VOLUME, style.volumes[role]))
                events.append((start, CC, ch, CC_REVERB, style.reverb))
                events.append((start, CC, ch, CC_CHORUS, 0))
            self._style = name

    def _release_other_styles(self, name: str, start: int, events: list[Event]) -> None:
        own = {channel(name, r) for r in range(len(ROLES))} if name in STYLES else set()
        for ch, key in [k for k in self._held if k[0] not in own]:
            events.append((start, OFF, ch, key, 0))
            del self._held[(ch, key)]

    def _release(self, keep: set[tuple[int, int]], at: int, events: list[Event]) -> None:
        for ck in [k for k in self._held if k not in keep]:
            events.append((at, OFF, ck[0], ck[1], 0))
            del self._held[ck]

    def _hold(self, ch: int, keys: tuple[int, ...], vel: int, at: int, events: list[Event]) -> None:
        """Sound ``keys`` on ``ch`` from ``at``: keys already held carry on unstruck."""
        keep = {(ch, k) for k in keys}
        for ck in [k for k in self._held if k[0] == ch and k not in keep]:
            events.append((at, OFF, ck[0], ck[1], 0))
            del self._held[ck]
        for k in keys:
            if (ch, k) not in self._held:
                events.append((at, ON, ch, k, vel))
                self._held[(ch, k)] = vel

    # --- the phrase's parts -----------------------------------------------------------------

    def _chords(self, mode: str, role: form.PhraseRole, n: int, rng: random.Random) -> list[Chord]:
        chords = pure_chords(mode)
        last = cadence_degree(mode, role.cadence)
        first = role.start_degree if role.start_degree in chords else 0
        if first == last:
            first = approach_degree(mode, last)
        degrees = [first, last]
        if n >= 10 and rng.random() < 0.5:
            mid = approach_degree(mode, last)
            if mid not in (first, last):
                degrees = [first, mid, last]
        return [chords[d] for d in degrees]

    def _phrase(
        self,
        t: SoundTargets,
        name: str,
        style: Style,
        role: form.PhraseRole,
        beats: list[float],
        shape_in: tuple[int, float, float],
        events: list[Event],
    ) -> None:
        n, inhale_beats, energy = shape_in
        rng = random.Random(f"{self.seed}|{role.index}|phrase")
        drop = round(SLEEP_DROP * (1.0 - energy))
        preset = PRESETS[t.pad_preset]
        voicer = Voicer(tonic_key_of(preset.root_hz), preset.root_hz)
        voicer.last = getattr(self, "_last_voicing", None)
        carrier = carrier_on_grid(t.carrier_hz, t.pad_preset) if t.tones_db > OFF_DB else None
        chords = self._chords(style.mode, role, n, rng)
        bounds = _slots(n, inhale_beats + role.late, len(chords))

        def frame(b: float) -> int:
            i = min(int(b), n - 1)
            return round(beats[i] + (beats[i + 1] - beats[i]) * (b - i))

        vel = round(34 + 26 * energy + 12 * t.warmth)
        sounding = self._accompany(
            (name, style, role, energy, vel), chords, bounds, (voicer, carrier, drop), frame, events
        )
        self._last_voicing = voicer.last
        if role.theme and role.index > 0:  # under a return: what the last phrase closed on
            sounding.insert(0, (0.0, self.theme.beats, self._closing, pure_chords(style.mode)[0]))
        self._closing = sounding[-1][2]
        solo = self.theme.beats if role.theme else 0.0
        self._breath_swell(
            channel(name, 1), (n, inhale_beats, solo), brightness(energy), frame, events
        )
        self._melody(
            style,
            role,
            (n, inhale_beats, energy),
            sounding,
            voicer,
            carrier,
            drop,
            rng,
            frame,
            channel(name, 0),
            events,
        )

    def _accompany(self, what, chords, bounds, voicing, frame, events) -> list[Sounding]:
        """Bass and texture of the phrase's ``chords`` over their beat spans ``bounds``; the
        chords as they sound (beat span, keys, chord)."""
        name, style, role, energy, vel = what
        voicer, carrier, drop = voicing
        sounding: list[Sounding] = []
        for chord, (b0, b1) in zip(chords, bounds, strict=True):
            bass, keys = voicer.voice(
                chord, _range(style.texture, drop), _range(style.bass, drop), carrier
            )
            below = () if bass is None else (bass,)
            sounding.append((b0, b1, below + keys, chord))
            enter = b0
            if role.theme and role.index > 0 and b0 == 0.0:
                # the piece opens with the theme over the tonic; a return comes over the
                # tonic the last phrase closed on, held on (silence under every return was a
                # loudness dip of 8 LU), and then leads to a chord that changes from return
                # to return (form.THEME_CHORDS)
                enter = min(self.theme.beats, b1)
            self._hold(channel(name, 2), below, min(110, vel + 14), frame(enter), events)
            if style.texture_kind == "sustain":
                self._hold(channel(name, 1), keys, vel, frame(enter), events)
            else:
                self._arpeggio(channel(name, 1), keys, (enter, b1), energy, frame, events)
        return sounding

    def _arpeggio(self, ch, keys, span, energy, frame, events) -> None:
        b0, b1 = span
        step = 0.5 if energy > 0.6 else 1.0
        order = list(keys) + list(reversed(keys[1:-1]))
        b, i = b0, 0
        vel = round(30 + 30 * energy)
        while b < b1 - 1e-9:
            key = order[i % len(order)]
            end = min(b1, b + 2 * step)
            events.append((frame(b), ON, ch, key, vel if i % len(order) else vel + 8))
            events.append((frame(end) - 1, OFF, ch, key, 0))
            b += step
            i += 1

    def _breath_swell(self, ch: int, shape, bright: int, frame, events) -> None:
        """The texture opens over the inhale and closes over the exhale: mostly in
        brightness (CC 74), a little in level (CC 11), so the phrase breathes while the
        loudness stays steady; under a statement of the theme (its first ``solo`` beats)
        the texture steps back so the theme stands out."""
        n, inhale, solo = shape
        for b in range(n):
            h = b / inhale if b <= inhale else 1.0 - (b - inhale) / max(n - inhale, 1.0)
            at = frame(float(b))
            level = SWELL_FLOOR + (127 - SWELL_FLOOR) * h
            level *= SOLO_BED if b < solo else 1.0
            events.append((at, CC, ch, CC_EXPRESSION, round(level)))
            opening = BRIGHT_FLOOR + (1.0 - BRIGHT_FLOOR) * h
            events.append((at, CC, ch, CC_BRIGHTNESS, round(bright * opening)))

    def _melody(
        self, style, role, shape_in, sounding, voicer, carrier, drop, rng, frame, ch, events
    ) -> None:
        n, _inhale, energy = shape_in
        mode = MODES[style.mode]
        lo, hi = _range(style.melody, drop)
        base = voicer.tonic_key + 12 * ((lo - voicer.tonic_key + 11) // 12)
        notes = self._melody_notes(role, shape_in, sounding, rng)
        solo = self.theme.beats if role.theme else 0.0
        base += _octave_shift(notes, base, mode, hi)
        previous: int | None = None
        for note in notes:
            _, _, chord_keys, chord = _chord_at(sounding, note.beat)
            strong = note.beats >= 1.0 or float(note.beat).is_integer()
            degree = note.degree
            if style.pentatonic:
                degree = melody.snap_pentatonic(degree, PENTATONIC)
            chord_degrees = tuple((chord.degree + k) % 7 for k in (0, 2, 4))
            degree = previous = melody.fit(degree, chord_degrees, strong, previous)
            key = _key_above(base + 12 * (degree // 7) + mode[degree % 7], lo)
            if strong and not voicer.clean((key, *chord_keys), carrier):
                continue  # a long note that would beat against the chord: a rest instead
            accent = THEME_ACCENT if note.beat < solo else 0
            _play_note(note, key, energy + accent / 36.0, n, frame, ch, events)

    def _melody_notes(self, role, shape_in, sounding, rng) -> list[melody.Note]:
        """The phrase's notes (scale degrees in beats): from the theme (or the second
        motif on B phrases), rising to a peak set by the energy, ending on a cadence note."""
        n, inhale, energy = shape_in
        last_chord = sounding[-1][3]
        # cadence notes: the tonic on I, the fifth's D on V (G rings in the chord), C on IV
        end = {0: 7, 4: 8, 3: 7}.get(last_chord.degree, last_chord.degree)
        start = 2 if role.theme else sounding[0][3].degree
        peak = start + 2 + round(3 * energy) + rng.randint(0, 1)
        shape = melody.PhraseShape(n, inhale, start, peak, end, energy)
        motif: Motif = self.second if role.letter.startswith("B") else self.theme
        return melody.phrase(motif, shape, rng, role.theme)


Sounding = tuple[float, float, tuple[int, ...], Chord]


def _octave_shift(notes: list[melody.Note], base: int, mode: tuple[int, ...], hi: int) -> int:
    """Semitones (0, -12 or -24) that bring the phrase's top note down to ``hi`` at most: one
    octave for the whole phrase, so the line keeps its shape inside the register."""
    top = max(note.degree for note in notes)
    shift = 0
    while base + 12 * (top // 7) + mode[top % 7] + shift > hi and shift > -24:
        shift -= 12
    return shift


def _chord_at(sounding: list[Sounding], beat: float) -> Sounding:
    """The chord sounding at ``beat`` (the last one from its start on)."""
    return next(s for s in sounding if s[0] <= beat < s[1] or s is sounding[-1])


def _key_above(key: int, lo: int) -> int:
    """``key`` raised by octaves until it is at least ``lo``."""
    while key < lo:
        key += 12
    return key


def _play_note(
    note: melody.Note,
    key: int,
    energy: float,
    n: int,
    frame: Callable[[float], int],
    ch: int,
    events: list[Event],
) -> None:
    """Append a melody note's on and off events: louder with energy and height, a little
    detached (:data:`LEGATO`), ended before the phrase ends."""
    vel = max(20, min(100, round(36 + 36 * energy + HEIGHT_VELOCITY * note.height - 8)))
    on = frame(note.beat)
    off = min(frame(note.beat + note.beats * LEGATO), round(frame(float(n))) - 1)
    events.append((on, ON, ch, key, vel))
    events.append((max(on + 1, off), OFF, ch, key, 0))


def _slots(n: int, inhale: float, count: int) -> list[tuple[float, float]]:
    """Beat spans of ``count`` chords over a phrase of ``n`` beats (the first change at
    the top of the breath)."""
    if count == 1:
        return [(0.0, float(n))]
    split = float(max(1, min(n - 1, round(inhale))))
    if count == 2:
        return [(0.0, split), (split, float(n))]
    # the cadence's chord (the tonic of a full cadence) keeps CADENCE_CHORD_BEATS at least:
    # a short IV-V-I tonic left 30-s stretches with little tonic (key correlation 0.797)
    half = round(split + (n - split) / 2)
    mid = float(max(split + 1, min(n - 1, half, n - CADENCE_CHORD_BEATS)))
    return [(0.0, split), (split, mid), (mid, float(n))]
