"""An hour of real-time playback into ALSA while the console is flooded: underruns must stay 0.

Starts ``bedside run --sim --audio realtime:pyaudio`` with PortAudio's default output routed,
by a per-process ALSA config, into the ``file`` plugin over ``null`` (every frame played is
captured). ALSA's null device keeps no time, so the sink models the sound card's buffer
(``audio.buffer_blocks`` blocks, drained at 48 kHz by the wall clock); the box runs on its
real clock, paced by that sink exactly as by a card on a Pi, and a block that arrives after
the buffer ran dry counts an underrun.

Meanwhile the console (a socat pty pair) is flooded for the whole run: a window of commands
is always in flight (``STATUS?``, ``PING``, ``VOL?``, ``HELP VOL``, ``ERR?``, malformed
lines, and every command that touches the disk: ``SESSIONS?``, ``EXPORT``, ``SELFTEST``,
``CFG SAVE``, ``CFG SET therapy.program``, ``PROG LIST?``, ``PROFILE?``, ``ERASE USERDATA``
and ``SESSION START`` of a program and of a 128 MB file, refused), every reply is checked
in order, and once a minute a ``STATUS?`` samples the box's underruns, late blocks and task
overruns. The disk commands run on the console's worker thread; the loop only formats.
At the end the capture is read back: its length must match the time the box ran, and it
must not be silent. Exit 0 only when every check
passes (no underruns, still playing, capture length, sound).

Run: ``.venv/bin/python bench/realtime_flood.py [--minutes 60] [--block-frames 1024]``
"""

from __future__ import annotations

import argparse
import contextlib
import math
import os
import select
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import tty
from pathlib import Path

import numpy as np
from benchbox import box_env, pty_pair, stop

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from device.console.auth import PinAuth  # noqa: E402
from device.console.protocol import parse_pairs  # noqa: E402

ALSA_CONF = """</usr/share/alsa/alsa.conf>
pcm.!default {
    type file
    slave.pcm "null"
    file "%s"
    format "raw"
    truncate true
}
"""

#: What the flood sends, in turn; malformed lines must get ``ERR`` with their tag.
KINDS = (
    ("STATUS?", "OK"),
    ("PING", "OK"),
    ("VOL?", "OK"),
    ("HELP VOL", "OK"),
    ("FROB 1 2", "ERR"),
    ("VOL loud", "ERR"),
    ("ERR?", "OK"),
)


def disk_kinds(program: Path, big: Path) -> tuple[tuple[str, str], ...]:
    """The commands that touch the disk (the service login is active), with their finals."""
    return (
        ("SESSIONS?", "OK"),
        ("EXPORT 1", "OK"),
        ("SELFTEST", "OK"),
        (f"CFG SET therapy.program {program}", "OK"),
        ("CFG SAVE", "OK"),
        ("PROG LIST?", "OK"),
        ("PROFILE?", "OK"),
        ("SESSION START", "ERR"),  # the program is read off the loop, then: one plays
        (f"SESSION START {big}", "ERR"),  # larger than 64 KiB: refused unread
        ("ERASE USERDATA", "OK"),  # the token
        ("ERASE USERDATA 00000000", "ERR"),  # a wrong token
    )


def hour_program(minutes: float) -> str:
    """A program that keeps every layer sounding for ``minutes``, its parameters always moving.

    Sections of 10 minutes swap entrainment kind, pad preset and noise colour (crossfaded
    over 30 s) while rates, carriers, brightness and levels glide, as the closed loop would
    move them.
    """
    kinds = ("isochronic", "monaural")
    pads = ("deep", "warm", "glass")
    colours = ("pink", "brown", "white")
    out = [
        'name = "flood-hour"',
        'description = "benchmark: the full mix for an hour, parameters always gliding"',
    ]
    for i in range(max(1, math.ceil(minutes / 10.0))):
        lo, hi = (6, 10) if i % 2 else (10, 6)
        out += [
            "",
            "[[section]]",
            f'name = "part{i + 1}"',
            "duration_min = 10",
            f"pacer_bpm = [{10 if i == 0 else 6}, 6]",
            "inhale_fraction = 0.4",
            f'entrain_kind = "{kinds[i % 2]}"',
            f"entrain_hz = [{lo}, {hi}]",
            f"carrier_hz = [{200 + 20 * (i % 3)}, {180 + 20 * (i % 2)}]",
            f'pad_preset = "{pads[i % 3]}"',
            f"pad_brightness = [{0.3 + 0.1 * (i % 3):.1f}, {0.5 - 0.1 * (i % 2):.1f}]",
            f'noise_colour = "{colours[i % 3]}"',
            "noise_tone = [0.4, 0.3]",
            f"tones_db = [{-24 - (i % 2) * 3}, {-27 + (i % 2) * 3}]",
            "pad_db = [-14, -16]",
            "noise_db = [-24, -22]",
            "swell_db = [6, 4]",
        ]
        if i:
            out.append('transition = { duration_s = 30, curve = "S" }')
    out += ["", "[ending]", 'kind = "fade"', "duration_min = 2", 'curve = "S"', ""]
    return "\n".join(out)


