"""Scenarios of the main boot: boot, audio, load, console, watchdog (each: ok, figures, note)."""

from __future__ import annotations

import contextlib
import json
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import values
from console import Console, burst, status
from vm import VM, LabError

RATE = 48000
#: The box's output buffer in the lab, in 1024-frame blocks (``audio.buffer_blocks``; the
#: product's default is 8, 171 ms). The engine renders its voices a segment (16384 frames,
#: 0.34 s) in one turn, so that turn must end before the buffer drains. On a Pi Zero 2 W a
#: segment takes about a fifth of its length (bench/pi_budget.py); under TCG the emulated
#: box needs 37-61 % of a vCPU (docs/lab.md), a segment 0.13-0.21 s, and the vCPU is a host
#: thread the host may hold back for 0.1-0.3 s more: with 16 blocks (341 ms) the audio
#: scenario still found 1-3 underruns a minute on 2026-12-08, on the emulator's slowness, not
#: the box's. The lab sets the most the config allows, 32 blocks (683 ms), as it gives
#: start-up more time (lab-tcg.conf); a technician can do the same.
LAB_BUFFER_BLOCKS = 32
#: audio.block_frames * audio.buffer_blocks / sample_rate of the lab's installed config.
BUFFER_S = 1024 * LAB_BUFFER_BLOCKS / RATE
#: The audio scenario's stalls (SIGSTOP of the box), s: half a second longer than the whole
#: buffer, so each one surely runs it dry (a stall only 0.15 s longer once went uncounted on
#: the arm64 machine beside pytest: the buffer had not been full when it began).
STALL_S = round(BUFFER_S + 0.5, 2)
#: How long the audio scenario waits for a stall's underrun to show in ``STATUS?``, s.
COUNT_WAIT_S = 10.0
#: Generous bounds (docs/lab.md): TCG on 2 shared cores is several times slower than a Pi 4.
BOOT_BOUND_S = 480.0
WATCHDOG_BOUND_S = 180.0


def main_pid(vm: VM) -> int:
    """The unit's main process (0 while it has none)."""
    return values.integer(vm.out("systemctl show -P MainPID bedside")) or 0


def restarts(vm: VM) -> int:
    return values.integer(vm.out("systemctl show -P NRestarts bedside")) or 0


def sound_after(vm: VM, not_pid: int, timeout: float) -> tuple[float, int] | None:
    """(guest monotonic s, owner pid) once the card plays for a process other than not_pid."""
    r = vm.sh(f"lab-soundwait {not_pid} {timeout:.0f}", timeout + 30)
    m = re.match(r"SOUND (\S+) (\d+)", r["out"])
    at, pid = (values.number(m.group(1)), values.integer(m.group(2))) if m else (None, None)
    return (at, pid) if at is not None and pid is not None else None


def said_once(journal: str) -> tuple[bool, str]:
    """The box says once that it plays open loop, and repeats no missing-sensor message."""
    text = [ln.split(": ", 1)[-1] for ln in journal.splitlines()]
    open_loop = [t for t in text if re.search(r"open loop", t, re.I)]
    missing = [
        t
        for t in text
        if re.search(r"pulse sensor.*(not available|does not exist|no MAX30102)", t, re.I)
    ]
    repeated = max((missing.count(t) for t in set(missing)), default=0)
    note = f"'open loop' said {len(open_loop)}x; missing-sensor messages {len(missing)}"
    return len(open_loop) == 1 and repeated <= 1, note


