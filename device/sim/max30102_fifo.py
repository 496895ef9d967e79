"""The simulated MAX30102's LED sequencer and sample FIFO (data sheet 19-7740 Rev 1, pp.13-21).

What a sample holds depends on MODE (Table 4, p.18): heart-rate mode 0b010 converts Red only
(3 bytes a sample), SpO2 mode 0b011 Red then IR (6 bytes), multi-LED mode 0b111 one 3-byte
triplet per time slot that MULTI_LED_CTRL1/2 (0x11, 0x12) enable, in slot order (p.21: "Each
slot generates a 3-byte output into the FIFO. One sample comprises all active slots"). Slot
code 000 disables a slot and it makes no bytes; 001 is LED1 (Red), 010 LED2 (IR); 011 and 100
are "None" (LED off), which still convert, so they give the dark (ambient-cancelled) level;
101-111 are reserved and treated as off-LED slots too. The data sheet asks for slots to be
enabled in order and does not say what a gap does; a gap is skipped (the sample is still all
the non-zero slots) and counted in :attr:`SampleFifo.slot_gaps` as the driver bug it is.

The FIFO holds 32 samples whatever their size; its pointers and OVF_COUNTER count samples.
FIFO_RD_PTR advances as the first byte of a sample is read (p.15: "The FIFO read pointer is
automatically incremented after the first byte of each sample is read"); the rest of that
sample comes from the output latch, also in a later transfer. The data sheet does not say what
FIFO_DATA gives once the unread samples are gone; the model: a FIFO never underflows, so the
read pointer stays, OVF_COUNTER is not cleared, and the bytes are those of the memory slot the
read pointer points at (the sample 32 back, or zeros since power-up), as a register file that
simply reads the addressed slot would give them.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence

from device.drivers.max30102 import (
    FIFO_DEPTH,
    MODE,
    MODE_HR,
    MODE_MULTI_LED,
    MODE_SPO2,
    Field,
    Reg,
)

#: MULTI_LED_CTRL1/2 slot fields (Table 9, p.21), in slot order.
SLOT1 = Field(Reg.MULTI_LED_CTRL1, 0, 3)
SLOT2 = Field(Reg.MULTI_LED_CTRL1, 4, 3)
SLOT3 = Field(Reg.MULTI_LED_CTRL2, 0, 3)
SLOT4 = Field(Reg.MULTI_LED_CTRL2, 4, 3)
SLOTS = (SLOT1, SLOT2, SLOT3, SLOT4)
#: Slot codes: disabled, LED1 (Red), LED2 (IR); 011/100 are "None", 101-111 reserved.
SLOT_OFF, SLOT_RED, SLOT_IR = 0b000, 0b001, 0b010

#: Table 12 (HR mode, Red only): the pulse widths allowed at each sample rate.
HR_ALLOWED_PW_US: dict[int, tuple[int, ...]] = {
    50: (69, 118, 215, 411),
    100: (69, 118, 215, 411),
    200: (69, 118, 215, 411),
    400: (69, 118, 215, 411),
    800: (69, 118, 215, 411),
    1000: (69, 118, 215, 411),
    1600: (69, 118, 215),
    3200: (69,),
}
#: Channels a triplet can carry: the Red LED, the IR LED, or no LED (dark level).
RED, IR, DARK = 0, 1, 2
#: Bytes each channel adds to a sample.
BYTES_PER_CHANNEL = 3


def active_channels(mode_config: int, ctrl1: int, ctrl2: int) -> tuple[int, ...]:
    """The channels one sample holds, in FIFO order, for MODE_CONFIG and the slot registers.

    Empty when the mode converts nothing (the "do not use" codes, or multi-LED mode with
    every slot disabled).
    """
    mode = MODE.get(mode_config)
    if mode == MODE_HR:
        return (RED,)
    if mode == MODE_SPO2:
        return (RED, IR)
    if mode != MODE_MULTI_LED:
        return ()
    codes = [field.get(ctrl1 if field.reg == Reg.MULTI_LED_CTRL1 else ctrl2) for field in SLOTS]
    return tuple(
        RED if c == SLOT_RED else IR if c == SLOT_IR else DARK for c in codes if c != SLOT_OFF
    )


def has_slot_gap(ctrl1: int, ctrl2: int) -> bool:
    """A disabled slot before an enabled one (p.21: slots "should be enabled in order")."""
    codes = [field.get(ctrl1 if field.reg == Reg.MULTI_LED_CTRL1 else ctrl2) for field in SLOTS]
    return any(a == SLOT_OFF and b != SLOT_OFF for a, b in itertools.pairwise(codes))


def sample_bytes(counts: Sequence[int]) -> bytes:
    """One FIFO sample: each channel's 18-bit count as 3 bytes, MSB first (p.15)."""
    out = bytearray()
    for value in counts:
        out += int(value).to_bytes(BYTES_PER_CHANNEL, "big")
    return bytes(out)


