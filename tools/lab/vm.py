"""One boot of the lab's Debian VM under QEMU (TCG): start, talk to its agent, cut its power.

The VM has systemd as PID 1; its first UART is the kernel console (a file), a second
16550 UART the box's technician console (a host pty), a virtio port carries the lab
agent's commands, QMP plugs and unplugs a USB sound card.

Two machines: ``amd64`` (qemu-system-x86_64, ``-cpu max``; console ttyS0, the box's UART
ttyS1) and ``arm64`` (qemu-system-aarch64 ``-M virt -cpu cortex-a72``, a Pi 4's core;
the kernel console on the PL011 ttyAMA0, the box's UART a PCI 16550, ttyS0 in the guest:
the virt machine has a single PL011). Both boot Debian's kernel directly (``-kernel``),
as a Pi's firmware loads its kernel without UEFI.
"""

from __future__ import annotations

import atexit
import contextlib
import json
import os
import socket
import subprocess
import time
from pathlib import Path
from typing import Any, ClassVar

import values


class LabError(RuntimeError):
    """The lab itself could not do a step (not a product failure)."""


class Lines:
    """A unix socket read as JSON lines."""

    def __init__(self, path: Path, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while True:
            try:
                self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                self.sock.connect(str(path))
                break
            except OSError:
                self.sock.close()
                if time.monotonic() > deadline:
                    raise LabError(f"cannot connect to {path}") from None
                time.sleep(0.05)
        self.buf = b""

    def send(self, obj: dict) -> None:
        self.sock.sendall((json.dumps(obj) + "\n").encode())

    def recv(self, timeout: float) -> dict | None:
        """The next JSON object line; a line that is not one is skipped (never raises on it)."""
        deadline = time.monotonic() + timeout
        while True:
            while b"\n" not in self.buf:
                left = deadline - time.monotonic()
                if left <= 0:
                    return None
                self.sock.settimeout(left)
                try:
                    chunk = self.sock.recv(1 << 20)
                except TimeoutError:
                    return None
                if not chunk:
                    raise LabError("socket closed")
                self.buf += chunk
            line, self.buf = self.buf.split(b"\n", 1)
            msg = values.json_object(line.decode(errors="replace"))
            if msg is not None:
                return msg

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self.sock.close()


#: Every QEMU process the lab started that may still run (killed when the lab exits).
LIVE: set[subprocess.Popen] = set()


@atexit.register
def kill_live() -> None:
    """No QEMU outlives the lab (an interrupted run, a SIGTERM from CI)."""
    for proc in list(LIVE):
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        LIVE.discard(proc)


#: The x86 machine's CPU: QEMU's ``max`` without AVX, so x86-64-v2 (SSE4.2) as far as the
#: guest knows. TCG emulates AVX/AVX2 several times slower than SSE: with them, numpy 2.4's
#: float32 ``sin`` (its X86_V3 path, the pad's and the tones' oscillators) took 198 ms for
#: 12 x 8192 samples in the VM against 18 ms without, and the box used 80-95 % of a vCPU
#: instead of ~30 %, so the audio scenario gapped. The old cure, ``NPY_DISABLE_CPU_FEATURES``
#: naming AVX2/FMA3/AVX, stopped working when numpy 2.4 renamed its dispatch targets
#: (``X86_V3``, ``X86_V4``); a CPU without AVX needs no environment and suits any numpy.
#: Nothing here is a Pi's figure: a Pi is ARM (the arm64 machine, and bench/pi_budget.py).
X86_CPU = "max,-avx,-avx2,-fma,-f16c"


class VM:
    """A QEMU process on the run's disk; ``start()``, ``sh()``, ``poweroff()`` or ``cut()``."""

    def __init__(
        self,
        image: Path,
        disk: Path,
        rundir: Path,
        name: str,
        data: Path | None = None,
        rtc: str | None = None,
        arch: str = "amd64",
    ) -> None:
        self.image, self.disk, self.dir, self.name = image, disk, rundir / name, name
        self.arch = arch
        self.dir.mkdir(parents=True, exist_ok=True)
        self.data, self.rtc = data, rtc
        self.proc: subprocess.Popen | None = None
        self.agent: Lines | None = None
        self.qmp: Lines | None = None
        self.t0 = 0.0
        self.hello_host = self.hello_mono = 0.0
        self.console = ""
        self._id = 0

    def machine(self) -> list[str]:
        """The emulator, machine and CPU; the kernel's console; the box's UART."""
        d = self.dir
        if self.arch == "arm64":
            return [
                "qemu-system-aarch64",
                "-M",
                "virt",
                "-cpu",
                "cortex-a72",
                "-append",
                "root=/dev/vda rw console=ttyAMA0 quiet systemd.show_status=0",
                "-serial",
                f"file:{d / 'ttyAMA0.log'}",
                "-chardev",
                "pty,id=boxuart",
                "-device",
                "pci-serial,chardev=boxuart",
            ]
        return [
            "qemu-system-x86_64",
            "-cpu",
            X86_CPU,
            "-append",
            "root=/dev/vda rw console=ttyS0 quiet systemd.show_status=0",
            "-serial",
            f"file:{d / 'ttyS0.log'}",
            "-serial",
            "pty",
        ]

    #: QMP's label of the box's UART, per machine.
    UART_LABEL: ClassVar[dict[str, str]] = {"amd64": "serial1", "arm64": "boxuart"}

    def command(self) -> list[str]:
        d = self.dir
        cmd = [
            *self.machine(),
            "-accel",
            "tcg",
            "-m",
            "1536",
            "-smp",
            "2",
            "-nodefaults",
            "-display",
            "none",
            "-no-reboot",
            "-kernel",
            str(self.image / "vmlinuz"),
            "-initrd",
            str(self.image / "initrd.img"),
            "-drive",
            f"file={self.disk},format=qcow2,if=virtio",
            "-device",
            "virtio-serial-pci",
            "-chardev",
            f"socket,id=agent,path={d / 'agent.sock'},server=on,wait=off",
            "-device",
            "virtserialport,chardev=agent,name=lab.agent",
            "-qmp",
            f"unix:{d / 'qmp.sock'},server=on,wait=off",
            "-device",
            "qemu-xhci,id=xhci",
            "-audiodev",
            f"wav,id=usbwav,path={d / 'usb-card.wav'}",
        ]
        if self.data is not None:
            cmd += ["-drive", f"file={self.data},format=raw,if=virtio,readonly=on"]
        if self.rtc:
            cmd += ["-rtc", f"base={self.rtc}"]
        return cmd

    def start(self, boot_timeout: float = 600.0) -> None:
        """Power on and wait for the agent's hello (systemd has reached sysinit)."""
        for stale in ("agent.sock", "qmp.sock"):  # a try before in the same directory
            (self.dir / stale).unlink(missing_ok=True)
        self.t0 = time.monotonic()
        with open(self.dir / "qemu.log", "wb") as log:
            self.proc = subprocess.Popen(self.command(), stdout=log, stderr=subprocess.STDOUT)
        LIVE.add(self.proc)
        self.agent = Lines(self.dir / "agent.sock", 30)
        self.qmp = Lines(self.dir / "qmp.sock", 30)
        self.qmp.recv(10)
        self.qmp_cmd("qmp_capabilities")
        for dev in self.qmp_cmd("query-chardev"):
            if dev["label"] == self.UART_LABEL[self.arch]:
                self.console = dev["filename"].removeprefix("pty:")
        hello = self._wait_reply(0, boot_timeout)
        self.hello_host, self.hello_mono = time.monotonic(), hello["mono"]

    def host_time(self, mono: float) -> float:
        """Seconds since power-on at which the guest's CLOCK_MONOTONIC read ``mono``."""
        return self.hello_host - self.t0 - (self.hello_mono - mono)

    def qmp_cmd(self, name: str, **args: object) -> Any:
        assert self.qmp is not None
        self.qmp.send({"execute": name, "arguments": args} if args else {"execute": name})
        while True:
            msg = self.qmp.recv(30)
            if msg is None:
                raise LabError(f"QMP {name}: no answer")
            if "event" in msg:
                continue
            if "error" in msg:
                raise LabError(f"QMP {name}: {msg['error']}")
            return msg.get("return")

    def _wait_reply(self, want: int, timeout: float) -> dict:
        assert self.agent is not None
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if self.proc is not None and self.proc.poll() is not None:
                raise LabError(f"QEMU exited ({self.proc.returncode}); see {self.dir}")
            msg = self.agent.recv(min(left, 1.0)) if left > 0 else None
            if msg is None:
                if left <= 0:
                    raise LabError(f"no answer from the VM's agent in {timeout:.0f} s")
                continue
            if msg.get("id") == want:
                return msg

    def sh(self, script: str, timeout: float = 120.0, check: bool = False) -> dict:
        """Run a bash script in the VM as root; the reply has rc, out, err, mono, wall."""
        assert self.agent is not None
        self._id += 1
        self.agent.send({"id": self._id, "sh": script, "timeout": timeout})
        reply = self._wait_reply(self._id, timeout + 30)
        if check and reply["rc"] != 0:
            raise LabError(f"in the VM: {script!r} -> rc {reply['rc']}: {reply['err'][-800:]}")
        return reply

    def out(self, script: str, timeout: float = 120.0) -> str:
        """stdout of a script that must succeed."""
        return self.sh(script, timeout, check=True)["out"]

    def wait_for(self, script: str, timeout: float, step: float = 0.5) -> dict | None:
        """Run ``script`` until it exits 0; its reply, or None after ``timeout`` seconds."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            r = self.sh(script, 60)
            if r["rc"] == 0:
                return r
            time.sleep(step)
        return None

    def journal(self, unit: str = "bedside", extra: str = "-b") -> str:
        """The unit's journal lines (journalctl is slow under TCG on a long boot's journal)."""
        return self.out(f"journalctl --no-pager -o short-monotonic {extra} -u {unit}", 400)

    def _close(self) -> None:
        for chan in (self.agent, self.qmp):
            if chan is not None:
                chan.close()
        self.agent = self.qmp = None

    def poweroff(self, timeout: float = 180.0) -> None:
        """A clean shutdown (systemctl poweroff); the QEMU process exits."""
        assert self.proc is not None
        with contextlib.suppress(LabError):
            self.sh("systemctl --no-block poweroff", 30)
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.cut()
            raise LabError(f"the VM did not power off in {timeout:.0f} s") from None
        self._close()

    def cut(self) -> None:
        """The power cut: SIGKILL to QEMU. What the guest had not written out is lost."""
        if self.proc is not None and self.proc.poll() is None:
            os.kill(self.proc.pid, 9)
            self.proc.wait()
        self._close()
