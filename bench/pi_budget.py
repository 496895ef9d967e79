"""The CPU budget of the box's real-time path on each Raspberry Pi, counted in ARM instructions.

One run of the real box (simulated sensor, null sink, virtual clock at full speed) plays a
session of the busiest program; every loop task, the engine's render and the sink's int16
conversion are measured per run:

* ``host``: on this machine, the loop's own figures: CPU and wall time per task (mean and
  worst run), the collector's collections;
* ``arm``: the same run under ``qemu-aarch64`` (user mode, Debian's ``qemu-user``) with an
  aarch64 Python from a Debian arm64 root (``debootstrap --arch arm64``) and a counting
  plugin (``bench/pi_budget_plugin.c``, built here with ``cc``): the guest marks each task's
  start and end with a harmless ``close(-N)``, the plugin counts the instructions the main
  thread retires in between (the simulator's own work, ``SimRig.step`` and the simulated
  chip's bus calls, is marked apart and left out: a real sensor is a kernel I2C transfer).
  The counts become time on each Pi from its clock and an instructions-per-cycle figure
  (see docs/budget.md for where they come from).

Prints a table per task (mean and worst run: instructions, ms on a Pi Zero 2 W, its share of
one core and of the 171 ms audio buffer), a summary per Pi model, and as its last line one
JSON object: per Pi model the share of one core and the mean and worst task in ms.

    .venv/bin/python bench/pi_budget.py host --program sleep --minutes 45
    .venv/bin/python bench/pi_budget.py arm --root /srv/arm64 --program sleep --minutes 5
"""

from __future__ import annotations

import argparse
import array
import contextlib
import io
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

#: The box's output buffer: 8 blocks of 1024 frames at 48 kHz, s.
BUFFER_S = 8 * 1024 / 48000
#: Per-core speed of each Pi: clock (Hz) and instructions retired per cycle on this kind of
#: code (an interpreter: branchy, cache-resident). See docs/budget.md for the figures.
PI_MODELS: dict[str, dict[str, Any]] = {
    "zero2w": {"name": "Pi Zero 2 W", "core": "Cortex-A53", "hz": 1.0e9, "ipc": 0.6},
    "3b+": {"name": "Pi 3B+", "core": "Cortex-A53", "hz": 1.4e9, "ipc": 0.6},
    "4": {"name": "Pi 4", "core": "Cortex-A72", "hz": 1.8e9, "ipc": 1.2},
    "5": {"name": "Pi 5", "core": "Cortex-A76", "hz": 2.4e9, "ipc": 1.9},
}
#: Marker ids of the parts that are not the box's own work on a real Pi.
SIM = "sim"
LIBS = "/usr/lib/aarch64-linux-gnu"


# --- the run --------------------------------------------------------------------------------


def _marker(k: int, enter: bool) -> None:
    with contextlib.suppress(OSError):  # EBADF, as intended: the plugin saw the call
        os.close(-((1000 if enter else 2000) + k))


def _wrap(fn: Callable[..., Any], k: int) -> Callable[..., Any]:
    def marked(*args: Any, **kwargs: Any) -> Any:
        _marker(k, True)
        try:
            return fn(*args, **kwargs)
        finally:
            _marker(k, False)

    return marked


def instrument(box: Any) -> list[str]:
    """Mark every task, the render, the sink's write and the simulator; return the ids."""
    names: list[str] = []

    def ident(name: str) -> int:
        if name not in names:
            names.append(name)
        return names.index(name)

    for task in box.loop.tasks:
        task.callback = _wrap(task.callback, ident(task.name))
    # The loop holds the engine's render and the sink's write it was built with (a bench
    # may reach in: the product has no marker hooks).
    # The loop's own work (its turns, the clock, the scheduling) is what runs inside
    # Loop.run outside every task; before and after it is start-up and teardown.
    box.loop.run = _wrap(box.loop.run, ident("loop"))
    box.loop._render = _wrap(box.loop._render, ident("engine"))
    box.loop._write = _wrap(box.loop._write, ident("sink"))
    sim = ident(SIM)
    if box.rig is not None:
        box.rig.step = _wrap(box.rig.step, sim)
        chip = box.rig.chip
        for method in ("read_byte_data", "write_byte_data", "read_i2c_block_data",
                       "write_i2c_block_data", "i2c_rdwr"):  # fmt: skip
            setattr(chip, method, _wrap(getattr(chip, method), sim))
    return names


