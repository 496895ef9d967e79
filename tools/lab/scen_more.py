"""Scenarios: hardening, i2c, card (main boot) and clock (its own boot)."""

from __future__ import annotations

import contextlib
import re
import time

import values
from console import fields, status
from scen_box import main_pid, sound_after
from vm import VM, LabError

#: The unit's own claim (docs/box.md; tests/test_systemd_unit.py holds it offline).
EXPOSURE_BOUND = 1.5
#: World-readable files the lab plants where the box has no business; none may be readable.
SECRETS = [
    "/root/lab-secret",
    "/home/lab/lab-secret",
    "/var/lib/lab-other/secret",
    "/var/log/lab-secret",
    "/srv/lab-secret",
    "/mnt/lab-secret",
    "/media/lab-secret",
    "/opt/lab-other/secret",
    "/tmp/lab-secret",
    "/var/tmp/lab-secret",
    "/boot/lab-secret",
    "/var/backups/lab-secret",
    "/var/mail/lab-secret",
]


def hardening(lab) -> tuple[bool, dict, str]:
    vm = lab.vm
    out = vm.sh("systemd-analyze security --no-pager bedside.service")["out"]
    m = re.search(r"Overall exposure level for \S+: (\d+\.\d+)", out)
    exposure = values.number(m.group(1)) if m else None
    figs: dict[str, object] = {"exposure": exposure}
    plant = "; ".join(
        f"mkdir -p -m 0755 $(dirname {p}) && echo secret > {p} && chmod 0644 {p}" for p in SECRETS
    )
    vm.out(plant)
    pid = main_pid(vm)
    ids = vm.out("id -u bedside; id -g bedside").split()
    readable = []
    try:
        for p in SECRETS:
            r = vm.sh(f"nsenter -t {pid} -m -S {ids[0]} -G {ids[1]} cat {p}")
            if r["rc"] == 0 and "secret" in r["out"]:
                readable.append(p)
        own = vm.sh(f"nsenter -t {pid} -m -S {ids[0]} -G {ids[1]} ls /var/lib/bedside")
    finally:
        vm.sh("rm -rf " + " ".join(SECRETS) + " /home/lab /var/lib/lab-other /opt/lab-other")
    note = f"readable by the service user: {readable or 'none'}; own state listed rc {own['rc']}"
    ok = exposure is not None and exposure <= EXPOSURE_BOUND and not readable and own["rc"] == 0
    return ok, figs, note


def _set(vm: VM, key: str, value: str) -> None:
    """Set ``key = value`` in its section's line of the installed, commented config."""
    vm.out(f"sed -i 's|^{key} = .*|{key} = {value}|' /etc/bedside/config.toml")


def _restart_and_wait(lab, settle: float) -> str:
    vm = lab.vm
    old = main_pid(vm)
    since = vm.out("date '+%F %T'").strip()
    vm.out("systemctl restart bedside", 400)
    sound_after(vm, old, 120)
    time.sleep(settle)
    return vm.out(f"journalctl --no-pager -o cat -u bedside --since '{since}'")


def i2c(lab) -> tuple[bool, dict, str]:
    vm = lab.vm
    seen: dict[str, bool] = {}
    try:
        vm.out("modprobe i2c-stub chip_addr=0x50")  # a bus with no chip at 0x57
        bus = vm.out(
            "for d in /sys/bus/i2c/devices/i2c-*; do grep -q 'SMBus stub' $d/name && "
            "basename $d | cut -d- -f2; done"
        ).strip()
        if not bus:
            raise LabError("i2c-stub made no adapter")
        _set(vm, "i2c_bus", bus)
        j = _restart_and_wait(lab, 8)
        seen["absent"] = "no MAX30102 answered at" in j
        vm.out("systemctl stop bedside; rmmod i2c-stub; modprobe i2c-stub chip_addr=0x57")
        j = _restart_and_wait(lab, 8)
        seen["wrong PART_ID"] = "is not a MAX30102: PART_ID (0xFF) reads 0x00" in j
        vm.out(
            f"systemctl stop bedside; i2cset -y {bus} 0x57 0xff 0x15; "
            f"i2cset -y {bus} 0x57 0xfe 0x03"
        )
        j = _restart_and_wait(lab, 8)
        seen["identity"] = "MAX30102 rev 0x03 found" in j
        after_id = [ln for ln in j.splitlines() if "sensor" in ln.lower()][-2:]
        sensor = fields(lab.con.ask("SENSOR?")[1][0]) if lab.con else {}
    finally:
        vm.sh("systemctl stop bedside; rmmod i2c-stub")
        _set(vm, "i2c_bus", "1")
        vm.sh("systemctl start bedside", 400)
        if lab.con is not None:
            lab.con.ready(120)
    figs = {"i2c_probe_ok": all(seen.values()) and len(seen) == 3, "i2c_closed_loop": False}
    note = (
        f"messages seen {seen}; with the right PART_ID: {after_id}; SENSOR? present="
        f"{sensor.get('present')}; closed loop over the kernel: not built (needs CUSE serving "
        "the i2c-dev ioctls from the register-level simulator)"
    )
    return bool(figs["i2c_probe_ok"]), figs, note


USB_STATUS = "/proc/asound/card1/pcm0p/sub0/status"


def _usb_playing(vm: VM, pid: int) -> bool:
    r = vm.sh(f"cat {USB_STATUS}")
    return (
        "state: RUNNING" in r["out"]
        and re.search(rf"owner_pid\s*:\s*{pid}\b", r["out"]) is not None
    )


