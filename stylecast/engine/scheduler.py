"""The scheduler: steps every live session of a process together, one tick per frame.

Each tick (1/30 s on the wall clock in real-time mode):
1. each session ingests the audio pushed since the last tick (front end; a push also wakes
   the worker between ticks, so features are ready as early as possible),
2. each session hands in the features of its next input frame (or silence) and its style
   code; the motion model runs ONCE on the batch of all sessions,
3. each session's frame is rendered (unless motion-only) on that session's render thread
   (engine/render_worker.py; at most `render_threads` draw at once) and queued with its
   audio. In real time the worker does not wait: the render thread queues the frame when
   it is drawn (pipelined; a render thread that falls behind skips its own frames).

Steps 1-2 run on one worker thread, never on the event loop. Overload: a real-time tick
that starts more than a frame after its deadline renders no video (its frames are already
late): motion, audio and events still advance every frame and nothing is ever dropped from
the audio, the skipped frames are counted (`SessionStats.skipped_video`), and the worker
catches up with the clock instead of sending ever later video. Modes: "realtime" (paced by
the wall clock: a session's frame t leaves at start + t/30 s), "offline" (as fast as the
consumers read: backpressure instead of dropping, for rendering files) and "manual" (no
thread; `tick()` is called by the owner, for tests).

Admission control: `attach` refuses a session (CapacityError, with the figures) when the
measured time of a tick plus the new session's measured per-frame cost would exceed
`budget` of the 33.3 ms frame, or while ticks are skipping video. Costs are running medians
of what ticks actually took on this machine (front end, model, render per size, how much
the render threads overlap), calibrated on the new session's render thread before it joins.

Every tick leaves a `TickTrace` (stage timings, lateness) in `Scheduler.trace`, so stalls
can be found after the fact (bench/bench_session.py prints the worst ticks).
"""

from __future__ import annotations

import functools
import gc
import logging
import os
import sys
import threading
import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import Future
from typing import TYPE_CHECKING, NamedTuple

import numpy as np

from stylecast.engine.audio import PHONEME_LOOKAHEAD, AudioFrontEnd
from stylecast.engine.clock import FRAME_S
from stylecast.engine.errors import CapacityError, InputError
from stylecast.engine.motion_backend import (
    MotionInputs,
    MotionModel,
    check_step,
    split_state,
    stack_inputs,
    stack_states,
)
from stylecast.engine.recognizer_pool import RecognizerPool

if TYPE_CHECKING:
    from stylecast.engine.session import Session

log = logging.getLogger(__name__)

MODES = ("realtime", "offline", "manual")
ADMIT_PERCENTILE = 90  # render and model-step costs are taken at this percentile of their
# last COST_WINDOW ticks: what fails a session is its worse frames (the 99th percentile of
# lateness), and the medians let in one or two sessions too many at 256 px
DEFAULT_BUDGET = 0.7  # share of a frame's 33.3 ms the live sessions' estimated costs may
# add up to. With the estimate below, 0.8 admitted one session more than held over 2
# minutes with real-time threads (4 at 512 px where 3 held, 6 at 256 where 5 held:
# docs/benchmarks.md); 0.7 (23.3 ms) refuses both and admits what held. What the estimate
# does not see (the event loop handing frames out, the render threads' own Python, other
# processes) is this headroom.
COST_WINDOW = 90  # ticks of history behind each running median (3 s)
DEFAULT_FRONT_MS_PER_S = 60.0  # front-end ms per audio second before any is measured
# (docs/benchmarks.md "Audio front end": 5.7% of a core), with the phone recognizer ...
DEFAULT_FRONT_MS_PER_S_NO_PHONEMES = 12.0  # ... and without it (a model that reads no
# phoneme ids: the log-mel window and prosody only, measured 8.6 ms of CPU, 11.7 wall)
SKIP_LATE_S = FRAME_S  # a real-time tick starting this late renders no video (33.3 ms)
RENDER_TIMEOUT_S = 10.0  # a frame not drawn by then fails the worker (a hung driver)
SKIP_REFUSE_SHARE = 0.2  # admission refuses while this share of the last ticks skipped video
# (sustained overload; one stall of a few hundred ms skips ~10%)
TRACE_TICKS = 30 * 60 * 5  # ticks kept in Scheduler.trace (5 minutes)
DEFAULT_RENDER_THREADS = min(os.cpu_count() or 1, 2)  # frames drawn at once (2 cores: 2)
PHONEME_LOOKAHEAD_NO_MEL = 2  # frames, for models that do not read the log-mel window: as
# accurate as 3 (docs/benchmarks.md "Look-ahead": viseme accuracy 0.467 vs 0.461) and 33 ms
# sooner; with the mel window (3 frames of look-ahead anyway) the default 3 costs nothing


