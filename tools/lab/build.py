"""The lab's inputs: the cached base image, the cached wheelhouse, the per-run disks."""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

from vm import LabError

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]


def cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache")
    return Path(base) / "bedside-lab"


def digest(paths: list[Path]) -> str:
    h = hashlib.sha256()
    for p in sorted(paths):
        h.update(str(p.relative_to(HERE)).encode() + b"\0" + p.read_bytes() + b"\0")
    return h.hexdigest()[:16]


def image(log, arch: str = "amd64") -> Path:
    """The base image for the recipe's hash and ``arch``, built once (mmdebstrap, minutes)."""
    inputs = [HERE / "image.sh", HERE / "initrd.py", *sorted((HERE / "guest").iterdir())]
    out = cache_dir() / f"image-{arch}-{digest(inputs)}"
    if (out / "base.img").exists():
        log(f"image: cached {out}")
        return out
    log(f"image: building {out} (mmdebstrap bookworm {arch})")
    out.parent.mkdir(parents=True, exist_ok=True)
    r = subprocess.run(
        ["bash", str(HERE / "image.sh"), str(out), arch], capture_output=True, text=True
    )
    if r.returncode != 0:
        raise LabError(f"image build failed: {r.stderr[-2000:]}")
    return out


def requirements() -> list[str]:
    """What install.sh's pip installs: the box's dependencies and its [pi] extra."""
    meta = tomllib.loads((REPO / "pyproject.toml").read_text())
    build = meta["build-system"]["requires"]
    project = meta["project"]
    return [*build, *project["dependencies"], *project["optional-dependencies"]["pi"]]


#: pip's platform tags of each lab machine, newest glibc first (bookworm has glibc 2.36).
PLATFORMS = {
    "amd64": ["manylinux_2_36_x86_64", "manylinux_2_34_x86_64", "manylinux_2_28_x86_64",
              "manylinux_2_17_x86_64", "manylinux2014_x86_64"],
    "arm64": ["manylinux_2_36_aarch64", "manylinux_2_34_aarch64", "manylinux_2_28_aarch64",
              "manylinux_2_17_aarch64", "manylinux2014_aarch64"],
}  # fmt: skip


def download_cmd(req: str, out: Path, arch: str) -> list[str]:
    """pip download of ``req``'s cp311 wheels (and its dependencies') for the ``arch`` machine."""
    cmd = [sys.executable, "-m", "pip", "download", "-q", "-d", str(out)]
    cmd += ["--only-binary", ":all:", "--python-version", "3.11", "--implementation", "cp"]
    cmd += ["--abi", "cp311"]
    for tag in [*PLATFORMS[arch], "any"]:
        cmd += ["--platform", tag]
    return [*cmd, req]


def wheelhouse(log, arch: str = "amd64") -> Path:
    """cp311 wheels for ``arch`` of every requirement that has one (pip download, cached).

    The wheels are fetched on the host for the VM's platform (``--platform``), as a box
    without network is installed. A requirement without a wheel (PyAudio) comes from
    Debian in the image (python3-pyaudio, one of install.sh's APT_PKGS); pip in the VM
    then sees it installed. On arm64 every other requirement has a manylinux aarch64
    wheel on PyPI (lgpio too: manylinux_2_34_aarch64), so nothing is built from source;
    a requirement that had only a source package would be named here and install.sh
    would stop with pip's message (docs/lab.md says how to build one).
    """
    reqs = requirements()
    key = hashlib.sha256("\n".join([arch, *reqs]).encode() + (HERE / "build.py").read_bytes())
    out = cache_dir() / f"wheels-{arch}-{key.hexdigest()[:16]}"
    if (out / ".complete").exists():
        log(f"wheels: cached {out}")
        return out
    out.mkdir(parents=True, exist_ok=True)
    for req in reqs:
        r = subprocess.run(download_cmd(req, out, arch), capture_output=True, text=True)
        got = "ok" if r.returncode == 0 else "no wheel (Debian's package)"
        log(f"wheels ({arch}): {req}: {got}")
    (out / ".complete").write_text("\n".join(reqs) + "\n")
    return out


def overlay(backing: Path, disk: Path) -> Path:
    """A qcow2 disk that reads ``backing`` (a qcow2 never written again) and keeps its writes."""
    subprocess.run(
        ["qemu-img", "create", "-q", "-f", "qcow2", "-b", str(backing), "-F", "qcow2", str(disk)],
        check=True,
    )
    return disk


def run_disks(img: Path, wheels: Path, rundir: Path) -> tuple[Path, Path]:
    """A qcow2 overlay on the base image, and a read-only disk with the tree and the wheels."""
    disk = rundir / "box.qcow2"
    subprocess.run(
        [
            "qemu-img",
            "create",
            "-q",
            "-f",
            "qcow2",
            "-b",
            str(img / "base.img"),
            "-F",
            "raw",
            str(disk),
        ],
        check=True,
    )
    stage = rundir / "data"
    files = subprocess.run(
        ["git", "ls-files", "-co", "--exclude-standard"],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    for f in files:
        src = REPO / f
        if src.is_file():
            dst = stage / "src" / f
            dst.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dst)
    shutil.copytree(wheels, stage / "wheels")
    data = rundir / "data.img"
    subprocess.run(["truncate", "-s", "1G", str(data)], check=True)
    subprocess.run(["mkfs.ext4", "-q", "-F", "-d", str(stage), str(data)], check=True)
    shutil.rmtree(stage)
    return disk, data
