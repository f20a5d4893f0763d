"""training/prosody: loudness and pitch per 30 FPS frame (pitch: the engine's estimator)."""

import numpy as np
import pytest

from stylecast.engine.audio import prosody_centre
from stylecast.engine.prosody import WINDOW, prosody
from stylecast.training.prosody import frame_prosody, loudness_db, pitch_hz

SR = 16_000


def tone(f0: float, seconds: float, amp: float = 0.5) -> np.ndarray:
    t = np.arange(int(seconds * SR)) / SR
    return (amp * (2 * ((f0 * t) % 1.0) - 1)).astype(np.float32)  # sawtooth: rich harmonics


@pytest.mark.parametrize("f0", [90.0, 150.0, 260.0])
def test_pitch_of_a_tone(f0):
    audio = np.concatenate([np.zeros(SR // 2, np.float32), tone(f0, 1.0)])
    n = int(np.ceil(len(audio) / SR * 30))
    p = pitch_hz(audio, SR, n)
    assert p.shape == (n,) and p.dtype == np.float32
    assert np.all(p[:12] == 0)  # silence is unvoiced
    voiced = p[20:-3]
    assert np.all(np.abs(voiced / f0 - 1) < 0.04), voiced


def test_loudness_levels():
    sine = 0.5 * np.sin(2 * np.pi * 200 * np.arange(SR) / SR).astype(np.float32)
    audio = np.concatenate([np.zeros(SR // 2, np.float32), sine])
    n = int(np.ceil(len(audio) / SR * 30))
    loud = loudness_db(audio, SR, n)
    assert np.all(loud[:12] == -60.0)
    assert np.allclose(loud[20:-3], 20 * np.log10(0.5 / np.sqrt(2)), atol=0.5)


def test_noise_is_unvoiced():
    noise = np.random.default_rng(0).normal(0, 0.1, SR).astype(np.float32)
    assert np.mean(pitch_hz(noise, SR, 30) > 0) < 0.2


def test_pitch_is_the_engines_on_its_own_windows():
    audio = np.concatenate([np.zeros(SR // 4, np.float32), tone(170.0, 0.8)])
    n = int(np.ceil(len(audio) / SR * 30))
    got = frame_prosody(audio, n)
    t = 12  # a frame well inside: its window is the engine's, centred on the frame
    start = prosody_centre(t) - WINDOW // 2
    assert np.array_equal(got[t], prosody(audio[None, start : start + WINDOW])[0])
    assert np.array_equal(pitch_hz(audio, SR, n), got[:, 2])


def test_pitch_at_another_sample_rate():
    f0, rate = 150.0, 48_000
    t = np.arange(rate) / rate
    audio = (0.5 * (2 * ((f0 * t) % 1.0) - 1)).astype(np.float32)
    p = pitch_hz(audio, rate, 30)
    assert np.all(np.abs(p[3:-3] / f0 - 1) < 0.04), p
