"""`stylecast client say speech.wav -o out.mp4`: speak a file through a running server over
the WebSocket, exactly as a remote user's program would, and keep what comes back.

Every frame the server sends is kept (its JPEG and its 1600 samples), from frame 0 to
TAIL_S after `playback_finished`; a frame whose video was dropped for a slow network
repeats the previous picture, so the file keeps the server's clock. The MP4 holds the
returned audio, which is the speech as played by the session (48 kHz).
"""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path
from typing import NamedTuple

import cv2
import numpy as np

from stylecast.clients.stream_client import Audio, StreamClient, StreamError, Video
from stylecast.engine.errors import InputError
from stylecast.engine.video import VideoWriter, load_audio

log = logging.getLogger(__name__)

SEND_RATE = 16_000  # Hz of the PCM sent (the engine's own rate: nothing to resample)
CHUNK_S = 0.1  # seconds of audio per message
TAIL_S = 0.5  # idle kept after the speech
TIMEOUT_MARGIN_S = 20.0  # beyond the speech's length, before giving up on the server


class SayResult(NamedTuple):
    frames: int  # frames written
    dropped_video: int  # frames whose picture the server dropped (repeated in the file)
    speech_start: int  # frame of segment_started
    position: float  # seconds played, from playback_finished


def say(
    url: str,
    audio_path: str | Path,
    output: str | Path,
    avatar: str = "default",
    style: str | dict[str, float] = "neutral",
    size: int = 512,
    token: str | None = None,
) -> SayResult:
    output = Path(output)
    if output.suffix.lower() != ".mp4":
        raise InputError(f"{output}: the output must be an .mp4 file")
    speech = load_audio(audio_path, SEND_RATE)
    pcm = np.clip(np.rint(speech * 32767), -32768, 32767).astype(np.int16)
    return asyncio.run(_say(url, pcm, output, avatar, style, size, token))


async def _say(url, pcm, output, avatar, style, size, token) -> SayResult:
    jpegs: dict[int, bytes] = {}
    audio: list[np.ndarray] = []
    start, position, stop_at = -1, 0.0, None
    limit = len(pcm) / SEND_RATE + TIMEOUT_MARGIN_S
    async with StreamClient(url, token=token) as client:
        await client.start(avatar=avatar, style=style, sample_rate=SEND_RATE, size=size)
        step = int(CHUNK_S * SEND_RATE)
        for i in range(0, len(pcm), step):  # the session buffers it and plays in real time
            await client.send_audio(pcm[i : i + step])
        await client.end_segment()
        try:
            async with asyncio.timeout(limit):
                async for item in client:
                    if isinstance(item, Video):
                        jpegs[item.index] = item.jpeg
                    elif isinstance(item, Audio):
                        if item.index != len(audio):
                            raise StreamError(f"audio frame {item.index} after {len(audio) - 1}")
                        audio.append(item.pcm)
                        if stop_at is not None and item.index >= stop_at:
                            break
                    elif item["type"] == "segment_started":
                        start = item["frame"]
                    elif item["type"] == "playback_finished":
                        position = item["position"]
                        stop_at = item["frame"] + round(TAIL_S * 30)
                    elif item["type"] == "error":
                        log.warning("server: %s: %s", item["code"], item["message"])
        except TimeoutError:
            raise StreamError(f"the server did not finish playing within {limit:.0f} s") from None
    frames = len(audio)
    sound = np.concatenate(audio).astype(np.float32) / 32768.0
    output.parent.mkdir(parents=True, exist_ok=True)
    writer = VideoWriter(output, size, size, audio=sound)
    picture, dropped = np.zeros((size, size, 3), np.uint8), 0
    try:
        for t in range(frames):
            if t in jpegs:
                bgr = cv2.imdecode(np.frombuffer(jpegs[t], np.uint8), cv2.IMREAD_COLOR)
                picture = cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
            else:
                dropped += 1
            writer.write(picture)
    finally:
        writer.close()
    return SayResult(frames, dropped, start, position)
