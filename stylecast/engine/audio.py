"""The audio front end: live PCM in, the motion models' inputs out, one set per 30 FPS frame.

Per video frame t (covering audio [t/30, (t+1)/30) s from the segment start):
- `mel` (16, 80): log-mel frames k-8 .. k+7, k the last mel frame centred at or before the
  frame's centre (SadTalker's 0.2 s window; engine/mel.py),
- `phoneme`: a CMU phoneme id from streaming phone recognition (engine/recognizer.py),
- `loudness`, `voicing`, `pitch` from a 50 ms window centred on the frame (engine/prosody.py).

Each input needs some audio past the end of frame t (its look-ahead, in frames, below);
frame t is emitted by the push that brings the 16 kHz stream to the end of frame
t + `lookahead`, never later. Whole utterances (`features_for_audio`) run the very same
code, so training and live sessions see the same features. See docs/audio.md.
"""

from __future__ import annotations

from collections import deque
from typing import NamedTuple

import numpy as np

from stylecast.engine.errors import InputError
from stylecast.engine.face import FPS
from stylecast.engine.mel import HOP, N_MELS, PREEMPHASIS, WIN, LogMel
from stylecast.engine.pcm import (
    SAMPLE_RATE,
    StreamResampler,
    frame_start,
    frames_covering,
    validate_pcm,
)
from stylecast.engine.phonemes import SIL_ID
from stylecast.engine.prosody import WINDOW as PROSODY_WINDOW
from stylecast.engine.prosody import prosody
from stylecast.engine.recognizer import DEFAULT_LOOKAHEAD, PhoneRecognizer, RecognizerConfig

MEL_FRAMES = 16  # mel frames per video frame = 0.2 s
MEL_BEFORE = 8  # of which before the frame's own mel frame k
SILENT_MEL = -4.0  # log-mel of digital silence (the scale's floor)


def mel_anchor(t: int | np.ndarray) -> int | np.ndarray:
    """k: the last mel frame centred at or before video frame t's centre, (2t+1)·8000/30."""
    return ((2 * t + 1) * SAMPLE_RATE) // (2 * FPS * HOP)


def prosody_centre(t: int | np.ndarray) -> int | np.ndarray:
    """The sample at video frame t's centre (rounded down)."""
    return ((2 * t + 1) * SAMPLE_RATE) // (2 * FPS)


def _lookahead(need) -> int:
    """Frames past t whose end covers `need(t)` samples, the worst case over t."""
    worst = 0
    for t in range(3 * FPS):  # the frame/hop pattern repeats every 3 frames (1600 samples)
        extra = 0
        while frame_start(t + 1 + extra) < need(t):
            extra += 1
        worst = max(worst, extra)
    return worst


