"""The `/v1/stream` WebSocket protocol, version 1: message types, validation and the binary
media header. Pure functions, no I/O: the server (server/stream.py) and the Python client
(clients/stream_client.py) share them. docs/protocol.md is the reference, with examples.

Client -> server: JSON text messages `start`, `end_segment`, `clear`, `set_style`, `ping`,
and binary messages of PCM16 little-endian audio at the `start`'s rate and channel count.
Server -> client: JSON events and binary media messages, each a 16-byte header

    kind u8 | version u8 | reserved u16 | frame index u32 | pts in microseconds i64

followed by a JPEG (kind 1) or 1600 PCM16 mono 48 kHz samples (kind 2) of that frame.
"""

from __future__ import annotations

import json
import math
import struct
from collections.abc import Mapping
from typing import Any, NamedTuple

from stylecast.engine.errors import InputError

PROTOCOL_VERSION = 1
HEADER = struct.Struct("<BBHIq")  # kind, version, reserved, frame index, pts µs: 16 bytes
KIND_VIDEO_JPEG = 1
KIND_AUDIO_PCM16 = 2
OUTPUTS = ("video", "audio", "motion")
MIN_RATE, MAX_RATE = 8_000, 48_000  # input sample rates accepted, Hz
SIZES = (128, 192, 256, 320, 384, 448, 512)  # frame sizes a client may ask for, pixels
MAX_NAME = 64  # characters of an avatar or style name
MAX_MIX = 16  # styles in one mix
MAX_TEXT = 16 * 1024  # characters of one JSON message

# Error codes of the `error` event (docs/protocol.md lists when each is sent).
BAD_JSON = "bad_json"
BAD_MESSAGE = "bad_message"
NOT_STARTED = "not_started"
ALREADY_STARTED = "already_started"
BAD_AUDIO = "bad_audio"
UNKNOWN_AVATAR = "unknown_avatar"
UNKNOWN_STYLE = "unknown_style"
CAPACITY = "capacity"
TOO_SLOW = "too_slow"
IDLE = "idle"
INTERNAL = "internal"

# Close codes (RFC 6455 plus the 4000-4999 private range).
CLOSE_NORMAL = 1000
CLOSE_GOING_AWAY = 1001
CLOSE_POLICY = 1008  # bad token or Origin
CLOSE_TRY_LATER = 1013  # server full (max sessions or engine capacity)
CLOSE_TOO_SLOW = 4001  # the client stopped reading
CLOSE_IDLE = 4002  # nothing received for idle_timeout_s

Style = str | dict[str, float]


