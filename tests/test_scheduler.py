"""engine/scheduler.py: overload (late ticks skip video, never audio or motion), the tick
trace, the front-end pool, admission while overloaded, the GIL switch interval."""

from __future__ import annotations

import asyncio
import threading
import time

import numpy as np
import pytest

from stylecast.engine.baseline import BaselineMotion
from stylecast.engine.errors import CapacityError
from stylecast.engine.render_worker import RenderWorker
from stylecast.engine.scheduler import Scheduler
from stylecast.engine.session import Session, SessionConfig


def tone(seconds: float, rate: int = 16_000) -> np.ndarray:
    """A loud vowel-like buzz: enough for the baseline to open the mouth."""
    t = np.arange(int(seconds * rate)) / rate
    return (0.3 * np.sign(np.sin(2 * np.pi * 140 * t)) * np.sin(2 * np.pi * 3 * t) ** 2).astype(
        np.float32
    )


async def run_manual(skip: set[int], frames: int = 60) -> tuple[list, Session, Scheduler]:
    scheduler = Scheduler(BaselineMotion(), "manual")
    session = Session("default", "neutral", SessionConfig(size=32), scheduler)
    await session.start()
    session.push_audio(tone(1.5), 16_000)
    session.end_segment()
    out = []
    for t in range(frames):
        scheduler.tick(skip_video=t in skip)
        out.append(await session.__anext__())
    await session.aclose()
    return out, session, scheduler


async def test_skipped_ticks_lose_only_their_video():
    skip = set(range(10, 21))
    ref, _, _ = await run_manual(set())
    got, session, scheduler = await run_manual(skip)
    assert [m.index for m in got] == list(range(60))
    for a, b in zip(ref, got, strict=True):
        np.testing.assert_array_equal(a.audio.pcm, b.audio.pcm)  # audio never skipped
        np.testing.assert_array_equal(a.motion.expr, b.motion.expr)  # motion advances
        assert a.events == b.events
        if b.index in skip:
            assert b.video is None
        else:
            np.testing.assert_array_equal(a.video.rgb, b.video.rgb)
    assert session.stats.skipped_video == len(skip) == scheduler.skipped_ticks
    assert session.stats.dropped_video == 0
    assert any(m.audio.pcm.any() for m in got[10:21])  # the skipped frames carried speech
    assert [t.tick for t in scheduler.trace if t.skipped] == sorted(skip)


async def test_trace_records_every_tick_with_its_stages():
    _, _, scheduler = await run_manual(set(), frames=20)
    trace = list(scheduler.trace)
    assert [t.tick for t in trace] == list(range(20))
    for t in trace:
        assert t.sessions == 1 and not t.skipped
        assert 0 < t.render_ms <= t.total_ms and 0 <= t.model_ms <= t.total_ms
        assert t.ingest_ms + t.model_ms + t.render_ms <= t.total_ms + 1e-6


async def test_an_overloaded_worker_skips_late_frames_and_keeps_the_clock(monkeypatch):
    slow = RenderWorker._draw

    def draw(self, renderer, expr, pose):  # a renderer that needs 55 ms a frame
        time.sleep(0.055)
        return slow(self, renderer, expr, pose)

    monkeypatch.setattr(RenderWorker, "_draw", draw)
    scheduler = Scheduler(BaselineMotion(), "realtime", budget=100.0)
    session = Session("default", "neutral", SessionConfig(size=32), scheduler)
    await session.start()
    session.push_audio(tone(3.0), 16_000)
    frames = []
    t0 = None
    async for m in session:
        t0 = t0 or time.perf_counter()
        frames.append(m)
        if time.perf_counter() - t0 > 1.5:
            break
    behind = (time.perf_counter() - t0) * 30 - frames[-1].index  # frames of lag
    await session.aclose()
    assert [m.index for m in frames] == list(range(len(frames)))  # every frame's audio
    stats = session.stats
    assert stats.skipped_video > 0 and sum(m.video is not None for m in frames) > 5
    # (the counts also cover frames made but not read yet)
    assert 0 < sum(m.video is None for m in frames) <= stats.skipped_video + stats.dropped_video
    # without skipping, 55 ms renders would leave it ~20 frames behind after 1.5 s
    assert behind < 8