MEL_LOOKAHEAD = _lookahead(lambda t: (mel_anchor(t) + MEL_FRAMES - MEL_BEFORE - 1) * HOP + WIN // 2)
# 3 frames = 100 ms
PROSODY_LOOKAHEAD = _lookahead(lambda t: prosody_centre(t) + PROSODY_WINDOW // 2)  # 1 = 33 ms
PHONEME_LOOKAHEAD = DEFAULT_LOOKAHEAD  # the recognizer's default; see recognizer.py
MAX_PHONEME_LOOKAHEAD = 30  # 1 s; past 10 frames the answer no longer changes (docs/audio.md)
NO_PHONEME = SIL_ID  # the phoneme id of every frame of a front end made with phonemes=False
_FIRST_SAMPLE = min(
    (mel_anchor(0) - MEL_BEFORE) * HOP - WIN // 2 - 1,  # first mel window, pre-emphasis tap
    prosody_centre(0) - PROSODY_WINDOW // 2,
)  # < 0: the stream is preceded by silence


class FrameFeatures(NamedTuple):
    """The model inputs of one video frame."""

    index: int  # video frame t of the segment; covers [t/30, (t+1)/30) s
    mel: np.ndarray  # (16, 80) float32 log-mel in [-4, 4]
    phoneme: int  # 0..40, stylecast.engine.phonemes.PHONEMES
    loudness: float  # dBFS, RMS over 50 ms, floor -100
    voicing: float  # 0..1 periodicity (0 in silence)
    pitch: float  # Hz, 0 when unvoiced


class FrameBatch(NamedTuple):
    """Consecutive frames first .. first + n - 1, as arrays."""

    first: int  # index of the first frame
    mel: np.ndarray  # (n, 16, 80) float32
    phonemes: np.ndarray  # (n,) int64
    prosody: np.ndarray  # (n, 3) float32: loudness dB, voicing, pitch Hz

    def frames(self) -> list[FrameFeatures]:
        return [
            FrameFeatures(
                self.first + i, self.mel[i], int(p), float(q[0]), float(q[1]), float(q[2])
            )
            for i, (p, q) in enumerate(zip(self.phonemes, self.prosody, strict=True))
        ]


class AudioFeatures(NamedTuple):
    """A whole utterance's features, T = ceil(duration · 30)."""

    mel: np.ndarray  # (T, 16, 80) float32
    phonemes: np.ndarray  # (T,) int64
    prosody: np.ndarray  # (T, 3) float32: loudness dB, voicing 0..1, pitch Hz


class _Samples:
    """A growable 1-D/2-D array indexed by absolute position, dropping what is no longer needed."""

    def __init__(self, first: int, row: tuple[int, ...] = (), capacity: int = 8192) -> None:
        self.data = np.zeros((capacity, *row), np.float32)
        self.lo = first  # absolute index of data[0]
        self.n = 0  # rows held

    @property
    def end(self) -> int:
        return self.lo + self.n

    def append(self, x: np.ndarray) -> None:
        if self.n + len(x) > len(self.data):
            grown = np.zeros(
                (max(2 * len(self.data), self.n + len(x)), *self.data.shape[1:]), np.float32
            )
            grown[: self.n] = self.data[: self.n]
            self.data = grown
        self.data[self.n : self.n + len(x)] = x
        self.n += len(x)

    def view(self, a: int, b: int) -> np.ndarray:
        assert self.lo <= a <= b <= self.end, (a, b, self.lo, self.end)
        return self.data[a - self.lo : b - self.lo]

    def drop_before(self, a: int) -> None:
        k = min(max(a - self.lo, 0), self.n)
        if k:
            self.data[: self.n - k] = self.data[k : self.n]
            self.n -= k
            self.lo += k


class AudioFrontEnd:
    """Streaming features for one session: push PCM, get every frame whose look-ahead is in.

    State is explicit and per instance; `flush()` ends a segment (the next push starts a new
    one at frame 0), `reset()` drops everything (barge-in). Not thread-safe.
    """

    def __init__(
        self,
        phoneme_lookahead: int = PHONEME_LOOKAHEAD,
        recognizer_config: RecognizerConfig | None = None,
        mel: bool = True,
        phonemes: bool = True,
        recognizer: PhoneRecognizer | None = None,
    ) -> None:
        """mel=False: for models that do not read the log-mel window; frames then carry
        the log-mel of silence (SILENT_MEL) and need no mel look-ahead, so they come out
        sooner (look-ahead max(prosody 1, phoneme) frames instead of at least 3).
        phonemes=False: for models that do not read phoneme ids (the SAAS and StyleTalk
        exports read the log-mel window); no phone recognizer is made or run (it is most
        of the front end's cost, and pocketsphinx holds Python's GIL while it decodes),
        every frame carries NO_PHONEME (SIL), the phoneme look-ahead does not apply, and
        the other inputs are the same. `recognizer`: one to use instead of a new
        in-process PhoneRecognizer (anything with its push/flush/reset and lookahead,
        e.g. engine/recognizer_pool.py's); its look-ahead is the phoneme look-ahead."""
        if isinstance(phoneme_lookahead, bool) or not isinstance(phoneme_lookahead, int):
            raise InputError(
                f"phoneme look-ahead must be an int of frames; got {phoneme_lookahead!r}"
            )
        if not 0 <= phoneme_lookahead <= MAX_PHONEME_LOOKAHEAD:
            raise InputError(
                f"phoneme look-ahead must be 0..{MAX_PHONEME_LOOKAHEAD} frames; "
                f"got {phoneme_lookahead}"
            )
        self.computes_mel = bool(mel)
        self.recognizes = bool(phonemes)
        self._feature_lookahead = max(MEL_LOOKAHEAD if mel else 0, PROSODY_LOOKAHEAD)
        self._log_mel = LogMel()
        self._resampler = StreamResampler()
        self._recognizer: PhoneRecognizer | None = None
        if self.recognizes:
            self._recognizer = recognizer or PhoneRecognizer(phoneme_lookahead, recognizer_config)
            phoneme_lookahead = self._recognizer.lookahead
        self.lookahead = max(
            self._feature_lookahead, phoneme_lookahead if self.recognizes else 0
        )  # frames
        self._phones: deque[int] = deque()  # decided ids of frames next_frame ..
        self._raw = _Samples(_FIRST_SAMPLE)  # 16 kHz samples, zeros before 0
        self._mel = _Samples(mel_anchor(0) - MEL_BEFORE, (N_MELS,), 256)  # computed mel frames
        self.next_frame = 0  # the next frame to emit
        self._new_segment()

    @property
    def lookahead_ms(self) -> float:
        return 1000.0 * self.lookahead / FPS

    def push(self, pcm: np.ndarray, sample_rate: int) -> list[FrameFeatures]:
        """PCM chunk ((n,), (n, 1) or (n, 2); int16 or float32; 8-48 kHz) -> new frames."""
        return self.push_batch(pcm, sample_rate).frames()

    def push_batch(self, pcm: np.ndarray, sample_rate: int) -> FrameBatch:
        """As `push`, as arrays."""
        x = validate_pcm(pcm, sample_rate)
        return self._push16k(self._resampler.push(x, sample_rate))

    def flush(self) -> list[FrameFeatures]:
        """End of segment: the remaining frames (look-ahead past the end read as silence)."""
        return self.flush_batch().frames()

    def flush_batch(self) -> FrameBatch:
        head = self._push16k(self._resampler.flush())
        n_frames = frames_covering(self._raw.end)
        if self._recognizer is not None:
            self._phones.extend(self._recognizer.flush(n_frames).tolist())
        pad = max(frame_start(n_frames + self._feature_lookahead) - self._raw.end, 0)
        self._raw.append(np.zeros(pad, np.float32))
        tail = self._emit(n_frames)
        self._new_segment()
        return _concat(head, tail)

    def reset(self) -> None:
        """Barge-in: forget all audio, pending frames and adaptation; next push is frame 0."""
        self._resampler.reset()
        if self._recognizer is not None:
            self._recognizer.reset()
        self._new_segment()

    def close(self) -> None:
        """Free what the front end holds outside Python's memory (a remote recognizer's
        slot); in-process front ends need nothing. Idempotent."""
        close = getattr(self._recognizer, "close", None)
        if close is not None:
            close()

    def _new_segment(self) -> None:
        self._phones.clear()
        self._raw.lo, self._raw.n = _FIRST_SAMPLE, 0
        self._raw.append(np.zeros(-_FIRST_SAMPLE, np.float32))
        self._mel.lo, self._mel.n = mel_anchor(0) - MEL_BEFORE, 0
        self.next_frame = 0

    def _push16k(self, y: np.ndarray) -> FrameBatch:
        self._raw.append(y)
        if self._recognizer is None:
            return self._emit(self._ready_frames())
        self._phones.extend(self._recognizer.push(y).tolist())
        return self._emit(min(self._ready_frames(), self.next_frame + len(self._phones)))

    def _ready_frames(self) -> int:
        """One past the last frame whose mel and prosody look-ahead is in."""
        t = self.next_frame
        while frame_start(t + 1 + self._feature_lookahead) <= self._raw.end:
            t += 1
        return t

    def _emit(self, stop: int) -> FrameBatch:
        """Frames next_frame .. stop - 1 (their audio is in)."""
        first = self.next_frame
        n = max(stop - first, 0)
        t = np.arange(first, first + n)
        if self.computes_mel:
            # mel frames up to the last one these frames need
            last_mel = (
                int(mel_anchor(first + n - 1)) + MEL_FRAMES - MEL_BEFORE if n else self._mel.end
            )
            self._compute_mel(last_mel)
            rows = mel_anchor(t)[:, None] - MEL_BEFORE + np.arange(MEL_FRAMES)  # (n, 16)
            mel = self._mel.data[rows - self._mel.lo]  # (n, 16, 80)
        else:
            mel = np.full((n, MEL_FRAMES, N_MELS), SILENT_MEL, np.float32)
        starts = prosody_centre(t) - PROSODY_WINDOW // 2 - self._raw.lo
        windows = self._raw.data[starts[:, None] + np.arange(PROSODY_WINDOW)]  # (n, 800)
        if self._recognizer is None:
            phones = np.full(n, NO_PHONEME, np.int64)
        else:
            phones = np.array([self._phones.popleft() for _ in range(n)], np.int64)
        self.next_frame = first + n
        # forget what the next frame no longer needs
        self._mel.drop_before(int(mel_anchor(self.next_frame)) - MEL_BEFORE)
        keep = int(prosody_centre(self.next_frame)) - PROSODY_WINDOW // 2
        if self.computes_mel:
            keep = min(keep, self._mel.end * HOP - WIN // 2 - 1)
        self._raw.drop_before(keep)
        return FrameBatch(first, mel, phones, prosody(windows))

    def _compute_mel(self, stop: int) -> None:
        """Mel frames up to stop - 1 (their windows are in the buffer)."""
        m0 = self._mel.end
        if stop <= m0:
            return
        a = m0 * HOP - WIN // 2  # first sample of frame m0's window
        b = (stop - 1) * HOP + WIN // 2  # one past the last sample of frame stop-1
        seg = self._raw.view(a - 1, b)
        emphasised = seg[1:] - np.float32(PREEMPHASIS) * seg[:-1]  # (b - a,)
        frames = np.lib.stride_tricks.sliding_window_view(emphasised, WIN)[::HOP]  # (k, 800)
        self._mel.append(self._log_mel(frames))


def _concat(a: FrameBatch, b: FrameBatch) -> FrameBatch:
    return FrameBatch(
        a.first,
        np.concatenate([a.mel, b.mel]),
        np.concatenate([a.phonemes, b.phonemes]),
        np.concatenate([a.prosody, b.prosody]),
    )


def features_for_audio(
    audio: np.ndarray,
    sample_rate: int = SAMPLE_RATE,
    phoneme_lookahead: int = PHONEME_LOOKAHEAD,
    front: AudioFrontEnd | None = None,
) -> AudioFeatures:
    """A whole utterance -> its features, exactly as a live stream of it would give them.

    audio: (S,) float32 in [-1, 1] (or int16, stereo; as `push`) -> mel (T, 16, 80),
    phonemes (T,), prosody (T, 3), with T = ceil(S · 30 / sample_rate). Pass `front` to
    reuse a front end across utterances (it is reset first; loading the recognizer costs
    ~0.1 s); its own phoneme look-ahead then applies.
    """
    if front is None:
        front = AudioFrontEnd(phoneme_lookahead)
    else:
        front.reset()
    batch = _concat(front.push_batch(audio, sample_rate), front.flush_batch())
    return AudioFeatures(batch.mel, batch.phonemes, batch.prosody)


_WHOLE_LOG_MEL: LogMel | None = None


def mel_windows(audio: np.ndarray) -> np.ndarray:
    """(S,) float32 16 kHz -> (T, 16, 80) float32: only the log-mel windows of
    `features_for_audio(audio)` (equal to float rounding), without the recognizer; for data
    loaders that keep audio and compute mel on the fly. T = ceil(S · 30 / 16000)."""
    global _WHOLE_LOG_MEL
    if _WHOLE_LOG_MEL is None:
        _WHOLE_LOG_MEL = LogMel()
    n = frames_covering(len(audio))
    m0 = mel_anchor(0) - MEL_BEFORE  # first mel frame any frame reads (< 0: before the start)
    m1 = mel_anchor(max(n - 1, 0)) + MEL_FRAMES - MEL_BEFORE  # one past the last
    a, b = m0 * HOP - WIN // 2, (m1 - 1) * HOP + WIN // 2  # samples those frames cover
    x = np.zeros(b - a + 1, np.float32)  # + the pre-emphasis tap; silence outside the audio
    lo, hi = max(a - 1, 0), min(b, len(audio))
    if hi > lo:
        x[lo - (a - 1) : hi - (a - 1)] = audio[lo:hi]
    emphasised = x[1:] - np.float32(PREEMPHASIS) * x[:-1]  # (b - a,)
    frames = np.lib.stride_tricks.sliding_window_view(emphasised, WIN)[::HOP]  # (m1 - m0, 800)
    mel = _WHOLE_LOG_MEL(frames)  # (m1 - m0, 80)
    rows = mel_anchor(np.arange(n))[:, None] - MEL_BEFORE + np.arange(MEL_FRAMES) - m0  # (T, 16)
    return mel[rows]
