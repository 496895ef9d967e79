"""Logging: timestamps at a terminal, <N> priority prefixes under journald."""

from __future__ import annotations

import io
import logging
import os

from device.logsetup import JournalFormatter, setup_logging, under_journal


def record(level: int, msg: str, exc: bool = False) -> logging.LogRecord:
    exc_info = None
    if exc:
        try:
            raise ValueError("boom")
        except ValueError:
            import sys

            exc_info = sys.exc_info()
    return logging.LogRecord("device.x", level, __file__, 1, msg, None, exc_info)


def test_journal_lines_carry_priority_and_no_timestamp():
    fmt = JournalFormatter()
    assert fmt.format(record(logging.ERROR, "sensor gone")) == "<3>device.x: sensor gone"
    assert fmt.format(record(logging.WARNING, "w")) == "<4>device.x: w"
    assert fmt.format(record(logging.INFO, "i")) == "<6>device.x: i"
    assert fmt.format(record(logging.DEBUG, "d")) == "<7>device.x: d"
    lines = fmt.format(record(logging.ERROR, "failed", exc=True)).splitlines()
    assert len(lines) > 2 and all(line.startswith("<3>") for line in lines)
    assert lines[-1] == "<3>ValueError: boom"


def test_under_journal_matches_the_stream_device_and_inode(tmp_path):
    path = tmp_path / "stream"
    with open(path, "w") as fh:
        st = os.fstat(fh.fileno())
        assert under_journal(fh, {"JOURNAL_STREAM": f"{st.st_dev}:{st.st_ino}"})
        assert not under_journal(fh, {"JOURNAL_STREAM": f"{st.st_dev}:{st.st_ino + 1}"})
        assert not under_journal(fh, {})
        assert not under_journal(fh, {"JOURNAL_STREAM": "garbage"})


def test_setup_logging_terminal_format_and_replaces_its_own_handler():
    out = io.StringIO()
    setup_logging(logging.INFO, out, journal=False)
    setup_logging(logging.INFO, out, journal=False)
    logging.getLogger("device.t").warning("hello")
    text = out.getvalue()
    assert text.count("hello") == 1
    assert " WARNING device.t: hello" in text and text[2] == ":"
    out2 = io.StringIO()
    setup_logging(logging.INFO, out2, journal=True)
    logging.getLogger("device.t").info("quiet")
    assert out2.getvalue() == "<6>device.t: quiet\n"
    setup_logging(logging.WARNING, io.StringIO(), journal=False)
