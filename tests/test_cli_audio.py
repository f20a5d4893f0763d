"""`stylecast audio features`: a file in, an .npz of per-frame features out."""

import wave

import numpy as np
import pytest

from stylecast.cli import EXIT_INPUT, main
from stylecast.engine.phonemes import PHONEMES


@pytest.fixture
def wav(tmp_path):
    path = tmp_path / "tone.wav"
    t = np.arange(22_050) / 22_050  # 1 s at 22.05 kHz
    x = (0.3 * np.sin(2 * np.pi * 150 * t) * (t > 0.3) * 32767).astype(np.int16)
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(22_050)
        w.writeframes(x.tobytes())
    return path


def test_features_file(wav, tmp_path, capsys):
    out = tmp_path / "f.npz"
    assert main(["audio", "features", str(wav), "-o", str(out)]) == 0
    with np.load(out, allow_pickle=False) as f:
        assert f["mel"].shape == (30, 16, 80) and f["prosody"].shape == (30, 3)
        assert f["phonemes"].shape == (30,) and int(f["fps"]) == 30
        assert tuple(f["phoneme_names"]) == PHONEMES
        pitch = f["prosody"][:, 2]
        assert pitch[:6].max() == 0  # silent start
        assert np.median(pitch[15:]) == pytest.approx(150, rel=0.02)
    assert "30 frames" in capsys.readouterr().out


def test_bad_arguments_exit_2(wav, tmp_path, capsys):
    assert main(["audio", "features", str(tmp_path / "nope.wav"), "-o", "x.npz"]) == EXIT_INPUT
    assert main(["audio", "features", str(wav), "-o", str(tmp_path / "x.csv")]) == EXIT_INPUT
    args = ["audio", "features", str(wav), "-o", str(tmp_path / "x.npz")]
    assert main([*args, "--phoneme-lookahead", "-1"]) == EXIT_INPUT
    err = capsys.readouterr().err
    assert "no such file" in err and ".npz" in err and "0..30 frames" in err
