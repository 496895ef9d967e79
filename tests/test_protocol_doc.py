"""docs/protocol.md says what the console does: its command table and examples, checked
against a live simulated box (#23.8).

Every command of the table exists and every command exists in the table, with the same
synopsis and login; each reply the table shows as ``key=value`` pairs has the live reply's
keys; the examples, sent in order, get replies of the same shape (same final line, same
keys, the same ``!EVENT`` lines).
"""

from __future__ import annotations

import io
import re
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from device.box.app import Box, RunOptions
from device.config import Config
from device.console.auth import PinAuth
from device.console.commands import Console
from device.console.protocol import parse_pairs
from tests.support.console_doubles import answer

DOC = Path(__file__).resolve().parent.parent / "docs" / "protocol.md"


def section(title: str) -> str:
    text = DOC.read_text(encoding="utf-8")
    start = text.index(f"\n## {title}\n")
    end = text.find("\n## ", start + 1)
    return text[start : None if end < 0 else end]


def table_rows() -> list[tuple[str, str, str]]:
    """``(synopsis, auth, reply data)`` of each row of the command table."""
    rows = []
    for line in section("Commands").splitlines():
        if not line.startswith("| `"):
            continue
        cells = [c.strip().replace("\\|", "|") for c in re.split(r"(?<!\\)\|", line)[1:-1]]
        rows.append((cells[0].strip("`"), cells[1], cells[2]))
    return rows


def doc_pairs(cell: str) -> list[dict[str, str]]:
    """The backquoted snippets of a cell that are ``key=value`` lines."""
    out = []
    for snippet in re.findall(r"`([^`]+)`", cell):
        words = snippet.split()
        if words and all("=" in w for w in words if not w.startswith('"')):
            try:
                out.append(parse_pairs(snippet))
            except ValueError:
                continue
    return out


class Live:
    """A simulated box and a console on it, driven block by block."""

    def __init__(self, box: Box, console: Console, auth: PinAuth) -> None:
        self.box, self.console, self.auth = box, console, auth
        self.events: list[str] = []
        box._emit_hooks.append(self.events.append)

    def send(self, line: str) -> tuple[list[str], str]:
        reply = answer(self.console, line, self.box.clock.now())
        final = "OK" if reply.code == 0 else f"ERR {reply.code} {reply.message}"
        return list(reply.lines), final

    def run(self, blocks: int) -> None:
        for _ in range(blocks):
            self.box.loop.turn()


@pytest.fixture
def live(tmp_path: Path) -> Iterator[Live]:
    cfg = Config.defaults().with_value("service.auto_start", False)
    opts = RunOptions(
        sim=True, audio="null", speed=None, status="none", state_dir=str(tmp_path / "state")
    )
    with Box(cfg, opts, status_out=io.StringIO()) as box:
        auth = PinAuth(tmp_path / "state", clock=time.monotonic, identity="m:1", scrypt_n=2**10)
        live = Live(box, Console(box, auth, serial="1A2B3C4D"), auth)
        live.run(20)
        yield live


def test_every_command_in_the_table_exists_and_every_command_is_in_the_table(
    live: Live,
) -> None:
    help_lines, final = live.send("HELP")
    assert final == "OK"
    live_cmds = {}
    for line in help_lines:
        pairs = parse_pairs(line)
        live_cmds[pairs["command"]] = pairs["auth"]
    doc_cmds = {synopsis: auth for synopsis, auth, _ in table_rows()}
    assert set(doc_cmds) == set(live_cmds), (
        f"only in the doc: {sorted(set(doc_cmds) - set(live_cmds))}; "
        f"only in the console: {sorted(set(live_cmds) - set(doc_cmds))}"
    )
    for synopsis, auth in doc_cmds.items():
        # "S for service keys": the command itself needs no login, some of its keys do.
        assert (auth == "S") == (live_cmds[synopsis] == "service"), synopsis