class ProtocolError(InputError):
    """A malformed or out-of-order client message; `code` is the error event's code."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


class Start(NamedTuple):
    avatar: str
    style: Style
    sample_rate: int  # Hz of the binary audio that follows
    channels: int  # 1 or 2, interleaved
    outputs: frozenset[str]  # subset of OUTPUTS, not empty
    size: int | None  # video frame size, pixels (None: the server's default)
    quality: int | None  # JPEG quality (None: the server's default)


class EndSegment(NamedTuple):
    pass


class Clear(NamedTuple):
    pass


class SetStyle(NamedTuple):
    style: Style


class Ping(NamedTuple):
    id: Any  # echoed in the pong (any JSON value, up to the message size)


Message = Start | EndSegment | Clear | SetStyle | Ping


def parse_message(text: str) -> Message:
    """A client's JSON text message -> a typed message, or ProtocolError saying what was
    wrong and what is accepted."""
    if len(text) > MAX_TEXT:
        raise ProtocolError(
            BAD_MESSAGE, f"a text message of {len(text)} characters; max {MAX_TEXT}"
        )
    try:
        obj = json.loads(text)
    except (json.JSONDecodeError, RecursionError) as e:
        raise ProtocolError(BAD_JSON, f"not JSON ({e}); send one JSON object per message") from e
    if not isinstance(obj, dict):
        raise ProtocolError(
            BAD_MESSAGE, f"expected a JSON object with a 'type', got {type(obj).__name__}"
        )
    kind = obj.get("type")
    parser = _PARSERS.get(kind) if isinstance(kind, str) else None
    if parser is None:
        raise ProtocolError(
            BAD_MESSAGE, f"unknown message type {_short(kind)}; expected one of {sorted(_PARSERS)}"
        )
    return parser(obj)


def _parse_start(obj: dict) -> Start:
    version = obj.get("version", PROTOCOL_VERSION)
    if version != PROTOCOL_VERSION:
        raise ProtocolError(
            BAD_MESSAGE,
            f"protocol version {_short(version)}; this server speaks {PROTOCOL_VERSION}",
        )
    avatar = obj.get("avatar", "default")
    _check_name(avatar, "avatar")
    style = parse_style(obj.get("style", "neutral"))
    rate = obj.get("sample_rate", 16_000)
    if not _is_int(rate) or not MIN_RATE <= rate <= MAX_RATE:
        raise ProtocolError(
            BAD_MESSAGE, f"sample_rate {_short(rate)}; expected an integer {MIN_RATE}..{MAX_RATE}"
        )
    channels = obj.get("channels", 1)
    if channels not in (1, 2) or not _is_int(channels):
        raise ProtocolError(BAD_MESSAGE, f"channels {_short(channels)}; expected 1 or 2")
    outputs = obj.get("outputs", ["video", "audio"])
    if (
        not isinstance(outputs, list)
        or not outputs
        or not all(isinstance(o, str) and o in OUTPUTS for o in outputs)
    ):
        raise ProtocolError(
            BAD_MESSAGE, f"outputs {_short(outputs)}; expected a non-empty list from {OUTPUTS}"
        )
    video = obj.get("video", {})
    if not isinstance(video, dict):
        raise ProtocolError(BAD_MESSAGE, f"video {_short(video)}; expected an object")
    fmt = video.get("format", "jpeg")
    if fmt != "jpeg":
        raise ProtocolError(BAD_MESSAGE, f"video format {_short(fmt)}; only 'jpeg' is offered")
    size = video.get("size")
    if size is not None and (not _is_int(size) or size not in SIZES):
        raise ProtocolError(BAD_MESSAGE, f"video size {_short(size)}; expected one of {SIZES}")
    quality = video.get("quality")
    if quality is not None and (not _is_int(quality) or not 10 <= quality <= 100):
        raise ProtocolError(BAD_MESSAGE, f"video quality {_short(quality)}; expected 10..100")
    return Start(avatar, style, rate, channels, frozenset(outputs), size, quality)


def parse_style(style: object) -> Style:
    """A style name, or a {name: weight} mix with weights >= 0 and a positive sum."""
    if isinstance(style, str):
        _check_name(style, "style")
        return style
    if isinstance(style, Mapping) and 0 < len(style) <= MAX_MIX:
        mix = {}
        for name, w in style.items():
            _check_name(name, "style")
            if isinstance(w, bool) or not isinstance(w, int | float):
                break
            if not math.isfinite(w) or w < 0:
                break
            mix[name] = float(w)
        else:
            if sum(mix.values()) > 0:
                return mix
    raise ProtocolError(
        BAD_MESSAGE,
        f"style {_short(style)}; expected a style name or a {{name: weight}} object of up to "
        f"{MAX_MIX} styles with weights >= 0 and a positive sum",
    )


def _parse_set_style(obj: dict) -> SetStyle:
    if "style" not in obj:
        raise ProtocolError(BAD_MESSAGE, "set_style needs a 'style' (a name or a {name: weight})")
    return SetStyle(parse_style(obj["style"]))


def _parse_ping(obj: dict) -> Ping:
    return Ping(obj.get("id"))


_PARSERS = {
    "start": _parse_start,
    "end_segment": lambda obj: EndSegment(),
    "clear": lambda obj: Clear(),
    "set_style": _parse_set_style,
    "ping": _parse_ping,
}


def type_name(msg: Message) -> str:
    """The wire name of a parsed message ("end_segment" for EndSegment...)."""
    return next(k for k, v in _TYPES.items() if isinstance(msg, v))


_TYPES = {
    "start": Start,
    "end_segment": EndSegment,
    "clear": Clear,
    "set_style": SetStyle,
    "ping": Ping,
}


def _check_name(name: object, what: str) -> None:
    if not isinstance(name, str) or not 0 < len(name) <= MAX_NAME or not name.isprintable():
        raise ProtocolError(
            BAD_MESSAGE,
            f"{what} name {_short(name)}; expected a string of 1..{MAX_NAME} characters",
        )


def _is_int(v: object) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _short(v: object, limit: int = 60) -> str:
    text = repr(v)
    return text if len(text) <= limit else text[: limit - 3] + "..."


# ---------------------------------------------------------------------- server -> client


class MediaHeader(NamedTuple):
    kind: int  # KIND_VIDEO_JPEG or KIND_AUDIO_PCM16
    index: int  # frame t; its pts is exactly t/30 s
    pts_us: int  # round(t * 1e6 / 30), for clients that want a number
    payload: bytes


def pts_us(index: int) -> int:
    """The pts of frame t in microseconds (t/30 s, rounded)."""
    return (index * 1_000_000 + 15) // 30


def pack_media(kind: int, index: int, payload: bytes) -> bytes:
    return HEADER.pack(kind, PROTOCOL_VERSION, 0, index, pts_us(index)) + payload


def unpack_media(data: bytes) -> MediaHeader:
    if len(data) < HEADER.size:
        raise ProtocolError(BAD_MESSAGE, f"a media message of {len(data)} bytes has no header")
    kind, version, _, index, pts = HEADER.unpack_from(data)
    if version != PROTOCOL_VERSION or kind not in (KIND_VIDEO_JPEG, KIND_AUDIO_PCM16):
        raise ProtocolError(BAD_MESSAGE, f"unknown media kind {kind} / version {version}")
    return MediaHeader(kind, index, pts, data[HEADER.size :])


def event(kind: str, **fields: Any) -> str:
    """A server event as a JSON text message."""
    return json.dumps({"type": kind, **fields}, separators=(",", ":"))


def error_event(code: str, message: str, fatal: bool = False) -> str:
    return event("error", code=code, message=message, fatal=fatal)
