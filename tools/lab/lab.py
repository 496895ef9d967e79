"""The appliance lab: the box installed with install.sh on Debian under QEMU, from outside.

Run through ``tools/lab/run``; ``--help`` lists the scenarios. Prints one line per
scenario as it goes; the last line on stdout is one JSON object with every figure.
"""

from __future__ import annotations

import json
import shutil
import signal
import sys
import tempfile
import threading
import time
import traceback
from pathlib import Path

import build
import hostcpu
import scen_box
import scen_more
import scen_power
from console import Console
from vm import VM, LabError

#: name, what it proves, the boot it runs in ("main" is one boot shared by several).
SCENARIOS = [
    ("boot", "power-on to READY=1 and to sound; open loop without a sensor, said once", "main"),
    ("audio", "60 s on snd-aloop captured bit-exact; 3 stalls of 300 ms; CPU share", "main"),
    ("load", "60 s captured bit-exact while stress-ng keeps every vCPU busy", "main"),
    ("card", "a USB sound card unplugged and plugged back while playing", "main"),
    ("console", "bedside ctl and picocom on ttyS1 via a host pty; 200 STATUS? p99", "main"),
    ("hardening", "systemd-analyze security live; the service user reads nothing else", "main"),
    ("i2c", "the MAX30102 driver over i2c-stub: absent chip, wrong PART_ID, right one", "main"),
    ("watchdog", "a hung box killed by the watchdog and playing again; crash configs", "main"),
    ("clock", "booted with a clock years wrong: sessions ordered, clock not set said", "clock"),
    ("power", "20+ power cuts mid-session, in CFG SAVE, at boot, in ERASE", "power"),
]
RUNNERS = {
    "boot": scen_box.boot,
    "audio": scen_box.audio,
    "load": scen_box.load,
    "console": scen_box.console,
    "watchdog": scen_box.watchdog,
    "hardening": scen_more.hardening,
    "i2c": scen_more.i2c,
    "card": scen_more.card,
    "clock": scen_more.clock,
    "power": scen_power.power,
}
#: Every figure of the JSON line, null until a scenario measures it.
FIGURES = [
    "boot_to_ready_s",
    "boot_to_sound_s",
    "capture_match",
    "capture_gaps",
    "underrun_counted",
    "underrun_max_gap_s",
    "cpu_pct",
    "load_capture_match",
    "load_capture_gaps",
    "load_hog_pct",
    "load_box_sched",
    "card_fault_reported_s",
    "card_recovered_s",
    "power_cuts",
    "power_ok",
    "power_max_lost_s",
    "watchdog_restart_s",
    "crash_config_plays",
    "console_ok",
    "status_p99_ms",
    "i2c_probe_ok",
    "i2c_closed_loop",
    "clock_wrong_handled",
    "exposure",
]


def log(msg: str) -> None:
    print(f"lab: {msg}", file=sys.stderr, flush=True)


#: The lab's machines: Debian architecture names; aliases accepted on the command line.
ARCHES = {"amd64": "amd64", "x86_64": "amd64", "x86": "amd64", "arm64": "arm64", "aarch64": "arm64"}


def usage() -> str:
    lines = ["usage: tools/lab/run [--arch amd64|arm64] [SCENARIO...]   (none: all of them)"]
    lines += ["       tools/lab/run [--arch A] --prepare  (only the cached image and wheels)"]
    lines += ["", "--arch: the VM's machine; amd64 (default, x86-64) or arm64 (aarch64, -M virt"]
    lines += ["        Cortex-A72, as a Pi 4 on 64-bit Raspberry Pi OS), both under TCG"]
    lines += ["", "scenarios:"]
    lines += [f"  {n:<10} {what}" for n, what, _ in SCENARIOS]
    lines += ["", "Bounds, figures and how it works: docs/lab.md"]
    return "\n".join(lines)


