"""A Python client of the `/v1/stream` WebSocket (docs/protocol.md), as a remote user runs it.

    async with StreamClient("ws://127.0.0.1:8080") as client:
        ready = await client.start(avatar="default", style="happy", sample_rate=16_000)
        await client.send_audio(pcm_int16)         # any chunk size
        await client.end_segment()
        async for item in client:                  # Video | Audio | dict (JSON events)
            ...

Used by `stylecast client say` / `mic`, the tests and bench/bench_server.py.
"""

from __future__ import annotations

import json
from typing import Any, NamedTuple

import numpy as np
import websockets
from websockets.asyncio.client import ClientConnection, connect

from stylecast.engine.errors import BackendError, InputError
from stylecast.server import protocol as p

MAX_MESSAGE = 8 * 1024 * 1024  # largest server message accepted (a 512 px JPEG is ~50 KB)


class Video(NamedTuple):
    index: int  # frame t; pts = t/30 s
    pts_us: int
    jpeg: bytes


class Audio(NamedTuple):
    index: int  # frame t: samples [1600 t, 1600 (t+1)) of the 48 kHz timeline
    pts_us: int
    pcm: np.ndarray  # (1600,) int16 mono 48 kHz


class StreamError(BackendError):
    """The server sent a fatal error or closed the stream."""


class StreamClient:
    def __init__(self, url: str, token: str | None = None, origin: str | None = None) -> None:
        self.url = stream_url(url)
        self.token = token
        self.origin = origin
        self.ws: ClientConnection | None = None
        self.ready: dict[str, Any] | None = None

    async def connect(self) -> None:
        headers = {"Authorization": f"Bearer {self.token}"} if self.token else None
        try:
            self.ws = await connect(
                self.url,
                compression=None,  # media is JPEG/PCM: deflate costs time and saves nothing
                max_size=MAX_MESSAGE,
                additional_headers=headers,
                origin=self.origin,
                open_timeout=10,
            )
        except (OSError, websockets.InvalidHandshake, TimeoutError) as e:
            raise StreamError(f"cannot connect to {self.url}: {e}") from e

    async def __aenter__(self) -> StreamClient:
        await self.connect()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        if self.ws is not None:
            await self.ws.close()

    # ------------------------------------------------------------------ sending

    async def send_json(self, **msg: Any) -> None:
        assert self.ws is not None, "connect() first"
        await self.ws.send(json.dumps(msg))

    async def start(
        self,
        avatar: str = "default",
        style: str | dict[str, float] = "neutral",
        sample_rate: int = 16_000,
        outputs: tuple[str, ...] = ("video", "audio"),
        size: int | None = None,
        channels: int = 1,
    ) -> dict[str, Any]:
        """Send `start` and wait for `ready` (StreamError with the server's message if the
        stream is refused)."""
        video = {"format": "jpeg"} | ({"size": size} if size else {})
        await self.send_json(
            type="start",
            version=p.PROTOCOL_VERSION,
            avatar=avatar,
            style=style,
            sample_rate=sample_rate,
            channels=channels,
            outputs=list(outputs),
            video=video,
        )
        async for item in self:
            if isinstance(item, dict) and item["type"] == "ready":
                self.ready = item
                return item
            if isinstance(item, dict) and item["type"] == "error":
                raise StreamError(f"start refused: {item['code']}: {item['message']}")
        raise StreamError("the server closed the stream before it was ready")

    async def send_audio(self, pcm: np.ndarray) -> None:
        """PCM16 samples at the start's rate, (n,) mono or (n, channels) interleaved."""
        x = np.asarray(pcm)
        if x.dtype != np.int16:
            raise InputError(f"send_audio takes int16 PCM, got {x.dtype}")
        assert self.ws is not None
        await self.ws.send(x.astype("<i2").tobytes())

    async def end_segment(self) -> None:
        await self.send_json(type="end_segment")

    async def clear(self) -> None:
        await self.send_json(type="clear")

    async def set_style(self, style: str | dict[str, float]) -> None:
        await self.send_json(type="set_style", style=style)

    async def ping(self, id: Any = None) -> None:
        await self.send_json(type="ping", id=id)

    # ------------------------------------------------------------------ receiving

    def __aiter__(self) -> StreamClient:
        return self

    async def __anext__(self) -> Video | Audio | dict[str, Any]:
        assert self.ws is not None
        try:
            data = await self.ws.recv()
        except websockets.ConnectionClosedOK:
            raise StopAsyncIteration from None
        except websockets.ConnectionClosed as e:
            raise StreamError(f"the stream was closed: {e}") from e
        return decode(data)


def decode(data: str | bytes) -> Video | Audio | dict[str, Any]:
    """One server message -> a JSON event (dict), Video or Audio."""
    if isinstance(data, str):
        return json.loads(data)
    h = p.unpack_media(data)
    if h.kind == p.KIND_VIDEO_JPEG:
        return Video(h.index, h.pts_us, h.payload)
    return Audio(h.index, h.pts_us, np.frombuffer(h.payload, "<i2"))


def stream_url(url: str) -> str:
    """ws://host:port (or http://...) -> ws://host:port/v1/stream."""
    if url.startswith("http"):
        url = "ws" + url[4:]
    if not url.startswith(("ws://", "wss://")):
        raise InputError(f"URL {url!r}: expected ws://HOST:PORT or http://HOST:PORT")
    return url if url.rstrip("/").endswith("/v1/stream") else url.rstrip("/") + "/v1/stream"
