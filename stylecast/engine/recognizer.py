"""Streaming phone recognition: one CMU phoneme id per 30 FPS video frame.

pocketsphinx 5 in allphone mode: its English acoustic model and the phone language model
`en-us-phone.lm.bin`, both shipped in its wheel. Audio is fed in video-frame blocks
(533 or 534 samples, aligned to the stream start), so the decoder sees the same calls
however the caller chunks the audio and the result never depends on chunk sizes. Frame t
is decided right after the block of frame t + lookahead has been decoded, from the best
partial path at that moment; the full-utterance decode (`recognize_whole`) may revise it
later, which the streaming answer cannot wait for. docs/audio.md gives the measured rates.

Utterances are restarted in pauses (and at most every MAX_UTTERANCE_S) so that the partial
backtrace stays short in endless sessions.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np
from pocketsphinx import Config, Decoder, get_model_path

from stylecast.engine.errors import BackendError
from stylecast.engine.face import FPS
from stylecast.engine.pcm import SAMPLE_RATE, frame_start, frames_covering
from stylecast.engine.phonemes import NSN_ID, PHONEME_ID, SIL_ID

PS_HOP = SAMPLE_RATE // 100  # 160 samples: pocketsphinx's 10 ms frame
PS_ALIGN = 205  # samples: ps frame f is centred on sample 160f + 205 (its 410-sample window)
DEFAULT_LOOKAHEAD = 3  # video frames past frame t before its phone is decided (100 ms)
MIN_UTTERANCE_S = 10.0  # restart the utterance in the first pause after this long ...
PAUSE_PS_FRAMES = 30  # ... a pause being a trailing SIL of at least 0.3 s ...
MAX_UTTERANCE_S = 40.0  # ... or here regardless


# pocketsphinx's cepstral mean (13 values) to start from: the mean it ends with on 24
# training-voice utterances (`python -m bench.bench_audio --calibrate`). From the model's own
# default ("40,3,-1,0,...") the live CMN needs seconds to adapt, which cost ~4 points of
# frame accuracy on sentence-long utterances. A live session adapts from here to its mic.
INITIAL_CMN = "48.28,4.11,-1.30,9.15,-5.26,0.38,-2.95,-5.20,-1.32,-3.56,1.44,-2.40,0.21"


@dataclass(frozen=True)
class RecognizerConfig:
    """pocketsphinx search settings (tuned on training voices by bench/bench_audio.py)."""

    lw: float = 1.0  # phone language-model weight
    beam: float = 1e-10  # Viterbi beam (1e-5: 4x faster, 3 points less accurate)
    pbeam: float = 1e-10  # phone-exit beam
    remove_noise: bool = True  # pocketsphinx's spectral noise subtraction
    initial_cmn: str = INITIAL_CMN  # cepstral mean the live CMN starts from

    def decoder(self) -> Decoder:
        """A fresh pocketsphinx decoder in allphone mode with these settings."""
        try:
            config = Config(
                hmm=get_model_path("en-us/en-us"),
                allphone=get_model_path("en-us/en-us-phone.lm.bin"),
                lw=self.lw,
                beam=self.beam,
                pbeam=self.pbeam,
                remove_noise=self.remove_noise,
                cmn="live",
                loglevel="FATAL",
            )
            decoder = Decoder(config)
            decoder.set_cmn(self.initial_cmn)
            return decoder
        except (RuntimeError, OSError, ValueError) as e:
            raise BackendError(
                f"pocketsphinx could not load its English model and phone LM ({e}); "
                "reinstall the pocketsphinx wheel (>= 5.0)"
            ) from e


def phone_to_id(phone: str) -> int:
    """pocketsphinx phone name -> our id: SIL for silence, NSN for its noise fillers."""
    if phone == "SIL":
        return SIL_ID
    if phone.startswith("+"):
        return NSN_ID
    return PHONEME_ID[phone]


Segments = list[tuple[int, int, int]]  # (first ps frame, last ps frame, phoneme id)


def _segments(decoder: Decoder) -> Segments:
    segs = decoder.seg()
    return [] if segs is None else [(s.start_frame, s.end_frame, phone_to_id(s.word)) for s in segs]


def _ps_frame(t: int, utt_start: int) -> int:
    """pocketsphinx frame (in an utterance that starts at sample utt_start) at frame t's centre."""
    # centre of frame t = (2t + 1) · 8000 / 30 samples
    return ((2 * t + 1) * SAMPLE_RATE // 2 - FPS * (utt_start + PS_ALIGN)) // (FPS * PS_HOP)


def _phone_at(segments: Segments, f: int) -> int:
    """Id of the segment holding ps frame f; past the end, the last one; SIL if none."""
    for start, _, pid in reversed(segments):
        if start <= f:
            return pid
    return SIL_ID


def _to_int16(x: np.ndarray) -> bytes:
    return (np.clip(x, -1.0, 1.0) * 32767.0).round().astype(np.int16).tobytes()


class PhoneRecognizer:
    """Streaming phone ids at 30 FPS with a fixed look-ahead, one per session.

    push(samples) -> ids of the frames it completes; flush(n_frames) ends the segment;
    reset() is barge-in. `next_frame` is the index of the next frame to be decided.
    """

    def __init__(
        self, lookahead: int = DEFAULT_LOOKAHEAD, config: RecognizerConfig | None = None
    ) -> None:
        assert lookahead >= 0
        self.lookahead = lookahead  # video frames
        self.config = config or RecognizerConfig()
        self._decoder = self.config.decoder()
        self._initial_cmn = self._decoder.get_cmn(False)  # restored by reset()
        self._pending = np.zeros(0, np.float32)  # samples of the block being filled
        self._blocks = 0  # video-frame blocks decoded in this segment
        self._in_utt = False
        self._utt_start = 0  # sample at which the current utterance began
        self._decided: dict[int, int] = {}  # frames decided early (at a restart)
        self.next_frame = 0

    def push(self, samples: np.ndarray) -> np.ndarray:
        """(n,) float32 16 kHz -> (k,) int64 ids of frames next_frame .. next_frame + k - 1."""
        self._pending = np.concatenate([self._pending, samples]) if self._pending.size else samples
        out: list[int] = []
        while True:
            need = frame_start(self._blocks + 1) - frame_start(self._blocks)
            if len(self._pending) < need:
                break
            block, self._pending = self._pending[:need], self._pending[need:]
            out.extend(self._decode_block(block))
        self._pending = self._pending.copy()  # do not keep the caller's array alive
        return np.asarray(out, np.int64)

    def flush(self, n_frames: int) -> np.ndarray:
        """End of segment: ids of frames next_frame .. n_frames - 1 from the final decode."""
        if self._pending.size:
            self._start_utt()
            self._decoder.process_raw(_to_int16(self._pending), False, False)
        final = self._end_utt()
        ids = [self._decided.pop(t, None) for t in range(self.next_frame, n_frames)]
        out = [
            pid if pid is not None else _phone_at(final, _ps_frame(t, self._utt_start))
            for t, pid in zip(range(self.next_frame, n_frames), ids, strict=True)
        ]
        self._new_segment()
        return np.asarray(out, np.int64)

    def reset(self) -> None:
        """Barge-in: drop all audio and state, back to a fresh recognizer."""
        if self._in_utt:
            self._decoder.end_utt()
            self._in_utt = False
        self._decoder.reinit_feat()  # fresh noise estimate and feature buffers
        self._decoder.set_cmn(self._initial_cmn)
        self._new_segment()

    def _new_segment(self) -> None:
        self._pending = np.zeros(0, np.float32)
        self._blocks = 0
        self._utt_start = 0
        self._decided.clear()
        self.next_frame = 0

    def _start_utt(self) -> None:
        if not self._in_utt:
            self._decoder.start_utt()
            self._in_utt = True

    def _end_utt(self) -> Segments:
        if not self._in_utt:
            return []
        self._decoder.end_utt()
        self._in_utt = False
        return _segments(self._decoder)

    def _decode_block(self, block: np.ndarray) -> Iterable[int]:
        self._start_utt()
        self._decoder.process_raw(_to_int16(block), False, False)
        self._blocks += 1
        segments = _segments(self._decoder)
        out = []
        t = self._blocks - 1 - self.lookahead  # the frame this block completes
        if t >= 0:
            assert t == self.next_frame
            pid = self._decided.pop(t, None)
            out.append(
                pid if pid is not None else _phone_at(segments, _ps_frame(t, self._utt_start))
            )
            self.next_frame = t + 1
        self._maybe_restart(segments)
        return out

    def _maybe_restart(self, segments: Segments) -> None:
        """End the utterance in a pause once it is long, deciding its undecided frames."""
        end = frame_start(self._blocks)
        age = (end - self._utt_start) / SAMPLE_RATE
        in_pause = (
            bool(segments)
            and segments[-1][2] == SIL_ID
            and (segments[-1][1] - segments[-1][0] + 1 >= PAUSE_PS_FRAMES)
        )
        if not ((age >= MIN_UTTERANCE_S and in_pause) or age >= MAX_UTTERANCE_S):
            return
        final = self._end_utt()
        for t in range(self.next_frame, self._blocks):
            self._decided[t] = _phone_at(final, _ps_frame(t, self._utt_start))
        self._utt_start = end


def recognize_whole(audio: np.ndarray, config: RecognizerConfig | None = None) -> np.ndarray:
    """(S,) float32 16 kHz -> (T,) int64 ids from the final backtrace of each utterance, as
    if the look-ahead were unlimited; T = ceil(S · 30 / 16000). The reference the streaming
    answer is measured against (docs/audio.md); live sessions and the corpus use
    `PhoneRecognizer`, whose answer for frame t cannot wait for the rest of the utterance."""
    recognizer = PhoneRecognizer(lookahead=frames_covering(len(audio)) + 1, config=config)
    early = recognizer.push(audio)
    assert early.size == 0
    return recognizer.flush(frames_covering(len(audio)))
