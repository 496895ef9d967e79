"""The lab's command line, its JSON line and its exit code; the power scenario's readings."""

import pytest

from tests.support.lab_path import lab_module

lab = lab_module("lab")
scen_power = lab_module("scen_power")


def test_arch_defaults_to_x86_and_takes_either_spelling():
    assert lab.parse_args([]) == ("amd64", [])
    assert lab.parse_args(["boot", "audio"]) == ("amd64", ["boot", "audio"])
    assert lab.parse_args(["--arch", "arm64", "boot"]) == ("arm64", ["boot"])
    assert lab.parse_args(["boot", "--arch=aarch64"]) == ("arm64", ["boot"])
    assert lab.parse_args(["--arch", "x86_64", "--prepare"]) == ("amd64", ["--prepare"])


@pytest.mark.parametrize("argv", [["--arch", "armhf"], ["--arch"], ["--arch=riscv64", "boot"]])
def test_an_unknown_arch_is_a_usage_error(argv, capsys):
    with pytest.raises(ValueError, match="arch"):
        lab.parse_args(argv)
    assert lab.main(argv) == 2
    assert "amd64 or arm64" in capsys.readouterr().err


def test_an_unknown_scenario_is_a_usage_error(capsys):
    assert lab.main(["--arch", "arm64", "bogus"]) == 2
    assert "unknown scenario bogus" in capsys.readouterr().err


def test_every_scenario_has_a_runner_and_the_load_scenario_runs_alone():
    names = [n for n, _, _ in lab.SCENARIOS]
    assert set(names) == set(lab.RUNNERS)
    assert "load" in lab.ALONE and "load" in names


def test_the_summary_reports_starvation_beside_the_result():
    hosts = {
        "audio": {"tries": [{"starved": True}, {"starved": False}], "starved": True},
        "load": {"tries": [{"starved": True}, {"starved": True}], "starved": True},
        "boot": {"tries": [{"starved": False}], "starved": False},
    }
    verdicts = {"boot": "pass", "audio": "pass", "load": "starved"}
    out = lab.summarise({"capture_gaps": 0}, verdicts, hosts, {"boot": 31.0}, "arm64")
    assert out["arch"] == "arm64"
    assert out["capture_gaps"] == 0
    assert out["failed"] == []
    assert out["starved"] == ["load"]
    assert out["retried"] == ["audio", "load"]
    assert out["host"] is hosts
    assert out["scenario_s"] == {"boot": 31.0}


def test_exit_code_blames_the_box_only_for_a_failure():
    assert lab.exit_code({"boot": "pass"}) == 0
    assert lab.exit_code({"boot": "pass", "audio": "starved"}) == 3
    assert lab.exit_code({"boot": "FAIL", "audio": "starved"}) == 1


def test_a_cut_before_the_session_started_is_not_a_crash():
    # The loaded CI host: STATUS? said elapsed_s=none at the cut (issue 22.5).
    assert scen_power.elapsed_at_cut({"elapsed_s": "none"}, 0.4) is None
    assert scen_power.elapsed_at_cut({}, 0.4) is None
    assert scen_power.elapsed_at_cut({"elapsed_s": "3.5"}, 0.25) == 3.75


def test_the_power_check_skips_lines_that_do_not_read():
    out = "\n".join(
        [
            "integrity=ok",
            "finished=3|1.0|2.0|wind-down||10|55.5",
            "finished=x|torn",
            "last=3|12.5",
            "last=4|none",
            "last=|",
            "config_check=0",
            "garbage without equals",
        ]
    )
    r = scen_power._parse(out)
    assert r["integrity"] == "ok"
    assert list(r["finished"]) == [3]
    assert r["last"] == {3: 12.5}
    assert r["config_check"] == "0"


def test_the_config_check_looks_for_the_labs_console_port():
    assert '"/dev/ttyS0"' in scen_power.config_check("/dev/ttyS0")
    assert "lab-check.out" in scen_power.check_bg("/dev/ttyS1")


#: install.sh's Debian packages that Debian itself does not have (Raspberry Pi OS's own).
PI_OS_ONLY = {"python3-rpi-lgpio"}


def test_the_lab_image_has_every_debian_package_install_sh_asks_for():
    # The VM has no network: a package install.sh wants but the image lacks is silently
    # missing from the box under test (libfluidsynth3 was, when the composer arrived).
    import re
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    wanted = re.search(r'^APT_PKGS="([^"]*)"', (root / "install.sh").read_text(), re.M)
    image = (root / "tools" / "lab" / "image.sh").read_text()
    included = set(re.findall(r"^pkgs=(?:\$pkgs,)?(\S+)", image, re.M)[0].split(","))
    for line in re.findall(r"^pkgs=\$pkgs,(\S+)", image, re.M):
        included |= set(line.split(","))
    assert wanted is not None
    missing = set(wanted.group(1).split()) - included - PI_OS_ONLY
    assert not missing, f"tools/lab/image.sh lacks install.sh's {sorted(missing)}"