def boot(lab) -> tuple[bool, dict, str]:
    vm = lab.boot("main")
    if vm.wait_for("systemctl is-active -q bedside", BOOT_BOUND_S) is None:
        state = vm.out("systemctl status --no-pager bedside || true")
        return False, {}, f"bedside.service not active after {BOOT_BOUND_S:.0f} s: {state[-600:]}"
    ready_us = values.integer(vm.out("systemctl show -P ActiveEnterTimestampMonotonic bedside"))
    if not ready_us:
        return False, {}, "bedside.service is active but systemd gives no time it became so"
    to_ready = round(vm.host_time(ready_us / 1e6), 1)
    figs: dict[str, object] = {"boot_to_ready_s": to_ready}
    snd = vm.wait_for("grep -q ^SOUND /run/lab-boot-sound", BOOT_BOUND_S)
    if snd is not None:
        words = vm.out("cat /run/lab-boot-sound").split()
        mono = values.number(words[1]) if len(words) > 1 else None
        figs["boot_to_sound_s"] = None if mono is None else round(vm.host_time(mono), 1)
    # Let it play 30 s: "no sensor" must be said once, not every second.
    time.sleep(max(0.0, 30.0 - (time.monotonic() - vm.t0 - to_ready)))
    assert lab.con is not None
    if not lab.con.ready(60):
        return False, figs, f"the console on {lab.port} does not answer PING"
    st = status(lab.con)
    journal = vm.journal()
    once, said = said_once(journal)
    notes = [f"state={st.get('state')} sensor={st.get('sensor')} loop={st.get('loop_state')}"]
    notes.append(said)
    notes.append(f"PortAudio initialised {journal.count('jack server is not running')}x")
    # rpi-lgpio makes its notify pipes in the working directory (issue 16 item 0).
    lgpio_ok = re.search(r"xCreatePipe|lgd-nfy", journal) is None
    pipes = vm.out("ls -A /run/bedside 2>&1 | grep -c lgd-nfy || true").strip()
    notes.append(f"lgpio pipe errors {'none' if lgpio_ok else 'in the journal'}, pipes {pipes}")
    notes.append(f"numpy SIMD {numpy_simd(vm)}")
    (lab.rundir / "boot-journal.txt").write_text(journal)
    ok = (
        snd is not None
        and lgpio_ok
        and once
        and st.get("state") == "playing"
        and restarts(vm) == 0
        and to_ready < BOOT_BOUND_S
    )
    if snd is None:
        notes.append("no sound on the card")
    return ok, figs, "; ".join(notes)


#: The box's numpy's dispatched SIMD paths this CPU runs (numpy 2: numpy._core; 1.x: numpy.core).
NUMPY_SIMD = (
    "import importlib, numpy\n"
    "m = 'numpy._core' if hasattr(numpy, '_core') else 'numpy.core'\n"
    "u = importlib.import_module(m + '._multiarray_umath')\n"
    "f, d = u.__cpu_features__, u.__cpu_dispatch__\n"
    "print(numpy.__version__, ' '.join(k for k in d if f.get(k)) or 'baseline only')"
)


def numpy_simd(vm: VM) -> str:
    """numpy's version and the SIMD paths beyond its baseline that the box's numpy takes.

    On the x86 machine it must be ``baseline only``: the VM's CPU has no AVX (see
    ``vm.X86_CPU``), whose emulation made the box's oscillators ten times slower.
    """
    r = vm.sh(f"/opt/bedside/venv/bin/python3 -c \"{NUMPY_SIMD}\"", 120)
    return r["out"].strip() or f"unknown ({r['err'].strip()[-120:]})"


def cpu_ticks(vm: VM, pid: int) -> tuple[float, float] | None:
    """(utime+stime in s, guest monotonic s) of process pid; None if it cannot be read."""
    r = vm.sh(f"getconf CLK_TCK; cat /proc/{pid}/stat", 30)
    first, _, stat = r["out"].partition("\n")
    tck, ticks = values.integer(first), values.proc_cpu_ticks(stat)
    if not tck or ticks is None or values.number(r.get("mono")) is None:
        return None
    return sum(ticks) / tck, float(r["mono"])


def cpu_pct(before: tuple[float, float] | None, after: tuple[float, float] | None) -> float | None:
    """CPU time over guest time between two cpu_ticks readings (100 = one core)."""
    if before is None or after is None or after[1] <= before[1]:
        return None
    return round(100 * (after[0] - before[0]) / (after[1] - before[1]), 1)


