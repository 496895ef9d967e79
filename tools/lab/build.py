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


def image(log) -> Path:
    """The base image for the recipe's hash, built once (mmdebstrap, a few minutes)."""
    inputs = [HERE / "image.sh", *sorted((HERE / "guest").iterdir())]
    out = cache_dir() / f"image-{digest(inputs)}"
    if (out / "base.img").exists():
        log(f"image: cached {out}")
        return out
    log(f"image: building {out} (mmdebstrap bookworm)")
    out.parent.mkdir(parents=True, exist_ok=True)
    r = subprocess.run(["bash", str(HERE / "image.sh"), str(out)], capture_output=True, text=True)
    if r.returncode != 0:
        raise LabError(f"image build failed: {r.stderr[-2000:]}")
    return out


def requirements() -> list[str]:
    """What install.sh's pip installs: the box's dependencies and its [pi] extra."""
    meta = tomllib.loads((REPO / "pyproject.toml").read_text())
    build = meta["build-system"]["requires"]
    project = meta["project"]
    return [*build, *project["dependencies"], *project["optional-dependencies"]["pi"]]


def wheelhouse(log) -> Path:
    """cp311 manylinux wheels of every requirement that has one (pip download, cached).

    A requirement without a wheel (PyAudio) comes from Debian in the image
    (python3-pyaudio, one of install.sh's APT_PKGS); pip in the VM then sees it installed.
    """
    reqs = requirements()
    key = hashlib.sha256("\n".join(reqs).encode() + (HERE / "build.py").read_bytes())
    out = cache_dir() / f"wheels-{key.hexdigest()[:16]}"
    if (out / ".complete").exists():
        log(f"wheels: cached {out}")
        return out
    out.mkdir(parents=True, exist_ok=True)
    for req in reqs:
        cmd = [
            sys.executable,
            "-m",
            "pip",
            "download",
            "-q",
            "-d",
            str(out),
            "--only-binary",
            ":all:",
            "--python-version",
            "3.11",
            "--implementation",
            "cp",
            "--abi",
            "cp311",
            "--platform",
            "manylinux_2_36_x86_64",
            "--platform",
            "manylinux_2_34_x86_64",
            "--platform",
            "manylinux_2_28_x86_64",
            "--platform",
            "manylinux_2_17_x86_64",
            "--platform",
            "manylinux2014_x86_64",
            "--platform",
            "any",
            req,
        ]
        r = subprocess.run(cmd, capture_output=True, text=True)
        log(f"wheels: {req}: " + ("ok" if r.returncode == 0 else "no wheel (Debian's package)"))
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