def _audio_fault(lab, since: str) -> dict[str, bool]:
    st = status(lab.con)
    _ok, lines = lab.con.ask("SELFTEST", 30)
    audio_check = [fields(ln) for ln in lines if "check=audio" in ln]
    j = lab.vm.out(f"journalctl --no-pager -o cat -u bedside --since '{since}'")
    led = {k: v for k, v in st.items() if "led" in k}
    return {
        "status": st.get("audio", "ok") not in ("ok", "true", ""),
        "selftest": bool(audio_check) and audio_check[0].get("result") == "fail",
        "journal": re.search(r"audio|sound (card|device|output)", j, re.I) is not None,
        "led": any("2" in v for v in led.values()),
    }


def card(lab) -> tuple[bool, dict, str]:
    vm = lab.vm
    figs: dict[str, object] = {}
    notes = []
    try:
        vm.qmp_cmd("device_add", driver="usb-audio", id="usbcard", audiodev="usbwav", bus="xhci.0")
        if vm.wait_for("test -e /proc/asound/card1", 60) is None:
            raise LabError("the USB sound card did not appear")
        _set(vm, "device", '"USB Audio"')
        old = main_pid(vm)
        vm.out("systemctl restart bedside", 400)
        pid = main_pid(vm)
        deadline = time.monotonic() + 120
        while not _usb_playing(vm, pid) and time.monotonic() < deadline:
            time.sleep(0.5)
        if not _usb_playing(vm, pid):
            return False, figs, f"the box (pid {pid}, was {old}) does not play on the USB card"
        lab.con.ready(60)
        time.sleep(3)
        since = vm.out("date '+%F %T'").strip()
        t = time.monotonic()
        vm.qmp_cmd("device_del", id="usbcard")
        seen: dict[str, bool] = {}
        while time.monotonic() - t < 20:
            seen = _audio_fault(lab, since)
            if seen["status"] and seen["selftest"] and seen["journal"]:
                figs["card_fault_reported_s"] = round(time.monotonic() - t, 1)
                break
        notes.append(f"fault seen {seen}")
        alive = main_pid(vm) == pid
        time.sleep(1)
        vm.qmp_cmd("device_add", driver="usb-audio", id="usbcard", audiodev="usbwav", bus="xhci.0")
        t = time.monotonic()
        while time.monotonic() - t < 30:
            if _usb_playing(vm, main_pid(vm)):
                figs["card_recovered_s"] = round(time.monotonic() - t, 1)
                break
            time.sleep(0.2)
        alive = alive and main_pid(vm) == pid
        notes.append(f"same process throughout {alive}")
    finally:
        _set(vm, "device", '""')
        vm.sh("systemctl restart bedside", 400)
        with contextlib.suppress(LabError):
            vm.qmp_cmd("device_del", id="usbcard")
        lab.con.ready(120)
    fault = figs.get("card_fault_reported_s")
    back = figs.get("card_recovered_s")
    ok = (
        alive
        and isinstance(fault, float)
        and fault <= 2.0
        and isinstance(back, float)
        and back <= 5.0
    )
    return ok, figs, "; ".join(notes)


def clock(lab) -> tuple[bool, dict, str]:
    vm = lab.boot("clock", rtc="2001-01-01T00:00:00")
    if vm.wait_for("systemctl is-active -q bedside", 240) is None:
        return False, {}, "bedside.service not active"
    con = lab.con
    con.ready(120)
    guest_date = vm.out("date -u '+%F %T'").strip()
    ids, refused = [], []
    for _ in range(2):
        con.ask("SESSION STOP")
        deadline = time.monotonic() + 60
        while status(con).get("state") != "idle" and time.monotonic() < deadline:
            time.sleep(1)  # the stop fade, slower under TCG
        ok, lines = con.ask("SESSION START wind-down 5", 60)
        sid = values.integer(fields(lines[0]).get("session")) if ok and lines else None
        if sid is not None:
            ids.append(sid)
        else:
            refused.append(lines[-1] if lines else "no reply")
        time.sleep(4)
    con.ask("SESSION STOP")
    time.sleep(3)
    ok, lines = con.ask("SESSIONS?")
    listed = [fields(ln) for ln in lines[:-1]]
    mine = [values.integer(s.get("id")) for s in listed]
    mine = [i for i in mine if i is not None and i in ids]
    ordered = len(mine) == 2 and mine[0] < mine[1]
    starts = [
        values.number(s)
        for s in vm.out(
            "sqlite3 /var/lib/bedside/sessions.db 'select started_at from sessions where id in "
            f"({','.join(map(str, ids)) or '0'}) order by id'"
        ).split()
    ]
    ordered = ordered and len(starts) == 2 and None not in starts and starts[0] <= starts[1]
    st = status(con)
    clock_key = {k: v for k, v in st.items() if "clock" in k}
    said_status = any(re.search(r"unset|not.?set|wrong|false", v, re.I) for v in clock_key.values())
    j = vm.journal()
    said_journal = re.search(r"clock.{0,40}(not set|unset|wrong)", j, re.I) is not None
    lab.down()
    figs = {"clock_wrong_handled": ordered and said_status and said_journal}
    note = (
        f"guest clock {guest_date} (RTC at 2001, raised by systemd's clock epoch); sessions "
        f"{ids} recorded and ordered {ordered}; status clock keys {clock_key or 'none'}; "
        f"journal says clock not set {said_journal}"
    )
    if refused:
        note += f"; SESSION START refused: {refused}"
    return bool(figs["clock_wrong_handled"]), figs, note