GIL_SWITCH_S = 0.001  # Python's switch interval while a real-time scheduler runs (default 5 ms)
# A thread that wants the GIL back while another runs Python waits up to the switch interval
# each time. The worker, the render threads and the event loop hand it over many times per
# frame (moderngl and numpy release it around their C calls); measured: a 512 px render
# next to a busy Python thread took 21 ms (median) at 5 ms and 3.9 ms at 1 ms.


RT_PRIORITY_ENV = "STYLECAST_RT_PRIORITY"  # 1-99: the default scheduler's threads run SCHED_RR
# A shared machine's other processes delay every wake-up of the engine's threads, even at
# nice -10 (docs/engine.md, "Stalls": on a loaded 2-core machine the render threads waited
# for a CPU longer than they ran); real-time round-robin threads run as soon as they wake.


def rt_priority_from_env() -> int | None:
    """STYLECAST_RT_PRIORITY as a priority (1-99), None when unset or empty; InputError
    otherwise."""
    value = os.environ.get(RT_PRIORITY_ENV, "").strip()
    if not value:
        return None
    if not value.isdigit() or not 1 <= int(value) <= 99:
        raise InputError(f"{RT_PRIORITY_ENV}={value!r}: use a priority 1-99, or leave it unset")
    return int(value)


def consumer_priority(priority: int | None) -> int | None:
    """The SCHED_RR priority for the thread that reads the sessions' frames (the event
    loop): one above the engine's threads. Real-time threads of equal priority take turns
    only every 100 ms (`sched_rr_timeslice_ms`), and the reader's little work should not
    wait behind a render or a front-end burst for that long."""
    return None if priority is None else min(priority + 1, 99)


def use_rt_priority(priority: int | None) -> bool:
    """Run the calling thread under SCHED_RR at `priority` (None: leave it as it is).
    Threads it starts afterwards inherit it (llvmpipe's rasterizer threads, made by the
    first render thread). Needs root, CAP_SYS_NICE or an RLIMIT_RTPRIO; without, it logs
    and returns False: the engine still runs, with the ordinary scheduler's latencies."""
    if priority is None:
        return False
    try:
        os.sched_setscheduler(0, os.SCHED_RR, os.sched_param(priority))
    except (PermissionError, OSError, AttributeError) as e:
        log.warning("real-time priority %d refused (%s); running without", priority, e)
        return False
    return True


