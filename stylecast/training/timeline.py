"""What the speech side hands the performer and the corpus: timed phones and the audio.

Produced by `training/tts.py` (espeak-ng phoneme events) and read by
`training/performer.py` and `training/corpus.py`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from stylecast.engine.face import FPS
from stylecast.engine.phonemes import PHONEME_ID, SIL_ID

SAMPLE_RATE = 16_000  # corpus audio rate; one video frame = 533.3 samples


@dataclass(frozen=True)
class Phone:
    """One phone of an utterance, timed against its audio."""

    phone: str  # a CMU phone without stress digit ("AH", "P"), or "SIL" for a pause
    start: float  # seconds from the start of the audio
    end: float  # seconds; end > start
    stress: int = 0  # vowels: 0 unstressed, 1 primary, 2 secondary; consonants and SIL: 0
    word_start: bool = False  # True for the first phone of a word


@dataclass(frozen=True)
class Utterance:
    """Speech audio with its true phone timings."""

    audio: np.ndarray  # (S,) float32 in [-1, 1] at sample_rate
    sample_rate: int  # SAMPLE_RATE
    phones: tuple[Phone, ...]  # in time order, covering the audio; gaps are silence
    text: str  # the sentence spoken
    voice: str  # the synthetic speaker's name (espeak-ng voice + variant + settings)

    @property
    def duration(self) -> float:
        return len(self.audio) / self.sample_rate

    @property
    def n_frames(self) -> int:
        """Video frames at 30 FPS covering the audio."""
        return int(np.ceil(self.duration * FPS))


def phone_ids_per_frame(phones: tuple[Phone, ...] | list[Phone], n_frames: int) -> np.ndarray:
    """(n_frames,) int64: the id of the phone sounding at each frame's centre; SIL in gaps."""
    ids = np.full(n_frames, SIL_ID, np.int64)
    centres = (np.arange(n_frames) + 0.5) / FPS
    for p in phones:
        ids[(centres >= p.start) & (centres < p.end)] = PHONEME_ID[p.phone]
    return ids