def test_each_reply_the_table_shows_has_the_live_replys_keys(live: Live) -> None:
    rows = {synopsis: data for synopsis, _, data in table_rows()}
    queries = ["ID?", "PROG LIST?", "PROG?", "VOL?", "PROFILE?", "MUSIC?", "LOG? [N]"]
    live.send("SESSION START wind-down 20")
    live.run(50)
    for synopsis in queries:
        shown = doc_pairs(rows[synopsis])
        assert shown, f"the table shows no key=value reply for {synopsis}"
        lines, final = live.send(synopsis.split(" [")[0])
        assert final == "OK", (synopsis, final)
        got = [parse_pairs(line) for line in lines]
        assert got, synopsis
        first_key = next(iter(shown[0]))
        match = [g for g in got if g.get(first_key) == shown[0][first_key]] or got
        assert set(shown[0]) == set(match[0]), synopsis
    # The programs' lengths in the table are the programs' lengths.
    (program,) = doc_pairs(rows["PROG LIST?"])
    lines, _ = live.send("PROG LIST?")
    (same,) = [p for p in map(parse_pairs, lines) if p["name"] == program["name"]]
    assert same["duration_s"] == program["duration_s"]


def test_status_has_the_tables_keys_and_one_key_set_idle_or_playing(live: Live) -> None:
    (row,) = [data for synopsis, _, data in table_rows() if synopsis == "STATUS?"]
    documented = set(re.findall(r"`([^`]+)`", row)[0].split())
    idle_lines, _ = live.send("STATUS?")
    live.send("SESSION START relax 1")
    live.run(200)
    playing_lines, _ = live.send("STATUS?")
    idle, playing = set(parse_pairs(idle_lines[0])), set(parse_pairs(playing_lines[0]))
    assert idle == playing, f"idle only {idle - playing}, playing only {playing - idle}"
    assert {k for k in idle if not k.startswith("sim_")} == documented


def examples() -> list[tuple[str, list[str]]]:
    """The examples' requests, each with the lines shown after it."""
    block = section("Examples").split("```")[1]
    out: list[tuple[str, list[str]]] = []
    for line in block.strip().splitlines():
        if line.startswith("> "):
            out.append((line[2:], []))
        elif out:
            out[-1][1].append(line)
    return out


def test_the_examples_get_replies_of_the_same_shape(live: Live) -> None:
    shown = examples()
    assert len(shown) >= 5
    pin = live.auth.store.default_pin()
    token: str | None = None
    doc_token: str | None = None
    for request, lines in shown:
        sent = request
        if request.startswith("AUTH "):
            sent = f"AUTH {pin}"
        if doc_token and token and doc_token in request:
            sent = request.replace(doc_token, token)
        del live.events[:]
        data, final = live.send(sent)
        live.run(20)
        doc_final = [x for x in lines if x == "OK" or x.startswith(("OK ", "ERR "))]
        doc_data = [x for x in lines if not x.startswith("!") and x not in doc_final]
        doc_events = [x for x in lines if x.startswith("!")]
        tag = re.search(r" (#\w+)$", request)
        want = doc_final[0].removesuffix(f" {tag.group(1)}") if tag else doc_final[0]
        assert final == want, request
        assert [set(parse_pairs(x)) for x in data] == [set(parse_pairs(x)) for x in doc_data]
        for event in doc_events:
            assert event in live.events, (request, event, live.events)
        if request == "ERASE USERDATA":
            token = parse_pairs(data[0])["token"]
            doc_token = parse_pairs(doc_data[0])["token"]


def test_a_session_start_is_one_event_with_the_length_it_plays(live: Live) -> None:
    lines, final = live.send("SESSION START relax 1")
    assert final == "OK" and parse_pairs(lines[0])["remaining_s"] == "60.0"
    live.run(50)
    starts = [e for e in live.events if e.startswith("!EVENT start")]
    assert starts == ["!EVENT start program=relax minutes=1"]
    live.send("SESSION STOP")
    live.run(400)
    assert [e for e in live.events if e.startswith("!EVENT stop")] == ["!EVENT stop console"]


def test_cfg_save_on_a_sim_box_without_a_config_file_says_how_to_give_one(
    live: Live, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("BEDSIDE_CONFIG", raising=False)
    assert live.auth.login(live.auth.store.default_pin()) == "ok"
    _, final = live.send("CFG SAVE")
    assert final.startswith("ERR 4 ")
    assert "--config FILE" in final and final.count("config.toml") <= 1


def test_selftest_says_contact_in_the_consoles_words(live: Live) -> None:
    lines, _ = live.send("SELFTEST")
    (sensor,) = [parse_pairs(x) for x in lines if "check=sensor" in x]
    assert re.search(r"\bcontact=(true|false)\b", sensor["detail"]), sensor
