"""The power scenario: QEMU SIGKILLed at random moments, then booted and checked, 20+ times.

Cuts rotate through mid-session, during CFG SAVE, during boot and during ERASE USERDATA,
each at a random moment (random.Random(LAB_SEED), default 11). After each cut the next
boot checks: the service starts and plays, PRAGMA integrity_check is ok, every finished
session seen before is there unchanged (an ERASE cut: all of them or none), the config
passes ``bedside config check``, keeps its mode and leaves no temp file, and a cut session
lost at most 1 s of rows.
"""

from __future__ import annotations

import json
import os
import random
import time

import values
from console import fields, status
from scen_box import sound_after
from vm import LabError

KINDS = ("session", "cfgsave", "boot", "erase")
DB = "/var/lib/bedside/sessions.db"
#: The issue's bound on lost rows; a cut session's last row must be this close to the cut.
MAX_LOST_S = 1.0

#: The store: integrity, finished sessions (rows and their sum), each session's last row.
STORE = f"""
set -u
sq() {{ runuser -u bedside -- sqlite3 -batch -separator '|' {DB} "$1"; }}
echo "integrity=$(sq 'PRAGMA integrity_check')"
sq "select id, started_at, ended_at, program, coalesce(end_reason,''),
    (select count(*) from rows r where r.session_id = s.id),
    (select round(total(t), 3) from rows r where r.session_id = s.id)
    from sessions s where ended_at is not null order by id" | sed 's/^/finished=/'
sq "select session_id, max(t) from rows group by session_id" | sed 's/^/last=/'
"""


def config_check(port: str) -> str:
    """The config file: whole for the box's own checker, its mode and port kept, no temp file."""
    return f"""
/opt/bedside/venv/bin/bedside config check /etc/bedside/config.toml >/dev/null 2>&1
echo "config_check=$?"
echo "config_mode=$(stat -c %a /etc/bedside/config.toml)"
echo "config_port=$(grep -c '^port = "{port}"' /etc/bedside/config.toml)"
echo "temp_files=$(ls -A /etc/bedside | grep -v -x -e config.toml -e programs | tr '\\n' ' ')"
"""


#: Where the check below writes.
CHECK_OUT = "/run/lab-check.out"


def check_bg(port: str) -> str:
    """Both checks, started in the background as soon as the VM answers (beside the start)."""
    return (
        f"(set +e; {{ {STORE}\n{config_check(port)}\n}} > {CHECK_OUT}.tmp 2>&1; "
        f"mv {CHECK_OUT}.tmp {CHECK_OUT}) </dev/null >/dev/null 2>&1 &"
    )


def _parse(out: str) -> dict:
    """The check's lines; a line whose values do not read (a torn write) is left out."""
    res: dict = {"finished": {}, "last": {}}
    for line in out.splitlines():
        key, _, val = line.partition("=")
        if key == "finished":
            sid = values.integer(val.split("|", 1)[0])
            if sid is not None:
                res["finished"][sid] = val
        elif key == "last":
            session, _, t = val.partition("|")
            sid, at = values.integer(session), values.number(t)
            if sid is not None and at is not None:
                res["last"][sid] = at
        elif key:
            res[key] = val.strip()
    return res


def elapsed_at_cut(st: dict[str, str], since_reply_s: float) -> float | None:
    """The session's elapsed time at the cut: STATUS?'s ``elapsed_s`` plus the time since.

    None when the session had not started (``elapsed_s=none``) or the value does not read:
    then no rows can have been lost, and the cut is not counted among the mid-session ones.
    """
    elapsed = values.field(st, "elapsed_s")
    return None if elapsed is None else elapsed + since_reply_s


