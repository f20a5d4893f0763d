"""WebRTC (aiortc, the `[webrtc]` extra): `POST /v1/webrtc/offer` -> answer.

The browser's microphone (any audio track) goes in: cut into segments by a loudness gate
(engine/speech_gate.py) and pushed to a session. The avatar's video and audio come out as
two tracks fed by ONE pump reading the session: frame t's picture (pts 3000 t at 90 kHz)
and its 1600 samples (pts 1600 t at 48 kHz) are handed to both tracks at the same moment,
so the RTCP sender reports of both map the same instant to the same media time and the
browser keeps lips and sound together. Both tracks start with the connection. A data
channel ("control") takes `set_style`, `clear` and `ping` (the WebSocket protocol's JSON)
and carries `segment_started` / `playback_finished` / `error` / `pong` back.

`{"watch": ID}` in the offer instead adds a receive-only viewer of session ID (the OBS view).

No STUN/TURN server is contacted unless `--ice-server` is given. aioice never offers the
loopback address as a candidate; when the server is bound to a loopback address, 127.0.0.1
is added to the host candidates, so peers on this machine connect without any network.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import logging
import secrets
from collections import deque
from fractions import Fraction
from typing import Any

import aioice.ice
import av
from aiortc import (
    MediaStreamTrack,
    RTCConfiguration,
    RTCIceServer,
    RTCPeerConnection,
    RTCSessionDescription,
)
from aiortc.mediastreams import MediaStreamError
from fastapi import FastAPI, Request
from pydantic import BaseModel, Field

from stylecast.engine.errors import CapacityError, InputError
from stylecast.engine.session import PLAYBACK_FINISHED, Session
from stylecast.engine.speech_gate import SpeechGate
from stylecast.server import protocol as p
from stylecast.server.app import Access, ApiError
from stylecast.server.state import ServerState

log = logging.getLogger(__name__)

VIDEO_TIME_BASE = Fraction(1, 90_000)  # RTP video clock
AUDIO_TIME_BASE = Fraction(1, 48_000)
TRACK_QUEUE = 5  # frames (167 ms) a track keeps for its sender; older frames drop
CONNECT_TIMEOUT_S = 30.0  # a peer not connected by then is closed


def video_frame(rgb, t: int) -> av.VideoFrame:
    """Frame t's picture, pts 3000 t on the 90 kHz RTP clock."""
    frame = av.VideoFrame.from_ndarray(rgb, format="rgb24")
    frame.pts, frame.time_base = t * 3000, VIDEO_TIME_BASE
    return frame


def audio_frame(pcm, t: int) -> av.AudioFrame:
    """Frame t's 1600 samples, pts 1600 t at 48 kHz: the same instant as its picture."""
    frame = av.AudioFrame.from_ndarray(pcm[None, :], format="s16", layout="mono")
    frame.sample_rate = 48_000
    frame.pts, frame.time_base = t * 1600, AUDIO_TIME_BASE
    return frame


class Offer(BaseModel):
    sdp: str = Field(max_length=100_000)
    type: str = Field("offer", pattern="^offer$")
    avatar: str = Field("default", max_length=64)
    style: str | dict[str, float] = "neutral"
    size: int = 256
    watch: str | None = Field(None, max_length=64, description="view another session's output")


class FeedTrack(MediaStreamTrack):
    """A track whose frames are pushed by the session's pump (bounded: oldest drop)."""

    def __init__(self, kind: str) -> None:
        super().__init__()
        self.kind = kind
        self._q: deque = deque(maxlen=TRACK_QUEUE)
        self._ready = asyncio.Event()

    def push(self, frame) -> None:
        self._q.append(frame)
        self._ready.set()

    async def recv(self):
        while not self._q:
            if self.readyState != "live":
                raise MediaStreamError
            self._ready.clear()
            await self._ready.wait()
        return self._q.popleft()

    def stop(self) -> None:
        super().stop()
        self._ready.set()


