"""Per-frame prosody of corpus audio for the performer: loudness (RMS in dBFS) and a cheap
pitch estimate (normalised autocorrelation), both at 30 FPS, numpy only."""

from __future__ import annotations

from functools import lru_cache

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from stylecast.engine.face import FPS

WINDOW_S = 0.04  # analysis window around each frame centre: 40 ms (two 70 Hz periods)
F0_MIN, F0_MAX = 70.0, 400.0  # Hz: the pitch range searched
VOICING_THRESHOLD = 0.5  # normalised autocorrelation peak above which a frame is voiced
SILENCE_DB = -60.0  # dBFS floor


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


@lru_cache(maxsize=8)
def _taper_acf(width: int, n_fft: int) -> np.ndarray:
    """Normalised autocorrelation of the Hann window: what the taper alone does to a lag."""
    w = np.hanning(width)
    acf = np.fft.irfft(np.abs(np.fft.rfft(w, n_fft)) ** 2, n_fft)
    return acf / acf[0]


def pitch_hz(audio: np.ndarray, sample_rate: int, n_frames: int) -> np.ndarray:
    """(n_frames,) float32: fundamental frequency in Hz at each frame, 0 where unvoiced.
    Normalised autocorrelation of a 40 ms Hann window; good enough to drive gestures."""
    frames = _frames(audio, sample_rate, n_frames)
    frames = frames - frames.mean(axis=1, keepdims=True)
    frames = frames * np.hanning(frames.shape[1])
    lo, hi = int(sample_rate / F0_MAX), int(sample_rate / F0_MIN)
    n_fft = 1 << int(np.ceil(np.log2(frames.shape[1] + hi)))  # no wrap-around up to lag hi
    spec = np.fft.rfft(frames, n_fft, axis=1)
    acf = np.fft.irfft(np.abs(spec) ** 2, n_fft, axis=1)  # (T, n_fft)
    energy = acf[:, :1] + 1e-12
    norm = acf[:, lo:hi] / energy / _taper_acf(frames.shape[1], n_fft)[lo:hi]  # unbias the taper
    # the shortest lag whose peak is near the best one: avoids locking onto 2 periods
    top = norm.max(axis=1, keepdims=True)
    local_max = np.zeros_like(norm, bool)
    local_max[:, 1:-1] = (norm[:, 1:-1] >= norm[:, :-2]) & (norm[:, 1:-1] >= norm[:, 2:])
    best = np.argmax(local_max & (norm >= 0.85 * top), axis=1)
    peak = norm[np.arange(len(norm)), best]
    f0 = sample_rate / (lo + best)
    rms_db = 10.0 * np.log10(energy[:, 0] / frames.shape[1] + 1e-12)
    voiced = (peak > VOICING_THRESHOLD) & (rms_db > SILENCE_DB + 15.0)
    return np.where(voiced, f0, 0.0).astype(np.float32)
