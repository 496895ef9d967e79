"""The lab tells a starved host from a failing box (issue 22.5): the decision, from numbers."""

import os

import pytest

from tests.support.lab_path import lab_module

hostcpu = lab_module("hostcpu")
Sample, Share, decide, share, step = (
    hostcpu.Sample, hostcpu.Share, hostcpu.decide, hostcpu.share, hostcpu.step
)  # fmt: skip

TCK = os.sysconf("SC_CLK_TCK")


def host(busy_s: float, idle_s: float, steal_s: float = 0.0) -> dict[str, int]:
    """A /proc/stat cpu row with the given seconds of user, idle and steal time."""
    row = dict.fromkeys(
        ("user", "nice", "system", "idle", "iowait", "irq", "softirq", "steal", "guest",
         "guest_nice"), 0)  # fmt: skip
    row.update(user=round(busy_s * TCK), idle=round(idle_s * TCK), steal=round(steal_s * TCK))
    return row


def sample(t, pid, cpu, wait, busy, idle, steal=0.0, lab=0.0) -> Sample:
    return Sample(t, pid, cpu, wait, lab, host(busy, idle, steal))


def test_a_quiet_host_gives_the_vm_what_it_asks_for():
    s = share([sample(0, 7, 10, 1, 100, 100), sample(10, 7, 18, 1.2, 108, 112)])
    # 8 s of CPU in 10 s, 0.2 s waited: got 97.6 %; the host's 20 s capacity, 8 busy, all VM.
    assert s.vm_cpu_pct == 80.0
    assert s.vm_got_pct == pytest.approx(97.6, abs=0.1)
    assert s.others_pct == 0.0
    assert s.steal_pct == 0.0
    assert not s.starved
    assert s.wall_s == 10.0


def test_a_busy_host_starves_the_vm():
    # Another job takes most of both cores: the VM ran 4 s and waited 6 s for a CPU.
    s = share([sample(0, 7, 10, 1, 100, 100), sample(10, 7, 14, 7, 119, 101)])
    assert s.vm_got_pct == 40.0
    assert s.others_pct == pytest.approx(75.0)
    assert s.starved
    assert "40%" in s.why


def test_steal_by_the_hosts_own_hypervisor_is_starvation_too():
    s = share([sample(0, 7, 10, 1, 100, 100, 0), sample(10, 7, 18, 1, 106, 108, 6)])
    assert s.vm_got_pct == 100.0
    assert s.steal_pct == 30.0
    assert s.starved and "stole" in s.why


def test_the_labs_own_cpu_is_not_counted_as_other_jobs():
    s = share([sample(0, 7, 0, 0, 0, 0, lab=0), sample(10, 7, 5, 0, 8, 12, lab=3)])
    assert s.others_pct == 0.0


def test_only_intervals_of_one_qemu_process_count():
    # A power cut: QEMU 7 dies, 9 starts with its counters at 0; no interval spans both.
    samples = [
        sample(0, 7, 10, 1, 0, 0),
        sample(1, 7, 11, 1, 1, 1),
        sample(2, None, None, None, 1, 3),
        sample(3, 9, 0.5, 0, 2, 4),
        sample(4, 9, 1.5, 0, 3, 5),
    ]
    s = share(samples)
    assert s.vm_cpu_pct == 50.0  # 1 s + 1 s of CPU over 4 s
    assert s.vm_got_pct == 100.0


def test_the_vms_own_threads_waiting_for_each_other_is_not_starvation():
    # Measured on a quiet host (arm64 console scenario): got 83 %, others 0.2 %. With
    # stress-ng on every vCPU the VM asks for more than the host's two cores by itself.
    s = share([sample(0, 7, 10, 10, 100, 100), sample(10, 7, 26, 16, 119, 101)])
    assert s.vm_got_pct == pytest.approx(72.7, abs=0.1)
    assert s.others_pct is not None and s.others_pct < hostcpu.OTHERS_MIN_PCT
    assert not s.starved