class SampleFifo:
    """The 32-sample FIFO, its pointers kept in the chip's register file.

    :param regs: the chip's 256 registers; FIFO_WR_PTR, OVF_COUNTER and FIFO_RD_PTR live
        there, so a register read sees them as they are.
    """

    def __init__(self, regs: bytearray) -> None:
        self._regs = regs
        #: Bytes of each of the 32 memory slots (empty until a sample is written there).
        self._memory: list[bytes] = [b""] * FIFO_DEPTH
        #: Samples written and not yet started being read.
        self.unread = 0
        #: Times a slot write made a disabled slot precede an enabled one (p.21 forbids it).
        self.slot_gaps = 0
        self._latch = b""  # the sample being read out
        self._pos = 0  # next byte of the latch to send
        self._stale = False  # the latch holds a slot read past the data, not a sample

    def clear_memory(self) -> None:
        """Power-up: memory zero, nothing unread, nothing latched."""
        self._memory = [b""] * FIFO_DEPTH
        self.unread = 0
        self._drop_latch()

    def _drop_latch(self) -> None:
        self._latch, self._pos, self._stale = b"", 0, False

    def pointers_written(self) -> None:
        """WR_PTR, RD_PTR or OVF_COUNTER was written: recount, forget the latched sample."""
        self.unread = (self._regs[Reg.FIFO_WR_PTR] - self._regs[Reg.FIFO_RD_PTR]) % FIFO_DEPTH
        self._drop_latch()

    def overwrite_all(self, skipped: int) -> None:
        """Rollover past a whole FIFO: ``skipped`` samples were written over, none is left."""
        wr = (self._regs[Reg.FIFO_WR_PTR] + skipped) % FIFO_DEPTH
        self._regs[Reg.FIFO_WR_PTR] = self._regs[Reg.FIFO_RD_PTR] = wr
        self.unread = 0

    def push(self, samples: Sequence[bytes]) -> None:
        """Write samples at WR_PTR; on a full FIFO (rollover on) the oldest goes."""
        wr = self._regs[Reg.FIFO_WR_PTR]
        for sample in samples:
            if self.unread == FIFO_DEPTH:  # rollover: the oldest sample is overwritten
                self._regs[Reg.FIFO_RD_PTR] = (self._regs[Reg.FIFO_RD_PTR] + 1) % FIFO_DEPTH
                self.unread -= 1
            self._memory[wr] = sample
            wr = (wr + 1) % FIFO_DEPTH
            self.unread += 1
        self._regs[Reg.FIFO_WR_PTR] = wr
        if self._stale:
            self._drop_latch()  # a real sample is there now: the next read starts it

    def _pop(self) -> bytes:
        """Start reading the next sample: RD_PTR moves on and OVF_COUNTER clears (p.13)."""
        rd = self._regs[Reg.FIFO_RD_PTR]
        self._regs[Reg.FIFO_RD_PTR] = (rd + 1) % FIFO_DEPTH
        self._regs[Reg.OVF_COUNTER] = 0
        self.unread -= 1
        return self._memory[rd]

    def read(self, length: int, sample_size: int) -> list[int]:
        """``length`` bytes read from FIFO_DATA in one transfer.

        :param sample_size: bytes in a sample in the present mode (what a read past the data
            cycles through).
        """
        out = bytearray()
        while length > 0:
            if self._pos < len(self._latch):
                take = min(length, len(self._latch) - self._pos)
                out += self._latch[self._pos : self._pos + take]
                self._pos += take
                length -= take
                continue
            if self.unread:
                sample = self._pop() or bytes(max(1, sample_size))  # a slot never written
                self._latch, self._pos, self._stale = sample, 0, False
            else:
                slot = self._memory[self._regs[Reg.FIFO_RD_PTR]]
                size = max(1, sample_size)
                self._latch = (slot + bytes(size))[:size]
                self._pos, self._stale = 0, True
        return list(out)
