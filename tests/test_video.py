"""MP4 writing, video reading and audio loading through PyAV."""

from __future__ import annotations

import subprocess
import wave

import numpy as np
import pytest

from stylecast.engine.errors import FormatError, InputError
from stylecast.engine.video import (
    VideoReader,
    VideoWriter,
    fit_audio,
    load_audio,
    probe,
)


def make_frames(n: int, width: int = 64, height: int = 48) -> list[np.ndarray]:
    frames = []
    for i in range(n):
        f = np.zeros((height, width, 3), np.uint8)
        f[:, :, 0] = 40 + 4 * i  # a red ramp over time
        f[8:24, 8:24] = 255
        frames.append(f)
    return frames


def tone(seconds: float, rate: int, hz: float = 440.0) -> np.ndarray:
    t = np.arange(int(seconds * rate)) / rate
    return (0.5 * np.sin(2 * np.pi * hz * t)).astype(np.float32)


def test_writer_makes_h264_at_30_fps_and_frames_read_back(tmp_path):
    path = tmp_path / "v.mp4"
    with VideoWriter(path, 64, 48) as writer:
        for frame in make_frames(30):
            writer.write(frame)
    info = probe(path)
    assert (info.width, info.height, info.fps, info.frames, info.audio_rate) == (64, 48, 30, 30, 0)
    with VideoReader(path) as reader:
        assert reader.fps == 30
        frames = list(reader)
    assert len(frames) == 30
    # Lossy, but the colours survive: the red ramp and the white square.
    reds = [int(f[40, 40, 0]) for f in frames]
    assert abs(reds[0] - 40) < 8 and abs(reds[-1] - (40 + 4 * 29)) < 8
    assert frames[5][16, 16].min() > 230


def test_writer_muxes_aac_audio_of_the_right_length(tmp_path):
    path = tmp_path / "av.mp4"
    with VideoWriter(path, 64, 48, audio=tone(1.0, 48_000)) as writer:
        for frame in make_frames(30):
            writer.write(frame)
    out = subprocess.run(
        ["ffprobe", "-v", "error", "-show_entries", "stream=codec_name,pix_fmt,sample_rate",
         "-of", "csv=p=0", str(path)],
        capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    assert "h264,yuv420p" in out and "aac,48000" in out
    audio = load_audio(path, 16_000)
    assert abs(len(audio) / 16_000 - 1.0) < 0.05  # AAC adds at most a frame of padding
    spectrum = np.abs(np.fft.rfft(audio[2000:14000]))
    assert abs(np.argmax(spectrum) * 16_000 / 12_000 - 440) < 5


def test_writer_refuses_odd_sizes_and_wrong_frames(tmp_path):
    with pytest.raises(InputError, match="even"):
        VideoWriter(tmp_path / "odd.mp4", 63, 48)
    with VideoWriter(tmp_path / "v.mp4", 64, 48) as writer, pytest.raises(InputError):
        writer.write(np.zeros((48, 64), np.uint8))


def test_load_audio_resamples_and_downmixes(tmp_path):
    path = tmp_path / "stereo.wav"
    left, right = tone(0.5, 44_100, 300), tone(0.5, 44_100, 300)
    pcm = (np.stack([left, right], 1) * 32767).astype("<i2")
    with wave.open(str(path), "wb") as w:
        w.setnchannels(2)
        w.setsampwidth(2)
        w.setframerate(44_100)
        w.writeframes(pcm.tobytes())
    audio = load_audio(path, 16_000)
    assert audio.dtype == np.float32 and audio.ndim == 1
    assert abs(len(audio) - 8000) < 50
    assert 0.4 < np.abs(audio).max() < 0.6


def test_media_errors_name_the_file(tmp_path):
    junk = tmp_path / "junk.mp4"
    junk.write_bytes(b"this is not a video" * 100)
    with pytest.raises(FormatError, match=r"junk\.mp4"):
        VideoReader(junk)
    with pytest.raises(FormatError, match=r"junk\.mp4"):
        load_audio(junk)
    with pytest.raises(InputError, match="no such file"):
        VideoReader(tmp_path / "absent.mp4")
    wav = tmp_path / "a.wav"
    with wave.open(str(wav), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(16_000)
        w.writeframes(b"\0\0" * 1600)
    with pytest.raises(FormatError, match="no video stream"):
        VideoReader(wav)


def test_fit_audio_trims_and_pads():
    a = np.ones(10, np.float32)
    assert len(fit_audio(a, 4)) == 4
    padded = fit_audio(a, 15)
    assert len(padded) == 15 and padded[10:].sum() == 0
