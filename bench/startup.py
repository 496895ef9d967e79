"""Start-up time: from process start to READY=1 (sd_notify), the way systemd measures it.

Runs ``bedside run --sim --audio null`` several times with ``NOTIFY_SOCKET`` pointing at a
datagram socket this script listens on, and times each run from just before the process
is spawned to the arrival of ``READY=1``. Also reports the cost of the imports alone
(``python -X importtime``) so a regression can be traced to a module.

Target (issue 7): READY=1 within 1.5 s on the dev machine.

    .venv/bin/python bench/startup.py [--runs N] [--service]
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

TARGET_S = 1.5


def bedside_command() -> list[str]:
    exe = Path(sys.executable).with_name("bedside")
    if exe.exists():
        return [str(exe)]
    return [sys.executable, "-m", "device"]


def one_run(extra: list[str], timeout_s: float) -> tuple[float, list[str]]:
    """Seconds from spawn to READY=1, and every notify message seen until then."""
    tmp = Path(tempfile.mkdtemp(prefix="bedside-startup-"))
    path = tmp / "notify.sock"
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(str(path))
    env = dict(os.environ, NOTIFY_SOCKET=str(path))
    env.pop("BEDSIDE_CONFIG", None)
    cmd = [
        *bedside_command(),
        "run",
        "--sim",
        "--audio",
        "null",
        "--status",
        "none",
        "--state-dir",
        str(tmp / "state"),
        *extra,
    ]
    seen: list[str] = []
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    ready_at: float | None = None
    try:
        while ready_at is None:
            left = timeout_s - (time.perf_counter() - t0)
            if left <= 0:
                break
            sock.settimeout(min(left, 0.5))
            try:
                data = sock.recv(4096)
            except TimeoutError:
                if proc.poll() is not None:
                    break
                continue
            now = time.perf_counter()
            for line in data.decode(errors="replace").splitlines():
                seen.append(line)
                if line == "READY=1":
                    ready_at = now - t0
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
        try:
            _, err = proc.communicate(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            _, err = proc.communicate()
        sock.close()
        shutil.rmtree(tmp, ignore_errors=True)
    if ready_at is None:
        tail = err.decode(errors="replace").strip().splitlines()[-5:]
        raise SystemExit(
            f"no READY=1 within {timeout_s} s (exit {proc.returncode}); stderr tail:\n  "
            + "\n  ".join(tail)
        )
    return ready_at, seen


def import_cost() -> list[tuple[float, str]]:
    """The heaviest imports of a short run (cumulative ms), from ``-X importtime``."""
    with tempfile.TemporaryDirectory(prefix="bedside-importtime-") as tmp:
        r = subprocess.run(
            [
                sys.executable,
                "-X",
                "importtime",
                "-m",
                "device",
                "run",
                "--sim",
                "--audio",
                "null",
                "--status",
                "none",
                "--duration",
                "0.2",
                "--state-dir",
                tmp,
            ],
            capture_output=True,
            text=True,
            check=False,
            env={
                k: v for k, v in os.environ.items() if k not in ("NOTIFY_SOCKET", "BEDSIDE_CONFIG")
            },
        )
    rows = []
    for line in r.stderr.splitlines():
        m = re.match(r"import time:\s+\d+ \|\s+(\d+) \|( *)(\S+)", line)
        if m and len(m.group(2)) == 1:  # top-level imports only
            rows.append((int(m.group(1)) / 1000.0, m.group(3)))
    return sorted(rows, reverse=True)[:8]


def main() -> int:
    """Run the benchmark and print its figures; exit 1 when the median misses the target."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=7, help="runs to time (default 7)")
    ap.add_argument("--service", action="store_true", help="also pass --service")
    ap.add_argument("--timeout", type=float, default=30.0, help="seconds to wait for READY=1")
    args = ap.parse_args()
    extra = ["--service"] if args.service else []
    times = []
    messages: list[str] = []
    for _ in range(args.runs):
        t, messages = one_run(extra, args.timeout)
        times.append(t)
    med = statistics.median(times)
    print(
        f"command: {' '.join(bedside_command())} run --sim --audio null --status none"
        f"{' --service' if args.service else ''}"
    )
    print(f"python:  {sys.version.split()[0]} on {os.uname().machine}, {os.cpu_count()} CPUs")
    print(f"runs:    {args.runs} (first run includes cold caches)")
    print(
        f"process start -> READY=1: min {min(times):.3f} s  median {med:.3f} s  "
        f"max {max(times):.3f} s  (target {TARGET_S} s)"
    )
    print("first messages of the last run: " + " | ".join(messages[:3]))
    print("heaviest top-level imports of a short run (cumulative ms):")
    for ms, name in import_cost():
        print(f"  {ms:8.1f}  {name}")
    ok = med <= TARGET_S
    print("RESULT: " + ("PASS" if ok else "FAIL") + f" (median {med:.3f} s vs {TARGET_S} s)")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
