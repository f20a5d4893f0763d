"""Small smooth-signal builders shared by the performer's face and head: band-limited noise,
raised-cosine pulses, soft limits. All sampled at 30 FPS frame centres."""

from __future__ import annotations

import numpy as np
from scipy.ndimage import gaussian_filter1d

from stylecast.engine.face import FPS


def frame_times(n_frames: int) -> np.ndarray:
    """(T,) seconds: the centre of each 30 FPS frame."""
    return (np.arange(n_frames) + 0.5) / FPS


def smooth_noise(
    rng: np.random.Generator, n_frames: int, sigma_s: float, channels: int = 1
) -> np.ndarray:
    """(T, channels) Gaussian-filtered white noise with unit standard deviation (in
    expectation); sigma_s is the smoothing width in seconds (correlation time ≈ 2·sigma_s)."""
    sigma = max(sigma_s * FPS, 0.5)  # frames
    pad = int(4 * sigma) + 1
    white = rng.standard_normal((n_frames + 2 * pad, channels))
    smooth = gaussian_filter1d(white, sigma, axis=0, mode="wrap")[pad : pad + n_frames]
    return smooth * np.sqrt(2.0 * np.sqrt(np.pi) * sigma)  # unit variance for a Gaussian kernel


def pulse(t: np.ndarray, onset: float, attack: float, hold: float, release: float) -> np.ndarray:
    """(T,) in [0, 1]: rises from 0 at `onset` over `attack` s (raised cosine), holds 1 for
    `hold` s, falls back to 0 over `release` s."""
    x = t - onset
    rise = 0.5 - 0.5 * np.cos(np.pi * np.clip(x / max(attack, 1e-6), 0.0, 1.0))
    y = x - attack - hold
    fall = 0.5 + 0.5 * np.cos(np.pi * np.clip(y / max(release, 1e-6), 0.0, 1.0))
    return np.where(x < 0, 0.0, np.where(y < 0, rise, fall))


def soft_limit(x: np.ndarray, limit: float | np.ndarray) -> np.ndarray:
    """limit · tanh(x / limit): bounded by ±limit, identity near 0, slope ≤ 1 (so it never
    makes a signal less smooth)."""
    return limit * np.tanh(x / limit)


def envelope(mask: np.ndarray, sigma_s: float) -> np.ndarray:
    """(T,) a 0/1 mask smoothed by a Gaussian of width sigma_s seconds, in [0, 1]."""
    return np.clip(
        gaussian_filter1d(mask.astype(np.float64), sigma_s * FPS, mode="nearest"), 0.0, 1.0
    )
