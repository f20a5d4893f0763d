"""The session clock: one timeline for video and audio.

Frame t of a session has pts t/30 s and carries output audio samples
[1600 t, 1600 (t + 1)) at 48 kHz: video and audio pts agree to the sample by construction.
"""

from __future__ import annotations

from fractions import Fraction

import numpy as np
import soxr

from stylecast.engine.face import FPS
from stylecast.engine.pcm import RESAMPLER_QUALITY, SAMPLE_RATE

OUTPUT_RATE = 48_000  # Hz of the audio a session emits
SAMPLES_PER_FRAME = OUTPUT_RATE // FPS  # 1600 samples = 33.3 ms at 48 kHz
assert SAMPLES_PER_FRAME * FPS == OUTPUT_RATE
FRAME_S = 1.0 / FPS  # 33.3 ms


def frame_pts(t: int) -> Fraction:
    """Exact pts of frame t in seconds: t/30."""
    return Fraction(t, FPS)


def sample_pts(sample: int) -> Fraction:
    """Exact pts of output sample n (48 kHz) in seconds."""
    return Fraction(sample, OUTPUT_RATE)


_HOLDBACK: dict[tuple[int, int], float] = {}


def resampler_holdback_s(rate: int, target: int = SAMPLE_RATE) -> float:
    """Seconds of output a streaming soxr resampler from `rate` to `target` holds back
    (what it owes after a long input, before flush); 0 when the rates are equal. Measured
    once per pair and cached."""
    if rate == target:
        return 0.0
    key = (rate, target)
    if key not in _HOLDBACK:
        stream = soxr.ResampleStream(rate, target, 1, dtype="float32", quality=RESAMPLER_QUALITY)
        got = sum(
            len(stream.resample_chunk(np.zeros(rate // 10, np.float32), last=False))
            for _ in range(10)
        )
        _HOLDBACK[key] = max(target - got, 0) / target
    return _HOLDBACK[key]


class PcmTo48k:
    """Mono float32 at any rate -> int16 at 48 kHz, streaming (soxr, as the front end)."""

    def __init__(self) -> None:
        self.rate: int | None = None
        self._stream: soxr.ResampleStream | None = None

    def push(self, x: np.ndarray, rate: int) -> np.ndarray:
        if self.rate is None:
            self.rate = rate
            if rate != OUTPUT_RATE:
                self._stream = soxr.ResampleStream(
                    rate, OUTPUT_RATE, 1, dtype="float32", quality=RESAMPLER_QUALITY
                )
        assert rate == self.rate, (rate, self.rate)
        y = x if self._stream is None else self._stream.resample_chunk(x, last=False)
        return to_int16(y)

    def flush(self) -> np.ndarray:
        tail = np.zeros(0, np.float32)
        if self._stream is not None:
            tail = self._stream.resample_chunk(np.zeros(0, np.float32), last=True)
        self.reset()
        return to_int16(tail)

    def reset(self) -> None:
        self.rate = None
        self._stream = None


def to_int16(x: np.ndarray) -> np.ndarray:
    """float32 in [-1, 1] -> int16 (rounded, clipped); int16 input round-trips exactly."""
    return np.clip(np.rint(x * 32768.0), -32768, 32767).astype(np.int16)
