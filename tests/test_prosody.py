"""engine/prosody.py: loudness, voicing and YIN pitch on known signals."""

import numpy as np
import pytest

from stylecast.engine import prosody

T = np.arange(prosody.WINDOW) / 16_000


@pytest.mark.parametrize("f0", [70.0, 110.0, 180.0, 250.0, 380.0])
def test_pitch_of_a_harmonic_tone(f0):
    x = sum(np.sin(2 * np.pi * k * f0 * T) / k for k in range(1, 6))
    x = (0.3 * x / np.abs(x).max()).astype(np.float32)
    loud, voicing, pitch = prosody.prosody(x[None])[0]
    assert pitch == pytest.approx(f0, rel=0.01)
    assert voicing > 0.9
    assert -20 < loud < -5


def test_noise_and_silence_are_unvoiced():
    noise = np.random.default_rng(0).normal(0, 0.1, prosody.WINDOW).astype(np.float32)
    silence = np.zeros(prosody.WINDOW, np.float32)
    out = prosody.prosody(np.stack([noise, silence]))
    assert out.shape == (2, 3) and out.dtype == np.float32
    assert out[0, 2] == 0 and out[0, 1] < 0.7
    assert out[0, 0] == pytest.approx(-20, abs=0.5)  # RMS 0.1
    assert tuple(out[1]) == (prosody.SILENCE_DB, 0.0, 0.0)


def test_full_scale_sine_is_minus_3_db():
    x = np.sin(2 * np.pi * 200 * T).astype(np.float32)
    assert prosody.loudness_db(x[None])[0] == pytest.approx(-3.01, abs=0.05)


def test_batching_does_not_change_a_frame():
    rng = np.random.default_rng(1)
    batch = rng.normal(0, 0.2, (7, prosody.WINDOW)).astype(np.float32)
    batch[3] += np.sin(2 * np.pi * 150 * T).astype(np.float32)
    together = prosody.prosody(batch)
    alone = np.concatenate([prosody.prosody(batch[i : i + 1]) for i in range(7)])
    assert np.array_equal(together, alone)
    assert prosody.prosody(np.zeros((0, prosody.WINDOW), np.float32)).shape == (0, 3)
