"""install.sh staged with --root: every file it writes, idempotence, uninstall and purge."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from device.config import Config, parse_config

REPO = Path(__file__).resolve().parents[1]
INSTALL = REPO / "install.sh"
PYTHON = Path("/usr/bin/python3")

CONFIG_TXT = """\
# For more options and information see
# http://rpf.io/configtxt
#dtparam=i2c_arm=on
dtparam=audio=on

[pi4]
arm_boost=1

[all]
"""
CMDLINE = (
    "console=serial0,115200 console=tty1 root=PARTUUID=1234-02 rootfstype=ext4 "
    "fsck.repair=yes rootwait\n"
)


def missing_tools() -> str | None:
    for tool in ("bash", "groupadd", "useradd", "usermod", "userdel", "systemctl", "tar"):
        if shutil.which(tool) is None:
            return f"{tool} is not installed"
    if not PYTHON.exists():
        return f"{PYTHON} is missing"
    r = subprocess.run(
        [PYTHON, "-c", "import venv, ensurepip, setuptools, wheel"],
        capture_output=True,
        check=False,
    )
    if r.returncode != 0:
        return f"{PYTHON} lacks venv/ensurepip/setuptools/wheel (apt install python3-venv)"
    if os.geteuid() != 0:
        return "groupadd/useradd --prefix need root even when staging"
    return None


pytestmark = pytest.mark.skipif(missing_tools() is not None, reason=str(missing_tools()))


def run(root: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "BEDSIDE_CONFIG"}
    return subprocess.run(
        ["bash", str(INSTALL), "--root", str(root), *args],
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
        env=env,
    )


def tree(root: Path) -> dict[str, bytes | str]:
    """Every file and link under root (contents; link targets), the venv and source aside."""
    out: dict[str, bytes | str] = {}
    for p in sorted(root.rglob("*")):
        rel = str(p.relative_to(root))
        if rel.startswith(("opt/bedside/venv", "opt/bedside/src")):
            continue
        if p.is_symlink():
            out[rel] = "-> " + os.readlink(p)
        elif p.is_file():
            out[rel] = p.read_bytes()
    return out


@pytest.fixture(scope="module")
def staged(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("stage")
    boot = root / "boot" / "firmware"
    boot.mkdir(parents=True)
    (boot / "config.txt").write_text(CONFIG_TXT)
    (boot / "cmdline.txt").write_text(CMDLINE)
    r = run(root, "--offline")
    assert r.returncode == 0, r.stdout + r.stderr
    return root


def test_every_file_written(staged: Path):
    files = tree(staged)
    accounts = {f"etc/{n}{s}" for n in ("passwd", "group", "shadow", "gshadow") for s in ("", "-")}
    assert set(files) == {
        "boot/firmware/config.txt",
        "boot/firmware/cmdline.txt",
        "boot/firmware/cmdline.txt.bedside-removed",
        "etc/modules-load.d/bedside.conf",
        "etc/bedside/config.toml",
        "etc/systemd/system/bedside.service",
        "etc/systemd/system/multi-user.target.wants/bedside.service",
        "opt/bedside/README.md",
        *accounts,
    }
    assert (
        files["etc/systemd/system/bedside.service"]
        == (REPO / "systemd/bedside.service").read_bytes()
    )
    assert files["etc/systemd/system/multi-user.target.wants/bedside.service"] == (
        "-> /etc/systemd/system/bedside.service"
    )
    assert files["opt/bedside/README.md"] == (REPO / "README.md").read_bytes()
    assert files["etc/modules-load.d/bedside.conf"].decode().splitlines()[-1] == "i2c-dev"


def test_boot_config_enables_i2c_and_uart_after_everything(staged: Path):
    text = (staged / "boot/firmware/config.txt").read_text()
    assert text.startswith(CONFIG_TXT)  # the original is untouched
    ours = text[len(CONFIG_TXT) :].splitlines()
    assert ours[1:-1] == [
        "[all]",
        "dtparam=i2c_arm=on",
        "dtparam=i2c_arm_baudrate=400000",
        "enable_uart=1",
    ]
    assert ours[0].startswith("# --- bedside") and ours[-1] == "# --- end bedside ---"


def test_serial_console_taken_off_the_uart(staged: Path):
    cmdline = (staged / "boot/firmware/cmdline.txt").read_text()
    assert cmdline == CMDLINE.replace("console=serial0,115200 ", "")
    assert (staged / "boot/firmware/cmdline.txt.bedside-removed").read_text() == (
        "console=serial0,115200\n"
    )


def test_user_and_groups(staged: Path):
    passwd = (staged / "etc/passwd").read_text().splitlines()
    (user,) = [line for line in passwd if line.startswith("bedside:")]
    _, _, uid, _, _, home, shell = user.split(":")
    assert int(uid) < 1000  # a system user
    assert home == "/var/lib/bedside" and shell == "/usr/sbin/nologin"
    groups = {
        line.split(":")[0]: line.split(":")[3].split(",")
        for line in (staged / "etc/group").read_text().splitlines()
    }
    for g in ("audio", "i2c", "gpio", "dialout"):
        assert "bedside" in groups[g], g
    assert "bedside" in groups


def test_default_config_is_commented_and_valid(staged: Path):
    path = staged / "etc/bedside/config.toml"
    text = path.read_text()
    assert text.startswith("# Bedside configuration")
    assert "effective configuration" not in text
    assert sum(line.startswith("# ") for line in text.splitlines()) > 30
    assert parse_config(text, file=str(path)) == Config.defaults()
    assert (path.stat().st_mode & 0o777) == 0o644
    uid = int((staged / "etc/passwd").read_text().split("bedside:x:")[1].split(":")[0])
    assert path.stat().st_uid == uid  # the service may save it (CFG SAVE)


def test_venv_holds_the_box(staged: Path):
    bedside = staged / "opt/bedside/venv/bin/bedside"
    r = subprocess.run([bedside, "--version"], capture_output=True, text=True, check=False)
    assert r.returncode == 0 and r.stdout.startswith("Bedside ")
    assert (staged / "opt/bedside/src/device/box/app.py").is_file()
    assert not list((staged / "opt/bedside/src").rglob("__pycache__"))


def test_second_run_changes_nothing_and_keeps_edited_config(staged: Path):
    config = staged / "etc/bedside/config.toml"
    config.write_text("[audio]\nvolume_db = -30.0\n")
    before = tree(staged)
    r = run(staged, "--offline")
    assert r.returncode == 0, r.stderr
    assert "kept the existing /etc/bedside/config.toml" in r.stdout
    after = tree(staged)
    changed = {k for k in before.keys() | after.keys() if before.get(k) != after.get(k)}
    # usermod rewrites the account files' backups; nothing else may differ.
    assert changed <= {f"etc/{n}-" for n in ("passwd", "group", "shadow", "gshadow")}
    assert config.read_text() == "[audio]\nvolume_db = -30.0\n"
    assert "enabled I2C" not in r.stdout and "created" not in r.stdout


def test_uninstall_keeps_data_then_purge_removes_it(staged: Path):
    data = staged / "var/lib/bedside"
    data.mkdir(parents=True)
    (data / "sessions.db").write_bytes(b"sessions")
    r = run(staged, "--uninstall")
    assert r.returncode == 0, r.stderr
    files = tree(staged)
    assert not (staged / "opt/bedside").exists()
    assert "etc/systemd/system/bedside.service" not in files
    assert "etc/systemd/system/multi-user.target.wants/bedside.service" not in files
    assert "etc/modules-load.d/bedside.conf" not in files
    assert files["boot/firmware/config.txt"] == CONFIG_TXT.encode()
    assert files["boot/firmware/cmdline.txt"] == CMDLINE.encode()
    assert "boot/firmware/cmdline.txt.bedside-removed" not in files
    assert files["var/lib/bedside/sessions.db"] == b"sessions"
    assert "etc/bedside/config.toml" in files
    assert "bedside:" in (staged / "etc/passwd").read_text()
    # Uninstalling twice is harmless.
    assert run(staged, "--uninstall").returncode == 0
    r = run(staged, "--uninstall", "--purge")
    assert r.returncode == 0, r.stderr
    files = tree(staged)
    assert not data.exists() and not (staged / "etc/bedside").exists()
    assert "bedside:" not in (staged / "etc/passwd").read_text()
    groups = (staged / "etc/group").read_text()
    assert "\nbedside:" not in groups
    assert "i2c:" in groups and "gpio:" in groups  # other software may use them


def test_sound_card_overlay_is_added_and_kept_on_update(tmp_path: Path):
    boot = tmp_path / "boot" / "firmware"
    boot.mkdir(parents=True)
    (boot / "config.txt").write_text(CONFIG_TXT)
    r = run(tmp_path, "--offline", "--dtoverlay", "max98357a,no-sdmode")
    assert r.returncode == 0, r.stderr
    assert (
        "\ndtoverlay=max98357a,no-sdmode\n# --- end bedside ---\n"
        in (boot / "config.txt").read_text()
    )
    before = (boot / "config.txt").read_bytes()
    assert run(tmp_path, "--offline").returncode == 0  # an update without the option
    assert (boot / "config.txt").read_bytes() == before
    r = run(tmp_path, "--dtoverlay", "x;reboot")
    assert r.returncode == 1 and "not an overlay name" in r.stderr
    assert run(tmp_path, "--uninstall", "--purge").returncode == 0
    assert (boot / "config.txt").read_text() == CONFIG_TXT


def test_bad_options(tmp_path: Path):
    r = run(tmp_path, "--frobnicate")
    assert r.returncode == 1 and "unknown option '--frobnicate'" in r.stderr
    r = run(tmp_path, "--purge")
    assert r.returncode == 1 and "--purge goes with --uninstall" in r.stderr
    assert list(tmp_path.iterdir()) == []


def test_wheelhouse_must_be_a_directory(tmp_path: Path):
    r = run(tmp_path / "root", "--wheelhouse", str(tmp_path / "nowhere"))
    assert r.returncode == 1 and "--wheelhouse" in r.stderr and "not a directory" in r.stderr


def test_wheelhouse_installs_only_from_its_wheels(tmp_path: Path):
    # An empty wheelhouse: pip finds nothing there, and must not look anywhere else (the
    # box it installs has no network), so the install fails and says where it looked.
    wheels = tmp_path / "wheels"
    wheels.mkdir()
    r = run(tmp_path / "root", "--wheelhouse", str(wheels))
    assert r.returncode == 1, r.stdout + r.stderr
    assert f"pip could not install the box from the wheels in {wheels}" in r.stderr
    assert "--wheelhouse DIR" in run(tmp_path, "--help").stdout


def test_wheelhouse_for_another_machine_is_refused_before_any_change(tmp_path: Path):
    # x86_64 wheels copied to a Pi (or aarch64 ones to a PC): pip would only say "no
    # matching distribution"; install.sh names the machine and the wheels, changes nothing.
    other = "x86_64" if os.uname().machine == "aarch64" else "aarch64"
    wheels = tmp_path / "wheels"
    wheels.mkdir()
    (wheels / "tomlkit-0.13.2-py3-none-any.whl").write_bytes(b"")
    (wheels / f"lgpio-0.2.2.0-cp311-cp311-manylinux_2_34_{other}.whl").write_bytes(b"")
    root = tmp_path / "root"
    r = run(root, "--wheelhouse", str(wheels))
    assert r.returncode == 1, r.stdout + r.stderr
    assert f"not for this machine ({os.uname().machine})" in r.stderr
    assert f"manylinux_2_34_{other}.whl" in r.stderr and "tomlkit" not in r.stderr
    assert not (root / "opt").exists() and not (root / "etc").exists()


def test_pyaudio_failing_to_build_names_the_portaudio_headers(tmp_path: Path):
    # pip in the box's virtualenv fails as it does on a machine without portaudio19-dev.
    root = tmp_path / "root"
    venv_bin = root / "opt" / "bedside" / "venv" / "bin"
    venv_bin.mkdir(parents=True)
    (venv_bin / "python").symlink_to(sys.executable)
    (venv_bin / "pip").write_text(
        "#!/bin/sh\n"
        "echo 'src/pyaudio/device_api.c:9:10: fatal error: portaudio.h: No such file'\n"
        "echo '  error: command gcc failed with exit code 1'\n"
        "exit 1\n"
    )
    (venv_bin / "pip").chmod(0o755)
    r = run(root)
    assert r.returncode == 1
    last = r.stderr.strip().splitlines()[-1]
    assert "network" not in last
    assert "PortAudio headers" in last and "portaudio19-dev" in last
