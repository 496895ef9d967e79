"""The Box plays its indexed music in a my-music session: like and skip rate the playing
track (the crossfade a skip starts is not timed here: at --speed max the decoder thread
runs beside a virtual clock), and the learnt taste is saved under ``tracks:<profile>`` at
the session's end."""

from __future__ import annotations

import io
from pathlib import Path

from test_music_run_e2e import indexed_library

from device.box.app import Box, RunOptions
from device.config import Config
from device.store.sessions import Store


def test_like_and_skip_rate_the_playing_track_and_the_taste_is_saved(
    tmp_path: Path, bedside_cmd: list[str], cli_env: dict[str, str]
) -> None:
    music, state = indexed_library(tmp_path, bedside_cmd, cli_env)
    cfg = Config.defaults().with_value("music.dir", str(music))
    opts = RunOptions(
        sim=True,
        audio="null",
        speed=None,
        status="none",
        state_dir=str(state),
        program="my-music",
        duration_s=40.0,
    )
    seen: dict[str, object] = {}
    with Box(cfg, opts, status_out=io.StringIO()) as box:

        def press(deadline: float) -> float:
            if "liked" not in seen:
                seen["liked"] = box.music_describe()["track"]
                box.rate("like")
                return deadline + 3.0
            if "skipped" not in seen:
                seen["skipped"] = box.music_describe()["track"]
                box.rate("skip")
            return deadline + 1000.0

        box.loop.add_task("press", press, 20.0)
        assert box.run() == 0
    assert seen["liked"] is not None and seen["skipped"] is not None
    taste = Store(state / "sessions.db").get_preference("tracks:default")
    rated = {
        Path(key).name: arm["n"]
        for key, arm in taste["profiles"]["default"]["arms"]["track.rating"].items()
    }
    assert seen["liked"] in rated and seen["skipped"] in rated, rated
