"""engine/mel.py: the filterbank and the log-mel scale."""

import numpy as np
import pytest

from stylecast.engine import mel


def test_filterbank_shape_and_bands():
    fb = mel.mel_filterbank()
    assert fb.shape == (80, 401) and fb.dtype == np.float32
    assert (fb >= 0).all()
    assert (fb.sum(axis=1) > 0).all()  # no empty band
    peaks = fb.argmax(axis=1)
    assert (np.diff(peaks) >= 0).all()  # bands ascend in frequency
    freqs = np.fft.rfftfreq(800, 1 / 16_000)
    assert freqs[fb[0] > 0].min() >= 55 and freqs[fb[-1] > 0].max() <= 7600
    # Slaney normalisation: each triangle has (about) unit area in Hz
    areas = fb.sum(axis=1) * 20.0  # 20 Hz per bin
    assert np.allclose(areas[10:], 1.0, rtol=0.05)


def test_mel_scale_round_trip():
    f = np.array([0.0, 55.0, 999.0, 1000.0, 4000.0, 7600.0])
    np.testing.assert_allclose(mel.mel_to_hz(mel.hz_to_mel(f)), f, atol=1e-6)
    assert mel.hz_to_mel(1000.0) == pytest.approx(15.0)


def test_bad_band_edges_are_refused():
    with pytest.raises(ValueError, match="f_min < f_max"):
        mel.mel_filterbank(f_min=8000, f_max=100)


def test_tone_lands_in_its_band_and_silence_is_the_floor():
    log_mel = mel.LogMel()
    t = np.arange(800) / 16_000
    tone = (0.5 * np.sin(2 * np.pi * 1000 * t)).astype(np.float32)
    frames = np.stack([mel.preemphasize(tone, 0.0), np.zeros(800, np.float32)])
    out = log_mel(frames)
    assert out.shape == (2, 80) and out.dtype == np.float32
    band = mel.mel_filterbank()[:, 50]  # bin 50 = 1000 Hz
    assert abs(int(out[0].argmax()) - int(band.argmax())) <= 1
    assert out[0].max() > 0 and (out[1] == -mel.MAX_ABS).all()


def test_preemphasis_carries_the_previous_sample():
    x = np.array([1.0, 2.0, 3.0], np.float32)
    np.testing.assert_allclose(mel.preemphasize(x, 0.5), [1 - 0.485, 2 - 0.97, 3 - 1.94])
    whole = mel.preemphasize(x, 0.0)
    split = np.concatenate([mel.preemphasize(x[:1], 0.0), mel.preemphasize(x[1:], x[0])])
    assert np.array_equal(whole, split)