class Term:
    """The technician's end of the pty pair, non-blocking."""

    def __init__(self, path: str) -> None:
        self.fd = os.open(path, os.O_RDWR | os.O_NOCTTY | os.O_NONBLOCK)
        tty.setraw(self.fd)
        self.rbuf = bytearray()
        self.wbuf = bytearray()

    def pump(self, timeout: float) -> None:
        """Write what is pending and read what arrived, waiting at most ``timeout`` s."""
        want_w = [self.fd] if self.wbuf else []
        r, w, _ = select.select([self.fd], want_w, [], timeout)
        if w:
            with contextlib.suppress(BlockingIOError):
                del self.wbuf[: os.write(self.fd, self.wbuf)]
        if r:
            with contextlib.suppress(BlockingIOError):
                self.rbuf += os.read(self.fd, 65536)

    def lines(self) -> list[str]:
        """Complete lines received so far."""
        out = []
        while (i := self.rbuf.find(b"\r\n")) >= 0:
            out.append(self.rbuf[:i].decode(errors="replace"))
            del self.rbuf[: i + 2]
        return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--minutes", type=float, default=60.0, help="wall minutes to play")
    ap.add_argument("--block-frames", type=int, default=1024)
    ap.add_argument("--buffer-blocks", type=int, default=8)
    ap.add_argument("--window", type=int, default=64, help="commands kept in flight")
    ap.add_argument(
        "--nice",
        type=int,
        default=-10,
        help="the box's niceness, as systemd/bedside.service sets it where SCHED_FIFO is refused",
    )
    ap.add_argument("--keep", action="store_true", help="keep the capture and temp dir")
    args = ap.parse_args()
    # A SIGTERM (a timeout, a kill) still stops the box and the pty pair below.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    tmp = Path(tempfile.mkdtemp(prefix="bedside-rtflood-"))
    capture = tmp / "played.raw"
    conf = tmp / "asound.conf"
    conf.write_text(ALSA_CONF % capture)
    pair, box_tty, tech_tty = pty_pair(tmp)
    cfg = tmp / "config.toml"
    cfg.write_text(
        "[service]\nauto_start = true\n"
        f"[audio]\nblock_frames = {args.block_frames}\nbuffer_blocks = {args.buffer_blocks}\n"
    )
    env = box_env(tmp, cfg, ALSA_CONFIG_PATH=str(conf))
    program = tmp / "flood-hour.toml"
    program.write_text(hour_program(args.minutes + 5))
    big = tmp / "big.toml"
    with big.open("wb") as f:
        f.truncate(128 * 1024 * 1024)  # sparse
    kinds = KINDS + disk_kinds(program, big)

    def renice() -> None:
        # An unprivileged user keeps normal priority (the niceness is printed below).
        with contextlib.suppress(OSError):
            os.setpriority(os.PRIO_PROCESS, 0, args.nice)

    t_popen = time.monotonic()
    box = subprocess.Popen(
        [
            *(sys.executable, "-m", "device", "run", "--sim", "--audio", "realtime:pyaudio"),
            *("--program", str(program), "--serial", box_tty, "--config", str(cfg)),
            *("--state-dir", str(tmp / "state"), "--status", "none"),
        ],
        stdout=subprocess.DEVNULL,
        stderr=open(tmp / "box.log", "wb"),  # noqa: SIM115
        env=env,
        preexec_fn=renice,
    )
    nice_now = os.getpriority(os.PRIO_PROCESS, box.pid)
    block_ms = args.block_frames / 48.0
    print(
        f"{args.minutes:g} min of real-time playback, block {args.block_frames} frames "
        f"({block_ms:.1f} ms), buffer {args.buffer_blocks} blocks "
        f"({args.buffer_blocks * block_ms:.0f} ms), {args.window} commands in flight, "
        f"box niceness {nice_now}",
        flush=True,
    )
    try:
        term = Term(tech_tty)
        t_ready = time.monotonic()
        ready = False
        while not ready:
            if time.monotonic() - t_ready > 30:
                raise TimeoutError("the box did not say !READY in 30 s")
            term.pump(0.1)
            ready = any(line.startswith("!READY") for line in term.lines())
        # The service login, for CFG SAVE and ERASE (the default PIN of this state dir).
        pin = PinAuth(tmp / "state").store.default_pin()
        term.wbuf += f"AUTH {pin} #a0\r\n".encode()
        while True:
            term.pump(0.1)
            got = [x for x in term.lines() if x.startswith(("OK", "ERR "))]
            if got:
                if got[0] != "OK #a0":
                    raise RuntimeError(f"AUTH answered {got[0]!r}")
                break
            if time.monotonic() - t_ready > 60:
                raise TimeoutError("AUTH was not answered in 60 s")
        # The session (id 1, which EXPORT reads) plays before the flood begins.
        playing = False
        while not playing:
            if time.monotonic() - t_ready > 60:
                raise TimeoutError("no session playing within 60 s")
            term.wbuf += b"STATUS? #w\r\n"
            for _ in range(10):
                term.pump(0.1)
                got = term.lines()
                playing = any("state=playing" in x for x in got)
                if any(x.endswith("#w") for x in got):
                    break
        t0 = time.monotonic()
        end = t0 + args.minutes * 60.0
        sent = answered = errs = disk = 0
        disk_texts = {text for text, _ in kinds[len(KINDS) :]}
        texts: dict[str, str] = {}
        pending: list[tuple[str, str]] = []  # (tag, expected final kind) in send order
        samples: list[tuple[float, dict[str, str]]] = []
        last_data: list[str] = []
        next_sample = t0
        final_sampled = False
        last_reply = t0
        while True:
            now = time.monotonic()
            sampling = now >= next_sample and now < end
            if now >= end and not final_sampled:
                sampling = final_sampled = True
            if now < end or sampling:
                while (now < end and len(pending) < args.window) or sampling:
                    if sampling:
                        tag, text, kind = f"h{len(samples)}", "STATUS?", "OK"
                        next_sample += 60.0
                        sampling = False
                    else:
                        text, kind = kinds[sent % len(kinds)]
                        tag = f"f{sent % 1_000_000}"  # tags are at most 8 characters
                        sent += 1
                    term.wbuf += f"{text} #{tag}\r\n".encode()
                    pending.append((tag, kind))
                    texts[tag] = text
            elif not pending:
                break
            term.pump(0.05)
            for line in term.lines():
                if line.startswith("!"):
                    continue
                if not line.startswith(("OK", "ERR ")):
                    last_data.append(line)
                    continue
                tag, kind = pending.pop(0)
                last_reply = time.monotonic()
                if not line.endswith(f" #{tag}") or not line.startswith(kind):
                    raise AssertionError(f"expected {kind} #{tag}, got {line!r}")
                if tag.startswith("h"):
                    status = parse_pairs(last_data[0])
                    samples.append((time.monotonic() - t0, status))
                    if len(samples) % 10 == 1:
                        print(
                            f"  {(time.monotonic() - t0) / 60:5.1f} min: underruns "
                            f"{status['underruns']}  late blocks {status['late_blocks']}  "
                            f"overruns {status['overruns']}  state {status['state']}  "
                            f"commands answered {answered}",
                            flush=True,
                        )
                else:
                    answered += 1
                    errs += kind == "ERR"
                    disk += texts.get(tag) in disk_texts
                texts.pop(tag, None)
                last_data.clear()
            if box.poll() is not None:
                raise RuntimeError(f"the box exited with {box.returncode} during the run")
            if pending and time.monotonic() - last_reply > 10.0:
                raise RuntimeError(f"the box answered nothing for 10 s ({len(pending)} waiting)")
        wall = time.monotonic() - t0
        first, last = samples[0][1], samples[-1][1]
        played = samples[-1][0] - samples[0][0]
        print(f"played for {wall / 60:.1f} min of wall time; console answered {answered} commands")
        print(
            f"  ({answered / wall:.0f} commands/s, {errs} of them answered ERR as expected, "
            f"{disk} touched the disk, all in order)"
        )
        for key in ("underruns", "late_blocks", "overruns"):
            print(f"  {key}: {first[key]} at the start, {last[key]} after {played / 60:.1f} min")
        print(f"  state {last['state']}  program {last['program']}  level {last['level_db']} dB")
    finally:
        stop(box, pair)
        t_exit = time.monotonic()
    frames = capture.stat().st_size // 4
    played_s = frames / 48000
    alive_s = t_exit - t_popen
    print(
        f"captured {frames} frames = {played_s / 60:.3f} min; the box ran {alive_s / 60:.3f} min "
        "(start-up before the stream opened, the stop fade after SIGTERM included)"
    )
    # 30 s of the capture ending 3 s before its end (the stop fade takes at most 2 s).
    fade_at = max(0, frames - 48000 * 3)
    tail = np.fromfile(capture, dtype="<i2", offset=max(0, fade_at - 48000 * 30) * 4)
    tail = tail[: (fade_at - max(0, fade_at - 48000 * 30)) * 2]
    rms = float(np.sqrt(np.mean((tail.astype(np.float64) / 32768.0) ** 2))) if tail.size else 0.0
    rms_db = 20 * np.log10(max(rms, 1e-12))
    print(f"  the 30 s before the stop fade: rms {rms_db:.1f} dBFS")
    checks = {
        "no underruns": int(last["underruns"]) == 0,
        "still playing at the end": last["state"] == "playing",
        "capture as long as the run (-3 s .. +0.5 s)": alive_s - 3.0 <= played_s <= alive_s + 0.5,
        "sound, not silence, at the end (> -60 dBFS)": rms_db > -60.0,
    }
    for name, ok in checks.items():
        print(f"  {'PASS' if ok else 'FAIL'}: {name}")
    if not args.keep:
        shutil.rmtree(tmp, ignore_errors=True)
    else:
        print(f"kept {tmp}")
    return 0 if all(checks.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