def compare(vm: VM, capture: str) -> dict:
    """lab-compare's verdict on a capture against the tap; an ``error`` key when it gave none."""
    vm.out("sleep 1; cp /run/bedside/lab-tap.raw /run/lab-tap.snap")
    r = vm.sh(f"lab-compare /run/lab-tap.snap {capture}", 900)
    vm.sh(f"rm -f /run/lab-tap.snap {capture}")
    res = values.json_object(r["out"])
    if res is None or not isinstance(res.get("gaps"), list):
        return {"error": f"lab-compare gave no verdict (rc {r['rc']}): {r['err'][-300:]}",
                "gaps": [], "matched_s": 0.0, "tap_s": 0.0}  # fmt: skip
    res.setdefault("matched_s", 0.0)
    res.setdefault("tap_s", 0.0)
    return res


@contextlib.contextmanager
def tapped(lab) -> Iterator[int]:
    """The box restarted with ALSA's file plugin copying its frames to the tap; its pid.

    Afterwards the box is restarted without the tap. Raises LabError if it does not play.
    """
    vm = lab.vm
    old = main_pid(vm)
    vm.out(
        "systemctl set-environment LAB_TAP=/run/bedside/lab-tap.raw; systemctl restart bedside", 400
    )
    try:
        if sound_after(vm, old, 120) is None:
            raise LabError("no sound after the restart with the tap")
        yield main_pid(vm)
    finally:
        vm.sh(
            "systemctl unset-environment LAB_TAP; systemctl restart bedside; rm -f /run/lab-*.raw",
            400,
        )
        if lab.con is not None:
            lab.con.ready(120)


def capture(vm: VM, seconds: int, name: str) -> tuple[dict, dict[str, object], str]:
    """Capture ``seconds`` from the card's other side and compare: result, figures, note."""
    vm.out(f"{ARECORD} -d {seconds} /run/{name}.raw", seconds + 140)
    res = compare(vm, f"/run/{name}.raw")
    gaps = res["gaps"]
    figs: dict[str, object] = {
        # No alignment at all (the tap does not hold the capture): no gap count to give.
        "gaps": None if "error" in res else len(gaps),
        "match": not gaps and "error" not in res and res["matched_s"] >= seconds - 1.0,
    }
    note = [f"{seconds} s capture: matched {res['matched_s']:.2f} s, {len(gaps)} gaps"]
    if "error" in res:
        keys = ("leading_silence_s", "first_frames", "joins_tap_at_s")
        extra = {k: res[k] for k in keys if k in res}
        note.append(f"{res['error']} (tap {res['tap_s']:.2f} s: truncated by a reopen?) {extra}")
    if gaps:
        note.append("first gaps " + json.dumps(gaps[:3]))
    return res, figs, "; ".join(note)


#: The lab's recorder: at real-time priority above the box's (the unit's FIFO 20) and with a
#: 2-s buffer, so the instrument never drops a frame itself, also beside a CPU hog.
ARECORD = (
    "chrt -f 50 arecord -q -D hw:Loopback,1,0 -f S16_LE -c 2 -r 48000 -t raw --buffer-time=2000000"
)


def underrun_counted(con: Console, before: float | None) -> bool:
    """Whether ``STATUS?``'s ``underruns`` rises above ``before`` within COUNT_WAIT_S.

    Polled, not read once: on a slow emulator the box may answer the first ``STATUS?``
    after a stall before it has written (and so counted) its late blocks.
    """
    end = time.monotonic() + COUNT_WAIT_S
    while True:
        time.sleep(1.0)
        after = values.field(status(con), "underruns")
        if before is not None and after is not None and after > before:
            return True
        if time.monotonic() >= end:
            return False


