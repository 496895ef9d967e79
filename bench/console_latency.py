"""Console benchmark: ``STATUS?`` reply time on a pty while audio runs, and a command flood.

Starts ``bedside run --sim --audio null --speed 1`` (audio rendered and paced in real time)
with its console on one end of a socat pty pair, and talks on the other end:

0. Nothing asked for a few seconds: the box's own rate of late blocks, for comparison.
1. ``STATUS?`` asked N times, one at a time: reply time from the write to the final line
   (p50/p99/max; the issue's target is p99 <= 20 ms).
2. 1,000 commands written as fast as the port takes them (``STATUS?``, ``PING``, ``VOL?``,
   ``HELP VOL``), all answered in order: total time and the box's underruns, late blocks (a
   render+tasks turn longer than one block, which would be an underrun on a sound card with
   a shallow buffer) and task overruns before and after.

Run: ``.venv/bin/python bench/console_latency.py [--status-count 500] [--flood 1000]``
"""

from __future__ import annotations

import argparse
import contextlib
import os
import random
import select
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import tty
from pathlib import Path

from benchbox import box_env, pty_pair, stop

REPO = Path(__file__).resolve().parent.parent


def parse(line: str) -> dict[str, str]:
    sys.path.insert(0, str(REPO))
    from device.console.protocol import parse_pairs

    return parse_pairs(line)


class Term:
    """The technician's end of the pty pair."""

    def __init__(self, path: str) -> None:
        self.fd = os.open(path, os.O_RDWR | os.O_NOCTTY | os.O_NONBLOCK)
        tty.setraw(self.fd)
        self.buf = bytearray()

    def pump(self, timeout: float) -> None:
        ready, _, _ = select.select([self.fd], [], [], timeout)
        if ready:
            with contextlib.suppress(BlockingIOError):
                self.buf += os.read(self.fd, 65536)

    def line(self, timeout: float = 10.0) -> str:
        deadline = time.perf_counter() + timeout
        while True:
            i = self.buf.find(b"\r\n")
            if i >= 0:
                text = self.buf[:i].decode()
                del self.buf[: i + 2]
                return text
            left = deadline - time.perf_counter()
            if left <= 0:
                raise TimeoutError("no line")
            self.pump(min(left, 0.05))

    def write_all(self, data: bytes) -> None:
        view = memoryview(data)
        while view:
            _, ready, _ = select.select([], [self.fd], [], 0.05)
            if ready:
                with contextlib.suppress(BlockingIOError):
                    view = view[os.write(self.fd, view) :]
            self.pump(0)

    def ask(self, command: str) -> tuple[list[str], str]:
        os.write(self.fd, command.encode() + b"\r\n")
        data = []
        while True:
            line = self.line()
            if line.startswith("!"):
                continue
            if line == "OK" or line.startswith(("OK ", "ERR ")):
                return data, line
            data.append(line)


def health(term: Term) -> dict[str, str]:
    data, final = term.ask("STATUS? #h")
    assert final == "OK #h", final
    return parse(data[0])


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--status-count", type=int, default=500)
    ap.add_argument("--flood", type=int, default=1000)
    ap.add_argument(
        "--block-frames",
        type=int,
        default=1024,
        help="audio.block_frames of the box (the loop polls the console once per block)",
    )
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="bedside-bench-"))
    pair, box_tty, tech_tty = pty_pair(tmp)
    cfg = tmp / "config.toml"
    cfg.write_text(f"[service]\nauto_start = true\n[audio]\nblock_frames = {args.block_frames}\n")
    env = box_env(tmp, cfg)
    box = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "device",
            "run",
            "--sim",
            "--audio",
            "null",
            "--speed",
            "1",
            "--serial",
            box_tty,
            "--config",
            str(cfg),
            "--state-dir",
            str(tmp / "state"),
            "--status",
            "none",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env=env,
    )
    try:
        term = Term(tech_tty)
        while not term.line(30).startswith("!READY"):
            pass
        time.sleep(1.0)  # let the session start and the audio settle
        idle_s = 5.0
        before_idle = health(term)
        time.sleep(idle_s)
        before = health(term)
        idle_rate = (int(before["late_blocks"]) - int(before_idle["late_blocks"])) / idle_s
        print(
            f"audio.block_frames = {args.block_frames} "
            f"({args.block_frames / 48:.1f} ms per block at 48 kHz)"
        )
        print(
            f"no console traffic for {idle_s:g} s: {idle_rate:.1f} late blocks/s, "
            f"underruns {before['underruns']}"
        )
        t_lat = time.perf_counter()

        rng = random.Random(1)
        for label, think_ms in (("back to back", 0.0), ("at a random phase", 30.0)):
            times = []
            for i in range(args.status_count):
                if think_ms:
                    time.sleep(rng.uniform(0.0, think_ms) / 1000.0)
                t0 = time.perf_counter()
                data, final = term.ask(f"STATUS? #s{i % 1000}")
                times.append((time.perf_counter() - t0) * 1000.0)
                assert final == f"OK #s{i % 1000}" and len(data) == 1, (data, final)
            times.sort()
            p50 = statistics.median(times)
            p99 = times[min(len(times) - 1, int(0.99 * len(times)))]
            print(f"STATUS? reply time on a pty while audio plays, {len(times)} requests {label}:")
            print(
                f"  p50 {p50:.2f} ms   p99 {p99:.2f} ms   max {times[-1]:.2f} ms"
                "   (target p99 <= 20 ms)"
            )

        lat_s = time.perf_counter() - t_lat
        mid = health(term)
        lat_rate = (int(mid["late_blocks"]) - int(before["late_blocks"])) / lat_s
        print(f"  while answering: {lat_rate:.1f} late blocks/s, underruns {mid['underruns']}")
        kinds = ["STATUS?", "PING", "VOL?", "HELP VOL"]
        burst = b"".join(f"{kinds[i % 4]} #f{i}\r\n".encode() for i in range(args.flood))
        t0 = time.perf_counter()
        term.write_all(burst)
        expect = 0
        while expect < args.flood:
            line = term.line(60)
            if line.startswith(("OK #f", "ERR")):
                assert line == f"OK #f{expect}", (line, expect)
                expect += 1
        flood_s = time.perf_counter() - t0
        after = health(term)
        print(f"{args.flood} commands written as fast as the port takes them:")
        print(f"  all answered in order in {flood_s:.2f} s ({args.flood / flood_s:.0f} commands/s)")
        flood_late = int(after["late_blocks"]) - int(mid["late_blocks"])
        print(
            f"  late blocks during the flood: {flood_late} "
            f"(at the idle rate: {idle_rate * flood_s:.0f})"
        )
        for key in ("underruns", "overruns"):
            print(
                f"  {key}: before {before.get(key)}  after the latency runs {mid.get(key)}  "
                f"after the flood {after.get(key)}"
            )
        print(f"  state {after.get('state')}  program {after.get('program')}")
        return 0
    finally:
        stop(box, pair)
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
