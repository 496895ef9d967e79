"""A session start prepared off the loop, and the worker that prepares the buttons' and boot's.

A session start reads the disk twice: the program file and the profile's learnt preferences
(the bandit's and the resonance estimate's state). Neither may happen in the loop, whose next
block is due within the output buffer. :meth:`~device.box.session_runner.SessionRunner.prepare`
returns an :class:`~device.box.api.OffLoop` whose ``work`` does both on a worker thread and
gives a :class:`SessionStart`; its ``apply`` starts the session with it, on the loop.

The console runs that ``work`` on its own worker (:mod:`device.console.deferred_runner`);
the buttons and the boot auto-start run it on a :class:`StartWorker`: one thread, at most one
start being prepared at a time.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from device.box.api import OffLoop
from device.config.settings import SessionSettings
from device.exc import BedsideError, ProgramError
from device.store.keys import bandit_key, resonance_key
from device.therapy.bandit import Chooser
from device.therapy.program import Program, list_programs, load_program
from device.therapy.resonance import ResonanceEstimate

#: Reads preferences off the loop: ``(values by key, storage fault text or None)``.
PreferenceRead = Callable[[], tuple[dict[str, object], str | None]]


@dataclass(frozen=True, slots=True)
class SessionStart:
    """Everything a session start needs from the disk, read off the loop."""

    #: The program to play.
    program: Program
    #: Session length asked for, minutes (``None``: the program's own).
    minutes: float | None
    #: The session settings of the running config when the start was asked for.
    settings: SessionSettings
    #: The profile's stored preferences by key (``None``: nothing stored).
    preferences: Mapping[str, object]
    #: Text of the storage fault met while reading them (``None``: none).
    storage_error: str | None = None
    #: The store's id of the session, once started (``None``: not started or not recorded).
    session_id: int | None = None

    def chooser(self, seed: int) -> Chooser | None:
        """The personalisation's chooser, continuing from the learnt state (``None``: off).

        :raises ValueError: the stored state is malformed.
        """
        s = self.settings
        if not s.personalise:
            return None
        state = self.preferences.get(bandit_key(s.profile))
        if isinstance(state, dict) and state:
            return Chooser.from_state(state, seed=seed, profile=s.profile)
        return Chooser(seed=seed, profile=s.profile)

    def resonance(self) -> ResonanceEstimate:
        """The profile's resonance estimate (a fresh one when none is stored)."""
        profile = self.settings.profile
        return ResonanceEstimate.from_state(self.preferences.get(resonance_key(profile)), profile)


def preference_keys(settings: SessionSettings) -> list[str]:
    """The preferences a session start of ``settings``' profile reads."""
    keys = [resonance_key(settings.profile)]
    if settings.personalise:
        keys.append(bandit_key(settings.profile))
    return keys


def find_program(name: str, dirs: Sequence[Path]) -> Program:
    """Load the program ``name`` (or a file path); a name not found as it is spelt matches a
    program on offer case-insensitively (every program file is read then).

    :raises ProgramError: no such program, or it is invalid.
    """
    try:
        return load_program(name, dirs)
    except ProgramError as exc:
        if "/" in name or name.endswith(".toml"):
            raise
        missing = exc
    try:
        programs = list_programs(dirs)
    except (OSError, BedsideError):
        programs = []  # the first error says what is wrong
    for program in programs:
        if program.name.lower() == name.lower():
            return program
    raise missing


def start_work(
    program: str | Program,
    dirs: Sequence[Path],
    minutes: float | None,
    settings: SessionSettings,
    read_preferences: PreferenceRead,
) -> Callable[[], SessionStart]:
    """The disk half of a session start: safe on any thread (it touches no loop state)."""

    def work() -> SessionStart:
        prog = program if isinstance(program, Program) else find_program(program, dirs)
        found, fault = read_preferences()
        return SessionStart(prog, minutes, settings, found, fault)

    return work


class _Pending:
    __slots__ = ("apply", "cancelled", "future", "on_cancel", "on_error")

    def __init__(
        self,
        future: Future[SessionStart],
        apply: Callable[[SessionStart], SessionStart],
        on_error: Callable[[Exception], None],
        on_cancel: Callable[[], None] | None,
    ) -> None:
        self.future, self.apply = future, apply
        self.on_error, self.on_cancel = on_error, on_cancel


class StartWorker:
    """Prepares session starts on one worker thread (started on first use), one at a time.

    :param wait: finish each start at the request (the worker still does the work): for a
        loop on a virtual clock, which no sound card paces and which cannot underrun, so
        that a render is the same on every run.
    """

    def __init__(self, *, wait: bool = False) -> None:
        self.wait = wait
        self._executor: ThreadPoolExecutor | None = None
        self._pending: _Pending | None = None

    @property
    def preparing(self) -> bool:
        """True while a start is being prepared (its ``apply`` has not run yet)."""
        return self._pending is not None

    def request(
        self,
        job: OffLoop[SessionStart],
        on_error: Callable[[Exception], None],
        on_cancel: Callable[[], None] | None = None,
    ) -> bool:
        """Run ``job.work`` on the worker; :meth:`poll` applies it on the loop once done.

        ``on_error`` gets what ``work`` or ``apply`` raised, on the loop; ``on_cancel`` runs
        when :meth:`cancel` drops the start. Returns False (and does nothing) while another
        start is being prepared: a second press never starts a second session.
        """
        if self._pending is not None:
            return False
        if self._executor is None:
            self._executor = ThreadPoolExecutor(1, thread_name_prefix="box-start")
        future = self._executor.submit(job.work)
        self._pending = _Pending(future, job.apply, on_error, on_cancel)
        if self.wait:
            future.exception()  # waits for the work; its outcome is applied just below
            self.poll()
        return True

    def poll(self) -> None:
        """On the loop: start the prepared session once its work is done (cheap otherwise)."""
        pending = self._pending
        if pending is None or not pending.future.done():
            return
        self._pending = None
        try:
            pending.apply(pending.future.result())
        except Exception as exc:  # the box plays on; the caller logs and events it
            pending.on_error(exc)

    def cancel(self) -> bool:
        """Drop the start being prepared (work already running ends unused); True if any."""
        pending, self._pending = self._pending, None
        if pending is None:
            return False
        pending.future.cancel()
        if pending.on_cancel is not None:
            pending.on_cancel()
        return True

    def close(self) -> None:
        """Drop the pending start and stop the worker (work not started is cancelled).

        Idempotent."""
        self._pending = None
        if self._executor is not None:
            self._executor.shutdown(wait=False, cancel_futures=True)
            self._executor = None

    def __repr__(self) -> str:
        return f"<StartWorker {'preparing' if self.preparing else 'idle'}>"