def _timed(fn: Callable[..., Any], into: array.array) -> Callable[..., Any]:
    def timed(*args: Any, **kwargs: Any) -> Any:
        c0 = time.thread_time()
        try:
            return fn(*args, **kwargs)
        finally:
            into.append(time.thread_time() - c0)

    return timed


def time_runs(box: Any) -> dict[str, array.array]:
    """Record every run's CPU time of each task and of the render (for percentiles).

    Into ``array.array``s, not lists: a list of half a million floats is a container the
    box's boundary collection would traverse (it took 21 ms of CPU at the end of a 45-min
    session, charged to the box's gc task); an array holds no references.
    """
    runs: dict[str, array.array] = {}
    for task in box.loop.tasks:
        task.callback = _timed(task.callback, runs.setdefault(task.name, array.array("d")))
    box.loop._render = _timed(box.loop._render, runs.setdefault("engine", array.array("d")))
    return runs


def run_box(program: str, minutes: float, *, mark: bool, console: bool) -> dict[str, Any]:
    """Run one session of ``program`` on the simulated box; return the loop's figures."""
    from device.box.app import Box, RunOptions
    from device.config import Config

    cfg = Config.defaults().with_value("sim.seed", 3)
    with tempfile.TemporaryDirectory() as tmp:
        serial = None
        if console:
            master, slave = os.openpty()
            serial = os.ttyname(slave)
        opts = RunOptions(
            sim=True, audio="null", duration_s=minutes * 60.0 + 5.0, speed=None,
            status="none", state_dir=tmp, program=program, minutes=minutes, serial=serial,
        )  # fmt: skip
        with Box(cfg, opts, status_out=io.StringIO()) as box:
            names = instrument(box) if mark else []
            runs = {} if mark else time_runs(box)
            cpu0 = time.process_time()
            box.run()
            cpu = time.process_time() - cpu0
            stats = box.loop.task_stats()
            stats["engine"] = box.loop.render_timing.stats()
            out = {
                "program": program,
                "audio_s": box.engine.frames / box.engine.sample_rate,
                "cpu_s": cpu,
                "tasks": stats,
                "names": names,
                "gc": box.collector.stats(),
                "console": console,
                "runs": runs,
            }
        if console:
            os.close(master)
            os.close(slave)
    return out


# --- host -----------------------------------------------------------------------------------


def host(args: argparse.Namespace) -> int:
    """Per-task CPU and wall time on this machine, as the loop measures them."""
    r = run_box(args.program, args.minutes, mark=False, console=args.console)
    audio = r["audio_s"]
    print(f"host: {args.program}, {audio / 60:.1f} min of audio, {r['cpu_s']:.1f} s CPU")
    print(f"{'task':10} {'runs':>7} {'mean ms':>8} {'cpu':>7} {'max ms':>8} {'cpu':>7} "
          f"{'cpu p99':>7} {'p99.9':>7} {'cpu ms/s':>8} {'overruns (cpu)':>14}")  # fmt: skip
    worst = 0.0
    for name, s in r["tasks"].items():
        per_s = s["mean_cpu_ms"] * s["runs"] / audio
        worst = max(worst, s["max_cpu_ms"])
        cpu = sorted(r["runs"].get(name, [0.0]))
        p99, p999 = (1000 * cpu[min(len(cpu) - 1, int(q * len(cpu)))] for q in (0.99, 0.999))
        print(
            f"{name:10} {s['runs']:7d} {s['mean_ms']:8.3f} {s['mean_cpu_ms']:7.3f} "
            f"{s['max_ms']:8.2f} {s['max_cpu_ms']:7.2f} {p99:7.2f} {p999:7.2f} {per_s:8.2f} "
            f"{s.get('overruns', 0):8} ({s.get('cpu_overruns', 0)})"
        )
    print(f"gc: {r['gc']}")
    print(json.dumps({"host_worst_task_cpu_ms": worst, "gc": r["gc"]}))
    return 0


