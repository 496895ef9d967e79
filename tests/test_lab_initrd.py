"""The arm64 lab machine's initrd (tools/lab/initrd.py), on a made-up image tree."""

import gzip
import lzma
import subprocess

import pytest

from tests.support.lab_path import lab_module

initrd = lab_module("initrd")

KVER = "6.1.0-99-arm64"
DEP = """kernel/drivers/virtio/virtio_pci_modern_dev.ko:
kernel/drivers/virtio/virtio_pci.ko: kernel/drivers/virtio/virtio_pci_modern_dev.ko
kernel/drivers/block/virtio_blk.ko:
kernel/lib/crc16.ko:
kernel/fs/mbcache.ko:
kernel/fs/jbd2/jbd2.ko:
kernel/crypto/crc32c_generic.ko.xz:
kernel/fs/ext4/ext4.ko: kernel/lib/crc16.ko kernel/fs/mbcache.ko kernel/fs/jbd2/jbd2.ko
kernel/sound/drivers/snd-aloop.ko:
"""


def make_root(tmp_path):
    """An image tree with the files initrd.py reads; virtio_mmio built into the kernel."""
    moddir = tmp_path / "lib" / "modules" / KVER
    for line in DEP.splitlines():
        rel = line.split(":")[0]
        (moddir / rel).parent.mkdir(parents=True, exist_ok=True)
        body = f"ELF of {rel}".encode()
        (moddir / rel).write_bytes(lzma.compress(body) if rel.endswith(".xz") else body)
    (moddir / "modules.dep").write_text(DEP)
    (moddir / "modules.builtin").write_text("kernel/drivers/virtio/virtio_mmio.ko\n")
    (moddir / "modules.softdep").write_text(
        "# Soft dependencies\nsoftdep ext4 pre: crypto-crc32c\nsoftdep jbd2 pre: crypto-crc32c\n"
    )
    (moddir / "modules.alias").write_text("alias crypto-crc32c crc32c_generic\n")
    (tmp_path / "bin").mkdir()
    (tmp_path / "bin" / "busybox").write_bytes(b"\x7fELF busybox")
    return tmp_path, moddir


def read_newc(blob):
    """(name, mode, rdev major, rdev minor, data) of each member, by the newc format."""
    out, pos = [], 0
    while True:
        assert blob[pos : pos + 6] == b"070701" and pos % 4 == 0
        f = [int(blob[pos + 6 + 8 * i : pos + 14 + 8 * i], 16) for i in range(13)]
        name_at = pos + 110
        name = blob[name_at : name_at + f[11] - 1].decode()
        data_at = (name_at + f[11] + 3) // 4 * 4
        data = blob[data_at : data_at + f[6]]
        if name == "TRAILER!!!":
            return out
        out.append((name, f[1], f[9], f[10], data))
        pos = (data_at + f[6] + 3) // 4 * 4


def test_modules_load_after_what_they_need_and_builtins_are_left_out(tmp_path):
    _, moddir = make_root(tmp_path)
    order = [initrd.mod_name(p) for p in initrd.load_order(moddir, initrd.ROOT_MODULES)]
    assert "virtio_mmio" not in order and "snd_aloop" not in order
    want = ["virtio_pci_modern_dev", "virtio_pci", "virtio_blk", "crc16", "mbcache", "jbd2"]
    assert sorted(order) == sorted([*want, "crc32c_generic", "ext4"])
    for first, then in [
        ("virtio_pci_modern_dev", "virtio_pci"),
        ("crc32c_generic", "jbd2"),  # a softdep through its alias
        ("jbd2", "ext4"),
        ("mbcache", "ext4"),
        ("crc16", "ext4"),
    ]:
        assert order.index(first) < order.index(then)


def test_a_module_the_kernel_lacks_stops_the_build(tmp_path):
    _, moddir = make_root(tmp_path)
    with pytest.raises(SystemExit, match="no module btrfs"):
        initrd.load_order(moddir, ("ext4", "btrfs"))


def test_the_initrd_is_a_newc_cpio_with_busybox_modules_init_and_console(tmp_path):
    root, moddir = make_root(tmp_path)
    out = tmp_path / "initrd.img"
    initrd.write(root, out)
    members = {m[0]: m for m in read_newc(gzip.decompress(out.read_bytes()))}
    assert members["bin/busybox"][4] == b"\x7fELF busybox"
    assert members["init"][1] == 0o100755
    assert members["init"][4].startswith(b"#!/bin/busybox sh\n")
    assert members["dev/console"][1:4] == (0o20600, 5, 1)
    listed = members["lib/modules/order"][4].decode().split()
    expect = [
        p.split("/")[-1].removesuffix(".xz") for p in initrd.load_order(moddir, initrd.ROOT_MODULES)
    ]
    assert listed == expect
    assert (
        members["lib/modules/crc32c_generic.ko"][4] == b"ELF of kernel/crypto/crc32c_generic.ko.xz"
    )
    assert members["lib/modules/ext4.ko"][4] == b"ELF of kernel/fs/ext4/ext4.ko"
    for name in ("bin", "dev", "proc", "sys", "root", "lib/modules"):
        assert members[name][1] == 0o40755


def test_the_init_script_is_valid_shell(tmp_path):
    script = tmp_path / "init"
    script.write_text(initrd.INIT)
    assert subprocess.run(["sh", "-n", str(script)], capture_output=True).returncode == 0
    assert "exec switch_root /root /sbin/init" in initrd.INIT