class Lab:
    """What the scenarios share: the run's directory, disks, and the running VM."""

    #: The config file's mode as install.sh left it (the power scenario checks it is kept).
    installed_mode = ""

    #: The box's console port inside the VM (install() finds it; the power scenario checks it).
    port = ""

    def __init__(self, img: Path, disk: Path, rundir: Path, arch: str = "amd64") -> None:
        self.img, self.disk, self.rundir, self.arch = img, disk, rundir, arch
        self.vm: VM | None = None
        self.con: Console | None = None
        self.config_mode = ""

    def qemu_pid(self) -> int | None:
        """The running QEMU process (the host meter follows it across boots)."""
        vm = self.vm
        proc = vm.proc if vm is not None else None
        return proc.pid if proc is not None and proc.poll() is None else None

    def boot(self, name: str, rtc: str | None = None, data: Path | None = None) -> VM:
        self.vm = VM(self.img, self.disk, self.rundir, name, data=data, rtc=rtc, arch=self.arch)
        self.vm.start()
        self.con = Console(self.vm.console)
        return self.vm

    def down(self, cut: bool = False) -> None:
        if self.con is not None:
            self.con.close()
            self.con = None
        if self.vm is not None:
            if cut:
                self.vm.cut()
            else:
                self.vm.poweroff()
            self.vm = None


def install(lab: Lab, data: Path) -> None:
    """Boot once with the tree on a second disk and install the box as a user would."""
    vm = lab.boot("install", data=data)
    t = time.monotonic()
    vm.out(
        "set -e; mount -o ro /dev/vdb /mnt; cp -a /mnt/src /root/bedside; cd /root/bedside\n"
        "setsid sh -c './install.sh --wheelhouse /mnt/wheels > /root/install.log 2>&1;"
        " echo $? > /root/install.rc' < /dev/null > /dev/null 2>&1 &"
    )
    shown = 0
    while vm.sh("test -s /root/install.rc")["rc"] != 0:
        if time.monotonic() - t > 1800:
            raise LabError("install.sh did not finish in 30 min")
        lines = vm.out("cat /root/install.log").splitlines()
        for line in lines[shown:]:
            log(f"  {line}")
        shown = len(lines)
        time.sleep(3)
    text = vm.out("cat /root/install.log")
    for line in text.splitlines()[shown:]:
        log(f"  {line}")
    (lab.rundir / "install.log").write_text(text)
    rc = vm.out("cat /root/install.rc").strip()
    if rc != "0":
        raise LabError(f"install.sh failed (rc {rc}): {text[-1500:]}")
    log(f"install.sh: done in {time.monotonic() - t:.0f} s")
    # The technician's console on the VM's second UART (a Pi's is /dev/serial0).
    Lab.port = console_port(vm)
    # The output buffer for the emulator's speed (scen_box.LAB_BUFFER_BLOCKS says why).
    blocks = scen_box.LAB_BUFFER_BLOCKS
    vm.out(
        f"sed -i 's|^port = .*|port = \"{Lab.port}\"|; s|^buffer_blocks = .*|buffer_blocks = "
        f"{blocks}|' /etc/bedside/config.toml\n"
        f"grep -q '^port = \"{Lab.port}\"' /etc/bedside/config.toml\n"
        f"grep -q '^buffer_blocks = {blocks}$' /etc/bedside/config.toml"
    )
    Lab.installed_mode = vm.out("stat -c %a /etc/bedside/config.toml").strip()
    lab.down()


def console_port(vm: VM) -> str:
    """The guest's tty of the UART QEMU gives the box (x86: the 2nd 16550; arm64: a PCI 16550)."""
    if vm.arch == "amd64":
        return "/dev/ttyS1"
    tty = vm.out(
        "for t in /sys/class/tty/ttyS*; do readlink -f $t/device | grep -q /pci && "
        "basename $t; done | head -1"
    ).strip()
    if not tty:
        raise LabError("the PCI 16550 UART (the box's console) has no ttyS in the VM")
    return f"/dev/{tty}"


def start_main(lab: Lab) -> None:
    """The shared boot when the boot scenario (which starts it) is not among those run."""
    vm = lab.boot("main")
    con = lab.con
    if vm.wait_for("systemctl is-active -q bedside", 480) is None or not con or not con.ready(120):
        raise LabError("the main boot: bedside.service is not up and answering")


#: Run directories kept in the cache (the newest; older ones are removed at a run's start).
KEEP_RUNS = 3
#: Scenarios of the main boot that run alone: real-time sound and the card's timing.
ALONE = ("boot", "audio", "load", "card")


