"""A live session: speech in, a talking face out at 30 FPS, video and audio on one clock.

    session = Session(load_avatar("default"), "happy", SessionConfig(size=256))
    await session.start()                       # CapacityError if it cannot be served
    session.push_audio(pcm, 44_100)             # any rate 8-48 kHz, mono/stereo, any chunk
    session.end_segment()                       # the utterance is complete
    async for media in session:                 # one MediaFrame per frame, forever
        media.video.rgb, media.audio.pcm, media.motion.expr, media.events
    session.clear()                             # barge-in
    session.set_style("sad"); session.set_style_mix({"happy": 0.7, "surprised": 0.3})
    await session.aclose()

Frame t has pts t/30 s and carries exactly the 1600 output samples (48 kHz int16 mono)
[1600 t, 1600 (t+1)) that play during it. Output never stalls: without speech the avatar
idles and the frames carry silence. See docs/engine.md (clock, playout, scheduler).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import time
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from stylecast.engine.audio import AudioFrontEnd
from stylecast.engine.avatar import Avatar, load_avatar
from stylecast.engine.backends import BACKENDS, load_backend
from stylecast.engine.clock import SAMPLES_PER_FRAME
from stylecast.engine.errors import BackendError, InputError
from stylecast.engine.face import FPS
from stylecast.engine.media import AudioFrame, MediaFrame, MotionFrame, SessionStats, VideoFrame
from stylecast.engine.motion_backend import MotionInputs, MotionModel, State, silence_inputs
from stylecast.engine.pcm import validate_pcm
from stylecast.engine.playout import PLAYBACK_FINISHED, SEGMENT_STARTED, Event, Playout
from stylecast.engine.render_worker import RenderWorker
from stylecast.engine.scheduler import Scheduler, rt_priority_from_env

log = logging.getLogger(__name__)

__all__ = [
    "PLAYBACK_FINISHED",
    "SEGMENT_STARTED",
    "AudioFrame",
    "Event",
    "MediaFrame",
    "MotionFrame",
    "Session",
    "SessionConfig",
    "SessionStats",
    "VideoFrame",
    "default_scheduler",
]

STYLE_BLEND_S = 0.5  # a style change is blended in over this long
STYLE_BLEND_FRAMES = round(STYLE_BLEND_S * FPS)  # 15 frames
INGEST_SLICE_S = 0.2  # most audio the front end takes in one go (~10 ms of CPU)
Style = str | Mapping[str, float] | np.ndarray


@dataclass(frozen=True)
class SessionConfig:
    """How a session runs. Validated once at construction."""

    size: int = 512  # output frame width and height, pixels (ignored when video=False)
    video: bool = True  # False: motion-only output (52 weights + pose), no rendering
    realtime: bool = True  # False: offline, as fast as the consumer reads, nothing dropped
    seed: int = 0  # the session's own RNG (idle motion, pose sampling)
    jitter_ms: float = 10.0  # extra playout delay: processing and push-timing jitter
    max_video_queue_ms: float = 100.0  # queued frames older than this lose their video
    max_audio_queue_ms: float = 10_000.0  # a consumer this far behind is disconnected
    # the motion backend, as engine.backends.load_backend reads it: "baseline" (the rule-based
    # visemes), "onnx-cpu" (the shipped SAAS export), "onnx-cpu:assets/onnx/styletalk", ...
    motion: str = "baseline"

    def __post_init__(self) -> None:
        if not 16 <= self.size <= 4096:
            raise InputError(f"size {self.size} px is out of range; use 16..4096")
        if self.jitter_ms < 0 or self.max_video_queue_ms < 0:
            raise InputError("jitter_ms and max_video_queue_ms must be >= 0")
        if self.max_audio_queue_ms < 1000:
            raise InputError(f"max_audio_queue_ms must be >= 1000, got {self.max_audio_queue_ms}")
        kind = self.motion.partition(":")[0]
        if kind not in BACKENDS:
            raise InputError(
                f"unknown motion backend {self.motion!r}; use one of {', '.join(BACKENDS)}"
                " (with ':FOLDER' naming an exported model for the onnx and tensorrt kinds)"
            )


_DEFAULT: dict[str, Scheduler] = {}
_DEFAULT_LOCK = threading.Lock()


def default_scheduler(motion: str = "baseline") -> Scheduler:
    """The process's real-time scheduler for one motion backend (SessionConfig.motion), made
    on first use and shared by every real-time session that asks for that backend."""
    with _DEFAULT_LOCK:
        if motion not in _DEFAULT:
            _DEFAULT[motion] = Scheduler(
                load_backend(motion), "realtime", rt_priority=rt_priority_from_env()
            )
        return _DEFAULT[motion]


class Session:
    """One avatar speaking one stream of audio (module doc). Methods other than start,
    aclose and iteration are plain calls that never block: they queue work for the
    scheduler's worker."""

    def __init__(
        self,
        avatar: Avatar | str | None,
        style: Style = "neutral",
        config: SessionConfig | None = None,
        scheduler: Scheduler | None = None,
    ) -> None:
        self.config = config or SessionConfig()
        if scheduler is None:
            scheduler = (
                default_scheduler(self.config.motion)
                if self.config.realtime
                else Scheduler(load_backend(self.config.motion), "offline")
            )
        self.scheduler = scheduler
        self.model: MotionModel = scheduler.model
        if self.config.video and avatar is None:
            raise InputError("an avatar is needed unless the config says video=False")
        self.avatar = load_avatar(avatar) if isinstance(avatar, str) else avatar
        self.renders = self.config.video
        self.size = self.config.size
        self.stats = SessionStats()
        code = self._resolve(style)
        self._style = (code, code, 0)  # (from, to, frame the blend starts); swapped whole
        self._rng = np.random.default_rng(self.config.seed)
        self._state: State = self.model.init_state(1)
        self._inbox: deque[tuple] = deque()  # ("audio", x, rate, t) | ("end",) | ("clear",)
        self._inbox_lock = threading.Lock()
        self._segment_rate: int | None = None  # rate of the open segment (checked at push)
        self._playout: Playout | None = None
        self._front: AudioFrontEnd | None = None  # from the scheduler, given back on leaving
        self._worker: RenderWorker | None = None  # this session's render thread
        self._calibration_ms = 0.0  # median render ms timed there at start (admission)
        self._out: deque[MediaFrame] = deque()
        self._out_lock = threading.Lock()
        self._ready: asyncio.Event | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._first_tick = 0
        self._ingest_ms = 0.0  # front-end time since the last tick (scheduler's cost figures)
        self._ingest_s = 0.0  # seconds of audio it took in
        self._frame = 0  # next frame to produce
        self._started = False
        self._closed = False
        self._error: str | None = None
        self._max_video = max(int(self.config.max_video_queue_ms * FPS / 1000), 1)
        self._max_audio = int(self.config.max_audio_queue_ms * FPS / 1000)

    # ------------------------------------------------------------------ lifecycle

    async def start(self) -> None:
        """Take a front end, make the renderer on the session's own render thread (timing
        a few frames there), then join the scheduler: frame 0 is made at the next tick.
        None of this holds up the live sessions' ticks. Raises CapacityError when the
        process cannot serve it at 30 FPS."""
        if self._started or self._closed:
            return
        self._loop = asyncio.get_running_loop()
        self._ready = asyncio.Event()
        self._front = await self._loop.run_in_executor(None, self.scheduler.front_end)
        # real time: a segment starts the moment its look-ahead allows, between frames if
        # need be; offline: on a frame boundary (files whose speech starts on a frame)
        self._playout = Playout(
            self.model.lookahead,
            self.config.jitter_ms,
            self._front,
            exact_start=self.scheduler.mode == "realtime",
        )
        try:
            if self.renders:
                self._worker = RenderWorker(
                    self.avatar, self.size, self.scheduler.render_gate, self.scheduler.rt_priority
                )
                self._calibration_ms = await asyncio.wrap_future(self._worker.start())
            await asyncio.wrap_future(self.scheduler.call(self._join))
        except BaseException:
            self._release()
            raise
        self._started = True

    def _join(self) -> None:
        """On the worker thread, between ticks: admission, then frames from the next tick."""
        self.scheduler.attach(self)

    def _leave(self) -> None:
        """On the worker thread, between ticks."""
        self.scheduler.detach(self)
        self._release()

    def _release(self) -> None:
        if self._worker is not None:
            self._worker.close()
            self._worker = None
        if self._front is not None:  # the playout keeps its (now idle) reference
            self.scheduler.give_back(self._front)
            self._front = None

    async def aclose(self) -> None:
        """Leave the scheduler and free the renderer. Idempotent; safe before start()."""
        if self._closed:
            return
        self._closed = True
        if self._ready is not None:
            self._ready.set()
        if self._started:
            await asyncio.wrap_future(self.scheduler.call(self._leave))
        with self._out_lock:
            self._out.clear()

    async def __aenter__(self) -> Session:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    # ------------------------------------------------------------------ input

    def push_audio(self, pcm: np.ndarray, sample_rate: int) -> None:
        """Queue speech: (n,), (n, 1) or (n, 2) int16 or float32 PCM at 8-48 kHz, any n.
        Consecutive pushes form one segment until end_segment(); InputError on bad input."""
        x = validate_pcm(pcm, sample_rate)
        rate = int(sample_rate)
        if self._segment_rate is not None and rate != self._segment_rate:
            raise InputError(
                f"sample rate changed from {self._segment_rate} to {rate} Hz within a "
                "segment; call end_segment() (or clear()) before switching rates"
            )
        if len(x) == 0:
            return
        self._segment_rate = rate
        arrival = self.scheduler.media_time(self) if self._started else 0.0
        with self._inbox_lock:
            self._inbox.append(("audio", x.copy(), rate, max(arrival, 0.0)))
        self.scheduler.wake()

    def end_segment(self) -> None:
        """The current utterance is complete: its last frames (look-ahead) can be made."""
        self._segment_rate = None
        with self._inbox_lock:
            self._inbox.append(("end",))
        self.scheduler.wake()

    def clear(self) -> None:
        """Barge-in: drop all queued audio; from the next frame on, silence plays and the
        mouth closes (within 100 ms with the baseline). Queued segments end with
        playback_finished(interrupted=True, position=seconds played)."""
        self._segment_rate = None
        with self._inbox_lock:
            self._inbox.clear()  # pushes not yet ingested are dropped, not just skipped
            self._inbox.append(("clear",))
        self.scheduler.wake()

    def set_style(self, style: Style) -> None:
        """Change the speaking style (a preset name, a {name: weight} mix or a code vector),
        blended in over 0.5 s from the next frame."""
        to = self._resolve(style)
        now = self._frame
        self._style = (self._style_code(now), to, now)

    def set_style_mix(self, weights: Mapping[str, float]) -> None:
        """A weighted mix of named styles, e.g. {"happy": 0.7, "surprised": 0.3}."""
        self.set_style(dict(weights))

    @property
    def pending_audio_s(self) -> float:
        """Seconds of pushed speech not played yet (approximate between ticks)."""
        with self._inbox_lock:
            waiting = sum(len(i[1]) / i[2] for i in self._inbox if i[0] == "audio")
        playout = self._playout
        return waiting + (playout.pending_s if playout is not None else 0.0)

    @property
    def lookahead_frames(self) -> float:
        """Frames from a 16 kHz push to the first frame that plays it (the playout delay)."""
        playout = self._playout
        return float("nan") if playout is None else playout.delay_frames(16_000)

    def _resolve(self, style: Style) -> np.ndarray:
        if isinstance(style, str):
            return self.model.style_code(style)
        if isinstance(style, Mapping):
            if not style:
                raise InputError("a style mix needs at least one {name: weight}")
            w = {k: float(v) for k, v in style.items()}
            if any(not np.isfinite(v) or v < 0 for v in w.values()) or sum(w.values()) <= 0:
                raise InputError(f"style mix weights must be >= 0 with a positive sum; got {w}")
            total = sum(w.values())
            return sum(self.model.style_code(k) * (v / total) for k, v in w.items())
        code = np.asarray(style, np.float32)
        if code.shape != (self.model.style_dim,) or not np.all(np.isfinite(code)):
            raise InputError(
                f"a style code must be a finite ({self.model.style_dim},) vector for the "
                f"{self.model.name} motion model; got shape {code.shape}"
            )
        return code

    def _style_code(self, frame: int) -> np.ndarray:
        a, b, start = self._style
        x = min(max((frame - start) / STYLE_BLEND_FRAMES, 0.0), 1.0)
        w = x * x * (3.0 - 2.0 * x)  # smoothstep
        return ((1.0 - w) * a + w * b).astype(np.float32)

    # ------------------------------------------------------------------ output

    def __aiter__(self) -> Session:
        return self

    async def __anext__(self) -> MediaFrame:
        if not self._started and not self._closed:
            raise InputError("call start() before iterating a session")
        while True:
            if self._closed:
                raise StopAsyncIteration
            if self._error is not None:
                raise BackendError(self._error)
            with self._out_lock:
                if self._out:
                    return self._out.popleft()
                self._ready.clear()
            await self._ready.wait()

    # ------------------------------------------------------------------ worker side

    def _alive(self) -> bool:
        return not self._closed and self._error is None

    def _has_room(self) -> bool:
        return not self._alive() or len(self._out) < self._max_video

    def _ingest(self) -> bool:
        """Run the front end on what was pushed (worker thread), at most INGEST_SLICE_S of
        audio per call so that a long push (a TTS burst) never holds up a tick; returns
        True when more is waiting."""
        budget = INGEST_SLICE_S
        t0 = time.perf_counter()
        more = False
        while not more:
            with self._inbox_lock:
                if not self._inbox:
                    break
                item = self._inbox.popleft()
                if item[0] == "audio":
                    n = int(budget * item[2])
                    if len(item[1]) > n:
                        self._inbox.appendleft(("audio", item[1][n:], *item[2:]))
                        item = ("audio", item[1][:n], *item[2:])
                        more = True
            try:
                if item[0] == "audio":
                    budget -= len(item[1]) / item[2]
                    self._ingest_s += len(item[1]) / item[2]
                    self._playout.push(item[1], item[2], item[3])
                elif item[0] == "end":
                    self._playout.end_segment()
                else:
                    self._playout.clear(self._frame)
            except BackendError as e:  # the recognizer process died: this session stops
                log.error("session stopped: %s", e)
                self._fail(str(e))
                more = False
                break
        self._ingest_ms += 1000.0 * (time.perf_counter() - t0)
        return more

    def _prepare(self) -> tuple[MotionInputs, np.ndarray]:
        """This tick's model input (batch 1) and style code (worker thread)."""
        self._ingest()
        noise = self._rng.random((1, self.model.noise_dim), np.float32)
        row = self._playout.next_input()
        if row is None:
            inputs = silence_inputs(1, noise)
        else:
            inputs = MotionInputs(
                row.mel[None], np.array([row.phoneme], np.int64), row.prosody[None], noise
            )
        return inputs, self._style_code(self._frame)

    def _finish(
        self, expr: np.ndarray, pose: np.ndarray, rgb: np.ndarray | None, skipped: bool
    ) -> None:
        """Queue frame t with its rendered image (None: motion-only, or `skipped` because
        the tick was too late to render; counted) (worker thread)."""
        self._deliver(self._advance(expr, pose), rgb, skipped)

    def _advance(self, expr: np.ndarray, pose: np.ndarray) -> MediaFrame:
        """Frame t without its video: its audio, motion and events (worker thread: the
        playout is the worker's). The frame is queued by `_deliver`."""
        t = self._frame
        pcm, events = self._playout.play()
        media = MediaFrame(
            t,
            None,
            AudioFrame(t * SAMPLES_PER_FRAME, pcm),
            MotionFrame(t, expr.copy(), pose.copy()),
            tuple(events),
            0.0,
        )
        self._frame = t + 1
        self.stats.frames = t + 1
        self.stats.underruns = self._playout.underruns
        return media

    def _deliver(self, media: MediaFrame, rgb: np.ndarray | None, skipped: bool) -> None:
        """Queue a frame made by `_advance` with its image (None: motion-only, or skipped,
        counted) for the consumer (the worker, or this session's render thread when its
        renders are pipelined: frames arrive in order either way)."""
        video = VideoFrame(media.index, rgb) if rgb is not None else None
        media = media._replace(video=video, produced=time.perf_counter())
        with self._out_lock:
            if skipped:
                self.stats.skipped_video += 1
            self._out.append(media)
            self._enforce_bounds()
        if self._loop is not None and self._ready is not None:
            with contextlib.suppress(RuntimeError):  # loop closed under us
                self._loop.call_soon_threadsafe(self._ready.set)

    def _enforce_bounds(self) -> None:
        """Slow consumer: queued frames older than max_video_queue_ms lose their video (the
        oldest first), never their audio. Age, not count: a burst of frames made back to
        back after a late tick is not the consumer's fault and is read at once. Beyond 4x
        the bound in count, video drops anyway (memory)."""
        if self.scheduler.mode != "realtime":
            return
        too_old = time.perf_counter() - self.config.max_video_queue_ms / 1000.0
        with_video = [i for i, m in enumerate(self._out) if m.video is not None]
        excess = max(len(with_video) - 4 * self._max_video, 0)
        for k, i in enumerate(with_video):
            if k >= excess and self._out[i].produced > too_old:
                break
            self._out[i] = self._out[i]._replace(video=None)
            self.stats.dropped_video += 1
        if len(self._out) > self._max_audio:
            self._fail(
                f"the consumer fell {len(self._out) / FPS:.1f} s behind (more than "
                f"max_audio_queue_ms); the session was stopped rather than drop audio"
            )

    def _fail(self, reason: str) -> None:
        self._error = reason
        if self._loop is not None and self._ready is not None:
            with contextlib.suppress(RuntimeError):
                self._loop.call_soon_threadsafe(self._ready.set)