# --- arm ------------------------------------------------------------------------------------


def guest(args: argparse.Namespace) -> int:
    """Run under qemu: the marked session; the marker names go to ``--names``."""
    r = run_box(args.program, args.minutes, mark=True, console=args.console)
    Path(args.names).write_text(json.dumps({k: r[k] for k in ("names", "audio_s", "tasks")}))
    return 0


def build_plugin(tmp: Path) -> Path:
    """Compile the counting plugin (needs a C compiler)."""
    cc = shutil.which("cc") or shutil.which("gcc")
    if cc is None:
        raise SystemExit("pi_budget: a C compiler (cc) is needed for the qemu plugin")
    out = tmp / "libpicount.so"
    src = REPO / "bench" / "pi_budget_plugin.c"
    subprocess.run([cc, "-O2", "-shared", "-fPIC", "-fvisibility=hidden", "-o", str(out),
                    str(src)], check=True)  # fmt: skip
    return out


def count(args: argparse.Namespace, tmp: Path) -> tuple[dict[str, dict[str, int]], dict]:
    """Run the guest under qemu-aarch64 with the plugin; per-name instruction counts."""
    qemu = shutil.which("qemu-aarch64")
    if qemu is None:
        raise SystemExit("pi_budget: qemu-aarch64 is missing (apt install qemu-user)")
    root = Path(args.root)
    if not (root / "usr" / "bin" / "python3").exists():
        raise SystemExit(f"pi_budget: no aarch64 python3 under {root} (see docs/budget.md)")
    plugin = build_plugin(tmp)
    counts_file, names_file = tmp / "counts.txt", tmp / "names.json"
    ld = f"{LIBS}/openblas-pthread:{LIBS}/blas:{LIBS}/lapack"
    cmd = [
        qemu, "-L", str(root), "-E", f"LD_LIBRARY_PATH={ld}", "-E", "OPENBLAS_NUM_THREADS=1",
        "-E", f"PYTHONPATH={os.pathsep.join([str(REPO), *args.pythonpath])}",
        "-E", "PYTHONDONTWRITEBYTECODE=1",
        "-plugin", f"{plugin},out={counts_file}",
        str(root / "usr" / "bin" / "python3"), str(Path(__file__).resolve()), "guest",
        "--program", args.program, "--minutes", str(args.minutes), "--names", str(names_file),
    ] + (["--console"] if args.console else [])  # fmt: skip
    subprocess.run(cmd, check=True)
    info = json.loads(names_file.read_text())
    counts: dict[str, dict[str, int]] = {}
    for line in counts_file.read_text().splitlines():
        key, runs, total, worst, at = line.split()
        name = info["names"][int(key)] if key.isdigit() else key
        counts[name] = {"runs": int(runs), "total": int(total), "max": int(worst), "at": int(at)}
    return counts, info


def ms(insns: float, model: dict[str, Any]) -> float:
    """Milliseconds one core of ``model`` takes for ``insns`` instructions."""
    return insns / (model["ipc"] * model["hz"]) * 1000.0


