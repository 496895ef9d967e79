"""The host's share of CPU the VM really got during a scenario, and what the lab makes of it.

Under TCG every guest CPU is a host thread of the QEMU process. When other jobs on the
CI machine (or the machine's own hypervisor) take the host's cores, those threads wait
on a run queue: the guest's clocks keep running with the host's, so the box in the VM
misses its audio deadlines although it did nothing wrong. The lab must tell that apart
from a failing box (issue 22 item 5).

Measured on the host, from the kernel's own accounting, sampled every second while a
scenario runs:

* ``vm_cpu``: CPU time of the QEMU process (``/proc/PID/stat`` utime+stime, all threads);
* ``vm_wait``: time its threads spent runnable but waiting for a CPU (the second field of
  ``/proc/PID/task/*/schedstat``, the scheduler's run-delay);
* the host's busy and steal time from ``/proc/stat``, of which other processes' share is
  the busy time less the VM's and the lab's own.

``vm_got_pct`` = vm_cpu / (vm_cpu + vm_wait): of the CPU time the VM asked for, the share
it got. The guest's own steal time does not help here: TCG gives the guest no steal
clock (it reads 0 in the VM whatever the host does).
"""

from __future__ import annotations

import itertools
import os
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import values

#: The VM was starved when it got less than this share of the CPU time it asked for ...
GOT_MIN_PCT = 80.0
#: ... while other processes took at least this share of the host (100 = every core). On a
#: quiet 2-core host the VM's own threads (2 vCPUs, QEMU's main loop) wait for each other:
#: measured there, got 83 % with others at 0.2 % (arm64, console scenario).
OTHERS_MIN_PCT = 25.0
#: ... or when the host's own hypervisor stole more than this share of the host's CPUs.
STEAL_MAX_PCT = 10.0
#: Scenarios whose verdict depends on real time (sound deadlines, time bounds): retried once
#: when they fail while the host starved the VM.
REALTIME = ("boot", "audio", "load", "card")

PROC = Path("/proc")


@dataclass(frozen=True)
class Sample:
    """One reading of the host: the VM's CPU and run-queue wait, and the host's /proc/stat."""

    mono: float
    pid: int | None
    vm_cpu_s: float | None
    vm_wait_s: float | None
    lab_cpu_s: float
    host: dict[str, int] | None


def _read(path: Path) -> str:
    try:
        return path.read_text()
    except OSError:  # the process exited, or no such file on this kernel
        return ""


def read_sample(pid: int | None, proc: Path = PROC) -> Sample:
    """Read the host now; every value the kernel does not give is None (never raises)."""
    tck = os.sysconf("SC_CLK_TCK")
    cpu = wait = None
    if pid:
        ticks = values.proc_cpu_ticks(_read(proc / str(pid) / "stat"))
        cpu = sum(ticks) / tck if ticks else None
        waited, seen = 0, False
        try:
            tasks = list((proc / str(pid) / "task").iterdir())
        except OSError:
            tasks = []
        for task in tasks:
            ss = values.schedstat(_read(task / "schedstat"))
            if ss is not None:
                waited += ss[1]
                seen = True
        wait = waited / 1e9 if seen else None
    host = values.proc_stat_cpu(_read(proc / "stat"))
    return Sample(time.monotonic(), pid, cpu, wait, time.process_time(), host)


@dataclass(frozen=True)
class Share:
    """What the host gave the VM over a scenario (percentages; None: not measured)."""

    wall_s: float
    vm_cpu_pct: float | None  # the VM's CPU time over wall time (100 = one host core)
    vm_got_pct: float | None  # of the CPU time the VM asked for, the share it got
    others_pct: float | None  # the host's CPUs taken by other processes (100 = all cores)
    steal_pct: float | None  # the host's CPUs taken by the host's own hypervisor
    starved: bool
    why: str

    def figures(self) -> dict[str, object]:
        return {k: v for k, v in asdict(self).items() if k != "why"}


