"""Offline rendering: a motion sequence + an avatar (+ optional audio) -> an MP4 file.

Frames are rendered and encoded one at a time, so memory does not grow with length.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path
from typing import NamedTuple, Protocol

import numpy as np

from stylecast.engine.motion import Motion
from stylecast.engine.video import AUDIO_RATE, VideoWriter, fit_audio, load_audio

log = logging.getLogger(__name__)


class FrameRenderer(Protocol):
    """What movie rendering needs from engine.render.Renderer."""

    def render(self, expr: np.ndarray, pose: np.ndarray) -> np.ndarray:
        """(52,) weights, (6,) pose -> (H, W, 3) uint8 RGB."""
        ...


class AudioTrack(NamedTuple):
    samples: np.ndarray  # (N,) float32 mono at AUDIO_RATE, exactly the motion's length
    source_seconds: float  # length of the audio file before trimming or padding
    note: str  # what was done to fit it, for the user ("" when it fit already)


def audio_for_motion(path: str | Path, motion: Motion) -> AudioTrack:
    """Load an audio file and trim or zero-pad it to the motion's duration."""
    audio = load_audio(path, AUDIO_RATE)
    samples = round(motion.duration * AUDIO_RATE)
    have = len(audio) / AUDIO_RATE
    note = ""
    if abs(len(audio) - samples) > AUDIO_RATE // 100:  # more than 10 ms off
        verb = "trimmed" if len(audio) > samples else "padded with silence"
        note = (
            f"audio {Path(path).name} is {have:.2f} s, the motion {motion.duration:.2f} s: "
            f"{verb} to the motion's length"
        )
    return AudioTrack(fit_audio(audio, samples), have, note)


def render_movie(
    motion: Motion,
    renderer: FrameRenderer,
    path: str | Path,
    audio: np.ndarray | None = None,
    on_frame: Callable[[int], None] | None = None,
) -> int:
    """Render every frame of `motion` (at 30 FPS) and write an MP4 to `path`, with `audio`
    ((N,) float32 mono at AUDIO_RATE) muxed when given. `on_frame(i)` is called after each
    frame (a progress bar). Returns the number of frames written."""
    motion = motion.resampled()
    first = renderer.render(motion.expr[0], motion.pose[0])
    height, width = first.shape[:2]
    with VideoWriter(path, width, height, fps=motion.fps, audio=audio) as writer:
        writer.write(first)
        if on_frame:
            on_frame(0)
        for t in range(1, motion.frames):
            writer.write(renderer.render(motion.expr[t], motion.pose[t]))
            if on_frame:
                on_frame(t)
        return writer.frames_written
