"""The arm64 lab machine's initrd, built on the host from the image's own files.

Debian's initrd is made by mkinitramfs inside the image. For a foreign architecture every
one of its hundreds of shell, cp and ldd processes runs under qemu-user, which made most
of a cold arm64 image's 68 minutes. The lab's machine needs far less to find its root: a
virtio disk (``/dev/vda``) holding ext4. So image.sh keeps mkinitramfs from running
(docs/lab.md) and this writes a gzip'd newc cpio, the kernel's initramfs format, holding

* the image's own static busybox (Debian's ``busybox-static`` for arm64, copied, never
  run on the host);
* the modules that mount the root (``ROOT_MODULES``) and their dependencies, from the
  image's ``modules.dep`` in load order (built-in ones are skipped), uncompressed;
* ``/init``: load them, wait for the root disk, mount it as the kernel's command line
  says (``root=``, ``rw``/``ro``), move ``/dev`` there and ``switch_root`` to systemd.

    initrd.py ROOT OUT    ROOT: the image's unpacked tree; OUT: the initrd to write
"""

from __future__ import annotations

import gzip
import lzma
import sys
from pathlib import Path

#: What the virt machine's root needs: its PCI (``if=virtio``) or MMIO virtio transport,
#: the block driver and the file system.
ROOT_MODULES = ("virtio_pci", "virtio_mmio", "virtio_blk", "ext4")

INIT = """#!/bin/busybox sh
# The lab's initrd (tools/lab/initrd.py): load the root's modules, mount it, start systemd.
/bin/busybox --install -s /bin
export PATH=/bin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
for m in $(cat /lib/modules/order); do
    insmod "/lib/modules/$m" || echo "initrd: insmod $m failed"
done
root=/dev/vda opts=rw
for a in $(cat /proc/cmdline); do
    case $a in root=/dev/*) root=${a#root=} ;; ro | rw) opts=$a ;; esac
done
n=0
# Under TCG the disk may take a while to appear: up to 120 s.
while [ ! -b "$root" ] && [ $n -lt 1200 ]; do sleep 0.1; n=$((n + 1)); done
if ! mount -t ext4 -o "$opts" "$root" /root; then
    echo "initrd: cannot mount $root (ext4, $opts); powering off"
    poweroff -f
fi
mount -o move /dev /root/dev
umount /proc /sys
exec switch_root /root /sbin/init
"""


def modules_dir(root: Path) -> Path:
    """The image's one ``lib/modules/<version>`` directory."""
    dirs = sorted(p for p in (root / "lib" / "modules").iterdir() if (p / "modules.dep").exists())
    if len(dirs) != 1:
        raise SystemExit(f"initrd.py: expected one kernel in {root}/lib/modules, found {dirs}")
    return dirs[0]


def mod_name(path: str) -> str:
    """A module's name from its file (``kernel/fs/ext4/ext4.ko.xz`` -> ``ext4``)."""
    return Path(path).name.split(".ko")[0].replace("-", "_")


def soft_pre(moddir: Path) -> dict[str, list[str]]:
    """Each module's ``softdep ... pre:`` modules (modprobe loads them first; ext4 and jbd2
    need ``crypto-crc32c`` for metadata checksums), aliases resolved to module names."""
    alias: dict[str, str] = {}
    for line in (moddir / "modules.alias").read_text().splitlines():
        words = line.split()
        if len(words) == 3 and words[0] == "alias":
            alias.setdefault(words[1], words[2])
    pre: dict[str, list[str]] = {}
    for line in (moddir / "modules.softdep").read_text().splitlines():
        words = line.split()
        if len(words) < 3 or words[0] != "softdep" or "pre:" not in words:
            continue
        first = words[words.index("pre:") + 1 :]
        names = first[: first.index("post:")] if "post:" in first else first
        pre[mod_name(words[1])] = [mod_name(alias.get(n, n)) for n in names]
    return pre


def load_order(moddir: Path, wanted: tuple[str, ...]) -> list[str]:
    """The files (relative to ``moddir``) of ``wanted`` and their dependencies (``modules.dep``,
    and soft ones), each after every module it needs; built-in modules are left out."""
    deps: dict[str, tuple[str, list[str]]] = {}
    for line in (moddir / "modules.dep").read_text().splitlines():
        path, _, needs = line.partition(":")
        deps[mod_name(path)] = (path, [mod_name(n) for n in needs.split()])
    builtin = {mod_name(p) for p in (moddir / "modules.builtin").read_text().split()}
    pre = soft_pre(moddir)
    order: list[str] = []

    def visit(name: str) -> None:
        if name in builtin or name not in deps or deps[name][0] in order:
            return
        for need in [*pre.get(name, []), *deps[name][1]]:
            visit(need)
        order.append(deps[name][0])

    for name in wanted:
        if name not in builtin and name not in deps:
            raise SystemExit(f"initrd.py: no module {name} in {moddir}")
        visit(name)
    return order


def module_bytes(path: Path) -> bytes:
    """A module's ELF object, uncompressed (busybox's insmod takes it as is)."""
    data = path.read_bytes()
    if path.suffix == ".xz":
        return lzma.decompress(data)
    if path.suffix in (".zst", ".gz"):
        raise SystemExit(f"initrd.py: {path}: compression not handled")
    return data


def cpio_entry(
    ino: int, name: str, mode: int, data: bytes = b"", rdev: tuple[int, int] = (0, 0)
) -> bytes:
    """One member of a newc cpio (the kernel's initramfs format), padded to 4 bytes."""
    fields = [ino, mode, 0, 0, 1, 0, len(data), 0, 0, rdev[0], rdev[1], len(name) + 1, 0]
    head = b"070701" + b"".join(b"%08X" % f for f in fields) + name.encode() + b"\0"
    head += b"\0" * (-len(head) % 4)
    return head + data + b"\0" * (-len(data) % 4)


def members(root: Path) -> list[tuple[str, int, bytes]]:
    """The initrd's files: (name, mode with its type bits, content)."""
    moddir = modules_dir(root)
    order = load_order(moddir, ROOT_MODULES)
    out = [(d, 0o40755, b"") for d in ("bin", "dev", "proc", "sys", "root", "lib", "lib/modules")]
    out.append(("bin/busybox", 0o100755, (root / "bin" / "busybox").read_bytes()))
    out.append(("init", 0o100755, INIT.encode()))
    files = [Path(p).name.removesuffix(".xz") for p in order]
    for rel, name in zip(order, files, strict=True):
        out.append((f"lib/modules/{name}", 0o100644, module_bytes(moddir / rel)))
    out.append(("lib/modules/order", 0o100644, "".join(f + "\n" for f in files).encode()))
    return out


def write(root: Path, out: Path) -> list[str]:
    """Write the initrd of the image unpacked at ``root`` to ``out``; return its files."""
    files = members(root)
    blob = b"".join(cpio_entry(i, n, m, d) for i, (n, m, d) in enumerate(files, 1))
    # The kernel opens /dev/console of the initramfs as /init's stdin/stdout/stderr.
    blob += cpio_entry(len(files) + 1, "dev/console", 0o20600, rdev=(5, 1))
    blob += cpio_entry(0, "TRAILER!!!", 0)
    out.write_bytes(gzip.compress(blob, mtime=0))
    return [n for n, m, _ in files if m & 0o100000]


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print("usage: initrd.py ROOT OUT", file=sys.stderr)
        return 2
    for rel in write(Path(argv[0]), Path(argv[1])):
        print(f"initrd.py: {rel}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
