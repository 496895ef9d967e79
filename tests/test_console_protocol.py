"""Requests, replies and the error queue of the console protocol."""

from __future__ import annotations

import math

import pytest

from device.console.protocol import (
    Code,
    ErrorQueue,
    Reply,
    clean_message,
    flatten,
    format_final,
    format_pairs,
    format_value,
    parse_pairs,
    parse_request,
)


def test_words_and_tag() -> None:
    r = parse_request("vol set -20 #a1")
    assert r.words == ("vol", "set", "-20") and r.tag == "a1" and r.error is None
    assert r.upper(0) == "VOL" and r.upper(5) == ""


def test_no_tag_and_hash_inside_words() -> None:
    assert parse_request("PING").tag is None
    assert parse_request("CFG SET therapy.program a#b").words[-1] == "a#b"


@pytest.mark.parametrize("bad", ["PING #", "PING #123456789", "PING #a-b", "PING #é"])
def test_bad_tags_are_errors(bad: str) -> None:
    r = parse_request(bad)
    assert r.error is not None and "tag" in r.error and r.words == ()


def test_tag_alone() -> None:
    r = parse_request("#x9")
    assert r.words == () and r.tag == "x9" and r.error is None


def test_quoted_values() -> None:
    r = parse_request('CFG SET audio.device "USB Audio \\"2\\"" #t')
    assert r.words == ("CFG", "SET", "audio.device", 'USB Audio "2"') and r.tag == "t"
    assert parse_request('A ""').words == ("A", "")
    assert parse_request('CFG SET k "12" 3 "x y"').quoted == {3, 5}
    assert parse_request("CFG SET k 12").quoted == frozenset()


@pytest.mark.parametrize("bad", ['CFG SET k "open', 'A "x"y', 'A x"y'])
def test_malformed_quotes(bad: str) -> None:
    r = parse_request(bad + " #q")
    assert r.error and r.tag == "q"


def test_multiple_spaces_are_one() -> None:
    assert parse_request("  VOL    SET   -3  ").words == ("VOL", "SET", "-3")


def test_format_values() -> None:
    assert format_value(None) == "none"
    assert format_value(True) == "true" and format_value(False) == "false"
    assert format_value(3) == "3"
    assert format_value(812.0) == "812.0" and format_value(58.2346) == "58.235"
    assert format_value(math.nan) == "nan" and format_value(-math.inf) == "-inf"
    assert format_value("wind-down") == "wind-down"
    assert format_value("a b") == '"a b"' and format_value("") == '""'
    assert format_value('q"\\') == '"q\\"\\\\"'
    assert format_value("é\x01") == '"\\xe9\\x01"'


def test_pairs_round_trip() -> None:
    data = {"state": "playing", "hr": 58.2, "why": 'low "q" here', "none": None, "e": ""}
    line = format_pairs(data)
    assert line == 'state=playing hr=58.2 why="low \\"q\\" here" none=none e=""'
    assert parse_pairs(line) == {
        "state": "playing",
        "hr": "58.2",
        "why": 'low "q" here',
        "none": "none",
        "e": "",
    }


def test_keys_are_made_safe() -> None:
    assert format_pairs({"a b=c": 1}) == "a_b_c=1"


def test_flatten_nested() -> None:
    got = dict(flatten({"a": {"b": 1, "c": {"d": 2}}, "led": [7.0, 6.5], "x": [{"y": 1}]}))
    assert got == {"a.b": 1, "a.c.d": 2, "led": "7.0,6.5", "x": "[{'y': 1}]"}


def test_final_lines() -> None:
    assert format_final(0) == "OK"
    assert format_final(0, tag="a1") == "OK #a1"
    assert format_final(Code.BAD_ARGUMENT, "volume  above\nthe cap", "z") == (
        "ERR 2 volume above the cap #z"
    )
    assert format_final(Code.LINE_TOO_LONG, "") == "ERR 3 error"


def test_messages_are_one_bounded_printable_line() -> None:
    text = clean_message("x\r\ny\x00" + "z" * 500)
    assert "\n" not in text and "\r" not in text and len(text) == 200 and text.endswith("...")


def test_codes_are_the_documented_numbers() -> None:
    assert [int(c) for c in Code] == list(range(1, 10))


def test_reply_helpers() -> None:
    assert Reply.data({"a": 1}, [("b", "x y")]).lines == ["a=1", 'b="x y"']
    err = Reply.error(Code.BUSY, "later")
    assert (err.code, err.message, list(err.lines)) == (8, "later", [])


def test_error_queue_oldest_first_and_cleared() -> None:
    q = ErrorQueue(size=3)
    for i in range(5):
        q.push(2, f"e{i}", float(i))
    items, dropped = q.drain()
    assert [e.message for e in items] == ["e2", "e3", "e4"] and dropped == 2
    assert q.drain() == ([], 0) and len(q) == 0
