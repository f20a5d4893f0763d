"""The A/V sync benchmark's reading of one MP4 (bench/bench_av_sync.py): its video frames
and audio track with their timestamps (PyAV), the container's own timing, the audio's
loudness per frame and where a known speech sits in it, and the mouth as MediaPipe's face
mesh sees it on every frame. Pure functions of arrays, and the MP4 reader.
"""

from __future__ import annotations

from pathlib import Path
from typing import NamedTuple

import av
import numpy as np

from stylecast.engine.landmarks import LandmarkTracker
from stylecast.engine.prosody import loudness_db
from stylecast.training.metrics import INNER_LOWER_MID, INNER_UPPER_MID

FPS = 30
RATE = 48_000  # Hz of the MP4s' audio tracks
SAMPLES_PER_FRAME = RATE // FPS  # 1600 samples = 33.3 ms
IRIS_CENTRES = (468, 473)  # MediaPipe refined landmarks: the two iris centres


class Movie(NamedTuple):
    frames: list[np.ndarray]  # (H, W, 3) uint8 RGB per decoded video frame
    video_pts: np.ndarray  # (T,) seconds
    audio: np.ndarray  # (S,) float32 mono at RATE, from the first decoded sample
    audio_start: float  # seconds: pts of the first decoded audio sample


def read_movie(path: str | Path, keep_frames: bool = True) -> Movie:
    """Decode an MP4's video frames (with their pts) and its first audio track, mono."""
    frames, pts = [], []
    with av.open(str(path)) as c:
        stream = c.streams.video[0]
        for f in c.decode(stream):
            pts.append(float(f.pts * f.time_base))
            if keep_frames:
                frames.append(f.to_ndarray(format="rgb24"))
    chunks, start = [], None
    with av.open(str(path)) as c:
        if not c.streams.audio:
            return Movie(frames, np.array(pts), np.zeros(0, np.float32), 0.0)
        stream = c.streams.audio[0]
        if stream.codec_context.sample_rate != RATE:
            raise ValueError(f"{path}: audio at {stream.codec_context.sample_rate} Hz, not {RATE}")
        for f in c.decode(stream):
            if start is None:
                start = float(f.pts * f.time_base)
            chunks.append(f.to_ndarray().astype(np.float32).mean(axis=0))
    audio = np.concatenate(chunks) if chunks else np.zeros(0, np.float32)
    return Movie(frames, np.array(pts), audio, start or 0.0)


class Container(NamedTuple):
    offset_ms: float  # first audio sample's pts - first video frame's pts
    length_gap_ms: float  # audio track length - video length (frames / 30)
    irregular_pts: int  # video frames not 1/30 s after the previous one


def container_check(movie: Movie) -> Container:
    steps = np.diff(movie.video_pts)
    return Container(
        1000 * (movie.audio_start - movie.video_pts[0]),
        1000 * (len(movie.audio) / RATE - len(movie.video_pts) / FPS),
        int(np.sum(np.abs(steps - 1 / FPS) > 1e-3)),
    )


def aligned_audio(movie: Movie) -> np.ndarray:
    """The audio track on the video's clock: sample 0 plays with the first video frame."""
    shift = round((movie.audio_start - movie.video_pts[0]) * RATE)
    if shift >= 0:
        return np.concatenate([np.zeros(shift, np.float32), movie.audio])
    return movie.audio[-shift:]


def frame_loudness(audio: np.ndarray, n_frames: int, rate: int = RATE) -> np.ndarray:
    """(n_frames,) dBFS of a 50 ms window centred on each 30 FPS frame (sample 0 = frame 0)."""
    per_frame, half = rate / FPS, round(0.025 * rate)
    padded = np.concatenate([np.zeros(half, np.float32), audio, np.zeros(2 * half + 1, np.float32)])
    need = int(np.ceil(n_frames * per_frame)) + 2 * half + 1
    padded = np.pad(padded, (0, max(0, need - len(padded))))
    starts = np.round((np.arange(n_frames) + 0.5) * per_frame).astype(np.int64)  # centres
    windows = np.stack([padded[s : s + 2 * half] for s in starts])  # (T, 50 ms)
    return loudness_db(windows)


def locate(track: np.ndarray, speech: np.ndarray) -> int:
    """Sample of `track` at which `speech` (same rate) starts: the peak of their
    cross-correlation (FFT), searched over every position where speech overlaps the track."""
    n = len(track) + len(speech)
    size = 1 << int(np.ceil(np.log2(n)))
    xc = np.fft.irfft(np.fft.rfft(track, size) * np.conj(np.fft.rfft(speech, size)), size)
    lags = np.concatenate([np.arange(0, len(track)), np.arange(-len(speech) + 1, 0)])
    picks = np.concatenate([np.arange(0, len(track)), np.arange(size - len(speech) + 1, size)])
    return int(lags[np.argmax(xc[picks])])


def lip_gap(points: np.ndarray) -> float:
    """MediaPipe (478, 3) landmarks -> the inner-lip gap at mid-mouth (5 point pairs), in
    inter-ocular distances (iris centre to iris centre)."""
    upper, lower = points[list(INNER_UPPER_MID), :2], points[list(INNER_LOWER_MID), :2]
    iod = np.linalg.norm(points[IRIS_CENTRES[0], :2] - points[IRIS_CENTRES[1], :2])
    return float(np.linalg.norm(upper - lower, axis=1).mean() / iod)


class Mouth(NamedTuple):
    gap: np.ndarray  # (T,) inter-ocular units; nan where MediaPipe found no face
    centre: np.ndarray  # (T, 2) pixels: the mouth's middle
    iod: np.ndarray  # (T,) pixels


def track_mouth(frames: list[np.ndarray]) -> Mouth:
    gap, centre, iod = (
        np.full(len(frames), np.nan),
        np.zeros((len(frames), 2)),
        np.ones(len(frames)),
    )
    with LandmarkTracker() as tracker:
        for t, frame in enumerate(frames):
            face = tracker.track(frame)
            if face is None:
                continue
            gap[t] = lip_gap(face.points)
            centre[t] = face.points[[13, 14], :2].mean(axis=0)
            iod[t] = face.interocular
    return Mouth(gap, centre, iod)


def fill_gaps(gap: np.ndarray) -> np.ndarray:
    ok = np.isfinite(gap)
    if not ok.any():
        raise RuntimeError("MediaPipe found the face in no frame")
    t = np.arange(len(gap))
    return np.interp(t, t[ok], gap[ok])
