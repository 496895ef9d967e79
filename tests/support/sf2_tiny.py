"""A tiny General MIDI SoundFont made on the spot (tests never read the system's SoundFonts).

One looped sample (a harmonic tone: partials 1-3, the loop a whole number of cycles) in one
instrument with a soft attack and release, offered as every GM program the composer's
styles use, in bank 0. The layout follows the SoundFont 2.01 specification: RIFF ``sfbk``
with INFO, ``sdta`` (16-bit samples followed by 46 zero samples) and ``pdta`` (preset,
instrument and sample headers, each list closed by its terminal record).
"""

from __future__ import annotations

import struct
from pathlib import Path

import numpy as np

#: Sample rate, loop length (frames) and the MIDI key the sample sounds at.
RATE = 48000
LOOP = 480  # 100 Hz: 480 frames is one cycle
ROOT_KEY = 43  # G2 = 98 Hz; the pitch correction below brings 100 Hz to it
#: Generators (SoundFont 2.01 section 8.1.2).
ATTACK_VOL_ENV, RELEASE_VOL_ENV, INSTRUMENT, SAMPLE_ID, SAMPLE_MODES = 34, 38, 41, 53, 54


def _chunk(tag: bytes, data: bytes) -> bytes:
    pad = b"\0" if len(data) % 2 else b""
    return tag + struct.pack("<I", len(data)) + data + pad


def _list(kind: bytes, *chunks: bytes) -> bytes:
    return _chunk(b"LIST", kind + b"".join(chunks))


def _name(text: str) -> bytes:
    return text.encode()[:19].ljust(20, b"\0")


def _timecents(seconds: float) -> int:
    return round(1200 * np.log2(seconds)) & 0xFFFF


def write(path: Path, programs: tuple[int, ...]) -> Path:
    """Write the SoundFont offering ``programs`` (bank 0) to ``path``; return ``path``."""
    n = np.arange(LOOP * 20)
    tone = sum(np.sin(2 * np.pi * k * n / LOOP) / k for k in (1, 2, 3))
    pcm = (tone / np.abs(tone).max() * 12000).astype("<i2").tobytes() + b"\0" * 92
    info = _list(b"INFO", _chunk(b"ifil", struct.pack("<HH", 2, 1)),
                 _chunk(b"isng", b"EMU8000\0"), _chunk(b"INAM", b"tiny\0\0"))
    sdta = _list(b"sdta", _chunk(b"smpl", pcm))
    progs = sorted(set(programs))
    phdr = b"".join(struct.pack("<20sHHHIII", _name(f"p{p}"), p, 0, i, 0, 0, 0)
                    for i, p in enumerate(progs))
    phdr += struct.pack("<20sHHHIII", _name("EOP"), 0, 0, len(progs), 0, 0, 0)
    pbag = b"".join(struct.pack("<HH", i, 0) for i in range(len(progs) + 1))
    pgen = b"".join(struct.pack("<HH", INSTRUMENT, 0) for _ in progs) + b"\0" * 4
    inst = struct.pack("<20sH", _name("tone"), 0) + struct.pack("<20sH", _name("EOI"), 1)
    igens = [(ATTACK_VOL_ENV, _timecents(0.02)), (RELEASE_VOL_ENV, _timecents(0.4)),
             (SAMPLE_MODES, 1), (SAMPLE_ID, 0)]
    igen = b"".join(struct.pack("<HH", g, a) for g, a in igens) + b"\0" * 4
    ibag = struct.pack("<HH", 0, 0) + struct.pack("<HH", len(igens), 0)
    end = LOOP * 20
    cents = round(1200 * np.log2(98.0 / 100.0))  # the 100 Hz sample is played as G2
    shdr = struct.pack("<20sIIIIIBbHH", _name("tone"), 0, end, LOOP, end - LOOP, RATE,
                       ROOT_KEY, cents, 0, 1)
    shdr += struct.pack("<20sIIIIIBbHH", _name("EOS"), 0, 0, 0, 0, 0, 0, 0, 0, 0)
    pdta = _list(b"pdta", _chunk(b"phdr", phdr), _chunk(b"pbag", pbag),
                 _chunk(b"pmod", b"\0" * 10), _chunk(b"pgen", pgen), _chunk(b"inst", inst),
                 _chunk(b"ibag", ibag), _chunk(b"imod", b"\0" * 10), _chunk(b"igen", igen),
                 _chunk(b"shdr", shdr))
    path.write_bytes(_chunk(b"RIFF", b"sfbk" + info + sdta + pdta))
    return path
