"""One `/v1/stream` WebSocket connection: client messages in, a session's media out.

Three tasks per connection:
- the reader (the handler itself) parses client messages and calls the session's plain,
  non-blocking methods; a bad message gets an `error` event and the stream goes on;
- the pump reads the session's frames, JPEG-encodes video in the server's thread pool and
  queues one packet per frame in the outbox;
- the sender writes the outbox to the socket, one message at a time.

A client that stops reading fills the socket, the sender blocks, and the outbox keeps at
most `send_video_ms` of video: older frames lose their video (counted, audio kept). A
client more than `send_audio_s` behind is disconnected (close code 4001) rather than let
memory grow. The session itself never waits for a client.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import deque
from dataclasses import dataclass, field

import numpy as np
from starlette.websockets import WebSocket, WebSocketDisconnect

from stylecast.engine.clock import OUTPUT_RATE, SAMPLES_PER_FRAME
from stylecast.engine.errors import CapacityError, InputError
from stylecast.engine.face import ARKIT_NAMES, FPS, POSE_NAMES
from stylecast.engine.session import PLAYBACK_FINISHED, SEGMENT_STARTED, MediaFrame, Session
from stylecast.server import protocol as p
from stylecast.server.state import ServerState

log = logging.getLogger(__name__)

CLOSE_WAIT_S = 1.0  # longest wait to deliver a fatal error and the close frame


@dataclass
class Packet:
    """Messages for the client, sent in order: JSON texts, then video, then audio."""

    texts: list[str] = field(default_factory=list)
    video: bytes | None = None
    audio: bytes | None = None
    index: int = -1  # frame t; -1 for control replies
    produced: float = 0.0  # perf_counter() when the engine made the frame
    speech_arrival: float | None = None  # perf_counter() of the segment's first audio


class Outbox:
    """Packets waiting for a slow socket, bounded in media time (module doc)."""

    def __init__(self, max_video: int, max_frames: int) -> None:
        self.max_video = max_video  # frames whose video may wait
        self.max_frames = max_frames  # frames that may wait at all
        self._q: deque[Packet] = deque()
        self._ready = asyncio.Event()
        self.dropped = 0

    def put(self, packet: Packet) -> bool:
        """Queue a packet; False if the client is too far behind (disconnect it)."""
        self._q.append(packet)
        with_video = [q for q in self._q if q.video is not None]
        for q in with_video[: max(len(with_video) - self.max_video, 0)]:
            q.video = None
            self.dropped += 1
        self._ready.set()
        # replies (pong, error) count too: a client that sends without reading is bounded
        return len(self._q) <= self.max_frames

    async def get(self) -> Packet:
        while not self._q:
            self._ready.clear()
            await self._ready.wait()
        return self._q.popleft()


class StreamConnection:
    def __init__(self, ws: WebSocket, server: ServerState) -> None:
        self.ws = ws
        self.server = server
        self.metrics = server.metrics
        cfg = server.config
        self.outbox = Outbox(
            max(int(cfg.send_video_ms * FPS / 1000), 1), int(cfg.send_audio_s * FPS)
        )
        self.session: Session | None = None
        self.start_msg: p.Start | None = None
        self.quality = cfg.jpeg_quality
        self.tasks: set[asyncio.Task] = set()
        self._remainder = b""  # a partial PCM sample frame carried to the next chunk
        self._segment_open = False
        self._arrivals: deque[float] = deque()  # first-audio times of segments not started
        self._engine_skips = 0
        self._engine_drops = 0
        self._close: tuple[int, str, str] | None = None  # close code, reason, error event
        self._stop = asyncio.Event()  # set when the stream must end (fatal error)

    # ------------------------------------------------------------------ reader

    async def run(self) -> None:
        """Serve the connection until the client leaves or the stream must end."""
        self._spawn(self._send_loop(), "sender")
        idle = self.server.config.idle_timeout_s
        stop = asyncio.create_task(self._stop.wait())
        try:
            while True:
                recv = asyncio.create_task(self.ws.receive())
                done, _ = await asyncio.wait(
                    {recv, stop}, timeout=idle, return_when="FIRST_COMPLETED"
                )
                if recv not in done:
                    recv.cancel()
                    if stop not in done:
                        self._fail(p.IDLE, f"nothing received for {idle:.0f} s", p.CLOSE_IDLE)
                    break
                msg = recv.result()
                if msg["type"] == "websocket.disconnect":
                    break
                if msg.get("bytes") is not None:
                    self._on_audio(msg["bytes"])
                elif msg.get("text") is not None:
                    await self._on_text(msg["text"])
                if self._close is not None:
                    break
        except WebSocketDisconnect:
            pass
        finally:
            stop.cancel()
            await self._shutdown()

    async def _on_text(self, text: str) -> None:
        try:
            msg = p.parse_message(text)
            if isinstance(msg, p.Start):
                await self._start(msg)
            elif isinstance(msg, p.Ping):
                self._reply(p.event("pong", id=msg.id, time=time.time()))
            elif self.session is None:
                raise p.ProtocolError(p.NOT_STARTED, f"{p.type_name(msg)} before start")
            elif isinstance(msg, p.EndSegment):
                if not self._segment_open:
                    raise p.ProtocolError(
                        p.BAD_MESSAGE, "end_segment without audio since the last end_segment"
                    )
                self._segment_open = False
                self.session.end_segment()
            elif isinstance(msg, p.Clear):
                self._segment_open = False
                self._remainder = b""
                self._arrivals.clear()
                self.session.clear()
            elif isinstance(msg, p.SetStyle):
                self.session.set_style(self._style_code(msg.style))
        except p.ProtocolError as e:
            self._error(e.code, str(e))
        except InputError as e:
            self._error(p.BAD_MESSAGE, str(e))
        except Exception as e:  # a bug must not take the stream down with it
            log.exception("handling %.80r failed", text)
            self._error(p.INTERNAL, f"internal error: {type(e).__name__}")

    def _style_code(self, style: p.Style) -> np.ndarray:
        try:
            return self.server.styles.code(style)
        except InputError as e:
            raise p.ProtocolError(p.UNKNOWN_STYLE, str(e)) from e

    async def _start(self, msg: p.Start) -> None:
        if self.start_msg is not None:
            raise p.ProtocolError(p.ALREADY_STARTED, "start was already received on this stream")
        code = self._style_code(msg.style)
        video = "video" in msg.outputs
        size = msg.size or self.server.config.default_size
        try:
            session = await self.server.make_session(msg.avatar, code, size, video)
        except InputError as e:
            raise p.ProtocolError(p.UNKNOWN_AVATAR, str(e)) from e
        try:
            await session.start()
        except CapacityError as e:
            self.metrics.refused.inc(reason="engine_capacity")
            await session.aclose()
            self._fail(p.CAPACITY, str(e), p.CLOSE_TRY_LATER)
            return
        self.session, self.start_msg = session, msg
        self.quality = msg.quality or self.quality
        self._reply(
            p.event(
                "ready",
                version=p.PROTOCOL_VERSION,
                fps=FPS,
                outputs=sorted(msg.outputs),
                video={"format": "jpeg", "size": size, "quality": self.quality} if video else None,
                audio={
                    "sample_rate": OUTPUT_RATE,
                    "channels": 1,
                    "samples_per_frame": SAMPLES_PER_FRAME,
                },
                input={"sample_rate": msg.sample_rate, "channels": msg.channels},
                motion={"expr": list(ARKIT_NAMES), "pose": list(POSE_NAMES)}
                if "motion" in msg.outputs
                else None,
                latency_frames=round(session.lookahead_frames, 2),
                model=session.model.name,
            )
        )
        self._spawn(self._pump(), "pump")

    def _on_audio(self, data: bytes) -> None:
        if self.session is None or self.start_msg is None:
            self._error(p.NOT_STARTED, f"{len(data)} bytes of audio before start")
            return
        step = 2 * self.start_msg.channels  # bytes per sample frame
        data = self._remainder + data
        cut = len(data) - len(data) % step
        self._remainder = data[cut:]
        if cut == 0:
            return
        pcm = np.frombuffer(data[:cut], "<i2").reshape(-1, self.start_msg.channels)
        try:
            self.session.push_audio(pcm, self.start_msg.sample_rate)
        except InputError as e:
            self._error(p.BAD_AUDIO, str(e))
            return
        if not self._segment_open:
            self._segment_open = True
            self._arrivals.append(time.perf_counter())

    # ------------------------------------------------------------------ pump and sender

    async def _pump(self) -> None:
        assert self.session is not None and self.start_msg is not None
        outputs = self.start_msg.outputs
        async for media in self.session:
            packet = await self._packet(media, outputs)
            drops = self.session.stats.dropped_video
            if drops > self._engine_drops:
                self.metrics.frames_dropped.inc(drops - self._engine_drops, where="engine")
                self._engine_drops = drops
            skips = self.session.stats.skipped_video  # not drawn: the engine was overloaded
            if skips > self._engine_skips:
                self.metrics.frames_dropped.inc(skips - self._engine_skips, where="overload")
                self._engine_skips = skips
            before = self.outbox.dropped
            ok = self.outbox.put(packet)
            if self.outbox.dropped > before:
                self.metrics.frames_dropped.inc(self.outbox.dropped - before, where="send")
            if not ok:
                self._too_slow()
                return

    async def _packet(self, media: MediaFrame, outputs: frozenset[str]) -> Packet:
        t = media.index
        packet = Packet(index=t, produced=media.produced)
        for e in media.events:
            fields = {"segment": e.segment, "frame": t, "pts": t / FPS}
            if e.kind == PLAYBACK_FINISHED:
                fields |= {"position": round(e.position, 4), "interrupted": e.interrupted}
            elif e.kind == SEGMENT_STARTED and self._arrivals:
                packet.speech_arrival = self._arrivals.popleft()
            packet.texts.append(p.event(e.kind, **fields))
        if "motion" in outputs:
            packet.texts.append(
                p.event(
                    "motion",
                    frame=t,
                    pts=t / FPS,
                    expr=[round(float(x), 4) for x in media.motion.expr],
                    pose=[round(float(x), 5) for x in media.motion.pose],
                )
            )
        if "video" in outputs and media.video is not None:
            jpeg = await self.server.jpeg(media.video.rgb, self.quality)
            packet.video = p.pack_media(p.KIND_VIDEO_JPEG, t, jpeg)
        if "audio" in outputs:
            packet.audio = p.pack_media(
                p.KIND_AUDIO_PCM16, t, media.audio.pcm.astype("<i2").tobytes()
            )
        return packet

    async def _send_loop(self) -> None:
        m = self.metrics
        try:
            while True:
                packet = await self.outbox.get()
                for text in packet.texts:
                    await self.ws.send_text(text)
                if packet.video is not None:
                    await self.ws.send_bytes(packet.video)
                    m.frames_sent.inc(kind="video")
                if packet.audio is not None:
                    await self.ws.send_bytes(packet.audio)
                    m.frames_sent.inc(kind="audio")
                if packet.index >= 0:
                    now = time.perf_counter()
                    m.latency.observe(now - packet.produced)
                    if packet.speech_arrival is not None:
                        m.speech_latency.observe(now - packet.speech_arrival)
        except (WebSocketDisconnect, OSError, RuntimeError):
            self._stop.set()  # the client is gone (RuntimeError: starlette after a close)

    # ------------------------------------------------------------------ helpers

    def _reply(self, text: str) -> None:
        if not self.outbox.put(Packet(texts=[text])):
            self._too_slow()

    def _too_slow(self) -> None:
        self._fail(
            p.TOO_SLOW,
            f"more than {self.outbox.max_frames} messages wait for the client (over "
            f"{self.server.config.send_audio_s:.0f} s of frames): it stopped reading; the "
            "stream was closed",
            p.CLOSE_TOO_SLOW,
        )

    def _error(self, code: str, message: str) -> None:
        self.metrics.protocol_errors.inc(code=code)
        self._reply(p.error_event(code, message))

    def _fail(self, code: str, message: str, close_code: int) -> None:
        """A fatal error: the stream ends; the client gets the error event and `close_code`
        (if it still reads)."""
        if self._close is not None:
            return
        self.metrics.protocol_errors.inc(code=code)
        reason = message.encode()[:120].decode(errors="ignore")  # a close reason: <= 123 bytes
        self._close = (close_code, reason, p.error_event(code, message, fatal=True))
        self._stop.set()

    def _spawn(self, coro, name: str) -> None:
        task = asyncio.create_task(coro, name=f"stream-{name}")
        self.tasks.add(task)
        task.add_done_callback(self._task_done)

    def _task_done(self, task: asyncio.Task) -> None:
        self.tasks.discard(task)
        if task.cancelled():
            return
        exc = task.exception()
        if exc is not None:
            log.error("stream task %s failed", task.get_name(), exc_info=exc)
            self._fail(p.INTERNAL, f"internal error: {type(exc).__name__}", 1011)

    async def _shutdown(self) -> None:
        """Stop the tasks and the session; send the fatal error and close code, if any,
        waiting at most CLOSE_WAIT_S for a client that may have stopped reading."""
        for task in list(self.tasks):
            task.cancel()
        if self.tasks:
            await asyncio.gather(*self.tasks, return_exceptions=True)
        if self.session is not None:
            await self.session.aclose()
            self.session = None
        if self._close is not None:
            code, reason, text = self._close
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._say_goodbye(text, code, reason), CLOSE_WAIT_S)

    async def _say_goodbye(self, text: str, code: int, reason: str) -> None:
        await self.ws.send_text(text)
        await self.ws.close(code, reason)