def table(counts: dict[str, dict[str, int]], audio_s: float) -> dict[str, Any]:
    """Print the tables; return the summary per Pi model."""
    zero = PI_MODELS["zero2w"]
    # "loop" is the loop's own work outside its tasks: part of the path's load, not a task;
    # "main" (start-up: imports, assembly; teardown) is not the path's.
    rows = {k: v for k, v in counts.items() if k not in (SIM, "main")}
    print(f"{'task':10} {'runs/s':>7} {'mean Minsn':>10} {'max Minsn':>9} {'at s':>6} | "
          f"Zero 2 W: {'mean ms':>8} {'max ms':>8} {'% core':>7} {'max % buf':>9}")  # fmt: skip
    for name, c in sorted(rows.items(), key=lambda kv: -kv[1]["total"]):
        mean = c["total"] / max(c["runs"], 1)
        share = ms(c["total"] / audio_s, zero) / 10.0
        print(
            f"{name:10} {c['runs'] / audio_s:7.2f} {mean / 1e6:10.3f} {c['max'] / 1e6:9.3f} "
            f"{c['at'] * audio_s / max(c['runs'], 1):6.1f} |"
            f"           {ms(mean, zero):8.3f} {ms(c['max'], zero):8.2f} {share:7.2f}"
            f" {100 * ms(c['max'], zero) / (BUFFER_S * 1000):9.1f}"
        )
    tasks = {k: v for k, v in rows.items() if k not in ("threads", "loop")}
    per_s = sum(c["total"] for c in rows.values()) / audio_s
    runs = sum(c["runs"] for c in tasks.values())
    mean_run = sum(c["total"] for c in tasks.values()) / max(runs, 1)
    worst = max(tasks.items(), key=lambda kv: kv[1]["max"])
    summary: dict[str, Any] = {}
    print(f"{'model':12} {'core':11} {'% of a core':>11} {'mean task ms':>12} "
          f"{'worst task ms':>13} {'worst % buf':>11}")  # fmt: skip
    for key, m in PI_MODELS.items():
        share = ms(per_s, m) / 1000.0
        worst_ms = ms(worst[1]["max"], m)
        summary[key] = {
            "core_share": round(share, 4),
            "mean_task_ms": round(ms(mean_run, m), 4),
            "worst_task_ms": round(worst_ms, 3),
            "worst_task": worst[0],
        }
        print(
            f"{m['name']:12} {m['core']:11} {100 * share:10.1f}% {ms(mean_run, m):12.3f} "
            f"{worst_ms:13.2f} {100 * worst_ms / (BUFFER_S * 1000):10.1f}%"
        )
    return summary


def arm(args: argparse.Namespace) -> int:
    """Count the instructions under qemu-aarch64 and print the budget of each Pi."""
    with tempfile.TemporaryDirectory() as tmp:
        counts, info = count(args, Path(tmp))
    audio = info["audio_s"]
    left_out = counts.get(SIM, {}).get("total", 0) / audio / 1e6
    boot = counts.get("main", {}).get("total", 0) / 1e6
    print(f"arm: {args.program}, {audio / 60:.1f} min of audio under qemu-aarch64; simulator "
          f"left out: {left_out:.1f} Minsn/s; start-up and teardown: {boot:.0f} Minsn")  # fmt: skip
    summary = table(counts, audio)
    print(json.dumps({"program": args.program, "minutes": args.minutes, **summary}))
    return 0


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = p.add_subparsers(dest="mode", required=True)
    for mode in ("host", "arm", "guest"):
        s = sub.add_parser(mode)
        s.add_argument("--program", default="sleep", help="program to play (default sleep)")
        s.add_argument("--minutes", type=float, default=45.0 if mode == "host" else 5.0)
        s.add_argument("--console", action="store_true", help="attach an idle console (pty)")
        if mode == "arm":
            s.add_argument("--root", required=True, help="a Debian arm64 root with python3-numpy")
            s.add_argument(
                "--pythonpath", action="append", default=[],
                help="a further guest import directory (pure-Python modules, e.g. pyfluidsynth)",
            )  # fmt: skip
        if mode == "guest":
            s.add_argument("--names", required=True)
    args = p.parse_args(argv)
    return {"host": host, "arm": arm, "guest": guest}[args.mode](args)


if __name__ == "__main__":
    sys.exit(main())