def test_nothing_measured_is_not_starvation():
    assert share([]).starved is False
    lone = share([Sample(0, None, None, None, 0, None), Sample(5, None, None, None, 0, None)])
    assert lone.vm_got_pct is None and lone.others_pct is None and not lone.starved
    assert decide(None, None) == (False, "host share not measured")


def test_decide_bounds():
    assert decide(hostcpu.GOT_MIN_PCT, 0.0)[0] is False
    assert decide(hostcpu.GOT_MIN_PCT - 0.1, 0.0)[0] is True
    assert decide(hostcpu.GOT_MIN_PCT - 0.1, 0.0, hostcpu.OTHERS_MIN_PCT)[0] is True
    assert decide(100.0, hostcpu.STEAL_MAX_PCT)[0] is False
    assert decide(100.0, hostcpu.STEAL_MAX_PCT + 0.1)[0] is True


STARVED = Share(60.0, 90.0, 40.0, 70.0, 0.0, True, "starved")
FED = Share(60.0, 90.0, 99.0, 2.0, 0.0, False, "host not starved")


def test_step_retries_a_real_time_scenario_once_when_starved():
    assert step(True, STARVED, "audio", 1) == "pass"
    assert step(False, STARVED, "audio", 1) == "retry"
    assert step(False, STARVED, "audio", 2) == "starved"
    assert step(True, STARVED, "audio", 2) == "pass"
    assert step(False, FED, "audio", 2) == "FAIL"


def test_step_blames_the_box_when_the_host_gave_the_vm_its_cpu():
    assert step(False, FED, "audio", 1) == "FAIL"
    assert step(False, FED, "load", 1) == "FAIL"


def test_step_does_not_retry_scenarios_that_do_not_depend_on_real_time():
    assert "power" not in hostcpu.REALTIME
    assert step(False, STARVED, "power", 1) == "FAIL"
    assert step(False, STARVED, "hardening", 1) == "FAIL"


def fake_proc(root, pid, utime, stime, waits, stat_row="cpu 10 0 5 100 0 0 0 2 0 0"):
    d = root / str(pid)
    (d / "task").mkdir(parents=True, exist_ok=True)
    (d / "stat").write_text(f"{pid} (qemu-system-x86) S 1 1 1 0 -1 0 0 0 0 0 {utime} {stime} 0")
    for i, w in enumerate(waits):
        (d / "task" / str(pid + i)).mkdir(exist_ok=True)
        (d / "task" / str(pid + i) / "schedstat").write_text(f"1000 {w} 5\n")
    (root / "stat").write_text(stat_row + "\n")


def test_read_sample_from_proc(tmp_path):
    fake_proc(tmp_path, 42, 2 * TCK, TCK, [int(0.5e9), int(0.25e9)])
    s = hostcpu.read_sample(42, tmp_path)
    assert s.pid == 42
    assert s.vm_cpu_s == pytest.approx(3.0)
    assert s.vm_wait_s == pytest.approx(0.75)
    assert s.host is not None and s.host["steal"] == 2


def test_read_sample_of_a_process_that_is_gone_never_raises(tmp_path):
    (tmp_path / "stat").write_text("garbage\n")
    s = hostcpu.read_sample(99, tmp_path)
    assert s.vm_cpu_s is None and s.vm_wait_s is None and s.host is None
    assert hostcpu.read_sample(None, tmp_path).pid is None


def test_meter_samples_until_stopped(tmp_path):
    fake_proc(tmp_path, 5, 0, 0, [0])
    meter = hostcpu.Meter(lambda: 5, period=0.01, proc=tmp_path).start()
    fake_proc(tmp_path, 5, TCK, 0, [0])
    result = meter.stop()
    assert len(meter.samples) >= 2
    assert isinstance(result, Share)


def test_meter_survives_a_pid_source_that_raises(tmp_path):
    def broken():
        raise AttributeError("the VM object is being replaced")

    result = hostcpu.Meter(broken, period=0.01, proc=tmp_path).start().stop()
    assert result.vm_cpu_pct is None and not result.starved
