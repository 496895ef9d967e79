#!/usr/bin/python3
"""Lab equipment: wait until the box's sound is on the loopback card, print the moment.

lab-soundwait [NOT_PID] [TIMEOUT_S]: waits until the card's playback substream is RUNNING,
owned by a process other than NOT_PID (0: any), and its capture side hears a non-zero
sample; prints "SOUND <CLOCK_MONOTONIC s> <owner pid>" (exit 0) or "NOSOUND" (exit 1).
"""

import subprocess
import sys
import time

STATUS = "/proc/asound/Loopback/pcm0p/sub0/status"


def playback() -> tuple[bool, int]:
    try:
        with open(STATUS) as f:
            text = f.read()
    except OSError:
        return False, 0
    fields = dict(
        (k.strip(), v.strip()) for k, _, v in (ln.partition(":") for ln in text.splitlines())
    )
    return fields.get("state") == "RUNNING", int(fields.get("owner_pid", "0") or 0)


def main() -> int:
    not_pid = int(sys.argv[1]) if len(sys.argv) > 1 else 0
    deadline = time.monotonic() + (float(sys.argv[2]) if len(sys.argv) > 2 else 300.0)
    while time.monotonic() < deadline:
        running, owner = playback()
        if not running or owner == not_pid:
            time.sleep(0.02)
            continue
        rec = subprocess.Popen(
            [
                "arecord",
                "-q",
                "-D",
                "hw:Loopback,1,0",
                "-f",
                "S16_LE",
                "-c",
                "2",
                "-r",
                "48000",
                "-t",
                "raw",
                "--buffer-time=100000",
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
        )
        try:
            while time.monotonic() < deadline and rec.stdout is not None:
                chunk = rec.stdout.read(960)
                if not chunk:
                    break
                if chunk.count(0) != len(chunk):
                    print(f"SOUND {time.monotonic():.3f} {owner}")
                    return 0
        finally:
            rec.kill()
            rec.wait()
        time.sleep(0.05)
    print("NOSOUND")
    return 1


if __name__ == "__main__":
    sys.exit(main())