class Peer:
    """One RTCPeerConnection: its own session (or a watched one), tracks and control."""

    def __init__(self, manager: WebRtcManager, pc: RTCPeerConnection, ident: str) -> None:
        self.manager = manager
        self.pc = pc
        self.id = ident
        self.session: Session | None = None
        self.video = FeedTrack("video")
        self.audio = FeedTrack("audio")
        self.viewers: list[Peer] = [self]  # peers fed by this peer's session
        self.channel = None  # the "control" data channel
        self.tasks: set[asyncio.Task] = set()
        self.watching: Peer | None = None
        self.closed = False

    def spawn(self, coro, name: str) -> None:
        task = asyncio.create_task(coro, name=f"webrtc-{name}")
        self.tasks.add(task)
        task.add_done_callback(self._done)

    def _done(self, task: asyncio.Task) -> None:
        self.tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("webrtc task %s failed", task.get_name(), exc_info=task.exception())

    def send(self, text: str) -> None:
        if self.channel is not None and self.channel.readyState == "open":
            self.channel.send(text)

    async def pump(self) -> None:
        """Frames of the session -> the tracks of every viewer, on one clock."""
        assert self.session is not None
        m = self.manager.server.metrics
        async for media in self.session:
            t = media.index
            for viewer in self.viewers:  # each sender gets its own frames (encoders mutate them)
                if media.video is not None:
                    viewer.video.push(video_frame(media.video.rgb, t))
                viewer.audio.push(audio_frame(media.audio.pcm, t))
            m.frames_sent.inc(kind="webrtc")
            for e in media.events:
                fields: dict[str, Any] = {"segment": e.segment, "frame": t, "pts": t / 30}
                if e.kind == PLAYBACK_FINISHED:
                    fields |= {"position": round(e.position, 4), "interrupted": e.interrupted}
                self.send(p.event(e.kind, **fields))

    async def listen(self, track: MediaStreamTrack) -> None:
        """The peer's microphone -> speech segments of the session."""
        gate = SpeechGate()
        while True:
            try:
                frame = await track.recv()
            except MediaStreamError:
                return
            if self.session is None:
                continue
            if frame.format.name != "s16":
                continue  # aiortc's decoders give packed s16; anything else is not a mic
            channels = len(frame.layout.channels)
            pcm = frame.to_ndarray().reshape(-1, channels)  # (1, n * channels) interleaved
            for action in gate.feed(pcm, frame.sample_rate):
                if action[0] == "audio":
                    self.session.push_audio(action[1], frame.sample_rate)
                else:
                    self.session.end_segment()

    def on_control(self, text: str) -> None:
        try:
            msg = p.parse_message(text)
            if isinstance(msg, p.Ping):
                self.send(p.event("pong", id=msg.id))
            elif self.session is None:
                raise p.ProtocolError(p.NOT_STARTED, "this peer only watches another session")
            elif isinstance(msg, p.SetStyle):
                self.session.set_style(self.manager.server.styles.code(msg.style))
            elif isinstance(msg, p.Clear):
                self.session.clear()
            else:
                raise p.ProtocolError(
                    p.BAD_MESSAGE,
                    f"{p.type_name(msg)} is not a data-channel message; "
                    "use set_style, clear or ping",
                )
        except p.ProtocolError as e:
            self.send(p.error_event(e.code, str(e)))
        except InputError as e:
            self.send(p.error_event(p.UNKNOWN_STYLE, str(e)))

    async def aclose(self) -> None:
        if self.closed:
            return
        self.closed = True
        self.manager.peers.pop(self.id, None)
        if self.watching is not None:
            with contextlib.suppress(ValueError):
                self.watching.viewers.remove(self)
        # this may run inside one of our own tasks (the connect timeout): never await it
        current = asyncio.current_task()
        tasks = [t for t in self.tasks if t is not current]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self.video.stop()
        self.audio.stop()
        if self.session is not None:
            await self.session.aclose()
        await self.pc.close()
        self.manager.server.release_slot()
        for viewer in self.viewers[1:]:  # nothing left to watch
            await viewer.aclose()


