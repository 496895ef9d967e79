"""SIGKILL test of the session store: kill the writer at random moments, many times.

A killed process is not a power cut (the kernel still writes back what it was given); the
power cut needs the lab VM and is not tested here.

Each writer behaves like the Box: it produces a row every 0.1 s, hands the rows to the
store once per second (one transaction), and writes events in between so that a kill
often lands inside a transaction. After every kill the database must open, pass
``PRAGMA integrity_check``, keep every row of earlier runs, and hold every row produced
more than one hand-over period (plus a small scheduling margin) before the kill.
"""

from __future__ import annotations

import os
import random
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path

from device.store.sessions import Store

HANDOVER_S = 1.0  # the Box's once-per-second hand-over
#: Commit time (fsync) and process scheduling on a loaded CI machine.
MARGIN_S = 0.25
LANES = 5
KILLS_PER_LANE = 11  # 55 kills in all

WRITER = r"""
import sys, time
from device.store.sessions import Store
store = Store(sys.argv[1])
sid = store.start_session("crash-test", sys.argv[2])
print(sid, flush=True)
buffer, next_row, next_handover, n = [], time.time(), time.time() + HANDOVER, 0
while True:
    now = time.time()
    if now >= next_row:
        buffer.append({"t": now, "hr": 60.0 + n % 7, "quality": 0.9, "contact": True})
        next_row += 0.1
        n += 1
    if now >= next_handover:
        store.add_rows(sid, buffer)
        buffer = []
        next_handover += HANDOVER
    store.add_event(sid, now, "tick", "x" * (n % 50))
    if n % 10 == 0:
        store.set_preference("bandit:" + sys.argv[2], {"n": n, "pad": "y" * (n % 300)})
    time.sleep(0.03)
""".replace("HANDOVER", repr(HANDOVER_S))


def run_lane(lane: int, path: Path, seed: int, failures: list[str], checks: list[int]) -> None:
    rng = random.Random(seed)
    env = dict(os.environ, PYTHONPATH=str(Path(__file__).resolve().parents[1]))
    total_rows = 0
    for k in range(KILLS_PER_LANE):
        proc = subprocess.Popen(
            [sys.executable, "-c", WRITER, str(path), f"lane{lane}"],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=env,
        )
        assert proc.stdout is not None
        line = proc.stdout.readline()
        if not line.strip():
            failures.append(f"lane {lane} run {k}: writer did not start: {proc.stderr.read()!r}")
            proc.kill()
            proc.wait()
            return
        sid = int(line)
        started = time.time()
        time.sleep(rng.uniform(0.2, 2.3))
        killed_at = time.time()
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        proc.stdout.close()
        proc.stderr.close()
        # The database opens (WAL recovery) and is intact.
        db = sqlite3.connect(path)
        check = db.execute("PRAGMA integrity_check").fetchone()[0]
        db.close()
        if check != "ok":
            failures.append(f"lane {lane} run {k}: integrity_check says {check!r}")
            return
        try:
            with Store(path) as store:
                rows = [r["t"] for s in store.sessions() for r in store.rows(s["id"])]
                mine = [r["t"] for r in store.rows(sid)]
        except Exception as exc:
            failures.append(f"lane {lane} run {k}: store does not open: {exc}")
            return
        if len(rows) < total_rows:
            failures.append(f"lane {lane} run {k}: rows of earlier runs lost")
        total_rows = len(rows)
        if killed_at - started > HANDOVER_S + MARGIN_S:
            newest = max(mine, default=started)
            lost_s = killed_at - newest
            if lost_s > HANDOVER_S + MARGIN_S:
                failures.append(
                    f"lane {lane} run {k}: lost {lost_s:.2f} s of rows "
                    f"(killed {killed_at - started:.2f} s after start)"
                )
        checks.append(1)


def test_sigkill_at_random_moments_loses_at_most_the_last_second(tmp_path: Path):
    failures: list[str] = []
    checks: list[int] = []
    seed = int(os.environ.get("BEDSIDE_CRASH_SEED", "7"))
    threads = [
        threading.Thread(
            target=run_lane, args=(i, tmp_path / f"lane{i}.db", seed + i, failures, checks)
        )
        for i in range(LANES)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert failures == []
    assert len(checks) == LANES * KILLS_PER_LANE >= 50