def audio(lab) -> tuple[bool, dict, str]:
    vm, con = lab.vm, lab.con
    with tapped(lab) as pid:
        time.sleep(5)
        c0 = cpu_ticks(vm, pid)
        res, cap, note1 = capture(vm, 60, "lab-cap")
        figs: dict[str, object] = {"cpu_pct": cpu_pct(c0, cpu_ticks(vm, pid))}
        (lab.rundir / "audio-compare.json").write_text(json.dumps(res))
        figs["capture_gaps"], figs["capture_match"] = cap["gaps"], cap["match"]
        note = [note1]
        # Three stalls, each longer than the buffer, while the card's other side records.
        # Its stdio off the agent's pipes, or the agent waits for the recording to end.
        vm.out(f"({ARECORD} -d 30 /run/lab-cap2.raw </dev/null >/dev/null 2>&1 &) ; sleep 2")
        counted: list[bool] = []
        stalls: list[float] = []
        for _ in range(3):
            u_before = values.field(status(con), "underruns")
            r = vm.out(
                "python3 -c 'import os,time,signal\n"
                f"t=time.monotonic(); os.kill({pid},signal.SIGSTOP); time.sleep({STALL_S})\n"
                f"os.kill({pid},signal.SIGCONT); print(time.monotonic()-t)'"
            )
            stalls.append(values.number(r) or STALL_S)
            counted.append(underrun_counted(con, u_before))
        vm.wait_for("! pgrep -x arecord", 60)
        res2 = compare(vm, "/run/lab-cap2.raw")
        (lab.rundir / "audio-stalls.json").write_text(json.dumps(res2))
        inserted = [values.number(g.get("inserted_s")) or 0.0 for g in res2["gaps"]]
        same_pid = main_pid(vm) == pid
        # A reopened stream truncates the tap: the capture's start is then not in it.
        reopened = "error" in res2
        figs["underrun_counted"] = all(counted) and len(counted) == 3
        figs["underrun_max_gap_s"] = (
            None if "error" in res2 else round(max(inserted), 3) if inserted else 0.0
        )
        resumed = all(g <= max(stalls) + BUFFER_S for g in inserted) and len(inserted) <= 3
        note.append(
            f"stalls {[round(s, 3) for s in stalls]} s, counted {counted}, gaps "
            f"{[round(g, 3) for g in inserted]} s, skips "
            f"{[g['skipped_s'] for g in res2['gaps']]}, stream reopened {reopened}"
        )
        ok = (
            bool(figs["capture_match"])
            and figs["underrun_counted"] is True
            and resumed
            and not reopened
            and same_pid
        )
        return ok, figs, "; ".join(note)


#: How long the hog runs before the capture starts (its workers at full speed).
HOG_RAMP_S = 5


def guest_busy(vm: VM) -> tuple[dict[str, int] | None, int | None]:
    """The guest's /proc/stat cpu line and its CPU count."""
    r = vm.sh("nproc; cat /proc/stat", 30)
    first, _, rest = r["out"].partition("\n")
    return values.proc_stat_cpu(rest), values.integer(first)


def busy_pct(a: dict[str, int] | None, b: dict[str, int] | None) -> float | None:
    """Busy share of all the guest's CPUs between two /proc/stat readings (100 = all)."""
    if a is None or b is None:
        return None
    d = {k: b[k] - a[k] for k in a}
    total = sum(d[k] for k in values.PROC_STAT_COLUMNS[:8])
    idle = d["idle"] + d["iowait"]
    return round(100.0 * (total - idle) / total, 1) if total > 0 else None


def sched_of(vm: VM, pid: int) -> str:
    """The scheduling class and priority of the box's threads, e.g. ``FF/20 x3, TS x5``."""
    r = vm.sh(f"ps -L -o cls=,rtprio= -p {pid}", 30)
    seen: dict[str, int] = {}
    for line in r["out"].splitlines():
        parts = line.split()
        if parts:
            key = parts[0] if len(parts) < 2 or parts[1] == "-" else f"{parts[0]}/{parts[1]}"
            seen[key] = seen.get(key, 0) + 1
    return ", ".join(f"{k} x{n}" for k, n in sorted(seen.items())) or "unknown"


