"""Real-time priority for the box's loop, as far as the system allows it.

The unit (systemd/bedside.service) grants ``LimitRTPRIO=20``; the box then raises itself to
``SCHED_FIFO`` at that priority before it starts any thread, so the audio loop and the
threads it starts (which share its GIL: a worker holding the GIL at a lower priority would
hold the loop up while anything else on the Pi runs) all run ahead of ordinary processes.
The music scan child moves itself down to ``SCHED_IDLE`` (:mod:`device.music.scan`).

The unit does not set ``CPUSchedulingPolicy=fifo`` itself: where the kernel refuses real-time
scheduling to a service (``CONFIG_RT_GROUP_SCHED=y`` without a real-time budget for the
service's cgroup, as some board kernels are built; containers), systemd fails the start
with status 214/SETSCHEDULER and the box would never play. Asked here, a refusal costs only
the priority: the box plays at ``Nice=-10``, logs why once and shows ``sched`` in its status.
"""

from __future__ import annotations

import logging
import os
import resource

log = logging.getLogger(__name__)


def realtime_limit() -> int:
    """The highest SCHED_FIFO priority this process may take (``RLIMIT_RTPRIO``), 0: none."""
    soft, _ = resource.getrlimit(resource.RLIMIT_RTPRIO)
    return 0 if soft == resource.RLIM_INFINITY else int(soft)


def raise_priority(limit: int | None = None) -> str:
    """Take ``SCHED_FIFO`` at the priority the limit grants; say what the process runs at.

    Returns ``"fifo:N"``, or ``"other"`` (no real-time priority granted: a developer's
    shell), or ``"other (refused: ...)"`` when the kernel said no. Never raises.
    """
    prio = realtime_limit() if limit is None else limit
    if prio <= 0:
        return current()
    try:
        os.sched_setscheduler(0, os.SCHED_FIFO, os.sched_param(prio))
    except (OSError, AttributeError) as exc:
        log.warning(
            "real-time priority %d refused (%s): the audio loop runs at normal priority "
            "(a kernel built with CONFIG_RT_GROUP_SCHED gives a service no real-time budget)",
            prio,
            exc,
        )
        return f"other (refused: {exc})"
    log.info("audio loop at SCHED_FIFO priority %d", prio)
    return current()


def current() -> str:
    """The calling thread's scheduling policy: ``"fifo:N"``, ``"rr:N"``, ``"idle"``, ``"other"``."""
    try:
        policy = os.sched_getscheduler(0)
        prio = os.sched_getparam(0).sched_priority
    except (OSError, AttributeError):
        return "other"
    names = {os.SCHED_FIFO: "fifo", os.SCHED_RR: "rr"}
    if policy in names:
        return f"{names[policy]}:{prio}"
    return "idle" if policy == getattr(os, "SCHED_IDLE", -1) else "other"
