"""The server's settings: one frozen dataclass, validated once (from `stylecast serve`'s
arguments or a test)."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from stylecast.engine.backends import check_spec
from stylecast.engine.errors import InputError

MB = 1024 * 1024


def default_data_dir() -> Path:
    """Where uploaded avatars and styles are kept: $STYLECAST_DATA, else
    ~/.local/share/stylecast."""
    env = os.environ.get("STYLECAST_DATA")
    return Path(env) if env else Path.home() / ".local" / "share" / "stylecast"


@dataclass(frozen=True)
class ServerConfig:
    host: str = "127.0.0.1"  # bind address; loopback only unless told otherwise
    port: int = 8080  # TCP port
    max_sessions: int = 4  # live streams (WebSocket + WebRTC) at once; more are refused
    token: str | None = None  # bearer token every /v1 call needs (health excepted); None: open
    allow_origins: tuple[str, ...] = ()  # browser Origins allowed besides the server's own; "*"
    data_dir: Path = field(default_factory=default_data_dir)  # uploaded avatars/ and styles/
    max_image_bytes: int = 10 * MB  # largest portrait upload
    max_style_bytes: int = 50 * MB  # largest style upload (video or motion file)
    max_style_seconds: float = 60.0  # longest style clip accepted
    max_message_bytes: int = 1 * MB  # largest WebSocket message (32 s of 16 kHz PCM16)
    idle_timeout_s: float = 120.0  # a stream that sends nothing this long is closed
    default_size: int = 256  # frame size when a client does not ask (pixels)
    jpeg_quality: int = 80  # default JPEG quality of video frames
    send_video_ms: float = 100.0  # encoded video waiting for a slow client; older frames drop
    send_audio_s: float = 5.0  # a client this far behind on audio/events is disconnected
    ice_servers: tuple[str, ...] = ()  # STUN/TURN URLs for WebRTC; none: no outside contact
    # the motion backend every session runs, as engine.backends.load_backend reads it:
    # "baseline", "onnx-cpu" (the shipped SAAS export), "onnx-cpu:assets/onnx/styletalk", ...
    motion: str = "baseline"

    def __post_init__(self) -> None:
        if not 0 <= self.port <= 65535:
            raise InputError(f"port {self.port} is out of range; use 0..65535")
        if self.max_sessions < 1:
            raise InputError(f"max_sessions must be >= 1, got {self.max_sessions}")
        if self.token is not None and len(self.token) < 8:
            raise InputError("a token must have at least 8 characters")
        if self.idle_timeout_s <= 0:
            raise InputError(f"idle_timeout_s must be > 0, got {self.idle_timeout_s}")
        if not 16 <= self.default_size <= 1024:
            raise InputError(f"default_size {self.default_size} is out of range; use 16..1024")
        if not 10 <= self.jpeg_quality <= 100:
            raise InputError(f"jpeg_quality {self.jpeg_quality} is out of range; use 10..100")
        check_spec(self.motion)
        for v in (self.max_image_bytes, self.max_style_bytes, self.max_message_bytes):
            if v < 1024:
                raise InputError(f"size limits must be at least 1 KiB, got {v} bytes")