def load(lab) -> tuple[bool, dict, str]:
    """60 s captured bit-exact while stress-ng keeps every vCPU of the VM busy (#22.4)."""
    vm = lab.vm
    with tapped(lab) as pid:
        time.sleep(3)
        # One CPU worker per online vCPU at the default (normal) priority, as any busy
        # program on the Pi; its stdio off the agent's pipes, or the agent waits for it.
        secs = HOG_RAMP_S + 60 + 140
        vm.out(
            f"(stress-ng --cpu 0 --cpu-method matrixprod --timeout {secs}s </dev/null "
            ">/run/lab-stress.log 2>&1 &); sleep 1"
        )
        try:
            time.sleep(HOG_RAMP_S)
            hogs = vm.out("pgrep -c -x stress-ng-cpu || pgrep -c stress-ng || true").strip()
            g0, ncpu = guest_busy(vm)
            c0 = cpu_ticks(vm, pid)
            res, cap, note = capture(vm, 60, "lab-load")
            c1 = cpu_ticks(vm, pid)
            g1, _ = guest_busy(vm)
        finally:
            vm.sh("pkill -x stress-ng; pkill -f '^stress-ng'; true", 30)
        (lab.rundir / "load-compare.json").write_text(json.dumps(res))
        sched = sched_of(vm, pid)
        # The box's own word on its priority (a "sched" key once the box sets it itself).
        said = {k: v for k, v in status(lab.con).items() if "sched" in k} if lab.con else {}
        figs: dict[str, object] = {
            "load_capture_match": cap["match"],
            "load_capture_gaps": cap["gaps"],
            "load_hog_pct": busy_pct(g0, g1),
            "load_box_sched": sched,
        }
        same = main_pid(vm) == pid
        hog = values.number(figs["load_hog_pct"])
        loaded = hog is not None and hog >= 90.0
        notes = [
            note,
            f"stress-ng workers {hogs} on {ncpu} vCPUs; the guest's CPUs busy {hog}% "
            f"(bound >= 90: the hog really ran); the box's CPU {cpu_pct(c0, c1)}% of a core; "
            f"its threads {sched}, status {said or 'has no sched key'}; same process {same}",
        ]
        ok = bool(cap["match"]) and cap["gaps"] == 0 and loaded and same
        return ok, figs, "; ".join(notes)


def console(lab) -> tuple[bool, dict, str]:
    vm, con = lab.vm, lab.con
    if not con.ready(60):
        return False, {}, "no PING reply"
    times, answered = [], 0
    for _ in range(200):
        t = time.perf_counter()
        ok, _lines = con.ask("STATUS?")
        times.append((time.perf_counter() - t) * 1000)
        answered += ok
    times.sort()
    p99 = times[int(len(times) * 0.99) - 1]
    con.close()
    lab.con = None
    port = vm.console
    try:
        ctl = subprocess.run(
            [
                str(Path(sys.executable).parent / "bedside"),
                "ctl",
                "--port",
                port,
                "--json",
                "ID?; STATUS?",
            ],
            capture_output=True,
            text=True,
            timeout=60,
        )
        ctl_ok = ctl.returncode == 0 and "Bedside" in ctl.stdout
        pico_ok, screen = picocom(port)
    finally:
        lab.con = Console(port)
    burst_ok, burst_note = burst(lab.con)
    figs = {
        "console_ok": answered == 200 and ctl_ok and pico_ok and burst_ok,
        "status_p99_ms": round(p99, 1),
    }
    note = (
        f"{answered}/200 STATUS? answered, median {times[100]:.0f} ms; ctl rc {ctl.returncode}; "
        f"picocom {'saw' if pico_ok else 'did not see'} the ID? reply; {burst_note}"
    )
    if not pico_ok:
        note += f" (screen: {screen[-300:]!r})"
    return bool(figs["console_ok"]), figs, note


