"""The A/V sync benchmark's reading and judging functions (bench/av_sync_movie.py,
bench/av_sync_measure.py), on signals with a known shift."""

import numpy as np
import pytest

from bench.av_sync_measure import closures
from bench.av_sync_movie import (
    SAMPLES_PER_FRAME,
    aligned_audio,
    container_check,
    frame_loudness,
    lip_gap,
    locate,
    read_movie,
)
from stylecast.engine.video import VideoWriter
from stylecast.training.metrics import INNER_LOWER_MID, INNER_UPPER_MID, lip_sync_offset
from stylecast.training.timeline import Phone

SPF = SAMPLES_PER_FRAME


def burst(n: int, seed: int = 0) -> np.ndarray:
    """Noise with a decaying envelope: one sharp cross-correlation peak."""
    rng = np.random.default_rng(seed)
    return (rng.standard_normal(n) * np.exp(-np.arange(n) / (n / 4)) * 0.3).astype(np.float32)


@pytest.mark.parametrize("at", [0, 1, 12_345, 40_000])
def test_locate_finds_a_known_shift(at):
    speech = burst(4_800)
    track = np.zeros(50_000, np.float32)
    track[at : at + len(speech)] += speech[: len(track) - at]
    track += np.random.default_rng(1).standard_normal(len(track)).astype(np.float32) * 1e-3
    assert locate(track, speech) == at


def test_locate_finds_speech_that_started_before_the_track():
    speech = burst(4_800)
    track = np.concatenate([speech[1_000:], np.zeros(10_000, np.float32)])
    assert locate(track, speech) == -1_000


def test_frame_loudness_puts_a_burst_on_its_frame():
    audio = np.zeros(20 * SPF, np.float32)
    audio[7 * SPF : 8 * SPF] = 0.5
    loud = frame_loudness(audio, 20)
    assert loud.shape == (20,)
    assert int(np.argmax(loud)) == 7
    # the 50 ms window holds the whole 33 ms frame of 0.5 full scale: 0.25 x 2/3 power
    assert loud[7] == pytest.approx(10 * np.log10(0.25 * 2 / 3), abs=0.05)
    assert loud[0] < -90 and loud[15] < -90


@pytest.mark.parametrize("late", [0, 3, -2])
def test_lips_shifted_by_k_frames_peak_at_lag_k(late):
    """Audio whose loudness follows a random envelope; lips that follow it `late` frames
    late must peak at lag `late`, and in sync correlate better than shifted."""
    rng = np.random.default_rng(2)
    n = 150
    env = np.convolve(rng.random(n + 20), np.ones(4) / 4, "same")[10 : n + 10]  # (n,) 0..1
    audio = (rng.standard_normal(n * SPF) * np.repeat(0.01 + env, SPF)).astype(np.float32)
    loud = frame_loudness(audio, n)
    gap = np.roll(env, late)
    r, lag = lip_sync_offset(gap, loud)
    assert lag == late
    r0, _ = lip_sync_offset(env, loud)
    if late:
        assert r < r0 - 0.2


def test_lip_gap_is_in_interocular_units():
    points = np.zeros((478, 3), np.float32)
    points[list(INNER_UPPER_MID), 1] = 100.0
    points[list(INNER_LOWER_MID), 1] = 106.0  # 6 px apart
    points[468, 0], points[473, 0] = 200.0, 260.0  # irises 60 px apart
    assert lip_gap(points) == pytest.approx(0.1)


def test_closures_count_a_bilabial_only_near_its_frames():
    gap = np.full(60, 0.1)
    gap[10] = 0.0  # lips closed on frame 10 only
    phones = (Phone("AA", 0.0, 0.3), Phone("B", 0.3, 0.35), Phone("AA", 0.35, 0.6))
    assert closures(gap, phones, 0.0, 0.01) == (1, 1)  # frames 8-11 cover it
    assert closures(gap, phones, 0.5, 0.01) == (0, 1)  # the speech 15 frames later
    assert closures(gap, phones[:1], 0.0, 0.01) == (0, 0)


def test_an_mp4_round_trip_keeps_audio_on_the_video_clock(tmp_path):
    """Written by the engine's writer (H.264 + AAC), read back: no container offset, regular
    pts, and a burst placed at frame 5 is found at 5 x 1600 samples."""
    frames = 12
    audio = np.zeros(frames * SPF, np.float32)
    sound = burst(2_400, seed=3)
    audio[5 * SPF : 5 * SPF + len(sound)] = sound
    path = tmp_path / "clip.mp4"
    with VideoWriter(path, 64, 64, audio=audio) as w:
        for t in range(frames):
            w.write(np.full((64, 64, 3), 20 * t, np.uint8))
    movie = read_movie(path)
    check = container_check(movie)
    assert len(movie.frames) == frames and check.irregular_pts == 0
    assert abs(check.offset_ms) < 0.1
    assert abs(locate(aligned_audio(movie), sound) - 5 * SPF) <= 2
