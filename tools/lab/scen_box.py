"""Scenarios of the main boot: boot, audio, console, watchdog (each returns ok, figures, note)."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import time
from pathlib import Path

from console import Console, burst, status
from vm import VM

RATE = 48000
#: audio.block_frames * audio.buffer_blocks / sample_rate of the installed default config.
BUFFER_S = 1024 * 8 / RATE
#: Generous bounds (docs/lab.md): TCG on 2 shared cores is several times slower than a Pi 4.
BOOT_BOUND_S = 480.0
WATCHDOG_BOUND_S = 180.0


def main_pid(vm: VM) -> int:
    return int(vm.out("systemctl show -P MainPID bedside").strip() or 0)


def restarts(vm: VM) -> int:
    return int(vm.out("systemctl show -P NRestarts bedside").strip() or 0)


def sound_after(vm: VM, not_pid: int, timeout: float) -> tuple[float, int] | None:
    """(guest monotonic s, owner pid) once the card plays for a process other than not_pid."""
    r = vm.sh(f"lab-soundwait {not_pid} {timeout:.0f}", timeout + 30)
    m = re.match(r"SOUND (\S+) (\d+)", r["out"])
    return (float(m.group(1)), int(m.group(2))) if m else None


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
    ready_mono = int(vm.out("systemctl show -P ActiveEnterTimestampMonotonic bedside")) / 1e6
    to_ready = round(vm.host_time(ready_mono), 1)
    figs: dict[str, object] = {"boot_to_ready_s": to_ready}
    snd = vm.wait_for("grep -q ^SOUND /run/lab-boot-sound", BOOT_BOUND_S)
    if snd is not None:
        mono = float(vm.out("cat /run/lab-boot-sound").split()[1])
        figs["boot_to_sound_s"] = round(vm.host_time(mono), 1)
    # Let it play 30 s: "no sensor" must be said once, not every second.
    time.sleep(max(0.0, 30.0 - (time.monotonic() - vm.t0 - to_ready)))
    assert lab.con is not None
    if not lab.con.ready(60):
        return False, figs, "the console on ttyS1 does not answer PING"
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


def cpu_ticks(vm: VM, pid: int) -> tuple[float, float]:
    """(utime+stime in s, guest monotonic s) of process pid."""
    r = vm.sh(f"cat /proc/{pid}/stat; getconf CLK_TCK", 30)
    stat, tck = r["out"].rsplit("\n", 2)[0], int(r["out"].split()[-1])
    parts = stat.rsplit(")", 1)[1].split()
    return (int(parts[11]) + int(parts[12])) / tck, r["mono"]


def compare(vm: VM, capture: str) -> dict:
    vm.out("sleep 1; cp /run/bedside/lab-tap.raw /run/lab-tap.snap")
    res = json.loads(vm.out(f"lab-compare /run/lab-tap.snap {capture}", 300))
    vm.sh(f"rm -f /run/lab-tap.snap {capture}")
    return res


ARECORD = "arecord -q -D hw:Loopback,1,0 -f S16_LE -c 2 -r 48000 -t raw"


def audio(lab) -> tuple[bool, dict, str]:
    vm, con = lab.vm, lab.con
    old = main_pid(vm)
    vm.out(
        "systemctl set-environment LAB_TAP=/run/bedside/lab-tap.raw; systemctl restart bedside", 400
    )
    try:
        got = sound_after(vm, old, 120)
        if got is None:
            return False, {}, "no sound after the restart with the tap"
        pid = main_pid(vm)
        time.sleep(5)
        u0, m0 = cpu_ticks(vm, pid)
        vm.out(f"{ARECORD} -d 60 /run/lab-cap.raw", 200)
        u1, m1 = cpu_ticks(vm, pid)
        figs: dict[str, object] = {"cpu_pct": round(100 * (u1 - u0) / (m1 - m0), 1)}
        res = compare(vm, "/run/lab-cap.raw")
        (lab.rundir / "audio-compare.json").write_text(json.dumps(res))
        gaps = res["gaps"]
        # No alignment at all (the tap does not hold the capture): no gap count to give.
        figs["capture_gaps"] = None if "error" in res else len(gaps)
        figs["capture_match"] = not gaps and "error" not in res and res["matched_s"] >= 59.0
        note = [f"60 s capture: matched {res['matched_s']:.2f} s, {len(gaps)} gaps"]
        if "error" in res:
            note.append(f"{res['error']} (tap {res['tap_s']:.2f} s: truncated by a reopen)")
        if gaps:
            note.append("first gaps " + json.dumps(gaps[:3]))
        # Three stalls of 300 ms while the card's other side records.
        # Its stdio off the agent's pipes, or the agent waits for the recording to end.
        vm.out(f"({ARECORD} -d 16 /run/lab-cap2.raw </dev/null >/dev/null 2>&1 &) ; sleep 2")
        counted, stalls = [], []
        for _ in range(3):
            u_before = int(status(con)["underruns"])
            r = vm.out(
                "python3 -c 'import os,time,signal\n"
                f"t=time.monotonic(); os.kill({pid},signal.SIGSTOP); time.sleep(0.3)\n"
                f"os.kill({pid},signal.SIGCONT); print(time.monotonic()-t)'"
            )
            stalls.append(float(r))
            time.sleep(3)
            counted.append(int(status(con)["underruns"]) > u_before)
        vm.wait_for("! pgrep -x arecord", 60)
        res2 = compare(vm, "/run/lab-cap2.raw")
        (lab.rundir / "audio-stalls.json").write_text(json.dumps(res2))
        inserted = [g["inserted_s"] for g in res2["gaps"]]
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
    finally:
        vm.sh(
            "systemctl unset-environment LAB_TAP; systemctl restart bedside; rm -f /run/lab-*.raw",
            400,
        )
        lab.con.ready(120)


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
    since = vm.out("date +%s").strip()
    hang = vm.sh(f"kill -STOP {pid}")["mono"]
    got = sound_after(vm, pid, WATCHDOG_BOUND_S)
    figs: dict[str, object] = {}
    notes = []
    if got is not None:
        figs["watchdog_restart_s"] = round(got[0] - hang, 1)
    j = vm.journal(extra=f"--since @{int(since) - 1}")
    killed = "watchdog timeout" in j.lower()
    notes.append(f"restarts {n0}->{restarts(vm)}, journal watchdog line {killed}")
    ok = got is not None and killed
    plays = []
    vm.out("cp -p /etc/bedside/config.toml /root/config.toml.lab")
    try:
        for what, text in CRASH_CONFIGS.items():
            old = main_pid(vm)
            body = '[console]\nport = "/dev/ttyS1"\n' + text
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
