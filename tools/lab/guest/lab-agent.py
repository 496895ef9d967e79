#!/usr/bin/python3
"""The lab's agent inside the VM: runs shell commands the host sends on a virtio port.

One JSON object per line in: {"id": N, "sh": "...", "timeout": S}; one JSON line out:
{"id": N, "rc": RC, "out": "...", "err": "...", "mono": guest CLOCK_MONOTONIC, "wall": time()}.
It is lab equipment, not part of the box: installed only in the lab's image.
"""

import json
import os
import subprocess
import time

PORT = "/dev/virtio-ports/lab.agent"


def find_port() -> str:
    """The port's device: udev's symlink, else the vport whose sysfs name is lab.agent."""
    waited = 0
    while True:
        if os.path.exists(PORT):
            return PORT
        base = "/sys/class/virtio-ports"
        for dev in os.listdir(base) if os.path.isdir(base) else []:
            with open(f"{base}/{dev}/name") as f:
                if f.read().strip() == "lab.agent" and os.path.exists(f"/dev/{dev}"):
                    return f"/dev/{dev}"
        waited += 1
        if waited % 100 == 0:
            print(f"lab-agent: no {PORT} yet; virtio ports: {os.listdir('/dev')}", flush=True)
        time.sleep(0.1)


def main() -> None:
    fd = os.open(find_port(), os.O_RDWR)
    out = os.fdopen(fd, "wb", buffering=0)
    inp = os.fdopen(os.dup(fd), "rb", buffering=0)
    hello = {"id": 0, "hello": True, "mono": time.monotonic(), "wall": time.time()}
    out.write((json.dumps(hello) + "\n").encode())
    buf = b""
    while True:
        chunk = inp.read(65536)
        if not chunk:
            time.sleep(0.05)
            continue
        buf += chunk
        while b"\n" in buf:
            line, buf = buf.split(b"\n", 1)
            if not line.strip():
                continue
            req = json.loads(line)
            try:
                p = subprocess.run(
                    ["/bin/bash", "-c", req["sh"]],
                    capture_output=True,
                    timeout=req.get("timeout", 120),
                    stdin=subprocess.DEVNULL,
                )
                rc, so, se = p.returncode, p.stdout, p.stderr
            except subprocess.TimeoutExpired as exc:
                rc, so, se = 124, exc.stdout or b"", (exc.stderr or b"") + b"\nlab-agent: timeout"
            reply = {
                "id": req["id"],
                "rc": rc,
                "out": so.decode(errors="replace"),
                "err": se.decode(errors="replace"),
                "mono": time.monotonic(),
                "wall": time.time(),
            }
            out.write((json.dumps(reply) + "\n").encode())


if __name__ == "__main__":
    main()
