"""`stylecast client mic`: the microphone (sounddevice) -> the server's WebSocket -> a virtual
camera (pyvirtualcam) and the speakers. Video-call apps then see the avatar as a camera.

The microphone is cut into speech segments by the same loudness gate the server uses for
WebRTC (engine/speech_gate.py), so the avatar idles between sentences and each sentence
gets its own playout anchor. pyvirtualcam needs a camera device: v4l2loopback on Linux
(`sudo modprobe v4l2loopback`), OBS Studio's virtual camera on Windows and macOS.
"""

from __future__ import annotations

import asyncio
import logging

import cv2
import numpy as np

from stylecast.clients.stream_client import Audio, StreamClient, Video
from stylecast.engine.errors import BackendError
from stylecast.engine.speech_gate import SpeechGate

log = logging.getLogger(__name__)

MIC_RATE = 48_000  # Hz asked of the microphone
MIC_BLOCK = 960  # samples per callback (20 ms)
CAMERA_HELP = (
    "a virtual camera is needed: pip install 'stylecast[vcam]' (pyvirtualcam), plus on Linux "
    "the v4l2loopback kernel module (apt install v4l2loopback-dkms; sudo modprobe "
    "v4l2loopback), on Windows or macOS OBS Studio (its virtual camera). Or use the web page "
    "(stylecast serve, then /obs in OBS)."
)


def open_camera(size: int):
    """A pyvirtualcam camera of size x size at 30 FPS, or BackendError saying what to install."""
    try:
        import pyvirtualcam
    except ImportError as e:
        raise BackendError(f"pyvirtualcam is not installed; {CAMERA_HELP}") from e
    try:
        return pyvirtualcam.Camera(width=size, height=size, fps=30)
    except RuntimeError as e:
        raise BackendError(f"no virtual camera device ({e}); {CAMERA_HELP}") from e


def open_sound():
    try:
        import sounddevice
    except (ImportError, OSError) as e:
        raise BackendError(
            "sounddevice is not usable: pip install 'stylecast[mic]' and the PortAudio "
            f"library (apt install libportaudio2): {e}"
        ) from e
    return sounddevice


async def run_mic(
    url: str,
    avatar: str = "default",
    style: str = "neutral",
    size: int = 512,
    token: str | None = None,
    speakers: bool = True,
) -> None:
    camera = open_camera(size)
    sd = open_sound()
    loop = asyncio.get_running_loop()
    blocks: asyncio.Queue[np.ndarray] = asyncio.Queue(maxsize=250)  # 5 s of 20 ms blocks

    def on_block(data, frames, time, status) -> None:  # PortAudio's thread
        loop.call_soon_threadsafe(_offer, blocks, data[:, 0].copy())

    try:
        mic = sd.InputStream(MIC_RATE, MIC_BLOCK, channels=1, dtype="int16", callback=on_block)
        out = sd.OutputStream(48_000, 1600, channels=1, dtype="int16") if speakers else None
    except Exception as e:  # PortAudio raises its own error types
        camera.close()
        raise BackendError(f"cannot open the microphone or speakers: {e}") from e
    async with StreamClient(url, token=token) as client:
        await client.start(avatar=avatar, style=style, sample_rate=MIC_RATE, size=size)
        print(f"stylecast: streaming to {camera.device}; speak (Ctrl+C to stop)", flush=True)
        sender = asyncio.create_task(_send(client, blocks))
        with mic, camera:
            if out is not None:
                out.start()
            try:
                async for item in client:
                    if isinstance(item, Video):
                        bgr = cv2.imdecode(np.frombuffer(item.jpeg, np.uint8), cv2.IMREAD_COLOR)
                        camera.send(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB))
                    elif isinstance(item, Audio) and out is not None:
                        await loop.run_in_executor(None, out.write, item.pcm)
                    elif isinstance(item, dict) and item["type"] == "error":
                        log.warning("server: %s: %s", item["code"], item["message"])
            finally:
                sender.cancel()
                if out is not None:
                    out.close()


def _offer(q: asyncio.Queue, block: np.ndarray) -> None:
    if q.full():
        q.get_nowait()  # the network stalls: drop the oldest microphone block
    q.put_nowait(block)


async def _send(client: StreamClient, blocks: asyncio.Queue) -> None:
    gate = SpeechGate()
    while True:
        block = await blocks.get()
        for action in gate.feed(block, MIC_RATE):
            if action[0] == "audio":
                await client.send_audio(action[1])
            else:
                await client.end_segment()
