"""What every request handler shares: settings, avatars and styles, metrics, the session
slots, the thread pools (the event loop only coordinates), and the access checks."""

from __future__ import annotations

import asyncio
import hmac
import logging
from concurrent.futures import ThreadPoolExecutor
from urllib.parse import urlsplit

import cv2
import numpy as np

from stylecast.engine.session import Session, SessionConfig, default_scheduler
from stylecast.server.config import ServerConfig
from stylecast.server.library import Library
from stylecast.server.metrics import Metrics
from stylecast.server.styles import StyleLibrary

log = logging.getLogger(__name__)

ENCODE_WORKERS = 2  # JPEG encoding threads (cv2 releases the GIL)


class ServerState:
    def __init__(self, config: ServerConfig) -> None:
        self.config = config
        self.scheduler = default_scheduler(config.motion)  # the process's real-time engine
        self.library = Library(config.data_dir)  # avatars
        self.styles = StyleLibrary(
            config.data_dir, self.scheduler.model, self.library.avatar, config.max_style_seconds
        )
        self.metrics = Metrics()
        self.encoder = ThreadPoolExecutor(ENCODE_WORKERS, thread_name_prefix="stylecast-jpeg")
        self.builder = ThreadPoolExecutor(1, thread_name_prefix="stylecast-build")  # uploads
        self.io = ThreadPoolExecutor(2, thread_name_prefix="stylecast-io")  # file loads
        self.live = 0  # sessions holding a slot
        # Front ends made now, off the event loop, so a joining session does not stall the
        # live ones (making one holds the GIL ~0.3 s; docs/engine.md).
        self.builder.submit(self.scheduler.prewarm, config.max_sessions)

    # ------------------------------------------------------------------ slots

    def acquire_slot(self, transport: str) -> str | None:
        """Take a session slot; None if taken, else the reason for refusing (event loop)."""
        if self.live >= self.config.max_sessions:
            self.metrics.refused.inc(reason="max_sessions")
            return (
                f"the server is full: {self.live} of {self.config.max_sessions} sessions are "
                "live (--max-sessions); try again later"
            )
        self.live += 1
        self.metrics.sessions.set(self.live)
        self.metrics.sessions_total.inc(transport=transport)
        return None

    def release_slot(self) -> None:
        assert self.live > 0
        self.live -= 1
        self.metrics.sessions.set(self.live)

    # ------------------------------------------------------------------ sessions

    async def make_session(self, avatar: str, code: np.ndarray, size: int, video: bool) -> Session:
        """A session (not started) with a cached avatar and a style code (from
        `styles.code`). InputError for an unknown avatar."""
        loop = asyncio.get_running_loop()
        bundle = await loop.run_in_executor(self.io, self.library.avatar, avatar) if video else None
        config = SessionConfig(size=size, video=video, motion=self.config.motion)
        return Session(bundle, code, config, self.scheduler)

    async def jpeg(self, rgb: np.ndarray, quality: int) -> bytes:
        return await asyncio.get_running_loop().run_in_executor(
            self.encoder, encode_jpeg, rgb, quality
        )

    # ------------------------------------------------------------------ access

    def token_ok(self, authorization: str | None, query_token: str | None) -> bool:
        """Bearer token from the Authorization header, or ?token= (browsers cannot set
        headers on a WebSocket)."""
        want = self.config.token
        if want is None:
            return True
        got = query_token
        if authorization and authorization.lower().startswith("bearer "):
            got = authorization[7:].strip()
        return got is not None and hmac.compare_digest(got.encode(), want.encode())

    def origin_ok(self, origin: str | None, host: str | None) -> bool:
        """No Origin (not a browser), the server's own origin, or an allowed one."""
        if origin is None:
            return True
        allow = self.config.allow_origins
        if "*" in allow or origin in allow:
            return True
        return host is not None and urlsplit(origin).netloc == host

    def close(self) -> None:
        for pool in (self.encoder, self.builder, self.io):
            pool.shutdown(wait=False, cancel_futures=True)


def encode_jpeg(rgb: np.ndarray, quality: int) -> bytes:
    """(H, W, 3) uint8 RGB -> JPEG bytes (worker thread)."""
    bgr = cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR)
    ok, buf = cv2.imencode(".jpg", bgr, [cv2.IMWRITE_JPEG_QUALITY, int(quality)])
    assert ok
    return buf.tobytes()
