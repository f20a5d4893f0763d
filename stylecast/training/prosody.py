"""Per-frame prosody of corpus audio for the performer, at 30 FPS, numpy only.

Loudness here is the performer's own: the RMS level of a 40 ms window at each frame centre
(what every shipped corpus was made with). Pitch is the engine's estimator
(`engine/prosody.py`, YIN on the 50 ms window the live front end reads at each frame
centre), so the corpus, the evaluation and a live session hear the same pitch; this module
only places the engine's windows on a whole clip.
"""

from __future__ import annotations

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from stylecast.engine.audio import prosody_centre
from stylecast.engine.face import FPS
from stylecast.engine.pcm import SAMPLE_RATE as ENGINE_RATE
from stylecast.engine.prosody import WINDOW as ENGINE_WINDOW
from stylecast.engine.prosody import prosody

WINDOW_S = 0.04  # loudness window around each frame centre: 40 ms
SILENCE_DB = -60.0  # dBFS floor of the performer's loudness


def _frames(audio: np.ndarray, sample_rate: int, n_frames: int) -> np.ndarray:
    """(T, W) windows of `audio` centred on each frame centre, zero-padded at the ends."""
    win = round(WINDOW_S * sample_rate)
    x = np.asarray(audio, np.float64)
    if x.ndim != 1:
        raise ValueError(f"audio must be mono (S,), got shape {x.shape}")
    centres = ((np.arange(n_frames) + 0.5) * sample_rate / FPS).astype(np.int64)
    padded = np.pad(x, (win, win + int(sample_rate / FPS) + 1))
    starts = centres - win // 2 + win  # index into padded
    view = sliding_window_view(padded, win)
    return view[np.clip(starts, 0, len(view) - 1)]


def loudness_db(audio: np.ndarray, sample_rate: int, n_frames: int) -> np.ndarray:
    """(n_frames,) float32: RMS level of a 40 ms window at each frame centre, in dBFS
    (floored at -60)."""
    frames = _frames(audio, sample_rate, n_frames)
    rms = np.sqrt(np.mean(frames**2, axis=1) + 1e-12)
    return np.maximum(20.0 * np.log10(rms), SILENCE_DB).astype(np.float32)


def frame_prosody(audio: np.ndarray, n_frames: int) -> np.ndarray:
    """(S,) float32 16 kHz audio -> (n_frames, 3) float32: the engine's loudness dB, voicing
    and pitch Hz on the 800-sample window centred on each frame (zeros past the ends), the
    values a live session computes for the same audio."""
    x = np.asarray(audio, np.float32)
    if x.ndim != 1:
        raise ValueError(f"audio must be mono (S,), got shape {x.shape}")
    starts = prosody_centre(np.arange(n_frames)) - ENGINE_WINDOW // 2  # may be < 0
    pad = ENGINE_WINDOW
    x = np.concatenate([np.zeros(pad, np.float32), x, np.zeros(2 * pad, np.float32)])
    need = int(starts.max(initial=0)) + 2 * pad
    if need > len(x):  # n_frames reaches past the audio: more zeros
        x = np.concatenate([x, np.zeros(need - len(x), np.float32)])
    return prosody(x[starts[:, None] + pad + np.arange(ENGINE_WINDOW)])


def pitch_hz(audio: np.ndarray, sample_rate: int, n_frames: int) -> np.ndarray:
    """(n_frames,) float32: fundamental frequency in Hz at each frame, 0 where unvoiced or
    silent: the engine's estimate (audio at another rate is resampled to 16 kHz first)."""
    x = np.asarray(audio, np.float32)
    if x.ndim != 1:
        raise ValueError(f"audio must be mono (S,), got shape {x.shape}")
    if sample_rate != ENGINE_RATE:
        import soxr

        x = soxr.resample(x, sample_rate, ENGINE_RATE, "HQ").astype(np.float32)
    return frame_prosody(x, n_frames)[:, 2].copy()
