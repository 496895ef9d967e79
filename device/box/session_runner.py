"""The session's life on the box: idle, starting, playing, ending, stopping; start and stop.

:class:`SessionRunner` owns the one :class:`~device.therapy.session.TherapySession` the box
may play, its state (:class:`State`), and the sound around it: the jump to the program's
sound while silent, the fade-in and start chime, the therapy's targets four times a
second, the fade-out on a stop or at the program's end, and the amplifier switched on
before each session and off after it. Events go to the :class:`~device.store.recorder.Recorder`.
"""

from __future__ import annotations

import enum
import logging
import secrets
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

from device.box.api import OffLoop
from device.box.session_start import SessionStart, preference_keys, start_work
from device.config.settings import SessionSettings
from device.controls.panel import Controls
from device.exc import StateError
from device.heart.feed import SessionHeart
from device.music.composer.voice import composer_in, composer_stand_in
from device.music.player import MusicPlayer, stand_in
from device.sound.engine import Engine
from device.sound.targets import OFF_DB, SoundTargets
from device.store.keys import bandit_key, resonance_key, tracks_key
from device.store.recorder import Recorder
from device.therapy.program import Program, list_programs
from device.therapy.resonance import ResonanceEstimate
from device.therapy.session import TherapySession

log = logging.getLogger(__name__)

#: Control tick of the therapy (targets to the engine), seconds.
THERAPY_PERIOD_S = 0.25


class State(enum.StrEnum):
    """Where the box is in its life; the status shows the value."""

    #: Booting: the output buffer is being primed.
    STARTING = "starting"
    #: No session; the sensor is dark.
    IDLE = "idle"
    #: A session plays its sections.
    PLAYING = "playing"
    #: A session plays its program's ending.
    ENDING = "ending"
    #: A session is fading out after a stop.
    STOPPING_SESSION = "stopping-session"
    #: The box fades out a session to exit.
    STOPPING = "stopping"
    #: The box fades out (no session) to exit.
    EXITING = "exiting"
    #: The run is over.
    STOPPED = "stopped"


#: States in which a session plays (and may be stopped).
ON_AIR = (State.PLAYING, State.ENDING)
#: States in which a session exists.
IN_SESSION = (State.PLAYING, State.ENDING, State.STOPPING_SESSION)


