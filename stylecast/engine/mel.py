"""Log-mel spectrogram: the SadTalker / Wav2Lip front end the SAAS audio encoder reads.

16 kHz, pre-emphasis 0.97, Hann window of 800 samples (50 ms), n_fft 800, hop 200 samples
(12.5 ms, 80 mel frames per second), 80 Slaney mel bands from 55 to 7600 Hz, magnitude
(not power) spectrum, 20·log10 with a -100 dB floor, minus a 20 dB reference, scaled
symmetrically to [-4, 4]. Mel frame m is centred on sample m·HOP; samples before the start
of the stream are silence (zeros), so frames near the start need no special case.
"""

from __future__ import annotations

import numpy as np

from stylecast.engine.pcm import SAMPLE_RATE

HOP = 200  # samples between mel frames = 12.5 ms
WIN = 800  # analysis window = 50 ms
N_FFT = 800
N_MELS = 80
MEL_FPS = SAMPLE_RATE // HOP  # 80 mel frames per second
F_MIN, F_MAX = 55.0, 7600.0  # Hz
PREEMPHASIS = 0.97
MIN_LEVEL_DB = -100.0
REF_LEVEL_DB = 20.0
MAX_ABS = 4.0  # output range [-MAX_ABS, MAX_ABS]; silence is -MAX_ABS


def hz_to_mel(f: np.ndarray) -> np.ndarray:
    """Slaney's mel scale: linear below 1 kHz, logarithmic above."""
    f = np.asarray(f, np.float64)
    lin = f * 3.0 / 200.0
    log = 15.0 + np.log(np.maximum(f, 1e-9) / 1000.0) * (27.0 / np.log(6.4))
    return np.where(f < 1000.0, lin, log)


def mel_to_hz(m: np.ndarray) -> np.ndarray:
    m = np.asarray(m, np.float64)
    lin = m * 200.0 / 3.0
    log = 1000.0 * np.exp((m - 15.0) * (np.log(6.4) / 27.0))
    return np.where(m < 15.0, lin, log)


def mel_filterbank(
    sample_rate: int = SAMPLE_RATE,
    n_fft: int = N_FFT,
    n_mels: int = N_MELS,
    f_min: float = F_MIN,
    f_max: float = F_MAX,
) -> np.ndarray:
    """(n_mels, n_fft // 2 + 1) float32 triangular filters, area-normalised (Slaney)."""
    if not 0 <= f_min < f_max <= sample_rate / 2:
        raise ValueError(f"need 0 <= f_min < f_max <= {sample_rate / 2}; got {f_min}, {f_max}")
    bins = np.fft.rfftfreq(n_fft, 1.0 / sample_rate)  # (F,) Hz
    edges = mel_to_hz(np.linspace(hz_to_mel(f_min), hz_to_mel(f_max), n_mels + 2))
    lo, mid, hi = edges[:-2, None], edges[1:-1, None], edges[2:, None]  # (M, 1) each
    rising = (bins[None] - lo) / (mid - lo)
    falling = (hi - bins[None]) / (hi - mid)
    weights = np.maximum(0.0, np.minimum(rising, falling))  # (M, F)
    weights *= 2.0 / (hi - lo)  # equal area per band
    return weights.astype(np.float32)


def preemphasize(x: np.ndarray, previous: float) -> np.ndarray:
    """y[n] = x[n] - 0.97·x[n-1], with x[-1] = `previous`. (n,) float32 -> (n,) float32."""
    y = np.empty_like(x)
    if x.size:
        y[0] = x[0] - np.float32(PREEMPHASIS) * np.float32(previous)
        np.subtract(x[1:], np.float32(PREEMPHASIS) * x[:-1], out=y[1:])
    return y


class LogMel:
    """Windows of pre-emphasised audio -> normalised log-mel frames."""

    def __init__(self) -> None:
        n = np.arange(WIN)
        self.window = (0.5 - 0.5 * np.cos(2 * np.pi * n / WIN)).astype(np.float32)  # periodic
        self.basis = mel_filterbank()  # (80, 401)

    def __call__(self, frames: np.ndarray) -> np.ndarray:
        """(M, WIN) float32 pre-emphasised samples -> (M, N_MELS) float32 in [-4, 4]."""
        assert frames.ndim == 2 and frames.shape[1] == WIN, frames.shape
        spectrum = np.abs(np.fft.rfft(frames * self.window, n=N_FFT, axis=1))  # (M, 401)
        mel = spectrum.astype(np.float32) @ self.basis.T  # (M, 80)
        db = 20.0 * np.log10(np.maximum(mel, 1e-5)) - REF_LEVEL_DB
        scaled = 2 * MAX_ABS * (db - MIN_LEVEL_DB) / -MIN_LEVEL_DB - MAX_ABS
        return np.clip(scaled, -MAX_ABS, MAX_ABS).astype(np.float32)