class Power:
    def __init__(self, lab) -> None:
        self.lab = lab
        self.rng = random.Random(values.integer(os.environ.get("LAB_SEED")) or 11)
        self.known: dict[int, str] = {}
        self.erase_cut: set[int] | None = None
        self.cut_session: tuple[int, float] | None = None
        self.failures: list[str] = []
        self.lost: list[float] = []
        self.boot_s: list[float] = []
        self.pin = ""
        #: Session cuts that came before the session had started (elapsed_s=none).
        self.not_started = 0

    def check(self, n: int) -> bool:
        """After cut n-1: starts, plays, store and config whole. False: a failure was noted."""
        vm = self.lab.vm
        vm.sh(f"rm -f {CHECK_OUT}; {check_bg(self.lab.port)}", 30)
        ready = vm.wait_for("systemctl is-active -q bedside", 240)
        snd = sound_after(vm, 0, 120) if ready else None
        ok = True

        def fail(msg: str) -> None:
            nonlocal ok
            ok = False
            self.failures.append(f"boot {n}: {msg}")

        if snd is None:
            fail("the service did not start and play")
        else:
            self.boot_s.append(vm.host_time(snd[0]))
        if vm.wait_for(f"test -e {CHECK_OUT}", 180) is None:
            raise LabError("the store and config check did not finish in 180 s")
        r = _parse(vm.out(f"cat {CHECK_OUT}"))
        if r.get("integrity") != "ok":
            fail(f"integrity_check: {r.get('integrity')}")
        if self.erase_cut is not None:
            present = self.erase_cut & set(r["finished"])
            if present and present != self.erase_cut:
                fail(f"ERASE cut half-way: {sorted(present)} of {sorted(self.erase_cut)}")
            if not present:
                self.known = {}
            self.erase_cut = None
        for sid, row in self.known.items():
            if r["finished"].get(sid) != row:
                fail(f"finished session {sid} lost or changed: {row} -> {r['finished'].get(sid)}")
        if r.get("config_check") != "0" or r.get("config_port") != "1":
            fail(f"config not whole (check rc {r.get('config_check')})")
        if r.get("config_mode") != self.lab.config_mode:
            fail(f"config mode {r.get('config_mode')}, was {self.lab.config_mode}")
        if r.get("temp_files"):
            fail(f"temp files left in /etc/bedside: {r['temp_files']}")
        if self.cut_session is not None:
            sid, at = self.cut_session
            lost = at - r["last"].get(sid, 0.0)
            self.lost.append(lost)
            if lost > MAX_LOST_S:
                fail(f"session {sid}: {lost:.2f} s of rows lost (cut at t={at:.2f})")
            self.cut_session = None
        self.known.update(r["finished"])
        return ok

    def settle(self) -> None:
        """Stop the boot's session (it becomes a finished one) and note what is stored."""
        con = self.lab.con
        if not con.ready(120):
            raise LabError("no console after boot")
        con.ask("SESSION STOP")
        time.sleep(2.5)
        r = _parse(self.lab.vm.out(STORE, 120))
        self.known.update(r["finished"])

    def login(self) -> None:
        """The service login with this box's default PIN (as a technician gets it: as root)."""
        lab = self.lab
        if not self.pin:  # the same machine and secret at every boot
            pin = lab.vm.out("/opt/bedside/venv/bin/bedside pin show-default").split()
            self.pin = next((w for w in pin if w.isdigit() and len(w) >= 6), "")
        ok, lines = lab.con.ask(f"AUTH {self.pin}", 60)
        if not ok:
            ls = lab.vm.out("ls -ln /var/lib/bedside")
            self.failures.append(f"AUTH with the default PIN refused: {lines} ({ls})")

    def act(self, kind: str) -> None:
        """Start what the cut interrupts and SIGKILL QEMU at a random moment in it."""
        lab, rng = self.lab, self.rng
        con = lab.con
        if kind == "session":
            ok, lines = con.ask("SESSION START wind-down")
            sid = values.integer(fields(lines[0]).get("session")) if ok and lines else None
            time.sleep(rng.uniform(2, 6))
            st = status(con)
            t_reply = time.monotonic()
            time.sleep(rng.uniform(0, 1))
            elapsed = elapsed_at_cut(st, time.monotonic() - t_reply)
            lab.down(cut=True)
            if sid is not None and elapsed is not None:
                self.cut_session = (sid, elapsed)
            elif sid is not None:
                self.not_started += 1
        elif kind == "cfgsave":
            self.login()  # CFG SAVE needs the service login
            con.ask(f"CFG SET audio.volume_db {rng.randint(-30, -13)}")
            con.send_raw("CFG SAVE")
            time.sleep(rng.uniform(0, 0.4))
            lab.down(cut=True)
        elif kind == "erase":
            self.login()
            ok, lines = con.ask("ERASE USERDATA")
            token = fields(lines[0]).get("token", "") if ok else ""
            if not token:
                self.failures.append(f"ERASE USERDATA gave no token: {lines}")
                lab.down(cut=True)
                return
            self.erase_cut = set(self.known)
            con.send_raw(f"ERASE USERDATA {token}")
            time.sleep(rng.uniform(0, 0.3))
            lab.down(cut=True)


def power(lab) -> tuple[bool, dict, str]:
    # Fewer than 20 (for trying the lab out) can never pass: power_ok needs 20.
    cuts = max(1, values.integer(os.environ.get("LAB_POWER_CUTS")) or 20)
    p = Power(lab)
    done = 0
    for n in range(cuts + 1):
        kind = KINDS[n % len(KINDS)]
        vm = lab.boot(f"power{n:02d}")
        if kind == "boot" and n < cuts:
            # During boot: between the kernel and the box's first sound.
            time.sleep(p.rng.uniform(0, 12))
            lab.down(cut=True)
            done += 1
            continue
        p.check(n)
        if n == cuts:
            lab.down()
            break
        p.settle()
        p.act(kind)
        done += 1
        if vm.proc is not None and vm.proc.poll() is None:
            lab.down(cut=True)
    figs = {
        "power_cuts": done,
        "power_ok": not p.failures and done >= 20,
        "power_max_lost_s": round(max(p.lost), 2) if p.lost else None,
    }
    (lab.rundir / "power.json").write_text(json.dumps({"failures": p.failures, "lost": p.lost}))
    note = (
        f"{len(p.failures)} failures {p.failures[:4]}; rows lost {[round(x, 2) for x in p.lost]}; "
        f"boot to sound {min(p.boot_s, default=0):.0f}-{max(p.boot_s, default=0):.0f} s; "
        f"session cuts before the session had started {p.not_started}"
    )
    return bool(figs["power_ok"]), figs, note
