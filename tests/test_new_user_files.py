"""What a new user is left with after the README's commands and the set-up (#23.11)."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tomllib
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent


def readme_outputs() -> list[str]:
    """Every file the README's shell commands write sound into (wav:PATH, --out PATH)."""
    text = (REPO / "README.md").read_text(encoding="utf-8")
    blocks = re.findall(r"```sh\n(.*?)```", text, re.DOTALL)
    found: list[str] = []
    for block in blocks:
        found += re.findall(r"wav:(\S+)", block)
        found += re.findall(r"--out (\S+)", block)
    return found


def test_the_readmes_sound_files_go_where_git_ignores_them() -> None:
    outputs = readme_outputs()
    assert len(outputs) >= 3
    for path in outputs:
        assert path.startswith("out/"), f"{path}: demo output goes into out/"
    # out/ is in a fresh clone (its .gitignore is committed), so the commands can write there.
    assert (REPO / "out" / ".gitignore").is_file()
    if shutil.which("git") is None or not (REPO / ".git").exists():
        pytest.skip("not a git checkout")
    tracked = subprocess.run(
        ["git", "-C", str(REPO), "ls-files", "--error-unmatch", "out/.gitignore"],
        capture_output=True,
    )
    assert tracked.returncode == 0, "out/.gitignore must be committed"
    for path in outputs:
        r = subprocess.run(["git", "-C", str(REPO), "check-ignore", "-q", path])
        assert r.returncode == 0, f"git does not ignore {path}"


def test_pyproject_has_no_deprecated_license_table() -> None:
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    assert not isinstance(project.get("license"), dict), "project.license as a table warns"


FAKE_PYTHON = """#!/bin/sh
# A Python that says what setup-env.sh needs and warns as a noisy pip would.
case "$1" in
    --version) echo "Python 3.11.2"; exit 0 ;;
    -c) case "$2" in *"import device"*) exit 1 ;; esac; exit 0 ;;
    -m)
        if [ "$2" = venv ]; then
            mkdir -p "$3/bin" && cp "$0" "$3/bin/python" && exit 0
        fi
        i=0
        while [ $i -lt 30 ]; do echo "WARNING: noise line $i" >&2; i=$((i + 1)); done
        [ -z "$FAIL_PIP" ] || exit 1
        exit 0 ;;
esac
exit 0
"""


def setup_env(tmp_path: Path, fail: bool) -> subprocess.CompletedProcess[str]:
    repo = tmp_path / "repo"
    (repo / "tools").mkdir(parents=True)
    shutil.copy(REPO / "tools" / "setup-env.sh", repo / "tools" / "setup-env.sh")
    (repo / "pyproject.toml").write_text("")
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for name, body in (
        ("dpkg-query", "#!/bin/sh\necho 'install ok installed'\n"),
        ("python3", FAKE_PYTHON),
    ):
        (bin_dir / name).write_text(body)
        (bin_dir / name).chmod(0o755)
    env = {**os.environ, "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}"}
    env.pop("FAIL_PIP", None)
    if fail:
        env["FAIL_PIP"] = "1"
    return subprocess.run(
        ["bash", str(repo / "tools" / "setup-env.sh")],
        env=env, capture_output=True, text=True, timeout=60,
    )  # fmt: skip


def test_setup_is_quiet_when_it_succeeds(tmp_path: Path) -> None:
    r = setup_env(tmp_path, fail=False)
    assert r.returncode == 0, r.stderr
    assert r.stderr == ""
    assert r.stdout.splitlines() == [
        "setup: installing the package into .venv",
        "setup: ready (Python 3.11.2)",
    ]


def test_setup_shows_the_failing_steps_output_and_names_it(tmp_path: Path) -> None:
    r = setup_env(tmp_path, fail=True)
    assert r.returncode == 1
    assert "WARNING: noise line 29" in r.stderr
    assert r.stderr.strip().splitlines()[-1].startswith("setup: error: pip install")