def try_one(lab: Lab, name: str, rundir: Path, main_boot: bool) -> tuple[bool, dict, str]:
    """One try of a scenario: ok, figures, note. A lab step that breaks fails it."""
    try:
        if main_boot and lab.vm is None and name != "boot":
            start_main(lab)  # boot was not run, or the scenario before broke the shared boot
        return RUNNERS[name](lab)
    except Exception as exc:  # a lab step broke: the scenario fails, the rest go on
        (rundir / f"{name}.traceback").write_text(traceback.format_exc())
        if lab.vm is not None:
            lab.down(cut=True)
        return False, {}, f"lab error: {exc}"


def run_one(lab: Lab, name: str, rundir: Path, main_boot: bool) -> tuple[str, dict, dict]:
    """One scenario: verdict (pass, FAIL, starved), figures, and the host's share per try.

    The host's share of CPU the VM got is measured during every try; a real-time
    scenario that failed while the host starved the VM is tried once more (docs/lab.md).
    Its line is printed as soon as it ends.
    """
    t = time.monotonic()
    tries: list[dict] = []
    verdict, figs = "FAIL", {}
    for attempt in (1, 2):
        if attempt == 2 and name == "boot" and lab.vm is not None:
            lab.down()  # the boot scenario powers the machine on itself
        meter = hostcpu.Meter(lab.qemu_pid).start()
        ok, figs, detail = try_one(lab, name, rundir, main_boot)
        host = meter.stop()
        tries.append(host.figures())
        verdict = hostcpu.step(ok, host, name, attempt)
        shown = " ".join(f"{k}={v}" for k, v in figs.items())
        print(
            f"{name}: {verdict} ({time.monotonic() - t:.0f} s) {shown} {detail}; host: "
            f"VM got {host.vm_got_pct}% of the CPU it asked for, used {host.vm_cpu_pct}% "
            f"of a core, others {host.others_pct}%, steal {host.steal_pct}%: {host.why}",
            flush=True,
        )
        if verdict != "retry":
            break
        log(f"{name}: failed while the host starved the VM; trying it once more")
    return verdict, figs, {"tries": tries, "starved": any(x["starved"] for x in tries)}


def run(names: list[str], arch: str = "amd64") -> int:
    t_start = time.monotonic()
    figures: dict[str, object] = {k: None for k in FIGURES}
    verdicts: dict[str, str] = {}
    hosts: dict[str, dict] = {}
    times: dict[str, float] = {}
    img, wheels = build.image(log, arch), build.wheelhouse(log, arch)
    runs = build.cache_dir() / "runs"
    runs.mkdir(parents=True, exist_ok=True)
    rundir = Path(tempfile.mkdtemp(prefix=time.strftime("%Y%m%d-%H%M%S-"), dir=runs))
    log(f"run directory {rundir}")
    for old in sorted(runs.iterdir())[:-KEEP_RUNS]:  # each holds ~1 GB of disks
        shutil.rmtree(old, ignore_errors=True)
    disk, data = build.run_disks(img, wheels, rundir)
    t = time.monotonic()
    installer = Lab(img, disk, rundir, arch)
    meter = hostcpu.Meter(installer.qemu_pid).start()
    install(installer, data)
    shared = meter.stop()
    times["install"] = round(time.monotonic() - t, 1)
    hosts["install"] = {"tries": [shared.figures()], "starved": shared.starved}
    log(f"install: host gave the VM {shared.vm_got_pct}% of the CPU it asked for ({shared.why})")
    # The installed disk is never written again: the main boots and the power cuts each
    # write their own overlay, so the power scenario runs beside the main boot's later ones.
    lab = Lab(img, build.overlay(disk, rundir / "main.qcow2"), rundir, arch)
    power_lab = Lab(img, build.overlay(disk, rundir / "power.qcow2"), rundir, arch)
    power_lab.config_mode = lab.config_mode = Lab.installed_mode
    main = [n for n, _, b in SCENARIOS if b == "main" and n in names]
    power_result: dict[str, tuple[str, dict, dict, float]] = {}

    def power_thread() -> None:
        t = time.monotonic()
        power_result["power"] = (
            *run_one(power_lab, "power", rundir, main_boot=False),
            round(time.monotonic() - t, 1),
        )

    def note(name: str, verdict: str, figs: dict, host: dict, t: float) -> None:
        figures.update(figs)
        verdicts[name], hosts[name], times[name] = verdict, host, round(t, 1)

    worker = threading.Thread(target=power_thread, daemon=True)
    for name in main:
        if name not in ALONE and "power" in names and not worker.is_alive() and not power_result:
            worker.start()
        t = time.monotonic()
        note(name, *run_one(lab, name, rundir, main_boot=True), time.monotonic() - t)
    if lab.vm is not None:
        lab.down()
    if "clock" in names:
        t = time.monotonic()
        note("clock", *run_one(lab, "clock", rundir, main_boot=False), time.monotonic() - t)
        if lab.vm is not None:
            lab.down()
    if "power" in names:
        if not worker.is_alive() and not power_result:
            worker.start()
        worker.join()
        note("power", *power_result.get("power", ("FAIL", {}, {}, 0.0)))
    summary = summarise(figures, verdicts, hosts, times, arch)
    summary["wall_s"] = round(time.monotonic() - t_start, 1)
    summary["run_dir"] = str(rundir)
    print(json.dumps(summary), flush=True)
    return exit_code(verdicts)