class _GcFreeze:
    """While any real-time worker runs, the objects made before it started (modules,
    models, avatars, renderers: most of the process) are moved out of the garbage
    collector's sight (`gc.freeze()`), so a full collection, which Python may start on any
    thread at any allocation while holding the GIL, scans only what was made since:
    measured 5-25 ms -> under 0.1 ms with 4 sessions' objects (docs/engine.md, "Stalls").
    The last worker to stop gives them back (`gc.unfreeze()`), as before."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._holders = 0

    def hold(self) -> None:
        with self._lock:
            self._holders += 1
            gc.freeze()  # again for each worker: what it set up is start-up too

    def release(self) -> None:
        with self._lock:
            self._holders -= 1
            assert self._holders >= 0
            if self._holders == 0:
                gc.unfreeze()

    @property
    def holders(self) -> int:
        return self._holders


GC_FREEZE = _GcFreeze()


def shorten_gil_switch() -> None:
    """Set the process's GIL switch interval to at most GIL_SWITCH_S (a process-wide
    setting, like OPENBLAS_NUM_THREADS in stylecast/__init__.py; a shorter one set by the
    application is kept)."""
    if sys.getswitchinterval() > GIL_SWITCH_S:
        sys.setswitchinterval(GIL_SWITCH_S)


class TickTrace(NamedTuple):
    """What one tick did and when (ms; wall clock)."""

    tick: int  # the tick's index (frame t of a session that joined at tick 0)
    late_ms: float  # how long after its deadline the tick started (0 outside real time)
    ingest_ms: float  # front end, all sessions (what was still waiting at the tick)
    model_ms: float  # the batched motion step
    render_ms: float  # rendering all sessions' frames, wall time (threads overlap); in real
    # time, from handing them to the render threads to the last one queued (filled in then)
    total_ms: float  # the whole tick (in real time the worker's part: renders are pipelined)
    sessions: int  # sessions stepped
    skipped: bool  # rendered no video (overload)
    ingest_cpu_ms: float = 0.0  # the worker thread's CPU time in the front end: far less
    # than ingest_ms means it waited (for a CPU, the GIL or the recognizer process)


class _TickRenders:
    """The pipelined renders of one real-time tick: how many are still out, the sum of
    their render times, when the last came in (render threads report; the worker reads)."""

    def __init__(self, tick: int, submitted: float, pending: int) -> None:
        self.tick = tick
        self.submitted = submitted  # perf_counter() when handed out
        self.pending = pending
        self.drawn = 0.0  # sum of render ms
        self.skipped = False  # any frame went without video
        self.finished: float | None = None if pending else submitted
        self._lock = threading.Lock()

    def done(self, ms: float, skipped: bool) -> None:
        with self._lock:
            self.drawn += ms
            self.skipped = self.skipped or skipped
            self.pending -= 1
            if self.pending == 0:
                self.finished = time.perf_counter()


class _Costs:
    """Running medians (ms) of what ticks cost."""

    def __init__(self) -> None:
        self.tick: deque[float] = deque(maxlen=COST_WINDOW)  # whole tick, wall ms
        self.model: deque[float] = deque(maxlen=COST_WINDOW)  # one batched step, ms
        self.features: deque[float] = deque(maxlen=COST_WINDOW)  # front end per session
        # front-end ms per second of audio taken in (a speaking session's cost, whatever
        # the sessions happen to be doing when the next one asks to join)
        self.front_rate: deque[float] = deque(maxlen=COST_WINDOW)
        self.render: dict[int, deque[float]] = {}  # frame size -> ms per frame
        # how much the render threads overlap: sum of render ms / wall ms of a tick's renders
        self.overlap: deque[float] = deque(maxlen=COST_WINDOW)

    @staticmethod
    def median(d, default: float = 0.0) -> float:
        return float(np.median(d)) if d else default

    @staticmethod
    def high(d, default: float = 0.0) -> float:
        """The 90th percentile: what a frame costs on its worse ticks (admission)."""
        return float(np.percentile(d, ADMIT_PERCENTILE)) if d else default

    def render_ms(self, size: int) -> float | None:
        d = self.render.get(size)
        return self.high(d) if d else None


class Scheduler:
    """Owns the motion model and the worker thread; sessions attach to it (module doc)."""

    def __init__(
        self,
        model: MotionModel,
        mode: str = "realtime",
        budget: float = DEFAULT_BUDGET,
        render_threads: int = DEFAULT_RENDER_THREADS,
        rt_priority: int | None = None,
        recognizer_process: bool | None = None,
    ) -> None:
        """recognizer_process: run the sessions' phone recognizers in one child process
        (engine/recognizer_pool.py) instead of on the worker thread; default: in real
        time, for a model that reads phonemes. Same ids either way; see docs/engine.md."""
        assert mode in MODES, mode
        assert render_threads >= 1, render_threads
        assert rt_priority is None or 1 <= rt_priority <= 99, rt_priority
        self.model = model
        self.mode = mode
        # SCHED_RR priority of the worker and the render threads (real time only; None:
        # the ordinary scheduler): see use_rt_priority and docs/engine.md, "Stalls"
        self.rt_priority = rt_priority if mode == "realtime" else None
        self.budget_ms = budget * FRAME_S * 1000.0
        self.render_threads = render_threads
        self.render_gate = threading.Semaphore(render_threads)  # frames drawn at once
        # the front end this model needs: no log-mel window (and a shorter phoneme
        # look-ahead) when the model does not read it; no phone recognizer when it reads
        # no phoneme ids (the SAAS and StyleTalk exports)
        reads = getattr(model, "reads", frozenset(MotionInputs._fields))
        self.reads_mel = "mel" in reads
        self.reads_phonemes = "phonemes" in reads
        self.phoneme_lookahead = PHONEME_LOOKAHEAD if self.reads_mel else PHONEME_LOOKAHEAD_NO_MEL
        if recognizer_process is None:
            recognizer_process = mode == "realtime" and self.reads_phonemes
        self.recognizers: RecognizerPool | None = None
        if recognizer_process and self.reads_phonemes:
            self.recognizers = RecognizerPool(rt_priority=self.rt_priority)
        self.ticks = 0  # ticks run so far
        self.late_ticks = 0  # real-time ticks that ended after their frame's deadline
        self.skipped_ticks = 0  # real-time ticks that rendered no video (overload)
        self.trace: deque[TickTrace] = deque(maxlen=TRACE_TICKS)
        self.costs = _Costs()
        self._recent_skips: deque[bool] = deque(maxlen=COST_WINDOW)
        self._front_ends: list[AudioFrontEnd] = []  # spare, reset, ready to reuse
        self._front_lock = threading.Lock()
        self._sessions: list[Session] = []
        self._lock = threading.RLock()  # held for a whole tick; attach/detach take it
        self._wake = threading.Condition(self._lock)
        self._thread: threading.Thread | None = None
        self._calls: deque[tuple[Callable[[], object], Future]] = deque()
        self._t0 = 0.0  # monotonic time of tick 0 (realtime)
        # real time: ticks whose frames are still being drawn (oldest first; bounded, in
        # case a render thread never answers)
        self._in_flight: deque[_TickRenders] = deque(maxlen=COST_WINDOW)

    # ------------------------------------------------------------------ sessions

    @property
    def sessions(self) -> int:
        return len(self._sessions)

    def call(self, fn: Callable[[], object]) -> Future:
        """Run fn on the worker thread between ticks (in the caller in manual mode). OpenGL
        contexts belong to the thread that made them, so renderers are made, used and freed
        there."""
        fut: Future = Future()
        if self.mode == "manual":
            _settle(fut, fn)
            return fut
        with self._lock:
            self._calls.append((fn, fut))
            if self._thread is None:
                if self.mode == "realtime":
                    shorten_gil_switch()
                self._t0 = time.monotonic() - self.ticks * FRAME_S
                self._thread = threading.Thread(
                    target=self._run, name=f"stylecast-scheduler-{self.mode}", daemon=True
                )
                self._thread.start()
            self._wake.notify_all()
        return fut

    def front_end(self) -> AudioFrontEnd:
        """A front end for a new session: a spare one (reset) if any, else a new one. A new
        one loads pocketsphinx's models (~0.2-0.3 s holding Python's GIL, which stalls every
        live session of the process for that long), so spares are kept: `prewarm`."""
        with self._front_lock:
            if self._front_ends:
                return self._front_ends.pop()
        return self._new_front_end()

    def _new_front_end(self) -> AudioFrontEnd:
        remote = None
        if self.recognizers is not None:
            remote = self.recognizers.recognizer(self.phoneme_lookahead)
        return AudioFrontEnd(
            self.phoneme_lookahead,
            mel=self.reads_mel,
            phonemes=self.reads_phonemes,
            recognizer=remote,
        )

    def close(self) -> None:
        """Stop what the scheduler runs outside this process (the recognizer process);
        idempotent. Sessions still attached stop on their next audio."""
        if self.recognizers is not None:
            self.recognizers.close()

    def give_back(self, front: AudioFrontEnd) -> None:
        """A leaving session's front end, kept for the next session."""
        front.reset()
        with self._front_lock:
            self._front_ends.append(front)

    def prewarm(self, sessions: int) -> None:
        """Make front ends for `sessions` sessions now (blocking, ~0.3 s each), so that
        sessions joining later do not stall the live ones: call it at start-up."""
        with self._front_lock:
            missing = sessions - len(self._front_ends)
        made = [self._new_front_end() for _ in range(missing)]
        with self._front_lock:
            self._front_ends.extend(made)

    def attach(self, session: Session) -> None:
        """Admit a session from the next tick on, or raise CapacityError saying why. Runs on
        the worker (through `call`)."""
        with self._lock:
            if self.mode == "realtime":
                self._admit(session)
            session._first_tick = self.ticks
            self._sessions.append(session)

    def detach(self, session: Session) -> None:
        """Remove a session. Runs on the worker (through `call`)."""
        with self._lock:
            if session in self._sessions:
                self._sessions.remove(session)

    def estimate_ms(self, session: Session) -> float:
        """Per-frame cost of one more session like this one while it speaks, from
        measurements on this machine (ms): its render at its size, the front end on 33 ms
        of audio, its share of the batched model step. Renders are pipelined (drawn while
        the next tick runs) but not parallel: contexts take turns on llvmpipe's rasterizer,
        so each session adds its render time, divided by how much the render threads
        were seen to overlap; the front end (with or without the recognizer, which runs
        in its own process but on the same two cores) and the model share the frame."""
        c = self.costs
        render = 0.0
        if session.renders:
            render = c.render_ms(session.size)
            if render is None:  # timed on the session's render thread before it joined
                render = session._calibration_ms
                c.render.setdefault(session.size, deque(maxlen=COST_WINDOW)).append(render)
            # frames of several sessions are drawn at once on up to render_threads threads
            render /= min(max(c.median(c.overlap, 1.0), 1.0), self.render_threads)
        n = max(len(self._sessions), 1)
        model = c.high(c.model, 0.5) / n
        default = (
            DEFAULT_FRONT_MS_PER_S if self.reads_phonemes else DEFAULT_FRONT_MS_PER_S_NO_PHONEMES
        )
        # wall ms of the worker: with the recognizer process, its decoding is in it
        front = c.median(c.front_rate, default) / 30.0
        return render + front + model

    def _admit(self, session: Session) -> None:
        """Refuse when the live sessions, all speaking, plus this one would not fit: the
        load is the larger of the measured tick and the sum of the live sessions'
        estimates (ticks measured while sessions idle understate what speech costs); and
        refuse while recent ticks had to skip video (the machine is already behind)."""
        skips = sum(self._recent_skips)
        if skips > SKIP_REFUSE_SHARE * COST_WINDOW:
            raise CapacityError(
                f"cannot serve another session at 30 FPS: {skips} of the last "
                f"{len(self._recent_skips)} frames were already too late to render (the "
                f"machine is overloaded). Try later, a smaller size or motion-only output."
            )
        need = self.estimate_ms(session)
        now = 0.0
        if self._sessions:
            now = max(
                self.costs.median(self.costs.tick),
                sum(self.estimate_ms(s) for s in self._sessions),
            )
        if now + need > self.budget_ms:
            what = f"{session.size}x{session.size}" if session.renders else "motion-only"
            raise CapacityError(
                f"cannot serve another {what} session at 30 FPS: the {len(self._sessions)} "
                f"live session(s) take {now:.1f} ms per frame when speaking and one more "
                f"needs ~{need:.1f} ms; the budget is {self.budget_ms:.1f} ms "
                f"({self.budget_ms / 33.33:.0%} of 33.3 ms). Try later, a smaller size or "
                f"motion-only output."
            )

    def media_time(self, session: Session) -> float:
        """Seconds on the session's own clock now (frame t starts at t/30)."""
        if self.mode == "realtime":
            return time.monotonic() - self._t0 - session._first_tick * FRAME_S
        return (self.ticks - session._first_tick) * FRAME_S

    def wake(self) -> None:
        """A session has new input: let the worker ingest it before the next tick."""
        if self.mode == "realtime" and self._lock.acquire(blocking=False):
            try:
                self._wake.notify_all()
            finally:
                self._lock.release()

    # ------------------------------------------------------------------ ticks

    def tick(self, skip_video: bool = False, late_s: float = 0.0) -> None:
        """Run one frame for every attached session; skip_video: make the frames without
        rendering them (overload: the real-time worker passes it for late ticks)."""
        with self._lock:
            t0 = time.perf_counter()
            sessions = [s for s in self._sessions if s._alive()]
            stages = (0.0, 0.0, 0.0, 0.0)
            if sessions:
                stages = self._tick(sessions, skip_video)
            total = 1000.0 * (time.perf_counter() - t0)
            self.trace.append(
                TickTrace(
                    self.ticks,
                    1000.0 * late_s,
                    *stages[:3],
                    total,
                    len(sessions),
                    skip_video,
                    stages[3],
                )
            )
            self.ticks += 1
            self.costs.tick.append(total)
            if any(s.renders for s in sessions):
                if self.mode != "realtime":  # real time: when its renders are in (_harvest)
                    self._recent_skips.append(skip_video)
                self.skipped_ticks += skip_video
            self._harvest()

    def _tick(self, sessions: list[Session], skip_video: bool) -> tuple[float, float, float, float]:
        """One frame for these sessions -> (ingest, model, render) wall ms and the ingest's
        CPU ms on this thread."""
        c = self.costs
        t_ingest, cpu_ingest = time.perf_counter(), time.thread_time()
        rows = [s._prepare() for s in sessions]  # ingest + next input + style code
        ingest_ms = 1000.0 * (time.perf_counter() - t_ingest)
        ingest_cpu_ms = 1000.0 * (time.thread_time() - cpu_ingest)
        # front-end time per session since the last tick (pushes are ingested on arrival)
        c.features.append(sum(s._ingest_ms for s in sessions) / len(sessions))
        taken = sum(s._ingest_s for s in sessions)
        if taken > 0.01:
            c.front_rate.append(sum(s._ingest_ms for s in sessions) / taken)
        for s in sessions:
            s._ingest_ms = s._ingest_s = 0.0
        inputs = stack_inputs([r[0] for r in rows])
        style = np.stack([r[1] for r in rows])
        state = stack_states([s._state for s in sessions])
        t = time.perf_counter()
        out = self.model.step(inputs, style, state)
        c.model.append(1000.0 * (time.perf_counter() - t))
        check_step(self.model, out, len(sessions))
        model_ms = c.model[-1]
        for s, st in zip(sessions, split_state(out.state, [1] * len(sessions)), strict=True):
            s._state = st
        if self.mode == "realtime":
            render_ms = self._submit_renders(sessions, out, skip_video)
            return ingest_ms, model_ms, render_ms, ingest_cpu_ms
        t_render = time.perf_counter()
        # every session's frame is drawn on its own render thread, up to render_threads at
        # once; this thread waits for them (releasing the GIL) and queues them in order
        jobs = [
            s._worker.submit(out.expr[i], out.pose[i])
            if s._worker is not None and not skip_video
            else None
            for i, s in enumerate(sessions)
        ]
        drawn = 0.0
        for i, (s, job) in enumerate(zip(sessions, jobs, strict=True)):
            rgb = None
            if job is not None:
                rgb, ms = job.result(timeout=RENDER_TIMEOUT_S)
                drawn += ms
                c.render.setdefault(s.size, deque(maxlen=COST_WINDOW)).append(ms)
            s._finish(out.expr[i], out.pose[i], rgb, skipped=skip_video and s.renders)
        render_ms = 1000.0 * (time.perf_counter() - t_render)
        if drawn > 0 and render_ms > 0:
            c.overlap.append(drawn / render_ms)
        return ingest_ms, model_ms, render_ms, ingest_cpu_ms

    def _submit_renders(self, sessions: list[Session], out, skip_video: bool) -> float:
        """Real time: hand each session's frame to its render thread and return at once
        (ms spent here). The render threads queue the frames when drawn, in order; the
        next tick does not wait for them, so the front end and the model of frame t + 1
        run while frame t is rasterized, and one slow render delays only its session."""
        t0 = time.perf_counter()
        renders = _TickRenders(self.ticks, t0, sum(s._worker is not None for s in sessions))
        renders.skipped = skip_video
        for i, s in enumerate(sessions):
            media = s._advance(out.expr[i], out.pose[i])
            if s._worker is None:  # motion-only
                s._deliver(media, None, skipped=False)
                continue
            s._worker.submit_frame(
                out.expr[i],
                out.pose[i],
                functools.partial(self._rendered, s, media, renders),
                draw=not skip_video,
            )
        self._in_flight.append(renders)
        return 1000.0 * (time.perf_counter() - t0)

    def _rendered(
        self, session: Session, media, renders: _TickRenders, rgb: np.ndarray | None, ms: float
    ) -> None:
        """A pipelined frame is drawn (or was not: skipped, counted); on its render thread."""
        session._deliver(media, rgb, skipped=rgb is None)
        if rgb is not None:
            self.costs.render.setdefault(session.size, deque(maxlen=COST_WINDOW)).append(ms)
        renders.done(ms, rgb is None)

    def _harvest(self) -> None:
        """Fold the pipelined renders of finished ticks into the trace and the costs (worker
        thread, under the lock)."""
        while self._in_flight and self._in_flight[0].finished is not None:
            r = self._in_flight.popleft()
            wall = 1000.0 * (r.finished - r.submitted)
            if r.drawn > 0 and wall > 0:
                self.costs.overlap.append(r.drawn / wall)
            self._recent_skips.append(r.skipped)
            k = len(self.trace) - (self.ticks - r.tick)
            if 0 <= k < len(self.trace) and self.trace[k].tick == r.tick:
                self.trace[k] = self.trace[k]._replace(render_ms=wall)

    def _run_calls(self) -> None:
        while self._calls:
            fn, fut = self._calls.popleft()
            _settle(fut, fn)

    def _stopped(self) -> None:
        """The worker thread ends: give back what it held process-wide."""
        if self.mode == "realtime":
            GC_FREEZE.release()

    def _run(self) -> None:
        use_rt_priority(self.rt_priority)
        if self.mode == "realtime":
            GC_FREEZE.hold()
        try:
            while True:
                with self._lock:
                    self._run_calls()
                    if not self._sessions:  # nothing to do: the next call starts a worker
                        self._thread = None
                        self._stopped()
                        return
                    late = 0.0
                    if self.mode == "realtime":
                        deadline = self._t0 + self.ticks * FRAME_S
                        while deadline > time.monotonic():
                            # ingest in slices until the deadline; sleep when all is in
                            busy = [s._ingest() for s in self._sessions if s._alive()]
                            self._run_calls()
                            if not any(busy) and (wait := deadline - time.monotonic()) > 0:
                                self._wake.wait(wait)
                        late = time.monotonic() - deadline
                    else:
                        while not all(s._has_room() for s in self._sessions):
                            self._wake.wait(0.005)
                            self._run_calls()
                    self.tick(skip_video=late > SKIP_LATE_S, late_s=late)
                    if self.mode == "realtime" and time.monotonic() > deadline + FRAME_S:
                        self.late_ticks += 1
        except Exception:
            log.exception("scheduler worker failed")
            with self._lock:
                self._thread = None
                self._stopped()
                for s in self._sessions:
                    s._fail("the scheduler's worker failed; see the log")


def _settle(fut: Future, fn: Callable[[], object]) -> None:
    try:
        fut.set_result(fn())
    except BaseException as e:
        fut.set_exception(e)
