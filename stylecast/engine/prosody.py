"""Prosody per video frame: loudness, voicing and pitch from a 50 ms window of 16 kHz audio.

Loudness is the RMS level in dBFS. Pitch is YIN (de Cheveigné & Kawahara, 2002): the
cumulative-mean-normalised difference function d'(τ) over lags for 60–500 Hz, the first dip
under a threshold (or near the deepest dip), refined by a parabola. Voicing is 1 - min d'(τ),
a periodicity score in [0, 1]; pitch is 0 Hz where the frame is unvoiced or silent. All
batched over frames.
"""

from __future__ import annotations

import numpy as np

from stylecast.engine.pcm import SAMPLE_RATE

WINDOW = 800  # samples per prosody window = 50 ms, centred on the video frame's centre
F0_MIN, F0_MAX = 60.0, 500.0  # Hz searched (low male to high female voices)
LAG_MIN = int(SAMPLE_RATE // F0_MAX)  # 32 samples
LAG_MAX = int(np.ceil(SAMPLE_RATE / F0_MIN))  # 267 samples
INTEGRATION = WINDOW - LAG_MAX  # 533 samples summed per lag
N_CORR = 1024  # FFT size: ≥ WINDOW and wrap-free for lags up to LAG_MAX
YIN_THRESHOLD = 0.15  # first dip of d' under this is the period ...
OCTAVE_MARGIN = 0.05  # ... or under the deepest dip + this, when that is higher
VOICED_MAX_DPRIME = 0.3  # a frame is voiced when d' at its period is under this ...
VOICED_MIN_DB = -55.0  # ... and it is louder than this
SILENCE_DB = -100.0  # loudness floor
N_PROSODY = 3  # (loudness dB, voicing 0..1, pitch Hz)


def loudness_db(windows: np.ndarray) -> np.ndarray:
    """(N, W) float32 -> (N,) float32 RMS level in dBFS, floored at -100 dB."""
    power = np.mean(np.square(windows, dtype=np.float64), axis=1)
    return np.maximum(10.0 * np.log10(power + 1e-12), SILENCE_DB).astype(np.float32)


def cmndf(windows: np.ndarray) -> np.ndarray:
    """(N, WINDOW) -> (N, LAG_MAX + 1) float64: YIN's cumulative-mean-normalised difference."""
    x = windows.astype(np.float64)
    head = x[:, :INTEGRATION]
    # r(τ) = Σ_j head[j]·x[j+τ] by FFT; e(τ) = Σ_j x[j+τ]²
    spec = np.conj(np.fft.rfft(head, N_CORR, axis=1)) * np.fft.rfft(x, N_CORR, axis=1)
    r = np.fft.irfft(spec, N_CORR, axis=1)[:, : LAG_MAX + 1]  # (N, L+1)
    sq = np.concatenate([np.zeros((len(x), 1)), np.cumsum(x * x, axis=1)], axis=1)
    lags = np.arange(LAG_MAX + 1)
    e_lag = sq[:, lags + INTEGRATION] - sq[:, lags]  # (N, L+1)
    d = np.maximum(e_lag[:, :1] + e_lag - 2.0 * r, 0.0)  # (N, L+1) difference function
    d_prime = np.ones_like(d)
    running = np.cumsum(d[:, 1:], axis=1)  # Σ_{k=1..τ} d(k)
    d_prime[:, 1:] = d[:, 1:] * lags[1:] / np.maximum(running, 1e-12)
    return d_prime


def prosody(windows: np.ndarray) -> np.ndarray:
    """(N, WINDOW) float32 audio -> (N, 3) float32: loudness dB, voicing 0..1, pitch Hz."""
    assert windows.ndim == 2 and windows.shape[1] == WINDOW, windows.shape
    n = len(windows)
    out = np.zeros((n, N_PROSODY), np.float32)
    if n == 0:
        return out
    out[:, 0] = loudness_db(windows)
    dp = cmndf(windows)[:, LAG_MIN:]  # (N, K) lags LAG_MIN..LAG_MAX
    rows = np.arange(n)
    # the first lag under the threshold, or close to the best dip: a period whose dip is
    # just over the threshold must not lose to its double (an octave-down error)
    threshold = np.maximum(YIN_THRESHOLD, dp.min(axis=1, keepdims=True) + OCTAVE_MARGIN)
    lag = np.argmax(dp < threshold, axis=1)  # always found: the minimum is under it
    for _ in range(dp.shape[1]):  # walk down to the bottom of the dip
        step = (lag + 1 < dp.shape[1]) & (
            dp[rows, np.minimum(lag + 1, dp.shape[1] - 1)] < dp[rows, lag]
        )
        if not step.any():
            break
        lag = lag + step
    best = dp[rows, lag]
    out[:, 1] = np.clip(1.0 - dp.min(axis=1), 0.0, 1.0)
    # parabolic interpolation around the dip
    left = dp[rows, np.maximum(lag - 1, 0)]
    right = dp[rows, np.minimum(lag + 1, dp.shape[1] - 1)]
    curvature = left - 2 * best + right
    shift = np.where(curvature > 1e-12, 0.5 * (left - right) / np.maximum(curvature, 1e-12), 0.0)
    period = lag + LAG_MIN + np.clip(shift, -0.5, 0.5)
    voiced = (best < VOICED_MAX_DPRIME) & (out[:, 0] > VOICED_MIN_DB)
    out[:, 2] = np.where(voiced, SAMPLE_RATE / period, 0.0)
    out[~voiced & (out[:, 0] <= VOICED_MIN_DB), 1] = 0.0  # silence is not voiced
    return out