async def test_admission_refuses_while_ticks_skip_video():
    scheduler = Scheduler(BaselineMotion(), "realtime")
    scheduler._recent_skips.extend([True] * 30 + [False] * 60)
    session = Session(None, "neutral", SessionConfig(video=False), scheduler)
    with pytest.raises(CapacityError, match="too late to render"):
        await session.start()
    await session.aclose()


async def test_front_ends_are_reused_and_can_be_made_ahead():
    scheduler = Scheduler(BaselineMotion(), "manual")
    assert not scheduler.reads_mel and scheduler.phoneme_lookahead == 2
    scheduler.prewarm(2)
    spares = list(scheduler._front_ends)
    assert len(spares) == 2 and all(not f.computes_mel for f in spares)
    a = Session(None, "neutral", SessionConfig(video=False), scheduler)
    await a.start()
    front = a._front
    assert front in spares and len(scheduler._front_ends) == 1
    a.push_audio(tone(0.5), 16_000)
    scheduler.tick()
    assert front.next_frame > 0
    await a.aclose()
    assert len(scheduler._front_ends) == 2 and front.next_frame == 0  # back, reset
    scheduler.prewarm(2)  # already there: nothing made
    assert len(scheduler._front_ends) == 2


def render_threads() -> int:
    return sum(t.name.startswith("stylecast-render") for t in threading.enumerate())


async def test_aclose_frees_the_render_thread():
    scheduler = Scheduler(BaselineMotion(), "manual")
    before = render_threads()
    session = Session("default", "neutral", SessionConfig(size=32), scheduler)
    await session.start()
    assert render_threads() == before + 1
    await session.aclose()
    for _ in range(100):
        if render_threads() == before:
            break
        await asyncio.sleep(0.01)
    assert render_threads() == before


async def test_a_realtime_scheduler_shortens_the_gil_switch_interval():
    import sys

    from stylecast.engine.scheduler import GIL_SWITCH_S

    before = sys.getswitchinterval()
    sys.setswitchinterval(0.005)
    try:
        scheduler = Scheduler(BaselineMotion(), "realtime")
        session = Session(None, "neutral", SessionConfig(video=False), scheduler)
        assert sys.getswitchinterval() == 0.005  # nothing changes until a worker runs
        await session.start()
        assert sys.getswitchinterval() == pytest.approx(GIL_SWITCH_S)
        await session.aclose()
    finally:
        sys.setswitchinterval(before)


def test_rt_priority_comes_from_the_environment_and_is_checked(monkeypatch):
    from stylecast.engine.errors import InputError
    from stylecast.engine.scheduler import (
        RT_PRIORITY_ENV,
        consumer_priority,
        rt_priority_from_env,
    )

    assert consumer_priority(None) is None  # the frames' reader: one above the engine
    assert consumer_priority(10) == 11 and consumer_priority(99) == 99
    monkeypatch.delenv(RT_PRIORITY_ENV, raising=False)
    assert rt_priority_from_env() is None
    monkeypatch.setenv(RT_PRIORITY_ENV, " 20 ")
    assert rt_priority_from_env() == 20
    for bad in ("0", "100", "high", "-5"):
        monkeypatch.setenv(RT_PRIORITY_ENV, bad)
        with pytest.raises(InputError, match=RT_PRIORITY_ENV):
            rt_priority_from_env()


def test_use_rt_priority_sets_the_calling_thread_only_or_says_it_cannot(monkeypatch, caplog):
    import os

    from stylecast.engine.scheduler import use_rt_priority

    assert use_rt_priority(None) is False
    seen = {}

    def in_thread() -> None:
        seen["ok"] = use_rt_priority(5)
        seen["policy"] = os.sched_getscheduler(0)

    t = threading.Thread(target=in_thread)
    t.start()
    t.join()
    if seen["ok"]:  # allowed here (root): that thread runs SCHED_RR, this one is untouched
        assert seen["policy"] == os.SCHED_RR
    else:
        assert seen["policy"] == os.SCHED_OTHER
    assert os.sched_getscheduler(0) != os.SCHED_RR

    def refuse(*_):
        raise PermissionError("not allowed")

    monkeypatch.setattr(os, "sched_setscheduler", refuse)
    assert use_rt_priority(5) is False
    assert "refused" in caplog.text