class WebRtcManager:
    def __init__(self, server: ServerState) -> None:
        self.server = server
        self.peers: dict[str, Peer] = {}
        urls = list(server.config.ice_servers)
        self.rtc_config = RTCConfiguration(iceServers=[RTCIceServer(urls=u) for u in urls])
        if _is_loopback(server.config.host):
            offer_loopback()

    async def answer(self, offer: Offer) -> dict[str, str]:
        refusal = self.server.acquire_slot("webrtc")
        if refusal is not None:
            raise CapacityError(refusal)
        pc = RTCPeerConnection(self.rtc_config)
        peer = Peer(self, pc, secrets.token_urlsafe(8))
        try:
            await self._setup(peer, offer)
        except BaseException:
            await peer.aclose()
            raise
        self.peers[peer.id] = peer
        return {"sdp": pc.localDescription.sdp, "type": pc.localDescription.type, "id": peer.id}

    async def _setup(self, peer: Peer, offer: Offer) -> None:
        pc = peer.pc
        if offer.watch is not None:
            target = self.peers.get(offer.watch)
            if target is None or target.session is None:
                raise InputError(f"no live WebRTC session {offer.watch!r} to watch")
            peer.watching = target
            target.viewers.append(peer)
        else:
            code = self.server.styles.code(p.parse_style(offer.style))
            if offer.size not in p.SIZES:
                raise InputError(f"size {offer.size}; expected one of {p.SIZES}")
            peer.session = await self.server.make_session(offer.avatar, code, offer.size, True)

        @pc.on("track")
        def on_track(track: MediaStreamTrack) -> None:
            if track.kind == "audio" and peer.session is not None:
                peer.spawn(peer.listen(track), "mic")

        @pc.on("datachannel")
        def on_channel(channel) -> None:
            peer.channel = channel
            channel.on(
                "message", lambda msg: peer.on_control(msg) if isinstance(msg, str) else None
            )

        @pc.on("connectionstatechange")
        async def on_state() -> None:
            if pc.connectionState in ("failed", "closed"):
                await peer.aclose()

        try:
            await pc.setRemoteDescription(RTCSessionDescription(offer.sdp, offer.type))
        except (ValueError, KeyError, IndexError, TypeError, AttributeError) as e:
            raise InputError(f"the offer's SDP was refused: {type(e).__name__}: {e}") from e
        kinds = {t.kind for t in pc.getTransceivers()}
        if kinds != {"audio", "video"}:
            raise InputError(f"the offer must receive audio and video; it has {sorted(kinds)}")
        pc.addTrack(peer.video)
        pc.addTrack(peer.audio)
        await pc.setLocalDescription(await pc.createAnswer())
        if peer.session is not None:
            await peer.session.start()  # CapacityError if the engine cannot serve it
            peer.spawn(peer.pump(), "pump")
        peer.spawn(self._expire(peer), "expire")

    async def _expire(self, peer: Peer) -> None:
        await asyncio.sleep(CONNECT_TIMEOUT_S)
        if peer.pc.connectionState != "connected":
            log.info("webrtc peer %s did not connect in %.0f s", peer.id, CONNECT_TIMEOUT_S)
            await peer.aclose()

    async def aclose(self) -> None:
        for peer in list(self.peers.values()):
            await peer.aclose()


def _is_loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return host == "localhost"


_host_addresses = aioice.ice.get_host_addresses


def offer_loopback() -> None:
    """Make aioice offer 127.0.0.1 as a host candidate too (module doc)."""

    def with_loopback(use_ipv4: bool, use_ipv6: bool) -> list[str]:
        found = _host_addresses(use_ipv4, use_ipv6)
        return (["127.0.0.1"] if use_ipv4 else []) + found

    aioice.ice.get_host_addresses = with_loopback


def add_webrtc_routes(app: FastAPI) -> None:
    def manager(request: Request) -> WebRtcManager:
        if not hasattr(request.app.state, "webrtc"):
            request.app.state.webrtc = WebRtcManager(request.app.state.server)
        return request.app.state.webrtc

    @app.post("/v1/webrtc/offer", tags=["webrtc"])
    async def webrtc_offer(offer: Offer, request: Request, s: Access) -> dict:
        """Send the browser's SDP offer; get the answer and the session's id."""
        try:
            return await manager(request).answer(offer)
        except CapacityError as e:
            raise ApiError(503, p.CAPACITY, str(e)) from e
        except InputError as e:
            raise ApiError(400, "invalid", str(e)) from e

    @app.delete("/v1/webrtc/{ident}", tags=["webrtc"], status_code=204)
    async def webrtc_close(ident: str, request: Request, s: Access) -> None:
        peer = manager(request).peers.get(ident)
        if peer is None:
            raise ApiError(404, "not_found", f"no WebRTC session {ident!r}")
        await peer.aclose()

    @app.get("/v1/webrtc/sessions", tags=["webrtc"])
    async def webrtc_sessions(request: Request, s: Access) -> dict:
        peers = manager(request).peers.values()
        return {
            "sessions": [{"id": q.id, "watchers": len(q.viewers) - 1} for q in peers if q.session]
        }

    app.state.webrtc_enabled = True
