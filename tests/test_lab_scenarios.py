"""The lab's readings inside the VM, from the text the guest gives (a fake agent, no QEMU)."""

from tests.support.lab_path import lab_module

scen_box = lab_module("scen_box")
lab = lab_module("lab")


class FakeVM:
    """Answers the lab's shell commands with canned output, as the agent's replies."""

    arch = "arm64"

    def __init__(self, out: str, rc: int = 0, mono: object = 100.0) -> None:
        self.reply = {"rc": rc, "out": out, "err": "", "mono": mono}

    def sh(self, script: str, timeout: float = 120.0, check: bool = False) -> dict:
        return self.reply

    def out(self, script: str, timeout: float = 120.0) -> str:
        return self.reply["out"]


def test_busy_pct_of_the_guests_cpus():
    cols = "cpu {} 0 {} {} 0 0 0 0 0 0\n"
    a = scen_box.values.proc_stat_cpu(cols.format(100, 0, 100))
    b = scen_box.values.proc_stat_cpu(cols.format(280, 10, 110))
    assert scen_box.busy_pct(a, b) == 95.0
    assert scen_box.busy_pct(None, b) is None
    assert scen_box.busy_pct(a, a) is None


def test_sched_of_counts_the_threads_by_class():
    vm = FakeVM(" FF     20\n FF     20\n TS      -\n")
    assert scen_box.sched_of(vm, 7) == "FF/20 x2, TS x1"
    assert scen_box.sched_of(FakeVM(""), 7) == "unknown"


def test_cpu_ticks_never_raises_on_what_the_guest_gives():
    stat = "7 (python3) S 1 7 7 0 -1 0 0 0 0 0 300 100 0 0 20 0 9 0 5"
    assert scen_box.cpu_ticks(FakeVM(f"100\n{stat}\n"), 7) == (4.0, 100.0)
    assert scen_box.cpu_ticks(FakeVM("100\n"), 7) is None  # the process had gone
    assert scen_box.cpu_ticks(FakeVM(f"none\n{stat}"), 7) is None
    assert scen_box.cpu_ticks(FakeVM(f"100\n{stat}", mono=None), 7) is None
    assert scen_box.cpu_pct((1.0, 10.0), (4.0, 20.0)) == 30.0
    assert scen_box.cpu_pct(None, (4.0, 20.0)) is None
    assert scen_box.cpu_pct((1.0, 20.0), (4.0, 20.0)) is None


def test_compare_without_a_verdict_is_an_error_not_a_crash():
    res = scen_box.compare(FakeVM("Traceback (most recent call last): ...", rc=1), "/run/x")
    assert "error" in res and res["gaps"] == [] and res["matched_s"] == 0.0


def test_main_pid_and_restarts_read_empty_as_zero():
    assert scen_box.main_pid(FakeVM("\n")) == 0
    assert scen_box.main_pid(FakeVM("1234\n")) == 1234
    assert scen_box.restarts(FakeVM("garbage")) == 0


def test_sound_after_reads_the_waiters_line():
    assert scen_box.sound_after(FakeVM("SOUND 12.5 321\n"), 0, 5) == (12.5, 321)
    assert scen_box.sound_after(FakeVM("NOSOUND\n", rc=1), 0, 5) is None


def test_the_arm64_console_port_is_the_pci_uarts_tty():
    assert lab.console_port(FakeVM("ttyS0\n")) == "/dev/ttyS0"
    x86 = FakeVM("")
    x86.arch = "amd64"
    assert lab.console_port(x86) == "/dev/ttyS1"
