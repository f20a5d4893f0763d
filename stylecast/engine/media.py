"""What a session emits for each frame: video, the audio that plays during it, the motion,
the events; all on one clock (frame t: pts t/30 s, output samples [1600 t, 1600 (t+1)))."""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction
from typing import NamedTuple

import numpy as np

from stylecast.engine.clock import OUTPUT_RATE, frame_pts, sample_pts
from stylecast.engine.playout import Event


class VideoFrame(NamedTuple):
    index: int  # frame t since start()
    rgb: np.ndarray  # (size, size, 3) uint8

    @property
    def pts(self) -> Fraction:
        return frame_pts(self.index)  # t/30 s


class AudioFrame(NamedTuple):
    first_sample: int  # 1600 t: index of pcm[0] on the session's 48 kHz timeline
    pcm: np.ndarray  # (1600,) int16 mono at 48 kHz

    @property
    def pts(self) -> Fraction:
        return sample_pts(self.first_sample)  # == the video frame's pts, exactly

    sample_rate = OUTPUT_RATE


class MotionFrame(NamedTuple):
    index: int
    expr: np.ndarray  # (52,) float32 ARKit weights, face.ARKIT_NAMES order
    pose: np.ndarray  # (6,) float32 pitch, yaw, roll (rad), tx, ty, tz (inter-ocular)


class MediaFrame(NamedTuple):
    """Everything about frame t. `video` is None in motion-only mode, when a slow
    consumer let it drop (counted in stats.dropped_video), or when the worker was too far
    behind to render it (overload; stats.skipped_video); audio is always there."""

    index: int
    video: VideoFrame | None
    audio: AudioFrame
    motion: MotionFrame
    events: tuple[Event, ...]
    produced: float  # time.perf_counter() when the frame was made (for latency figures)

    @property
    def pts(self) -> Fraction:
        return frame_pts(self.index)


@dataclass
class SessionStats:
    frames: int = 0  # frames produced
    dropped_video: int = 0  # video frames a slow consumer lost (audio kept)
    skipped_video: int = 0  # frames not rendered because the worker was behind (overload)
    underruns: int = 0  # silent frames inserted because audio came slower than real time
