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

from device.drivers.audio import (
    NullSink,
    PyAudioSink,
    WavSink,
    float_to_int16,
    open_sink,
)
from device.dsp.engine import Engine
from device.exc import AudioDeviceError

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


def test_pyaudio_counts_underruns_and_reopens_after_a_device_error(
    alsa_capture: Path, mocker
) -> None:
    now = [100.0]
    sleeps: list[float] = []
    sink = PyAudioSink(
        sample_rate=RATE, buffer_blocks=2, sleep=sleeps.append, monotonic=lambda: now[0]
    )
    blocks = engine_blocks(12)
    sink.write(blocks[0])
    mocker.patch.object(sink._stream, "write", side_effect=OSError(-9980, "Output underflowed"))
    sink.write(blocks[1])
    assert (sink.underruns, sink.errors) == (1, 0)

    mocker.patch.object(sink._stream, "write", side_effect=OSError(-9999, "Unanticipated host"))
    sink.write(blocks[2])  # the device fails: counted, stream closed, no exception
    assert sink.errors == 1 and "Unanticipated" in sink.last_error
    sink.write(blocks[3])  # too early to retry: sleeps one block to keep the pace
    assert sleeps == [pytest.approx(1024 / RATE)]
    now[0] += 1.5
    for b in blocks[4:]:
        sink.write(b)  # reopened, plays on
    assert sink.reopens == 1 and sink.errors == 1
    sink.close()
    got = captured(alsa_capture)  # the reopened stream's capture starts afresh
    np.testing.assert_array_equal(
        got[sink.primed_frames :], float_to_int16(np.concatenate(blocks[4:]))
    )


def test_pyaudio_missing_library_is_a_clear_error(mocker) -> None:
    mocker.patch.dict(sys.modules, {"pyaudio": None})
    with pytest.raises(AudioDeviceError, match="PyAudio is not installed"):
        open_sink("pyaudio", sample_rate=RATE)


def test_import_device_does_not_import_pyaudio() -> None:
    code = "import sys, device.drivers.audio, device.dsp.engine; print('pyaudio' in sys.modules)"
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
