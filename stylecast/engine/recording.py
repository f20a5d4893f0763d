"""Offline rendering of speech through a real Session: an audio file -> an MP4.

`record_speech` drives the very session a live client gets (SessionConfig(realtime=False):
the same playout, model steps and renderer, ticking as fast as the file is written instead
of at 30 FPS) and writes each frame with exactly the audio the session emitted for it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path
from typing import NamedTuple

import numpy as np

from stylecast.engine.clock import OUTPUT_RATE, SAMPLES_PER_FRAME
from stylecast.engine.errors import InputError
from stylecast.engine.face import FPS
from stylecast.engine.playout import PLAYBACK_FINISHED
from stylecast.engine.session import Session, SessionConfig, Style
from stylecast.engine.video import VideoWriter, load_audio

TAIL_S = 0.5  # idle frames written after the speech ends


class Recording(NamedTuple):
    frames: int  # frames written
    speech_start: int  # frame on which the speech starts
    speech_s: float  # seconds of speech played
    motion: tuple[np.ndarray, np.ndarray]  # (T, 52) expr and (T, 6) pose of every frame


def record_speech(
    audio_path: str | Path,
    output: str | Path,
    avatar: str = "default",
    style: Style = "neutral",
    size: int = 512,
    seed: int = 0,
    on_frame: Callable[[int], None] | None = None,
    motion: str = "baseline",
) -> Recording:
    """Speak `audio_path` (any file PyAV reads) with `avatar` in `style`, driven by the
    motion backend `motion` (SessionConfig.motion); write `output`."""
    output = Path(output)
    if output.suffix.lower() != ".mp4":
        raise InputError(f"{output}: the output must be an .mp4 file")
    config = SessionConfig(size=size, realtime=False, seed=seed, motion=motion)
    audio = load_audio(audio_path, OUTPUT_RATE)
    return asyncio.run(_record(audio, output, avatar, style, config, on_frame))


async def _record(audio, output, avatar, style, config, on_frame) -> Recording:
    size = config.size
    session = Session(avatar, style, config)
    session.push_audio(audio, OUTPUT_RATE)
    session.end_segment()
    output.parent.mkdir(parents=True, exist_ok=True)
    # The writer interleaves audio it is given up front; the session's audio is filled in
    # frame by frame before each frame is written, and trimmed to the frames at the end.
    capacity = len(audio) + (int(2 * FPS) + int(TAIL_S * FPS)) * SAMPLES_PER_FRAME
    writer = VideoWriter(output, size, size, audio=np.zeros(capacity, np.float32))
    exprs, poses = [], []
    start, played, stop_at = -1, 0.0, None
    try:
        await session.start()
        async for media in session:
            t = media.index
            a = t * SAMPLES_PER_FRAME
            if a + SAMPLES_PER_FRAME > len(writer.audio):
                writer.audio = np.concatenate([writer.audio, np.zeros(capacity, np.float32)])
            writer.audio[a : a + SAMPLES_PER_FRAME] = media.audio.pcm / np.float32(32768)
            writer.write(media.video.rgb)
            exprs.append(media.motion.expr)
            poses.append(media.motion.pose)
            if on_frame:
                on_frame(t)
            for e in media.events:
                if e.kind == PLAYBACK_FINISHED:
                    played = e.position
                    stop_at = t + round(TAIL_S * FPS)
                elif start < 0:
                    start = t
            if stop_at is not None and t >= stop_at:
                break
    finally:
        await session.aclose()
        writer.audio = writer.audio[: writer.frames_written * SAMPLES_PER_FRAME]
        writer.close()
    return Recording(writer.frames_written, start, played, (np.stack(exprs), np.stack(poses)))