def summarise(
    figures: dict[str, object],
    verdicts: dict[str, str],
    hosts: dict[str, dict],
    times: dict[str, float],
    arch: str,
) -> dict[str, object]:
    """The JSON line: figures, verdicts, and beside them the host's share per scenario.

    ``failed`` names the scenarios the box failed; ``starved`` those the lab could not
    judge because the host starved the VM on both tries; ``retried`` those tried twice.
    """
    return {
        **figures,
        "arch": arch,
        "scenarios": verdicts,
        "failed": [n for n, v in verdicts.items() if v == "FAIL"],
        "starved": [n for n, v in verdicts.items() if v == "starved"],
        "retried": [n for n, h in hosts.items() if len(h.get("tries", [])) > 1],
        "host": hosts,
        "scenario_s": times,
    }


def exit_code(verdicts: dict[str, str]) -> int:
    """1: the box failed a scenario; 3: none failed but the host starved one (not judged)."""
    if any(v == "FAIL" for v in verdicts.values()):
        return 1
    return 3 if any(v == "starved" for v in verdicts.values()) else 0


def parse_args(argv: list[str]) -> tuple[str, list[str]]:
    """(arch, the rest) from ``--arch A`` / ``--arch=A`` anywhere; ValueError names a bad one."""
    arch, rest = "amd64", []
    it = iter(argv)
    for a in it:
        if a == "--arch" or a.startswith("--arch="):
            value = a.partition("=")[2] if "=" in a else next(it, "")
            if value.lower() not in ARCHES:
                raise ValueError(f"unknown --arch {value!r} (amd64 or arm64)")
            arch = ARCHES[value.lower()]
        else:
            rest.append(a)
    return arch, rest


def main(argv: list[str]) -> int:
    if any(a in ("-h", "--help") for a in argv):
        print(usage())
        return 0
    try:
        arch, argv = parse_args(argv)
    except ValueError as exc:
        print(f"tools/lab/run: {exc}\n\n{usage()}", file=sys.stderr)
        return 2
    if argv == ["--prepare"]:  # the cached parts only (CI runs this beside the tests)
        try:
            build.image(log, arch)
            build.wheelhouse(log, arch)
        except LabError as exc:
            print(f"tools/lab/run: {exc}", file=sys.stderr)
            return 1
        return 0
    known = [n for n, _, _ in SCENARIOS]
    unknown = [a for a in argv if a not in known]
    if unknown:
        print(f"tools/lab/run: unknown scenario {', '.join(unknown)}\n\n{usage()}", file=sys.stderr)
        return 2
    names = argv or known
    try:
        return run(names, arch)
    except LabError as exc:
        print(f"tools/lab/run: {exc}", file=sys.stderr)
        print(json.dumps({"error": str(exc), "arch": arch, "failed": names}), flush=True)
        return 1


if __name__ == "__main__":
    # SIGTERM (CI's timeout, a kill) exits through atexit, which kills every QEMU it started.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    sys.exit(main(sys.argv[1:]))
