"""Telephone audio for the recogniser: Twilio's 8 kHz mu-law frames to 16-bit PCM at the model's
rate.

Python's ``audioop`` is gone in 3.13, so mu-law is decoded through a 256-entry table (ITU-T
G.711, bit-exact with ``audioop.ulaw2lin``). The rate change is soxr's streaming resampler: it
carries its filter state from one 20 ms frame to the next, so frame edges add no clicks that a
recogniser would hear as sounds.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
import soxr

TELEPHONE_RATE = 8000
FRAME_BYTES = 160  # one Twilio media frame: 20 ms of 8 kHz mu-law


def _mulaw_table() -> npt.NDArray[np.int16]:
    """G.711 mu-law: each byte is stored inverted; sign, 3-bit exponent, 4-bit mantissa."""
    byte = ~np.arange(256, dtype=np.uint8)
    exponent = (byte >> 4) & 0x07
    mantissa = (byte & 0x0F).astype(np.int32)
    magnitude = (((mantissa << 3) + 0x84) << exponent) - 0x84
    return np.where(byte & 0x80, -magnitude, magnitude).astype(np.int16)


MULAW_TO_PCM16: npt.NDArray[np.int16] = _mulaw_table()


def decode_mulaw(payload: bytes) -> npt.NDArray[np.int16]:
    """mu-law bytes to 16-bit linear samples, one for one."""
    return MULAW_TO_PCM16[np.frombuffer(payload, dtype=np.uint8)]


class Resampler:
    """8 kHz to ``rate`` in a stream: feed frames as they come, then ``flush`` at the end."""

    def __init__(self, rate: int) -> None:
        self.rate = rate
        self._stream = (
            None
            if rate == TELEPHONE_RATE
            else soxr.ResampleStream(TELEPHONE_RATE, rate, 1, dtype="int16", quality="HQ")
        )

    def feed(self, samples: npt.NDArray[np.int16]) -> npt.NDArray[np.int16]:
        if self._stream is None:
            return samples
        out: npt.NDArray[np.int16] = self._stream.resample_chunk(samples)
        return out

    def flush(self) -> npt.NDArray[np.int16]:
        """What the filter still holds (the last few milliseconds)."""
        if self._stream is None:
            return np.zeros(0, dtype=np.int16)
        out: npt.NDArray[np.int16] = self._stream.resample_chunk(
            np.zeros(0, dtype=np.int16), last=True
        )
        return out
