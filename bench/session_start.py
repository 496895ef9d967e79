"""What a session start costs the loop, and what it costs its worker.

Builds a simulated box (null sink, a fresh state directory whose store holds a learnt
bandit state), then starts and ends ``--starts`` sessions the way a button does: the
request (``prepare_session``) and the start (``apply``) run on the loop's thread, the disk
part (``work``: the program file and the preferences through ``Store.reader()``) on a
worker thread. Prints each part's median and max, the loop's share against the output
buffer, and for comparison the whole start done inline (``start_session``, as before).

    .venv/bin/python bench/session_start.py [--starts 20] [--program wind-down]
"""

from __future__ import annotations

import argparse
import io
import statistics
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from device.box.app import Box, RunOptions
from device.config import Config
from device.store.sessions import Store
from device.therapy.bandit import Chooser
from device.therapy.program import load_program


def ms(values: list[float]) -> str:
    """Median and max in ms."""
    return f"median {statistics.median(values) * 1e3:7.2f} ms  max {max(values) * 1e3:7.2f} ms"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--starts", type=int, default=20)
    parser.add_argument("--program", default="wind-down")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        state = Path(tmp) / "state"
        store = Store(state / "sessions.db")
        chooser = Chooser(profile="default")
        for _ in range(20):
            chooser.choose(load_program(args.program).options)
        store.set_preference("bandit:default", chooser.to_state())
        store.close()
        cfg = Config.defaults().with_value("service.auto_start", False)
        opts = RunOptions(sim=True, audio="null", status="none", state_dir=str(state))
        loop_s: list[float] = []
        work_s: list[float] = []
        inline_s: list[float] = []
        with Box(cfg, opts, status_out=io.StringIO()) as box, ThreadPoolExecutor(1) as worker:
            buffer_s = box.parts.settings.audio.buffer_blocks * box.loop.block_s
            for i in range(args.starts):
                t0 = time.perf_counter()
                request = box.prepare_session(args.program)
                t1 = time.perf_counter()
                plan = worker.submit(request.work).result()
                t2 = time.perf_counter()
                request.apply(plan)
                t3 = time.perf_counter()
                loop_s.append((t1 - t0) + (t3 - t2))
                work_s.append(t2 - t1)
                box.runner.end("bench")
                t4 = time.perf_counter()
                box.start_session(args.program)
                inline_s.append(time.perf_counter() - t4)
                box.runner.end("bench")
                if i == 0:
                    first = (loop_s[0], work_s[0], inline_s[0])
        print(
            f"session starts: {args.starts} x {args.program}, output buffer {buffer_s * 1e3:.0f} ms"
        )
        print(f"  on the loop (prepare + apply):   {ms(loop_s)}")
        print(f"  on the worker (program + prefs): {ms(work_s)}")
        print(f"  start_session, all on the caller: {ms(inline_s)}")
        print(
            f"  first start: loop {first[0] * 1e3:.2f} ms, worker {first[1] * 1e3:.2f} ms, "
            f"inline {first[2] * 1e3:.2f} ms"
        )


if __name__ == "__main__":
    main()
