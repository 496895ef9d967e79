"""The lab parses every value it reads in one place and never raises on one (issue 22.5)."""

import math

import pytest

from tests.support.lab_path import lab_module

values = lab_module("values")


@pytest.mark.parametrize(
    ("text", "want"),
    [
        ("12.5", 12.5),
        (" 3 ", 3.0),
        ("-0.25", -0.25),
        ("1e3", 1000.0),
        ("0.3s", 0.3),
        ("81%", 81.0),
        ("171ms", 171.0),
        (7, 7.0),
        (2.5, 2.5),
        (b"4", 4.0),
    ],
)
def test_number_reads_numbers_with_or_without_a_unit(text, want):
    assert values.number(text) == pytest.approx(want)


@pytest.mark.parametrize(
    "text",
    ["none", "None", "NULL", "", "  ", "n/a", "-", "unknown", "nan", "inf", "1.2.3", "abc",
     "12 apples", None, True, False, [], {}, float("nan"), math.inf],
)  # fmt: skip
def test_number_gives_none_for_anything_that_is_not_one(text):
    assert values.number(text) is None


def test_the_power_scenarios_crash_value_reads_as_none():
    # elapsed_s=none: a cut before the session started crashed the lab (issue 22.5).
    assert values.field({"state": "starting", "elapsed_s": "none"}, "elapsed_s") is None
    assert values.field({}, "elapsed_s") is None
    assert values.field(None, "elapsed_s") is None
    assert values.field({"elapsed_s": "4.25"}, "elapsed_s") == 4.25


def test_integer_is_exact_and_refuses_fractions():
    assert values.integer("1234567890123456789") == 1234567890123456789
    assert values.integer("3.0") == 3
    assert values.integer(" 42\n") == 42
    assert values.integer("3.5") is None
    assert values.integer("") is None
    assert values.integer("none") is None


def test_flag():
    assert values.flag("yes") is True
    assert values.flag("off") is False
    assert values.flag("maybe") is None
    assert values.flag(None) is None


def test_json_object_takes_the_last_object_line_and_skips_garbage():
    assert values.json_object('noise\n{"a": 1}\n{"b": 2}\n') == {"b": 2}
    assert values.json_object('{"a": 1}\n[1, 2]\nnot json') == {"a": 1}
    assert values.json_object("") is None
    assert values.json_object("{truncated") is None
    assert values.json_object(None) is None


def test_proc_cpu_ticks_counts_fields_after_the_last_parenthesis():
    # A command name with spaces and a ')' inside, as /proc/PID/stat prints it.
    stat = "1234 (bed side) x) S 1 1234 1234 0 -1 4194560 500 0 0 0 250 75 0 0 20 0 4 0 99"
    assert values.proc_cpu_ticks(stat) == (250, 75)
    assert values.proc_cpu_ticks("1234 (gone) Z 1") is None
    assert values.proc_cpu_ticks("") is None
    assert values.proc_cpu_ticks("no parenthesis at all") is None


def test_schedstat():
    assert values.schedstat("34721425 42296089 128\n") == (34721425, 42296089)
    assert values.schedstat("1") is None
    assert values.schedstat("a b c") is None


def test_proc_stat_cpu_reads_the_aggregate_line_and_pads_old_kernels():
    text = "cpu  7099 1605 2239 39839 313 0 34 14 0 0\ncpu0 1 2 3 4 5 6 7 8 9 10\n"
    row = values.proc_stat_cpu(text)
    assert row is not None
    assert row["user"] == 7099 and row["idle"] == 39839 and row["steal"] == 14
    old = values.proc_stat_cpu("cpu 1 2 3 4\n")
    assert old is not None and old["steal"] == 0 and old["idle"] == 4
    assert values.proc_stat_cpu("cpu 1 2 x 4\n") is None
    assert values.proc_stat_cpu("intr 5\n") is None