def decide(
    got_pct: float | None, steal_pct: float | None, others_pct: float | None = None
) -> tuple[bool, str]:
    """Whether the host starved the VM, and the reason in words.

    ``others_pct`` None (not measured) does not clear a low ``got_pct``.
    """
    reasons = []
    others_took = others_pct is None or others_pct >= OTHERS_MIN_PCT
    if got_pct is not None and got_pct < GOT_MIN_PCT and others_took:
        reasons.append(
            f"the VM got {got_pct:.0f}% of the CPU time it asked for (bound "
            f"{GOT_MIN_PCT:.0f}%) while other processes took "
            f"{'?' if others_pct is None else f'{others_pct:.0f}'}% of the host"
        )
    if steal_pct is not None and steal_pct > STEAL_MAX_PCT:
        reasons.append(f"the host's hypervisor stole {steal_pct:.0f}% of its CPUs")
    if reasons:
        return True, "; ".join(reasons)
    if got_pct is None and steal_pct is None:
        return False, "host share not measured"
    return False, "host not starved"


def _pct(part: float, whole: float) -> float | None:
    return round(100.0 * part / whole, 1) if whole > 0 else None


def share(samples: list[Sample]) -> Share:
    """The VM's share over consecutive samples (the VM may change: a boot, a power cut)."""
    if len(samples) < 2:
        return Share(0.0, None, None, None, None, False, "host share not measured")
    first, last = samples[0], samples[-1]
    wall = last.mono - first.mono
    cpu = wait = 0.0
    measured = waited = False
    for a, b in itertools.pairwise(samples):
        # Only over intervals that saw the same QEMU process twice (a new one starts at 0).
        if a.pid is None or a.pid != b.pid or a.vm_cpu_s is None or b.vm_cpu_s is None:
            continue
        if b.vm_cpu_s >= a.vm_cpu_s:
            cpu += b.vm_cpu_s - a.vm_cpu_s
            measured = True
        if a.vm_wait_s is not None and b.vm_wait_s is not None and b.vm_wait_s >= a.vm_wait_s:
            wait += b.vm_wait_s - a.vm_wait_s
            waited = True
    got = _pct(cpu, cpu + wait) if measured and waited else None
    others = steal = None
    if first.host is not None and last.host is not None:
        tck = os.sysconf("SC_CLK_TCK")
        d = {k: (last.host[k] - first.host[k]) / tck for k in first.host}
        capacity = sum(d[k] for k in values.PROC_STAT_COLUMNS[:8])
        busy = d["user"] + d["nice"] + d["system"] + d["irq"] + d["softirq"]
        lab = last.lab_cpu_s - first.lab_cpu_s
        others = _pct(max(0.0, busy - cpu - lab), capacity)
        steal = _pct(d["steal"], capacity)
    starved, why = decide(got, steal, others)
    return Share(
        round(wall, 1),
        _pct(cpu, wall) if measured else None,
        got,
        others,
        steal,
        starved,
        why,
    )


class Meter:
    """Samples the host every ``period`` s in a thread while a scenario runs.

    ``pid_of`` gives the current QEMU process id (None between boots).
    """

    def __init__(
        self, pid_of: Callable[[], int | None], period: float = 1.0, proc: Path = PROC
    ) -> None:
        self.pid_of, self.period, self.proc = pid_of, period, proc
        self.samples: list[Sample] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _pid(self) -> int | None:
        try:
            return self.pid_of()
        except Exception:  # the lab's VM object is being replaced: no VM this instant
            return None

    def _run(self) -> None:
        while True:
            self.samples.append(read_sample(self._pid(), self.proc))
            if self._stop.wait(self.period):
                break

    def start(self) -> Meter:
        self._thread.start()
        return self

    def stop(self) -> Share:
        self._stop.set()
        self._thread.join()
        self.samples.append(read_sample(self._pid(), self.proc))
        return share(self.samples)


def step(ok: bool, host: Share, name: str, attempt: int) -> str:
    """What the lab does after a try of scenario ``name``.

    ``pass``; ``retry`` (a real-time scenario failed on its first try while the host
    starved the VM); ``starved`` (it failed again, again starved: the lab could not
    measure the box, it does not blame it); ``FAIL`` (the box failed on a host that
    gave the VM what it asked for, or a scenario that does not depend on real time).
    """
    if ok:
        return "pass"
    if not host.starved or name not in REALTIME:
        return "FAIL"
    return "retry" if attempt == 1 else "starved"
