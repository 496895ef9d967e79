"""Audio sinks: null, WAV (readable after a crash) and PyAudio through ALSA's file plugin."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import wave
from pathlib import Path

import numpy as np
import pytest

from device.drivers.audio import AudioSink, NullSink, float_to_int16, open_sink
from device.drivers.pyaudio_sink import REINIT_AFTER, REOPEN_INTERVAL_S, PyAudioSink
from device.drivers.realtime_sink import RealTimeSink
from device.drivers.wav_sink import WavSink
from device.exc import AudioDeviceError
from device.sound.engine import Engine
from tests.support.pyaudio_fake import Card, FakePyAudioModule, paUnanticipatedHostError

RATE = 48000


def engine_blocks(n: int, block: int = 1024) -> list[np.ndarray]:
    e = Engine(block_frames=block, volume_db=-10.0)
    e.fade_in(0.2)
    e.chime("start")
    return [e.render().copy() for _ in range(n)]


# --- null -----------------------------------------------------------------------------------


def test_null_sink_counts_and_never_raises() -> None:
    with open_sink("null", sample_rate=RATE) as sink:
        assert isinstance(sink, NullSink) and not sink.paces
        sink.write(np.zeros((1024, 2), np.float32))
        sink.write(np.zeros((3000, 2), np.float32))  # longer than a block: split
        sink.write(np.zeros((1024, 3), np.float32))  # wrong channel count
        sink.write("not audio")  # type: ignore[arg-type]
        assert sink.frames_written == 4024
        assert sink.errors == 2
        assert "NullSink open" in repr(sink)
    sink.close()  # idempotent
    sink.write(np.zeros((8, 2), np.float32))
    assert sink.errors == 3 and "closed" in repr(sink)


def test_open_sink_rejects_unknown_specs() -> None:
    with pytest.raises(ValueError, match="wav:PATH"):
        open_sink("speaker", sample_rate=RATE)
    with pytest.raises(ValueError, match="sample_format"):
        open_sink("null", sample_rate=RATE, sample_format="int24")


def test_conversion_rounds_clips_and_zeroes_nan() -> None:
    x = np.array([[0.0, 1.0], [-1.0, 2.0], [0.5, np.nan], [-3.0, 1e-6]], np.float32)
    np.testing.assert_array_equal(
        float_to_int16(x), [[0, 32767], [-32767, 32767], [16384, 0], [-32768, 0]]
    )


# --- WAV ------------------------------------------------------------------------------------


def read_wav(path: Path) -> tuple[int, int, np.ndarray]:
    with wave.open(str(path)) as w:
        data = np.frombuffer(w.readframes(w.getnframes()), "<i2").reshape(-1, w.getnchannels())
        return w.getframerate(), w.getsampwidth(), data


def test_wav_is_readable_while_still_being_written(tmp_path: Path) -> None:
    blocks = engine_blocks(12)
    path = tmp_path / "night.wav"
    sink = open_sink(f"wav:{path}", sample_rate=RATE)
    assert isinstance(sink, WavSink)
    for b in blocks[:10]:
        sink.write(b)
    rate, width, data = read_wav(path)  # never closed: the header is already right
    assert (rate, width) == (RATE, 2)
    np.testing.assert_array_equal(data, float_to_int16(np.concatenate(blocks[:10])))
    for b in blocks[10:]:
        sink.write(b)
    sink.close()
    sink.close()
    assert read_wav(path)[2].shape == (12 * 1024, 2)


def test_wav_survives_a_crash(tmp_path: Path) -> None:
    path = tmp_path / "crash.wav"
    code = textwrap.dedent(
        f"""
        import os, numpy as np
        from device.drivers.audio import open_sink
        sink = open_sink("wav:{path}", sample_rate={RATE}, block_frames=512)
        t = np.arange(512 * 37) / {RATE}
        x = (0.5 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)
        sink.write(np.stack([x, -x], 1))
        os._exit(9)  # dies without closing anything
        """
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, timeout=60)
    assert proc.returncode == 9, proc.stderr.decode()
    rate, _, data = read_wav(path)
    assert rate == RATE and data.shape == (512 * 37, 2)
    t = np.arange(512 * 37) / RATE
    x = (0.5 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)
    np.testing.assert_array_equal(data[:, 0], float_to_int16(x))
    np.testing.assert_array_equal(data[:, 1], float_to_int16(-x))


def test_wav_in_a_missing_directory_names_the_path(tmp_path: Path) -> None:
    bad = tmp_path / "no" / "such" / "x.wav"
    with pytest.raises(AudioDeviceError, match=str(bad)):
        open_sink(f"wav:{bad}", sample_rate=RATE)


# --- PyAudio through ALSA's file plugin -----------------------------------------------------


def captured(path: Path, dtype: str = "<i2") -> np.ndarray:
    return np.frombuffer(path.read_bytes(), dtype).reshape(-1, 2)


def test_pyaudio_plays_bit_exact_without_gaps(alsa_capture: Path) -> None:
    blocks = engine_blocks(150)
    with open_sink("pyaudio", sample_rate=RATE, buffer_blocks=4) as sink:
        assert isinstance(sink, PyAudioSink) and sink.paces
        for b in blocks:
            sink.write(b)
        assert sink.errors == 0 and sink.underruns == 0
        primed = sink.primed_frames
    got = captured(alsa_capture)
    expected = float_to_int16(np.concatenate(blocks))
    assert primed == 3 * 1024
    assert np.all(got[:primed] == 0)
    assert got.shape[0] == primed + expected.shape[0]
    np.testing.assert_array_equal(got[primed:], expected)


def test_pyaudio_float32_and_device_by_name(alsa_capture: Path) -> None:
    blocks = engine_blocks(20, block=512)
    sink = open_sink(
        "pyaudio",
        sample_rate=RATE,
        device="BEDSIDEc",
        block_frames=512,
        sample_format="float32",
        buffer_blocks=2,
    )
    assert sink.device_name == "bedsidecard"
    for b in blocks:
        sink.write(b)
    sink.close()
    got = captured(alsa_capture, "<f4")
    np.testing.assert_array_equal(got[sink.primed_frames :], np.concatenate(blocks))


def test_pyaudio_unknown_device_lists_the_outputs(alsa_capture: Path) -> None:
    with pytest.raises(AudioDeviceError, match=r"'hifiberry'.*bedsidecard"):
        open_sink("pyaudio", sample_rate=RATE, device="hifiberry")


def test_pyaudio_reopens_after_a_device_error_and_plays_on(alsa_capture: Path, mocker) -> None:
    now = [100.0]
    sleeps: list[float] = []
    sink = PyAudioSink(
        sample_rate=RATE, buffer_blocks=2, sleep=sleeps.append, monotonic=lambda: now[0]
    )
    blocks = engine_blocks(12)
    sink.write(blocks[0])
    mocker.patch.object(sink._stream, "write", side_effect=OSError(-9999, "Unanticipated host"))
    sink.write(blocks[1])  # the device fails: counted, stream closed, no exception
    assert sink.errors == 1 and "Unanticipated" in sink.last_error and not sink.healthy
    sink.write(blocks[2])  # too early to retry: sleeps one block to keep the pace
    assert sleeps == [pytest.approx(1024 / RATE)]
    now[0] += 1.5
    for b in blocks[3:]:
        sink.write(b)  # reopened, plays on
    assert sink.reopens == 1 and sink.errors == 1 and sink.healthy
    sink.close()
    assert not sink.healthy
    got = captured(alsa_capture)  # the reopened stream's capture starts afresh
    np.testing.assert_array_equal(
        got[sink.primed_frames :], float_to_int16(np.concatenate(blocks[3:]))
    )


def test_pyaudio_opening_prints_no_alsa_or_jack_noise(alsa_capture: Path, capfd) -> None:
    capfd.readouterr()
    with open_sink("pyaudio", sample_rate=RATE, buffer_blocks=2) as sink:
        sink.write(engine_blocks(1)[0])
    out, err = capfd.readouterr()
    assert err == "" and out == ""


# --- PyAudio's own failure behaviour (tests/support/pyaudio_fake.py, read from its C code) -


def fake_sink(card: Card, now: list[float], buffer_blocks: int = 4) -> PyAudioSink:
    return PyAudioSink(
        sample_rate=RATE,
        buffer_blocks=buffer_blocks,
        backend=FakePyAudioModule(card),
        sleep=card.sleep,
        monotonic=lambda: now[0],
    )


def test_a_late_block_costs_its_lateness_never_the_stream() -> None:
    card = Card(capacity=4 * 1024)
    now = [0.0]
    sink = fake_sink(card, now)
    blocks = engine_blocks(20)
    for b in blocks[:8]:
        card.play(1024)  # the card plays a block while the loop renders one
        sink.write(b)
    assert sink.underruns == 0
    card.play(6 * 1024)  # the loop stalled: the card ran dry
    for b in blocks[8:11]:
        sink.write(b)  # the loop catches up: writes do not wait while the buffer has room
    for b in blocks[11:]:
        card.play(1024)
        sink.write(b)
    # One underrun, seen before the write; the stream stays open and nothing is lost.
    assert (sink.underruns, sink.errors, sink.reopens) == (1, 0, 0)
    assert sink.healthy and sink._stream.is_open and card.streams_opened == 1
    played = np.frombuffer(bytes(card.played), "<i2").reshape(-1, 2)
    np.testing.assert_array_equal(played[: sink.primed_frames], 0)
    np.testing.assert_array_equal(
        played[sink.primed_frames :], float_to_int16(np.concatenate(blocks))
    )


def test_the_buffer_stays_full_to_within_one_write() -> None:
    # PortAudio's own blocking write lets the buffer run down to one period (half of it)
    # before it returns; the sink waits for room itself, so a late loop has the whole buffer.
    card = Card(capacity=8 * 1024)
    sink = fake_sink(card, [0.0], buffer_blocks=8)
    card.low_after_write = None  # from here on: the priming filled the buffer
    for b in engine_blocks(40):
        card.sleep(0.004)  # the loop renders faster than the card plays
        sink.write(b)
    assert card.low_after_write is not None
    assert card.low_after_write >= card.capacity - 1024
    assert (sink.underruns, sink.errors) == (0, 0)


def test_a_stall_while_waiting_for_room_is_counted_as_an_underrun() -> None:
    # SIGSTOP lands while the sink sleeps for room (where a full buffer keeps it): the
    # buffer runs dry in that sleep, and the underrun must be counted all the same.
    card = Card(capacity=8 * 1024)
    sink = fake_sink(card, [0.0], buffer_blocks=8)
    blocks = engine_blocks(30)
    for b in blocks[:10]:
        sink.write(b)
    card.stall_s = 0.3  # longer than the 171 ms buffer
    for b in blocks[10:]:
        sink.write(b)
    assert (sink.underruns, sink.errors, sink.reopens) == (1, 0, 0)


def test_a_stall_just_before_a_write_is_counted_as_an_underrun() -> None:
    # Seen in the lab: SIGSTOP between the sink's check and Pa_WriteStream. PortAudio met
    # the underrun inside the write, restarted the PCM and dropped the frames: empty after.
    card = Card(capacity=8 * 1024)
    sink = fake_sink(card, [0.0], buffer_blocks=8)
    blocks = engine_blocks(20)
    for b in blocks[:10]:
        sink.write(b)
    sink._stream.stall_in_write = True
    for b in blocks[10:]:
        sink.write(b)
    assert (sink.underruns, sink.errors, sink.reopens) == (1, 0, 0)


def test_a_card_that_stops_playing_is_a_fault_not_a_hang() -> None:
    # A USB card pulled out: its buffer never drains, and Pa_WriteStream would poll for ever.
    card = Card(capacity=4 * 1024)
    now = [0.0]
    sink = fake_sink(card, now)
    blocks = engine_blocks(8)
    for b in blocks[:4]:
        sink.write(b)
    assert sink.healthy
    card.hung = True
    sink.write(blocks[4])  # waits STALL_S for room, then gives up: no WaitsForEver
    assert not sink.healthy and sink.errors == 1
    assert "stopped playing" in sink.last_error
    assert not card.played.endswith(float_to_int16(blocks[4]).tobytes())


def test_a_named_card_that_failed_is_looked_for_again_at_once() -> None:
    card = Card()
    now = [0.0]
    sink = PyAudioSink(
        sample_rate=RATE,
        device="fakecard",
        buffer_blocks=4,
        backend=FakePyAudioModule(card),
        sleep=card.sleep,
        monotonic=lambda: now[0],
    )
    block = engine_blocks(1)[0]
    sink.write(block)
    card.fail = paUnanticipatedHostError
    sink.write(block)
    assert not sink.healthy and card.initialised == 1
    card.fail = None
    now[0] += REOPEN_INTERVAL_S
    sink.write(block)  # the first reopen rescans the cards: the USB card may be back
    assert sink.healthy and sink.reopens == 1 and card.initialised == 2


def test_the_fake_closes_the_stream_as_pyaudio_does_on_exception_on_underflow() -> None:
    card = Card()
    stream = FakePyAudioModule(card).PyAudio().open()
    card.play(10)
    with pytest.raises(OSError) as exc:
        stream.write(b"\0" * 64, 16, exception_on_underflow=True)
    assert exc.value.errno == -9980 and not stream.is_open
    with pytest.raises(OSError, match="Stream closed"):
        stream.write(b"\0" * 64, 16)
    with pytest.raises(OSError, match="Stream not open"):
        stream.stop_stream()
    stream.close()  # cleanup is idempotent


def test_a_dead_card_reads_unhealthy_at_once_and_stays_so() -> None:
    card = Card()
    now = [0.0]
    sink = fake_sink(card, now)
    block = engine_blocks(1)[0]
    sink.write(block)
    assert sink.healthy and sink.last_error == ""
    card.fail = paUnanticipatedHostError  # every write fails ...
    card.gone = True  # ... and the device is gone
    sink.write(block)
    assert not sink.healthy and sink.errors == 1 and "Unanticipated" in sink.last_error
    for _ in range(100):  # 2 s of blocks: reopen tried each second, each one fails
        now[0] += 1024 / RATE
        sink.write(block)
        assert not sink.healthy
    assert sink.errors == 3 and "cannot open audio output" in sink.last_error
    assert sink.reopens == 0 and card.initialised == 1  # one PyAudio() for the reopens
    for _ in range(REINIT_AFTER * 50):
        now[0] += 1024 / RATE
        sink.write(block)
    # PortAudio is initialised again only after REINIT_AFTER failed reopens (a rescan).
    assert card.initialised == 2 and card.terminated == 1 and not sink.healthy
    card.fail, card.gone = None, False  # plugged back in
    for _ in range(50):
        now[0] += 1024 / RATE
        sink.write(block)
    assert sink.healthy and sink.reopens == 1 and card.initialised == 2
    sink.close()
    assert not sink.healthy and card.terminated == 2


def test_every_sink_reports_health_truthfully(tmp_path: Path) -> None:
    assert {"healthy", "errors", "last_error", "reopens"} <= AudioSink.__abstractmethods__
    block = np.zeros((1024, 2), np.float32)
    null = open_sink("null", sample_rate=RATE)
    null.write(block)
    assert null.healthy and (null.errors, null.last_error, null.reopens) == (0, "", 0)
    null.write(np.zeros((4, 3), np.float32))  # a malformed block: counted, the sink is fine
    assert null.healthy and null.errors == 1 and "shape" in null.last_error
    wav = open_sink(f"wav:{tmp_path / 'x.wav'}", sample_rate=RATE)
    assert isinstance(wav, WavSink)
    keep = os.dup(wav._fd)
    full = os.open("/dev/full", os.O_WRONLY)
    os.dup2(full, wav._fd)  # the disk is full now
    wav.write(block)
    assert not wav.healthy and wav.errors == 1 and "No space" in wav.last_error
    os.dup2(keep, wav._fd)  # room again
    wav.write(block)
    assert wav.healthy and wav.errors == 1
    os.close(full)
    os.close(keep)
    wav.close()
    assert not wav.healthy
    card = Card()
    rt = RealTimeSink(fake_sink(card, [0.0]), monotonic=lambda: 0.0, sleep=lambda s: None)
    assert isinstance(rt, AudioSink) and rt.healthy
    card.fail = paUnanticipatedHostError
    rt.write(block)
    assert not rt.healthy and rt.errors == 1 and "Unanticipated" in rt.last_error
    assert rt.reopens == 0
    rt.close()


def test_pyaudio_missing_library_is_a_clear_error(mocker) -> None:
    mocker.patch.dict(sys.modules, {"pyaudio": None})
    with pytest.raises(AudioDeviceError, match="PyAudio is not installed"):
        open_sink("pyaudio", sample_rate=RATE)


def test_import_device_does_not_import_pyaudio() -> None:
    code = "import sys, device.drivers.audio, device.sound.engine; print('pyaudio' in sys.modules)"
    env = dict(os.environ)
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=60
    )
    assert out.stdout.strip() == "False"


def test_wav_stops_cleanly_at_the_riff_size_limit(tmp_path: Path) -> None:
    path = tmp_path / "long.wav"
    sink = open_sink(f"wav:{path}", sample_rate=RATE, block_frames=256)
    sink.max_data_bytes = 3 * 256 * 4  # pretend the 4 GB limit is three blocks away
    block = np.full((256, 2), 0.25, np.float32)
    for _ in range(5):
        sink.write(block)
    assert sink.dropped_frames == 2 * 256 and sink.errors == 0
    sink.close()
    assert read_wav(path)[2].shape == (3 * 256, 2)
