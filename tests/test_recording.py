"""`stylecast render --audio ... --style` drives a real session offline and writes an MP4."""

from __future__ import annotations

import shutil
import subprocess

import numpy as np
import pytest

from stylecast.cli import main
from stylecast.engine.face import INDEX
from stylecast.engine.recording import record_speech
from stylecast.engine.video import VideoReader, load_audio, probe


@pytest.fixture(scope="module")
def wav(tmp_path_factory):
    if shutil.which("espeak-ng") is None:
        pytest.skip("espeak-ng is not installed")
    path = tmp_path_factory.mktemp("rec") / "speech.wav"
    subprocess.run(["espeak-ng", "-w", str(path), "Mama made a pie."], check=True)
    return path


def test_render_speech_through_a_session(wav, tmp_path, capsys):
    out = tmp_path / "out.mp4"
    assert main(["render", "--audio", str(wav), "--style", "happy", "--size", "128",
                 "-o", str(out)]) == 0  # fmt: skip
    assert "wrote" in capsys.readouterr().out
    info = probe(out)
    assert (info.width, info.height) == (128, 128)
    sound = load_audio(out, 48_000)
    speech = load_audio(wav, 48_000)
    assert len(sound) / 48_000 > len(speech) / 48_000  # look-ahead before, idle tail after
    with VideoReader(out) as reader:
        frames = list(reader)
    assert len(frames) == round(info.duration * 30)
    assert np.ptp(np.stack(frames[::5]).astype(np.float32), axis=0).max() > 30  # it moves


def test_recording_returns_the_session_motion(wav, tmp_path):
    rec = record_speech(wav, tmp_path / "a.mp4", style="neutral", size=64)
    expr, pose = rec.motion
    assert expr.shape == (rec.frames, 52) and pose.shape == (rec.frames, 6)
    assert rec.speech_start > 0
    jaw = expr[:, INDEX["jawOpen"]]
    assert jaw[: rec.speech_start].max() < 0.01  # idle before the speech: closed
    assert jaw.max() > 0.3
    assert rec.speech_s == pytest.approx(len(load_audio(wav, 48_000)) / 48_000, abs=1e-3)


def test_render_without_motion_or_audio_is_refused(tmp_path, wav, capsys):
    out = str(tmp_path / "x.mp4")
    assert main(["render", "-o", out]) == 2
    assert main(["render", "--audio", "nope.wav", "-o", out]) == 2
    assert main(["render", "--audio", str(wav), "--style", "grumpy", "-o", out]) == 2
    assert "known styles" in capsys.readouterr().err
    assert main(["render", "--audio", str(wav), "-o", str(tmp_path / "x.avi")]) == 2
