#!/usr/bin/env bash
# Build the lab's base image: Debian bookworm from Debian's packages (mmdebstrap), with the
# lab's equipment (agent, loopback card, TCG drop-in) but not the box: the box is installed
# on top at every run, with install.sh, as a user would.
#   image.sh OUTDIR [ARCH]   writes OUTDIR/base.img (raw ext4), OUTDIR/vmlinuz, OUTDIR/initrd.img
# ARCH is a Debian architecture: amd64 (default) or arm64 (a Pi 3/4/5/Zero 2 W on 64-bit
# Raspberry Pi OS). A foreign ARCH's maintainer scripts run under qemu-user (binfmt_misc,
# Debian's qemu-user-static; tools/lab/run sets it up).
set -euo pipefail
out=$1
arch=${2:-amd64}
case $arch in
amd64) kernel=linux-image-amd64 ;;
arm64) kernel=linux-image-arm64 ;;
*)
    echo "image.sh: no lab machine for architecture $arch (amd64, arm64)" >&2
    exit 2
    ;;
esac
here=$(cd "$(dirname "$0")" && pwd)
work=$(mktemp -d "${out%/}.build.XXXXXX")
trap 'rm -rf "$work"' EXIT

# The Debian packages a user of install.sh on Debian would have installed (install.sh's
# APT_PKGS that Debian has), the system, and the lab's tools (alsa-utils, i2c-tools, sqlite3,
# stress-ng: the CPU hog of the load scenario).
pkgs=systemd-sysv,udev,kmod,procps,$kernel,initramfs-tools,python3,python3-venv
pkgs=$pkgs,python3-numpy,python3-pyaudio,python3-serial,i2c-tools,libfluidsynth3,fluid-soundfont-gm
pkgs=$pkgs,alsa-utils,sqlite3,less,stress-ng
opts=()
if [ "$arch" != amd64 ]; then
    # A foreign image's maintainer scripts run under qemu-user, many times slower: no
    # mkinitramfs there (it took most of a cold arm64 image's 68 min). update-initramfs is
    # diverted to a no-op before any package is configured; initrd.py builds the machine's
    # initrd on the host from the image's busybox-static and modules (docs/lab.md).
    pkgs=$pkgs,busybox-static
    hook='set -e; dpkg-divert --root="$1" --local --rename --add /usr/sbin/update-initramfs
printf "#!/bin/sh\n# the lab: tools/lab/initrd.py makes the initrd\n" >"$1/usr/sbin/update-initramfs"
chmod 755 "$1/usr/sbin/update-initramfs"'
    opts+=(--essential-hook="$hook")
    # Files dpkg (emulated too) need not write: docs, man pages, translations; and the CA
    # certificates (python3-venv -> python3-pip-whl -> ca-certificates), whose rehash under
    # qemu-user took 4 min: the lab's VM has no network and pip reads only the wheelhouse.
    for x in doc man locale ca-certificates; do
        opts+=(--dpkgopt="path-exclude=/usr/share/$x/*")
    done
    opts+=(--dpkgopt="path-include=/usr/share/doc/*/copyright")
fi
# The apt lists stay, so install.sh's apt-get finds its packages (already installed) offline.
mmdebstrap --variant=apt --architectures="$arch" --skip=cleanup/apt/lists --include="$pkgs" \
    "${opts[@]}" bookworm "$work/root.tar"
mkdir "$work/root"
tar -C "$work/root" -xf "$work/root.tar"
rm "$work/root.tar"
r=$work/root
sed -i 's/^root:[^:]*:/root::/' "$r/etc/shadow"
echo bedside-lab >"$r/etc/hostname"
printf '/dev/vda / ext4 rw,errors=remount-ro 0 1\n' >"$r/etc/fstab"
install -m 0755 "$here/guest/lab-agent.py" "$r/usr/local/sbin/lab-agent"
install -m 0644 "$here/guest/lab-agent.service" "$r/etc/systemd/system/lab-agent.service"
mkdir -p "$r/etc/systemd/system/sysinit.target.wants" "$r/etc/systemd/system/bedside.service.d"
ln -sf /etc/systemd/system/lab-agent.service "$r/etc/systemd/system/sysinit.target.wants/"
install -m 0755 "$here/guest/lab-soundwait.py" "$r/usr/local/sbin/lab-soundwait"
install -m 0755 "$here/guest/lab-compare.py" "$r/usr/local/sbin/lab-compare"
install -m 0644 "$here/guest/lab-bootsound.service" "$r/etc/systemd/system/lab-bootsound.service"
mkdir -p "$r/etc/systemd/system/multi-user.target.wants"
ln -sf /etc/systemd/system/lab-bootsound.service "$r/etc/systemd/system/multi-user.target.wants/"
install -m 0644 "$here/guest/lab-tcg.conf" "$r/etc/systemd/system/bedside.service.d/lab-tcg.conf"
install -m 0644 "$here/guest/asound.conf" "$r/etc/asound.conf"
install -m 0644 "$here/guest/modules.conf" "$r/etc/modules-load.d/lab.conf"
install -m 0644 "$here/guest/modprobe.conf" "$r/etc/modprobe.d/lab.conf"
# Every journal line kept across power cuts (the power scenario reads earlier boots).
mkdir -p "$r/var/log/journal"
# Quiet boot, nothing that waits for a network the box does not have.
for u in apt-daily.timer apt-daily-upgrade.timer e2scrub_all.timer fstrim.timer \
    getty@tty1.service systemd-networkd-wait-online.service; do
    ln -sf /dev/null "$r/etc/systemd/system/$u"
done
cp "$r"/boot/vmlinuz-* "$work/vmlinuz"
if [ "$arch" = amd64 ]; then
    cp "$r"/boot/initrd.img-* "$work/initrd.img"
else
    python3 "$here/initrd.py" "$r" "$work/initrd.img"
fi
truncate -s 4G "$work/base.img"
mkfs.ext4 -q -F -L bedside-lab -d "$r" "$work/base.img"
mkdir -p "$out"
mv "$work/base.img" "$work/vmlinuz" "$work/initrd.img" "$out/"
