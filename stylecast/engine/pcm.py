"""PCM input: validation at the boundary and streaming resampling to the engine's 16 kHz.

Accepts what clients send: any rate from 8 to 48 kHz, mono or stereo (frames first,
`(n,)`, `(n, 1)` or `(n, 2)`), int16 or float32 in [-1, 1], in chunks of any size. The
resampler is soxr's streaming one, so a signal cut into chunks of any sizes comes out
sample-for-sample the same as the whole signal resampled at once: no clicks at borders.
"""

from __future__ import annotations

import numpy as np
import soxr

from stylecast.engine.errors import InputError
from stylecast.engine.face import FPS

SAMPLE_RATE = 16_000  # the engine's audio rate
MIN_RATE, MAX_RATE = 8_000, 48_000  # accepted input rates, Hz
MAX_CHANNELS = 2
FLOAT_PEAK_LIMIT = 2.0  # float PCM above this is int-scaled by mistake, not overdriven
RESAMPLER_QUALITY = "HQ"  # soxr's default, as `soxr.resample` (the corpus) uses


def frame_start(t: int) -> int:
    """First 16 kHz sample of video frame t, which covers [t/30, (t+1)/30) s: ceil(t·16000/30)."""
    return -(-t * SAMPLE_RATE // FPS)


def frames_covering(n: int) -> int:
    """Video frames that start within the first n samples at 16 kHz: ceil(n · 30 / 16000)."""
    return -(-n * FPS // SAMPLE_RATE)


def validate_pcm(pcm: object, sample_rate: object) -> np.ndarray:
    """Check a chunk of PCM and return it as mono float32 in [-1, 1], shape (n,).

    Raises InputError naming what was received and what is accepted.
    """
    if isinstance(sample_rate, bool) or not isinstance(sample_rate, int | np.integer):
        raise InputError(
            f"sample rate must be an integer number of Hz from {MIN_RATE} to {MAX_RATE}; "
            f"got {sample_rate!r}"
        )
    if not MIN_RATE <= int(sample_rate) <= MAX_RATE:
        raise InputError(
            f"sample rate {int(sample_rate)} Hz is not supported; accepted: {MIN_RATE} to "
            f"{MAX_RATE} Hz"
        )
    if not isinstance(pcm, np.ndarray):
        raise InputError(
            f"PCM must be a numpy array of int16 or float32 samples; got {type(pcm).__name__}"
        )
    if pcm.dtype not in (np.int16, np.float32):
        raise InputError(f"PCM dtype must be int16 or float32; got {pcm.dtype}")
    if pcm.ndim == 2 and 1 <= pcm.shape[1] <= MAX_CHANNELS:
        # (n, channels), frames first: downmix
        x = pcm[:, 0] if pcm.shape[1] == 1 else pcm.mean(axis=1, dtype=np.float32)
    elif pcm.ndim == 1:
        x = pcm
    else:
        raise InputError(
            f"PCM shape must be (n,) mono or (n, 1) / (n, 2) frames-first; got {pcm.shape}"
        )
    if pcm.dtype == np.int16:
        return x.astype(np.float32) * np.float32(1 / 32768)
    x = np.ascontiguousarray(x, dtype=np.float32)
    if x.size:
        peak = float(np.max(np.abs(x)))
        if not np.isfinite(peak):
            raise InputError("float32 PCM contains NaN or infinite samples")
        if peak > FLOAT_PEAK_LIMIT:
            raise InputError(
                f"float32 PCM must be in [-1, 1]; got a peak of {peak:.4g} (int16-scaled "
                "samples? send int16 or divide by 32768)"
            )
    return x


class StreamResampler:
    """Mono float32 at one input rate -> 16 kHz, chunk by chunk.

    The output lags the input by soxr's filter hold-back (about 20 ms at 48 kHz, 60 ms at
    8 kHz, see docs/audio.md); `flush()` drains it at the end of a segment. 16 kHz input
    passes through untouched.
    """

    def __init__(self) -> None:
        self.rate: int | None = None  # input rate of the current segment; None before a push
        self._stream: soxr.ResampleStream | None = None  # None at 16 kHz (pass-through)

    def push(self, x: np.ndarray, sample_rate: int) -> np.ndarray:
        """(n,) float32 at `sample_rate` -> (m,) float32 at 16 kHz, m ≈ n·16000/rate."""
        if self.rate is None:
            self.rate = int(sample_rate)
            if self.rate != SAMPLE_RATE:
                self._stream = soxr.ResampleStream(
                    self.rate, SAMPLE_RATE, 1, dtype="float32", quality=RESAMPLER_QUALITY
                )
        elif sample_rate != self.rate:
            raise InputError(
                f"sample rate changed from {self.rate} to {sample_rate} Hz within a segment; "
                "end the segment (flush) or reset before switching rates"
            )
        if self._stream is None:
            return x
        return self._stream.resample_chunk(x, last=False)

    def flush(self) -> np.ndarray:
        """End of segment: the held-back tail, then ready for a new segment at any rate."""
        tail = np.zeros(0, np.float32)
        if self._stream is not None:
            tail = self._stream.resample_chunk(np.zeros(0, np.float32), last=True)
        self.reset()
        return tail

    def reset(self) -> None:
        """Drop everything held back (barge-in)."""
        self.rate = None
        self._stream = None
