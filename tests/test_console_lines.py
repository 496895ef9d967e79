"""Framing of the console's byte stream into lines."""

from __future__ import annotations

import pytest

from device.console.lines import BAD, ECHO, LINE, TOO_LONG, LineEvent, LineFramer


def lines(framer: LineFramer, data: bytes) -> list[tuple[str, str]]:
    return [(e.kind, e.text) for e in framer.feed(data) if e.kind != ECHO]


@pytest.mark.parametrize("ending", [b"\r", b"\n", b"\r\n"])
def test_each_ending_ends_a_line_once(ending: bytes) -> None:
    f = LineFramer()
    assert lines(f, b"PING" + ending + b"ID?" + ending) == [(LINE, "PING"), (LINE, "ID?")]


def test_crlf_split_across_reads_counts_once() -> None:
    f = LineFramer()
    assert lines(f, b"PING\r") == [(LINE, "PING")]
    assert lines(f, b"\nID?\r") == [(LINE, "ID?")]


def test_lf_cr_is_one_ending_as_crlf_is() -> None:
    f = LineFramer()
    assert lines(f, b"A\n\rB\n") == [(LINE, "A"), (LINE, "B")]


def test_empty_and_blank_lines_are_lines_each_ending_counted_once() -> None:
    f = LineFramer()
    # CRLF, CRLF, LF, LF, blanks+CRLF, tab+CR: six Enter presses, six (empty) lines
    assert lines(f, b"\r\n\r\n\n\n   \r\n\t\r") == [(LINE, "")] * 6
    assert lines(f, b"\n") == []  # the LF of the last CR's pair
    assert lines(f, b"\r\r") == [(LINE, "")] * 2  # two presses on a CR terminal


def test_line_split_over_many_reads() -> None:
    f = LineFramer()
    out: list[tuple[str, str]] = []
    for byte in b"STATUS? #a1\r\n":
        out += lines(f, bytes([byte]))
    assert out == [(LINE, "STATUS? #a1")]


def test_backspace_and_del_edit_the_line() -> None:
    f = LineFramer()
    assert lines(f, b"PINX\x08G\r") == [(LINE, "PING")]
    assert lines(f, b"IDX\x7f?\r") == [(LINE, "ID?")]
    assert lines(f, b"\x08\x08A\r") == [(LINE, "A")]


def test_ctrl_c_and_ctrl_u_drop_the_half_line() -> None:
    f = LineFramer()
    assert lines(f, b"VOL SET 0\x03PING\r") == [(LINE, "PING")]
    assert lines(f, b"garbage\x15ID?\n") == [(LINE, "ID?")]


def test_nul_padding_is_dropped() -> None:
    f = LineFramer()
    assert lines(f, b"\x00P\x00ING\x00\r\x00") == [(LINE, "PING")]


def test_non_printable_byte_makes_a_bad_line() -> None:
    f = LineFramer()
    assert lines(f, b"PI\xffNG\r\n") == [(BAD, "byte 0xFF at column 3")]
    assert lines(f, b"\x1b[A\r") == [(BAD, "byte 0x1B at column 1")]


def test_120_characters_pass_121_are_too_long() -> None:
    f = LineFramer()
    assert lines(f, b"A" * 120 + b"\n") == [(LINE, "A" * 120)]
    assert lines(f, b"A" * 121 + b"\nPING\n") == [(TOO_LONG, ""), (LINE, "PING")]
    assert f.too_long == 1


def test_backspace_within_the_limit_keeps_the_line() -> None:
    f = LineFramer()
    assert lines(f, b"A" * 120 + b"\x08B\n") == [(LINE, "A" * 119 + "B")]


def test_64_kib_without_an_end_holds_at_most_the_limit() -> None:
    f = LineFramer()
    for _ in range(64):
        assert lines(f, b"x" * 1024) == []
        assert f.pending <= 120
    assert lines(f, b"\r\nPING\r\n") == [(TOO_LONG, ""), (LINE, "PING")]


def test_ff_burst_then_line() -> None:
    f = LineFramer()
    out = lines(f, b"\xff" * 5000 + b"\r" + b"\xff" * 10 + b"\rPING\r")
    assert out == [(TOO_LONG, ""), (BAD, "byte 0xFF at column 1"), (LINE, "PING")]


def test_reset_forgets_a_half_line() -> None:
    f = LineFramer()
    lines(f, b"VOL SE")
    f.reset()
    assert lines(f, b"PING\r") == [(LINE, "PING")]


def test_echo_off_by_default_and_on_when_asked() -> None:
    f = LineFramer()
    assert [e for e in f.feed(b"PING\r") if e.kind == ECHO] == []
    f.echo = True
    events = f.feed(b"PX\x08ING\r")
    assert events == [LineEvent(ECHO, "PX\b \bING\r\n"), LineEvent(LINE, "PING")]


def test_echo_masks_pins() -> None:
    f = LineFramer(echo=True)
    echo = "".join(e.text for e in f.feed(b"auth 123456\rPIN SET 654321\r") if e.kind == ECHO)
    assert "123456" not in echo and "654321" not in echo
    assert echo == "auth ******\r\nPIN SET ******\r\n"


def test_repr_and_bad_limit() -> None:
    assert "max_len=120" in repr(LineFramer())
    with pytest.raises(ValueError, match="max_len"):
        LineFramer(0)