def picocom(port: str) -> tuple[bool, str]:
    """A technician at picocom in tmux: types ID?, reads the reply off the screen."""
    tm = ["tmux", "-L", "bedside-lab"]
    subprocess.run(
        [
            *tm,
            "new-session",
            "-d",
            "-s",
            "con",
            "-x",
            "120",
            "-y",
            "30",
            f"picocom -q -b 115200 --omap crlf --echo {port}",
        ],
        check=True,
    )
    try:
        time.sleep(2)
        subprocess.run([*tm, "send-keys", "-t", "con", "ID?", "Enter"], check=True)
        screen = ""
        for _ in range(20):
            time.sleep(0.5)
            screen = subprocess.run(
                [*tm, "capture-pane", "-t", "con", "-p"], capture_output=True, text=True
            ).stdout
            if "product=Bedside" in screen:
                break
        subprocess.run([*tm, "send-keys", "-t", "con", "C-a", "C-x"])
        time.sleep(1)
        return "product=Bedside" in screen and "OK" in screen, screen
    finally:
        subprocess.run([*tm, "kill-server"], capture_output=True)


#: Files that crashed or silenced the box (issue 16 item 6); each keeps the lab's console port.
CRASH_CONFIGS = {
    "800 sps with averaging 8": "[sensor]\nsample_rate_sps = 800\naveraging = 8\n",
    "a 300-character program": '[therapy]\nprogram = "' + "x" * 300 + '"\n',
    "an unknown program": '[therapy]\nprogram = "sleeep"\n',
    "a 400-digit volume": "[audio]\nvolume_db = -1" + "0" * 400 + "\n",
}


def watchdog(lab) -> tuple[bool, dict, str]:
    vm = lab.vm
    # A MainPID of 0 (the box still starting) would make "kill -STOP 0" stop the agent.
    vm.wait_for("systemctl is-active -q bedside", 480)
    pid, n0 = main_pid(vm), restarts(vm)
    if pid <= 0:
        return False, {}, "bedside.service has no main process to hang"
    since = values.integer(vm.out("date +%s")) or 0
    hang = vm.sh(f"kill -STOP {pid}")["mono"]
    got = sound_after(vm, pid, WATCHDOG_BOUND_S)
    figs: dict[str, object] = {}
    notes = []
    if got is not None:
        figs["watchdog_restart_s"] = round(got[0] - hang, 1)
    j = vm.journal(extra=f"--since @{since - 1}" if since else "-b")
    killed = "watchdog timeout" in j.lower()
    notes.append(f"restarts {n0}->{restarts(vm)}, journal watchdog line {killed}")
    ok = got is not None and killed
    plays = []
    vm.out("cp -p /etc/bedside/config.toml /root/config.toml.lab")
    try:
        for what, text in CRASH_CONFIGS.items():
            old = main_pid(vm)
            body = f'[console]\nport = "{lab.port}"\n' + text
            vm.out(
                f"cat > /etc/bedside/config.toml <<'EOF'\n{body}EOF\n"
                "systemctl restart --no-block bedside"
            )
            snd = sound_after(vm, old, 120)
            steady = False
            if snd is not None:
                p, n = main_pid(vm), restarts(vm)
                time.sleep(15)
                steady = main_pid(vm) == p and restarts(vm) == n
            failed = vm.out("systemctl show -P ActiveState bedside").strip() == "failed"
            plays.append(snd is not None and steady and not failed)
            notes.append(f"{what}: {'plays' if plays[-1] else 'NOT playing steadily'}")
    finally:
        vm.out(
            "cp -p /root/config.toml.lab /etc/bedside/config.toml; "
            "systemctl restart --no-block bedside"
        )
        vm.wait_for("systemctl is-active -q bedside", BOOT_BOUND_S)
        if lab.con is not None:
            lab.con.ready(120)
    figs["crash_config_plays"] = all(plays)
    if not ok and got is None:
        notes.append(f"no sound {WATCHDOG_BOUND_S:.0f} s after the hang")
    return ok and all(plays), figs, "; ".join(notes)