class SessionRunner:
    """Start, run and stop the box's therapy session.

    :param engine: the sound engine.
    :param heart: the pulse sensor and its analysis.
    :param recorder: where rows, events and ratings go.
    :param controls: buttons, LED and amplifier (``None``: none).
    :param clock: loop time, s.
    :param settings: the session settings of the running config, read at each start.
    :param seed: seed of the sessions' and the personalisation's choices (a simulated run,
        for repeatable runs); ``None`` draws a fresh one for each session.
    :param music: the listener's music (``None``: none).
    :param closed_loop: pace by the heart (the box); False plays the program's plain
        timeline (a render without a listener).
    """

    def __init__(
        self,
        engine: Engine,
        heart: SessionHeart,
        recorder: Recorder,
        controls: Controls | None,
        clock: Callable[[], float],
        settings: Callable[[], SessionSettings],
        *,
        seed: int | None = None,
        music: MusicPlayer | None = None,
        closed_loop: bool = True,
    ) -> None:
        self.engine = engine
        self.closed_loop = closed_loop
        #: The listener's music (``None``: none); it plays in sessions whose music_db is on.
        self.music = music
        self._music_on = False
        #: The engine's composer (``None``: none): the pad stands in while it cannot play.
        self._composer = composer_in(engine.voices)
        self.heart = heart
        self.recorder = recorder
        self.controls = controls
        self._clock = clock
        self._settings = settings
        self.seed = seed
        self.state = State.STARTING
        self.session: TherapySession | None = None
        #: The sound targets last given to the engine (``None`` before the first session).
        self.targets: SoundTargets | None = None
        self.t0 = 0.0
        self._end_t: float | None = None
        self.stop_reason: str | None = None
        #: Why the last session ended (``None``: none has ended yet).
        self.end_reason: str | None = None
        #: The program a start without one plays (``--program``), over ``therapy.program``.
        self.default_program: str | None = None
        self._resonance: ResonanceEstimate | None = None
        first = settings()
        self._stop_fade_s = first.stop_fade_s
        self._profile = first.profile

    # -- programs ---------------------------------------------------------------------------

    def program_dirs(self) -> list[Path]:
        """Where programs are looked for."""
        return [Path(self._settings().programs_dir)]

    def programs(self) -> list[Program]:
        """The programs available (built-in and user)."""
        return list_programs(self.program_dirs())

    # -- start and stop ---------------------------------------------------------------------

    def prepare(
        self, program: str | Program | None = None, minutes: float | None = None
    ) -> OffLoop[SessionStart]:
        """A session start in two halves (call on the loop): ``work`` reads the program
        (default: the configured one; a :class:`Program` plays as it is) and the profile's
        preferences on any thread; ``apply`` starts the session on the loop (no disk).

        :raises StateError: a session plays, or the box is shutting down (here and at apply).
        :raises ValueError: ``minutes`` is not within 0..1440.
        """
        self._can_start()
        if minutes is not None and not (0 < minutes <= 24 * 60):
            raise ValueError(f"minutes must be between 0 and 1440, not {minutes}")
        s = self._settings()
        read = self.recorder.preferences_job(preference_keys(s))
        name = program or self.default_program or s.program
        work = start_work(name, self.program_dirs(), minutes, s, read)
        return OffLoop(work, lambda plan: replace(plan, session_id=self.begin(plan)))

    def start(
        self, program: str | Program | None = None, minutes: float | None = None
    ) -> int | None:
        """:meth:`prepare` and start a session on the calling thread (which may block); its
        store id (``ProgramError``: the program does not exist or is invalid)."""
        return self.prepare(program, minutes).run().session_id

    def _can_start(self) -> None:
        if self.state in IN_SESSION:
            raise StateError(f"a session is already {self.state}; stop it first")
        if self.state in (State.EXITING, State.STOPPING, State.STOPPED):
            raise StateError("the box is shutting down")

    def begin(self, plan: SessionStart) -> int | None:
        """Start the session ``plan`` prepared, now; its store id (``StateError`` as above)."""
        self._can_start()
        s, prog, minutes = plan.settings, plan.program, plan.minutes
        if plan.storage_error is not None:
            self.recorder.fault(plan.storage_error)
        self._stop_fade_s = s.stop_fade_s
        self._profile = s.profile
        seed = secrets.randbits(32) if self.seed is None else self.seed
        # The profile's resonance estimate: the loop assesses or paces at it as its plan says.
        resonance = plan.resonance()
        self.heart.standby(False)
        self.session = TherapySession(
            prog,
            pacer_target_bpm=s.pacer_target_bpm,
            seed=seed,
            chooser=plan.chooser(seed),
            closed_loop=self.closed_loop,
            resonance=resonance,
        )
        self._resonance = resonance
        now = self._clock()
        self.t0 = now
        self._end_t = None if minutes is None else minutes * 60.0
        self.state = State.PLAYING
        self.targets = self.session.update(0.0, self.heart.snapshot(now))
        if self.controls is not None:
            self.controls.amp(True)  # on at once: the output is quiet before a session
        # While silent the engine jumps straight to the program's sound (no glide), then fades in.
        self.engine.set_targets(self.targets, immediate=True)
        self.engine.fade_in(s.fade_in_s)
        self.engine.chime("start")
        self._music_on = False
        self._tick_music(0.0, 0.0)
        # The store hands out the id at once and queues the insert for its writer thread.
        session_id = self.recorder.start_session(prog.name, s.profile)
        length_s = prog.duration_s if minutes is None else minutes * 60.0
        self.recorder.event("start", f"program={prog.name} minutes={length_s / 60:g}")
        return session_id

    def stop(self, reason: str = "stop") -> None:
        """Fade the session out within the stop fade (at most 2 s), then go idle.

        :raises StateError: no session is playing.
        """
        if self.state not in ON_AIR:
            raise StateError(f"no session is playing (state {self.state})")
        self.engine.fade_out(self._stop_fade_s)
        self.stop_reason = reason
        self.state = State.STOPPING_SESSION

    def rate(self, kind: str) -> None:
        """Rate what plays: ``like`` or ``skip`` (teaches the personalisation).

        :raises ValueError: another kind. :raises StateError: no session plays.
        """
        kind = kind.lower()
        if kind not in ("like", "skip"):
            raise ValueError(f"rating must be like or skip, not {kind!r}")
        if self.session is None:
            raise StateError("no session is playing")
        self.session.rate(kind)
        if self.music is not None and self._music_on:
            if kind == "like":
                self.music.like()
            else:
                self.music.skip()
        self.recorder.rating(kind)
        self.recorder.event("rating", kind)

    def boot_failed(self, exc: Exception) -> None:
        """The first session cannot start: a bad program must not stop the box; it waits idle."""
        log.error("cannot start the session: %s", exc)
        if self.state == State.STARTING:
            self.state = State.IDLE

    def idle(self) -> None:
        """Wait idle with the sensor dark (after the boot, when no session starts)."""
        if self.state == State.STARTING:
            self.state = State.IDLE
            self.heart.standby(True)

    def begin_exit(self, reason: str) -> None:
        """Fade out (within the stop fade) to end the run."""
        self.engine.fade_out(self._stop_fade_s)
        self.stop_reason = reason
        self.state = State.STOPPING if self.state in IN_SESSION else State.EXITING

    # -- the control tick -------------------------------------------------------------------

    def tick(self, deadline: float) -> float:
        """Loop task: heart to therapy to engine, four times a second; ends and stops."""
        now = self._clock()
        heart = self.heart.update(now)
        session = self.session
        if session is not None and self.state in ON_AIR:
            st = now - self.t0
            wanted = stand_in(session.update(st, heart), self.music)
            self.targets = composer_stand_in(wanted, self._composer)
            self.engine.set_targets(self.targets)
            self._tick_music(st, THERAPY_PERIOD_S, heart.hr_bpm, heart.coherence)
            if self.state == State.PLAYING and st >= session.program.body_s:
                self.state = State.ENDING  # the program's ending plays now
            self._drain_events()
            if self._end_t is not None and st >= self._end_t:
                self.stop(reason="time")
            elif session.finished(st):
                self.end("program-end")
        if self.state == State.STOPPING_SESSION and self.engine.faded_out:
            self.end(self.stop_reason or "stop")
        return deadline + THERAPY_PERIOD_S

    def _tick_music(
        self, st: float, dt_s: float, hr: float | None = None, coh: float | None = None
    ) -> None:
        """Start the music once the session's targets ask for it, then steer and credit it."""
        music, session, targets = self.music, self.session, self.targets
        if music is None or session is None or targets is None:
            return
        if not self._music_on and targets.music_db > OFF_DB:
            music.start()
            self._music_on = True
        if self._music_on:
            duration = self._end_t or session.timeline.duration_s
            music.tick(dt_s, progress=st / max(1.0, duration), hr_bpm=hr, coherence=coh)

    def _drain_events(self) -> None:
        if self.session is None:
            return
        for t, kind, detail in self.session.drain_events():
            if kind == "start":
                continue  # begin() recorded the start, with the length this session plays
            if kind == "chime":
                self.engine.chime(detail)
            self.recorder.event(kind, detail, t=self.t0 + t)

    def record_beats(self) -> None:
        """Hand the beats found since the last call to the recorder, in session seconds
        (beats outside a session are dropped)."""
        beats = self.heart.take_beats()
        if self.session is None or not beats:
            return
        t0 = self.t0
        self.recorder.add_beats([(round(t - t0, 3), rr, ok) for t, rr, ok in beats if t >= t0])

    def end(self, reason: str) -> None:
        """End the session now: record its end, fade out, amplifier off once quiet, idle."""
        self.record_beats()
        session = self.session
        prefs: dict[str, object] = {}
        if session is not None:
            # Tells the chooser how a session that ends early went, and records its stop.
            session.stop(self._clock() - self.t0, reason)
            self._drain_events()
            if session.chooser is not None:
                prefs[bandit_key(self._profile)] = session.chooser.to_state()
            if self.music is not None and self._music_on:
                prefs[tracks_key(self._profile)] = self.music.chooser.to_state()
            measured = session.measurements()
            estimate = self._resonance
            if estimate is not None and measured is not None and estimate.update(measured):
                prefs[resonance_key(estimate.profile)] = estimate.to_state()
        else:
            self.recorder.event("stop", reason)  # as the session's own stop event says it
        self.recorder.end_session(reason, prefs, self.heart.hrv_summary())
        self.end_reason = reason
        self.engine.fade_out(self._stop_fade_s)
        if self.controls is not None:
            self.controls.amp(False)  # off once the output has been quiet for 0.2 s
        self.session = None
        if self.state not in (State.STOPPING, State.EXITING):
            self.state = State.IDLE
        self.heart.standby(True)

    # -- reporting --------------------------------------------------------------------------

    def playing(self) -> bool:
        """True while a session exists (playing, ending or fading after a stop)."""
        return self.session is not None

    def pacer_bpm(self) -> float | None:
        """The breathing pacer the listener hears now (``None``: none)."""
        if self.targets is None or self.state not in ON_AIR:
            return None
        return self.targets.pacer_bpm

    def status(self, now: float) -> dict[str, object]:
        """The session's part of the box status."""
        session = self.session
        sstat = session.status() if session is not None else {}
        remaining = sstat.get("remaining_s")
        if self._end_t is not None and session is not None:
            left = self._end_t - (now - self.t0)
            remaining = left if not isinstance(remaining, int | float) else min(remaining, left)
        targets = self.targets if session is not None else None
        return {
            "state": str(self.state),
            "program": None if session is None else session.program.name,
            "section": sstat.get("section"),
            "elapsed_s": (now - self.t0) if session is not None else None,
            "remaining_s": remaining,
            "pacer": sstat.get("pacer_bpm", None if targets is None else targets.pacer_bpm),
            "loop_state": sstat.get("loop_state"),
            "chosen": sstat.get("chosen"),
            "why": sstat.get("why"),
            "loop_reason": sstat.get("loop_reason"),
            "targets": targets,
        }

    def __repr__(self) -> str:
        name = None if self.session is None else self.session.program.name
        return f"<SessionRunner {self.state} program={name}>"