async def test_a_realtime_scheduler_runs_its_worker_and_render_threads_at_its_priority():
    import os

    # admission lifted: a loaded machine's first renders (shader compiles) are not the point
    scheduler = Scheduler(BaselineMotion(), "realtime", rt_priority=3, budget=100.0)
    session = Session("default", "neutral", SessionConfig(size=32), scheduler)
    await session.start()
    threads = (scheduler._thread, session._worker._thread)
    policies = [os.sched_getscheduler(t.native_id) for t in threads]
    priorities = [os.sched_getparam(t.native_id).sched_priority for t in threads]
    await session.aclose()
    scheduler.close()
    if os.geteuid() == 0:  # the Python threads at one priority
        assert policies == [os.SCHED_RR, os.SCHED_RR] and priorities == [3, 3]
    assert Scheduler(BaselineMotion(), "manual", rt_priority=3).rt_priority is None


async def test_a_realtime_worker_freezes_start_up_objects_and_gives_them_back():
    import gc

    from stylecast.engine.scheduler import GC_FREEZE

    for _ in range(100):  # workers of earlier tests stop at their next turn
        if GC_FREEZE.holders == 0:
            break
        await asyncio.sleep(0.01)
    assert GC_FREEZE.holders == 0 and gc.get_freeze_count() == 0
    scheduler = Scheduler(BaselineMotion(), "realtime")
    session = Session(None, "neutral", SessionConfig(video=False), scheduler)
    await session.start()
    assert GC_FREEZE.holders == 1 and gc.get_freeze_count() > 1000  # start-up objects
    t0 = time.perf_counter()
    gc.collect()
    assert time.perf_counter() - t0 < 0.05
    await session.aclose()
    for _ in range(100):  # the worker stops at its next turn
        if scheduler._thread is None:
            break
        await asyncio.sleep(0.01)
    assert GC_FREEZE.holders == 0 and gc.get_freeze_count() == 0  # as before


async def test_manual_and_offline_schedulers_leave_the_collector_alone():
    import gc

    scheduler = Scheduler(BaselineMotion(), "offline")
    session = Session(None, "neutral", SessionConfig(video=False, realtime=False), scheduler)
    await session.start()
    assert gc.get_freeze_count() == 0
    await session.aclose()


async def test_a_slow_render_never_blocks_the_tick_nor_the_other_sessions(monkeypatch):
    draw = RenderWorker._draw

    def slow_at_48(self, renderer, expr, pose):  # the 48 px session needs 80 ms a frame
        if self.size == 48:
            time.sleep(0.08)
        return draw(self, renderer, expr, pose)

    monkeypatch.setattr(RenderWorker, "_draw", slow_at_48)
    scheduler = Scheduler(BaselineMotion(), "realtime", budget=100.0)
    monkeypatch.setattr(scheduler, "_admit", lambda session: None)  # the slow one skips
    slow = Session("default", "neutral", SessionConfig(size=48, seed=1), scheduler)
    fast = Session("default", "neutral", SessionConfig(size=32), scheduler)
    got: dict[str, list] = {"fast": [], "slow": []}

    async def read(name: str, s: Session) -> None:
        async for m in s:
            got[name].append(m)
            if len(got["fast"]) >= 60:
                return

    await slow.start()
    reading = asyncio.create_task(read("slow", slow))  # read from the start, as a server does
    await fast.start()
    await asyncio.gather(reading, read("fast", fast))
    await fast.aclose()
    await slow.aclose()
    ticks = [t for t in scheduler.trace if t.sessions == 2]
    # the worker never waited for the 80 ms renders (the median is robust to a busy machine)
    assert np.median([t.total_ms for t in ticks]) < 20
    assert sum(t.skipped for t in ticks) <= 2  # ... so its ticks were not late
    for frames in got.values():  # every frame, in order, with its audio
        assert [m.index for m in frames] == list(range(len(frames)))
    assert all(m.video is not None for m in got["fast"][-30:])  # the fast one is untouched
    recent = got["slow"][-30:]
    assert 0 < sum(m.video is not None for m in recent) < 20  # the slow one skips frames ...
    assert slow.stats.skipped_video >= sum(m.video is None for m in got["slow"])  # counted
    late = recent[-1].produced - got["fast"][-1].produced
    assert late < 0.2  # and stays within a few frames of the clock


class MelOnly(BaselineMotion):
    """A model that reads the log-mel window and no phoneme ids (as the exports do)."""

    reads = frozenset({"mel", "prosody", "noise"})


def test_front_ends_follow_what_the_model_reads():
    rt = Scheduler(BaselineMotion(), "realtime")
    try:  # the baseline reads phonemes: in real time its recognizers run in a child
        assert rt.recognizers is not None
        front = rt.front_end()
        assert front.recognizes and front._recognizer.pool is rt.recognizers
    finally:
        rt.close()
    mel = Scheduler(MelOnly(), "realtime")
    front = mel.front_end()
    assert mel.recognizers is None and not front.recognizes and front.computes_mel
    manual = Scheduler(BaselineMotion(), "manual")  # tests and files: in process
    assert manual.recognizers is None and manual.front_end().recognizes


async def test_a_dead_recognizer_process_stops_its_sessions_with_a_clear_error():
    import os
    import signal

    from stylecast.engine.errors import BackendError

    scheduler = Scheduler(BaselineMotion(), "realtime")
    session = Session(None, "neutral", SessionConfig(video=False), scheduler)
    await session.start()
    try:
        session.push_audio(tone(0.3), 16_000)
        for _ in range(10):
            await session.__anext__()
        os.kill(scheduler.recognizers.pid, signal.SIGKILL)
        session.push_audio(tone(0.3), 16_000)
        with pytest.raises(BackendError, match=r"recognizer process .* died"):
            for _ in range(30):
                await session.__anext__()
    finally:
        await session.aclose()
        scheduler.close()


def test_admission_adds_up_pipelined_renders_and_the_front_end():
    from collections import deque
    from types import SimpleNamespace

    def like(size: int, render_ms: float) -> SimpleNamespace:
        return SimpleNamespace(renders=True, size=size, _calibration_ms=render_ms)

    def admitted(model, size: int, render_ms: float, front_ms_per_s: float | None) -> int:
        s = Scheduler(model, "realtime")  # the default budget; nothing runs
        s.costs.render[size] = deque([render_ms] * 5)
        s.costs.overlap.extend([1.2] * 5)  # two render threads overlap a little
        s.costs.model.extend([0.3] * 5)
        if front_ms_per_s is not None:
            s.costs.front_rate.extend([front_ms_per_s] * 5)
        while len(s._sessions) < 20:
            try:
                s._admit(like(size, render_ms))
            except CapacityError as e:
                assert "when speaking" in str(e)
                return len(s._sessions)
            s._sessions.append(like(size, render_ms))
        return len(s._sessions)

    # figures of the last capacity runs (real-time threads): render ~5.4 ms at 512 px and
    # ~3 ms at 256 (wall, two threads), front end 55-80 ms per audio second with the
    # recognizer: 3 sessions held at 512 and 5 at 256, and admission must stop there
    assert admitted(BaselineMotion(), 512, 5.4, 60.0) == 3
    assert admitted(BaselineMotion(), 256, 3.0, 60.0) == 5
    # a model that reads no phonemes costs less per session before any is measured
    assert admitted(MelOnly(), 512, 5.4, None) > admitted(BaselineMotion(), 512, 5.4, None)


def test_admission_counts_a_sessions_worse_frames_not_its_median():
    from collections import deque
    from types import SimpleNamespace

    s = Scheduler(BaselineMotion(), "realtime")
    session = SimpleNamespace(renders=True, size=512, _calibration_ms=4.0)
    s.costs.overlap.extend([1.0] * 10)
    s.costs.front_rate.extend([30.0] * 10)  # 1 ms per frame
    s.costs.model.extend([0.5] * 10)
    s.costs.render[512] = deque([4.0] * 10)
    steady = s.estimate_ms(session)
    assert steady == pytest.approx(4.0 + 1.0 + 0.5)
    # the same median, but one frame in five takes 9 ms: that is what makes frames late
    s.costs.render[512] = deque([4.0] * 8 + [9.0] * 2)
    assert s.estimate_ms(session) > steady + 3.0
