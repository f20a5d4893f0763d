"""Live sessions end to end: latency, capacity, A/V drift, barge-in, memory.

    python -m bench.bench_session [--latency-s 40] [--latency-runs 3] [--capacity-s 20]
        [--motion onnx-cpu] [--rt-priority 10]

- latency: one real-time 512 px session; espeak-ng speech pushed in 20 ms chunks at the
  pace a microphone delivers them (each chunk when its last sample exists); latency of a
  chunk = the time the first frame playing its first sample leaves the iterator minus the
  time the chunk entered push_audio. p50/p95, with the per-stage costs.
- capacity: n real-time sessions (each speaking, each with its own consumer task) for
  --capacity-s seconds at 512 and 256 px, from n = --start-512 / --start-256 up until a
  video frame is dropped or skipped, frames leave late, or audio underruns (down, if the
  first level fails); admission control is lifted for the probe, and separately we report
  how many sessions it admits. The scheduler's tick trace gives each stage's distribution
  and the worst ticks. --compare-threads also runs the first 512 px level with one render
  thread (the old sequential rendering) for a side-by-side figure.
- drift: --drift-min minutes of media through an offline motion-only session (faster than
  real time), a sentence every 10 s: each segment must start on the frame the clock
  predicts, and its samples must sit at exactly 1600 * frame in the output.
- barge-in: clear() while the mouth is open -> the first frame with the mouth closed.
- memory: RSS before and after the drift run and the latency run.

--motion picks the motion backend (engine/backends.py; the baseline by default), and
--rt-priority runs the engine's threads and the benchmark's event loop under SCHED_RR
(`Scheduler(rt_priority=)`, docs/engine.md "Stalls").

Writes section "session" of docs/benchmarks.md ("session-MOTION" for another backend, and
"-rt" with --rt-priority). The machine is shared: `uptime` is recorded.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

import numpy as np

from bench.report import write_section
from stylecast.engine.backends import load_backend
from stylecast.engine.clock import to_int16
from stylecast.engine.face import INDEX
from stylecast.engine.scheduler import (
    DEFAULT_BUDGET,
    DEFAULT_RENDER_THREADS,
    Scheduler,
    consumer_priority,
    use_rt_priority,
)
from stylecast.engine.session import (
    PLAYBACK_FINISHED,
    SEGMENT_STARTED,
    Session,
    SessionConfig,
)
from stylecast.engine.video import load_audio

JAW = INDEX["jawOpen"]
CLOSED = 0.06
CHUNK_S = 0.02
TEXT = (
    "The quick brown fox jumps over the lazy dog. Please call Stella and ask her to bring "
    "these things with her from the store: six spoons of fresh snow peas, five thick slabs "
    "of blue cheese, and maybe a snack for her brother Bob. We also need a small plastic "
    "snake and a big toy frog for the kids. She can scoop these things into three red bags, "
    "and we will go meet her Wednesday at the train station. "
)


class Engine:
    """What every scheduler of the run uses: the motion backend (loaded once) and the
    real-time priority of its threads (set from the command line)."""

    motion = "baseline"
    rt_priority: int | None = None
    _model = None

    @classmethod
    def scheduler(cls, mode: str = "realtime", **kwargs) -> Scheduler:
        if cls._model is None:
            cls._model = load_backend(cls.motion)
        return Scheduler(cls._model, mode, rt_priority=cls.rt_priority, **kwargs)


def speech(seconds: float, rate: int = 16_000) -> np.ndarray:
    """At least `seconds` of espeak-ng speech at `rate`."""
    with tempfile.TemporaryDirectory() as d:
        wav = Path(d) / "s.wav"
        reps = 1
        while True:
            subprocess.run(["espeak-ng", "-w", str(wav), TEXT * reps], check=True)
            audio = load_audio(wav, rate)
            if len(audio) >= seconds * rate:
                return audio[: int(seconds * rate)]
            reps *= 2


def rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS"):
            return int(line.split()[1]) / 1024
    return float("nan")


def load() -> str:
    return subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()


def autogroup_note() -> str:
    """Linux autogroup scheduling shares the CPU between sessions (process groups) first and
    applies nice values only within each: other sessions' `nice -n 19` jobs then take as
    much CPU as this benchmark."""
    try:
        on = Path("/proc/sys/kernel/sched_autogroup_enabled").read_text().strip() == "1"
    except OSError:
        return ""
    if not on:
        return "Autogroup scheduling is off: nice values order all processes."
    return (
        "Autogroup scheduling is on (`kernel.sched_autogroup_enabled = 1`): the CPU is shared "
        "between sessions first and nice values only order processes within one, so other "
        "sessions' `nice -n 19` jobs compete with this benchmark as equals."
    )


async def pace_pushes(
    session: Session, audio: np.ndarray, rate: int, log: list, pause_s: tuple = ()
) -> None:
    """Push 20 ms chunks when their last sample exists; log (push time, segment, first
    sample, the session's media time at the push). With pause_s, the audio is cut into
    len(pause_s) + 1 segments with those pauses between them (each ended by end_segment)."""
    n = int(CHUNK_S * rate)
    cuts = np.linspace(0, len(audio), len(pause_s) + 2).astype(int)
    t0 = time.perf_counter()
    offset = 0.0  # seconds of pauses so far
    for k in range(len(cuts) - 1):
        seg = audio[cuts[k] : cuts[k + 1]]
        base = cuts[k]
        for a in range(0, len(seg), n):
            due = t0 + offset + (base + a + n) / rate
            await asyncio.sleep(max(due - time.perf_counter(), 0))
            log.append((time.perf_counter(), k, a, session.scheduler.media_time(session)))
            session.push_audio(seg[a : a + n], rate)
        session.end_segment()
        if k < len(pause_s):
            offset += pause_s[k]


def trace_stats(scheduler: Scheduler, worst: int = 5) -> dict:
    """Distribution of each tick stage (ms) over the scheduler's trace, and the worst ticks."""
    trace = [t for t in scheduler.trace if t.sessions]
    out = {}
    for key in ("late_ms", "ingest_ms", "model_ms", "render_ms", "total_ms"):
        v = np.array([getattr(t, key) for t in trace])
        out[key] = (float(np.median(v)), float(np.percentile(v, 99)), float(v.max()))
    slow = sorted(trace, key=lambda t: -(t.late_ms + t.total_ms))[:worst]
    out["worst"] = [
        f"tick {t.tick}: started {t.late_ms:.0f} ms late, ingest {t.ingest_ms:.1f} "
        f"(CPU {t.ingest_cpu_ms:.1f}), model "
        f"{t.model_ms:.1f}, render {t.render_ms:.1f}, total {t.total_ms:.1f}"
        + (" (video skipped)" if t.skipped else "")
        for t in sorted(slow, key=lambda t: t.tick)
    ]
    return out


async def latency(seconds: float, size: int, segments: int = 8) -> dict:
    audio = speech(seconds)
    scheduler = Engine.scheduler()
    session = Session("default", "neutral", SessionConfig(size=size), scheduler)
    await session.start()
    for _ in range(15):  # settle
        await session.__anext__()
    rss0 = rss_mb()
    pushes: list = []
    leave: dict[int, float] = {}
    starts: dict[int, int] = {}
    lateness = []
    t_first = None
    rng = np.random.default_rng(0)
    pauses = tuple(rng.uniform(0.5, 1.5, segments - 1))  # random frame phase per segment
    pusher = asyncio.create_task(pace_pushes(session, audio, 16_000, pushes, pauses))
    finished = 0
    async for m in session:
        now = time.perf_counter()
        leave[m.index] = now
        if t_first is None:
            t_first = (now, m.index)
        lateness.append(now - (t_first[0] + (m.index - t_first[1]) / 30))
        for e in m.events:
            if e.kind == SEGMENT_STARTED:
                starts[e.segment] = m.index
            if e.kind == PLAYBACK_FINISHED:
                finished += 1
        if finished == segments:
            break
    await pusher
    stats = session.stats
    delay = session.lookahead_frames
    await session.aclose()
    lat = []
    # A real-time segment starts between frames: its audio begins after a lead of silence
    # (engine/playout.py), fixed by the media time of its first push; chunk a's first
    # sample plays in frame S + (lead + a) // 533.3
    lead = {}
    for _, k, a, media_s in pushes:
        if a == 0:
            frac = (media_s * 30 + delay) % 1.0
            lead[k] = round(frac * 16_000 / 30)
            lead[k] = 0 if lead[k] * 30 >= 16_000 else lead[k]
    for t_push, k, a, _ in pushes:
        frame = starts[k] + ((lead[k] + a) * 30) // 16_000
        if frame in leave:
            lat.append(1000 * (leave[frame] - t_push))
    c = scheduler.costs
    return {
        "p50": float(np.percentile(lat, 50)),
        "p95": float(np.percentile(lat, 95)),
        "max": float(np.max(lat)),
        "chunks": len(lat),
        "segments": segments,
        "delay_frames": delay,
        "features": c.median(c.features),
        "model": c.median(c.model),
        "render": c.median(c.render.get(size, [])),
        "tick": c.median(c.tick),
        "wall_drift_ms": 1000 * (lateness[-1] - statistics.median(lateness[:30])),
        "dropped": stats.dropped_video,
        "skipped": stats.skipped_video,
        "underruns": stats.underruns,
        "rss": (rss0, rss_mb()),
        "late_ticks": scheduler.late_ticks,
        "front_lookahead": scheduler.phoneme_lookahead if not scheduler.reads_mel else 3,
    }


async def run_sessions(
    n: int, size: int, seconds: float, audio: np.ndarray, render_threads: int | None = None
) -> dict:
    threads = render_threads or DEFAULT_RENDER_THREADS
    scheduler = Engine.scheduler(budget=100.0, render_threads=threads)
    scheduler.prewarm(n)  # as a server does at start-up: joins then stall nobody
    sessions = [
        Session("default", "neutral", SessionConfig(size=size, seed=i), scheduler) for i in range(n)
    ]
    counts = [0] * n
    late: list[float] = []  # ms a frame left after its deadline on the session's clock
    t_end = time.perf_counter() + seconds + 30.0  # set once every session is in

    async def consume(i: int, s: Session) -> None:
        async for m in s:
            counts[i] += 1
            # the frame's deadline on the scheduler's clock (its tick's start time)
            due = scheduler._t0 + (s._first_tick + m.index) / 30
            late.append(1000 * (time.monotonic() - due))
            if time.perf_counter() > t_end:
                return

    tasks = []
    for i, s in enumerate(sessions):  # each read from the moment it is in, as a server does
        await s.start()
        tasks.append(asyncio.create_task(consume(i, s)))
    t_end = time.perf_counter() + seconds
    pushers = [
        asyncio.create_task(pace_pushes(s, np.roll(audio, 8000 * i), 16_000, []))
        for i, s in enumerate(sessions)
    ]
    cpu0, wall0 = time.process_time(), time.perf_counter()
    await asyncio.gather(*tasks)
    cpu = (time.process_time() - cpu0) / (time.perf_counter() - wall0)  # cores, all threads
    for p in pushers:
        p.cancel()
    dropped = sum(s.stats.dropped_video for s in sessions)
    skipped = sum(s.stats.skipped_video for s in sessions)
    underruns = sum(s.stats.underruns for s in sessions)
    tick = scheduler.costs.median(scheduler.costs.tick)
    for s in sessions:
        await s.aclose()
    p99 = float(np.percentile(late, 99))
    return {"dropped": dropped, "skipped": skipped, "late_p99": p99,
            "late_max": float(np.max(late)), "underruns": underruns, "tick": tick,
            "frames": sum(counts), "threads": threads, "trace": trace_stats(scheduler),
            "cpu": cpu,
            "ok": dropped == skipped == underruns == 0 and p99 < 1000 / 30}  # fmt: skip


async def probe(n: int, size: int, seconds: float, audio: np.ndarray) -> dict:
    r = await run_sessions(n, size, seconds, audio)
    r["seconds"] = seconds
    shown = {k: v for k, v in r.items() if k != "trace"}
    print(f"capacity {size}px n={n}, {seconds:.0f} s: {shown}")
    for line in r["trace"]["worst"]:
        print("   ", line, flush=True)
    return r


async def capacity(
    size: int, seconds: float, audio: np.ndarray, start: int, max_n: int, screen_s: float
) -> tuple[int, list]:
    """Screen with short runs up from `start` while they pass (down while they fail), then
    confirm the most that passed with a full run (one fewer if it fails, and so on):
    (most sessions that passed a full run, rows (n, result))."""
    rows, best, n, step = [], 0, start, 0
    while screen_s < seconds and 1 <= n <= max_n:
        r = await probe(n, size, screen_s, audio)
        rows.append((n, r))
        if r["ok"]:
            best = max(best, n)
            if step < 0:
                break
            step = 1
        else:
            if step > 0:
                break
            step = -1
        n += step
    n = best if screen_s < seconds else start
    best = 0
    while n >= 1:
        r = await probe(n, size, seconds, audio)
        rows.append((n, r))
        if r["ok"]:
            best = n
            break
        n -= 1
    return best, sorted(rows, key=lambda x: (x[1]["seconds"], x[0]))


async def lateness(session: Session, late: list[float]) -> None:
    """Read a session's frames, noting how long after its deadline each left (ms)."""
    scheduler = session.scheduler
    async for m in session:
        due = scheduler._t0 + (session._first_tick + m.index) / 30
        late.append(1000 * (time.monotonic() - due))


async def join_stall(size: int, prewarm: bool, trials: int = 3) -> list[float]:
    """Worst lateness (ms) of a live session's frames while another session joins (its
    front end made ahead, or on the spot), one figure per trial."""
    out = []
    for trial in range(trials):
        scheduler = Engine.scheduler(budget=100.0)
        if prewarm:
            scheduler.prewarm(2)
        live = Session("default", "neutral", SessionConfig(size=size), scheduler)
        await live.start()
        late: list[float] = []

        task = asyncio.create_task(lateness(live, late))
        await asyncio.sleep(1.0)
        late.clear()
        other = Session("default", "neutral", SessionConfig(size=size, seed=trial), scheduler)
        await other.start()
        await asyncio.sleep(1.0)
        await other.aclose()
        await live.aclose()
        await task
        out.append(max(late))
    return out


async def admitted(size: int, max_n: int) -> tuple[int, str]:
    """How many sessions admission control lets in (default budget), and its message."""
    scheduler = Engine.scheduler()
    scheduler.prewarm(max_n)  # as a server does at start-up
    sessions, reason = [], ""
    try:
        for i in range(max_n):
            s = Session("default", "neutral", SessionConfig(size=size, seed=i), scheduler)
            try:
                await s.start()
            except Exception as e:  # CapacityError
                reason = str(e)
                break
            sessions.append(s)
            for _ in range(45):  # let the scheduler measure the new load
                for t in sessions:
                    while t._out:
                        await t.__anext__()
                await asyncio.sleep(1 / 30)
    finally:
        for s in sessions:
            await s.aclose()
    return len(sessions), reason


async def drift(minutes: float) -> dict:
    sentence = to_int16(speech(3.0, 48_000))
    frames_total = int(minutes * 60 * 30)
    scheduler = Engine.scheduler("manual")
    session = Session(None, "neutral", SessionConfig(video=False), scheduler)
    await session.start()
    rss0 = rss_mb()
    every = 300  # a sentence every 10 s
    bad_pts, starts, expected, mismatched = 0, [], [], 0
    t0 = time.perf_counter()
    recent: dict[int, np.ndarray] = {}
    for t in range(frames_total):
        if t % every == 0:
            session.push_audio(sentence, 48_000)
            session.end_segment()
            expected.append(t + int(np.ceil(session._playout.delay_frames(48_000))))
        scheduler.tick()
        m = await session.__anext__()
        if m.audio.pts != m.pts:
            bad_pts += 1
        recent[m.index] = m.audio.pcm
        recent.pop(m.index - 200, None)
        for e in m.events:
            if e.kind == SEGMENT_STARTED:
                starts.append(m.index)
            if e.kind == PLAYBACK_FINISHED:
                first = starts[-1]
                got = np.concatenate([recent[i] for i in range(first, m.index + 1)])
                if not np.array_equal(got[: len(sentence)], sentence):
                    mismatched += 1
    elapsed = time.perf_counter() - t0
    await session.aclose()
    off = [s - e for s, e in zip(starts, expected, strict=False)]
    return {
        "minutes": minutes,
        "segments": len(starts),
        "max_offset_frames": int(np.max(np.abs(off))) if off else None,
        "mismatched": mismatched,
        "bad_pts": bad_pts,
        "speed": frames_total / 30 / elapsed,
        "rss": (rss0, rss_mb()),
    }


def open_jaw() -> float:
    """jawOpen above which the mouth counts as open for the barge-in trials (the learned
    models open it less than the baseline's fixed visemes)."""
    return 0.3 if Engine.motion == "baseline" else 0.15


async def barge_in(trials: int) -> list[tuple[float, int]]:
    """(ms from clear() to the first closed-mouth frame leaving the iterator, frames) per
    trial; a trial whose mouth never opens within its 12 s of speech is left out."""
    audio = speech(12.0)
    out = []
    scheduler = Engine.scheduler()
    session = Session("default", "neutral", SessionConfig(size=256), scheduler)
    await session.start()
    for _ in range(trials):
        session.push_audio(audio, 16_000)
        session.end_segment()
        opened, t_clear, f_clear, first = 0, None, None, None
        async for m in session:
            first = m.index if first is None else first
            if m.index - first > 30 * 14:  # the speech is over: no open mouth to cut
                break
            jaw = m.motion.expr[JAW]
            if t_clear is None:
                opened = opened + 1 if jaw > open_jaw() else 0
                if opened >= 2:
                    t_clear, f_clear = time.perf_counter(), m.index
                    session.clear()
            elif jaw < CLOSED and m.produced > t_clear:  # made after the clear() call
                out.append((1000 * (time.perf_counter() - t_clear), m.index - f_clear))
                break
        for _ in range(20):
            await session.__anext__()
    await session.aclose()
    return out


def cpu_share(seconds: float = 2.0) -> float:
    """Share of one core a busy Python thread gets right now (1.0 on an idle machine)."""
    w, c = time.perf_counter(), time.process_time()
    while time.perf_counter() - w < seconds:
        pass
    return (time.process_time() - c) / (time.perf_counter() - w)


CAP_COLUMNS = (
    "size", "run (s)", "sessions", "render threads", "frames", "tick ms (median)",
    "late p99 / max, ms", "dropped", "skipped", "underruns", "process CPU (cores)", "pass",
)  # fmt: skip
CMP_COLUMNS = (
    "render threads", "tick ms (median)", "render ms per tick (median / p99)",
    "late p99 / max, ms", "dropped", "skipped", "process CPU (cores)",
)  # fmt: skip


def table(columns: tuple[str, ...], rows: list[str]) -> str:
    head = "| " + " | ".join(columns) + " |\n|" + "---|" * len(columns)
    return "\n".join([head, *rows])


def cmp_row(r: dict) -> str:
    render = r["trace"]["render_ms"]
    return (
        f"| {r['threads']} | {r['tick']:.1f} | {render[0]:.1f} / {render[1]:.1f} | "
        f"{r['late_p99']:.0f} / {r['late_max']:.0f} | {r['dropped']} | {r['skipped']} | "
        f"{r['cpu']:.2f} |"
    )


def stage_rows(trace: dict) -> str:
    names = {
        "late_ms": "tick start after its deadline",
        "ingest_ms": "front end (what was left at the tick)",
        "model_ms": "model step (batched)",
        "render_ms": "render, all sessions (wall)",
        "total_ms": "whole tick",
    }
    return "\n".join(
        f"| {label} | {trace[k][0]:.1f} | {trace[k][1]:.1f} | {trace[k][2]:.1f} |"
        for k, label in names.items()
    )


def motion_text(front_lookahead: int) -> str:
    if Engine.motion == "baseline":
        return (
            "Motion model: the rule-based viseme baseline (`engine/baseline.py`), which reads "
            "no\nlog-mel window, so the front end skips it and decides phonemes with a "
            f'look-ahead of\n{front_lookahead} frames (as accurate as 3: section "Audio front '
            'end", "Look-ahead").'
        )
    model = Engine._model
    return (
        f"Motion model: `--motion {Engine.motion}` ({model.name}, model look-ahead "
        f"{model.lookahead} frames), which reads {', '.join(sorted(model.reads))}: the front "
        f"end computes the log-mel window, whose look-ahead is {front_lookahead} frames."
    )


def join_note() -> str:
    """Where a front end made on the spot spends its time, for the join figures."""
    model = Engine._model
    if "phonemes" not in model.reads:
        return "this model's front end has no phone recognizer: nothing to load"
    return (
        "a new front end's recognizer loads its models in the recognizer process, not "
        "holding this process's GIL"
    )


def priority_text() -> str:
    if Engine.rt_priority is None:
        return (
            "The engine's threads ran under the ordinary scheduler (no `--rt-priority`), at "
            "the process's nice value."
        )
    return (
        f"The engine's worker and render threads ran under SCHED_RR at priority "
        f"{Engine.rt_priority}, the benchmark's event loop one above (`--rt-priority`; the "
        f"engine's "
        f'`Scheduler(rt_priority=)` / `STYLECAST_RT_PRIORITY`; docs/engine.md "Stalls"): '
        f"they run as soon as they wake, whatever else the machine runs."
    )


async def amain(args) -> None:
    use_rt_priority(consumer_priority(args.rt_priority))  # the event loop (the consumers) too
    uptime0 = load()
    share0 = cpu_share()
    print(uptime0, share0, flush=True)
    runs = []
    for _ in range(args.latency_runs):
        runs.append(await latency(args.latency_s, 512))
        print("latency", runs[-1], flush=True)
    lat = dict(runs[0])
    for key in ("p50", "p95", "max", "features", "model", "render", "tick", "wall_drift_ms"):
        lat[key] = statistics.median(r[key] for r in runs)
    for key in ("chunks", "dropped", "skipped", "underruns", "late_ticks"):
        lat[key] = sum(r[key] for r in runs)
    lat["rss"] = (runs[0]["rss"][0], runs[-1]["rss"][1])
    per_run = ", ".join(f"{r['p50']:.0f}/{r['p95']:.0f}" for r in runs)
    bi = await barge_in(args.barge_trials)
    print("barge-in", bi, flush=True)
    dr = await drift(args.drift_min)
    print("drift", dr, flush=True)
    audio = speech(max(args.capacity_s, 10.0) + 5)
    cap = {}
    starts = {512: args.start_512, 256: args.start_256}
    for size in (512, 256):
        cap[size] = await capacity(
            size, args.capacity_s, audio, starts[size], args.max_sessions, args.screen_s
        )
    compare = None
    n_cmp = max(cap[512][0], 2)
    if args.compare_threads:
        one = await run_sessions(n_cmp, 512, args.compare_s, audio, render_threads=1)
        two = await run_sessions(n_cmp, 512, args.compare_s, audio)
        compare = (one, two)
        print("one render thread:", {k: v for k, v in one.items() if k != "trace"}, flush=True)
    joins = {warm: await join_stall(512, warm) for warm in (False, True)}
    print("join stalls", joins, flush=True)
    adm = {size: await admitted(size, args.max_sessions) for size in (512, 256)}
    uptime1 = load()
    share1 = cpu_share()
    print(uptime1, share1, flush=True)

    bi_ms = [b[0] for b in bi]
    bi_fr = [b[1] for b in bi]
    barge_text = (
        f"`clear()` while the mouth is open (jawOpen > {open_jaw()} for 2 frames) → the first "
        f"frame made after the call with jawOpen < {CLOSED} leaving the iterator: median "
        f"{statistics.median(bi_ms):.0f} ms (max {max(bi_ms):.0f} ms), i.e. "
        f"{statistics.median(bi_fr):.0f} frames after the frame on which clear() was called "
        f"(max {max(bi_fr)})."
        if bi
        else f"The mouth never opened past jawOpen {open_jaw()} for 2 frames: not measured."
    )

    def cap_row(size: int, n: int, r: dict) -> str:
        return (
            f"| {size} | {r['seconds']:.0f} | {n} | {r['threads']} | {r['frames']} | "
            f"{r['tick']:.1f} | {r['late_p99']:.0f} / {r['late_max']:.0f} | {r['dropped']} | "
            f"{r['skipped']} | {r['underruns']} | {r['cpu']:.2f} | {'yes' if r['ok'] else 'no'} |"
        )

    cap_rows = [cap_row(size, n, r) for size in (512, 256) for n, r in cap[size][1]]
    top = {size: max(cap[size][1], key=lambda x: (x[1]["ok"], x[0])) for size in (512, 256)}
    n512, r512 = top[512]
    compare_text = ""
    if compare:
        one, two = compare
        compare_text = f"""
Side by side, {n_cmp} sessions at 512 px, the same {args.compare_s:.0f} s run with one
render thread (frames drawn one after the other, as before) and with {two["threads"]}:

{table(CMP_COLUMNS, [cmp_row(one), cmp_row(two)])}
"""
    worst = "\n".join(f"- {w}" for w in r512["trace"]["worst"])
    body = f"""
Load while measuring (the machine is shared): before `{uptime0}`; after `{uptime1}`.
A busy Python thread got {share0:.0%} / {share1:.0%} of a core (before / after): the
figures below were taken with roughly that much of the machine. {autogroup_note()}
{priority_text()}
{motion_text(lat["front_lookahead"])}

### Latency (one real-time 512 px session, 16 kHz speech in 20 ms chunks at microphone pace)

From a chunk entering `push_audio` to the first frame that plays its first sample leaving
the iterator, {args.latency_runs} runs of {args.latency_s:.0f} s of speech ({lat["chunks"]}
chunks in all), each in {lat["segments"]} segments with 0.5-1.5 s pauses so that each starts
at a different phase of the frame grid; medians over runs:
**p50 {lat["p50"]:.0f} ms, p95 {lat["p95"]:.0f} ms** (max {lat["max"]:.0f} ms; p50/p95 of
each run: {per_run}). Target: p95 <= 150 ms.

| stage | contributes |
|---|---|
| playout delay: 1 frame + front-end look-ahead {lat["front_lookahead"]} + model look-ahead \
{Engine._model.lookahead} + jitter 10 ms = {lat["delay_frames"]:.2f} frames from the first push \
to the segment's first sample (real-time segments start between frames: no rounding to the \
frame grid) | \
{1000 * lat["delay_frames"] / 30:.0f} ms |
| where the chunk falls in its frame (the frame showing it began earlier) | -33-0 ms |
| front end (features), per session per tick, median | {lat["features"]:.2f} ms |
| model step (batched), median | {lat["model"]:.2f} ms |
| render 512 px, median | {lat["render"]:.2f} ms |
| whole tick, median | {lat["tick"]:.2f} ms |

A chunk's first sample was spoken 20 ms before the chunk is pushed, so the definition
measures from 20 ms after the sound. Frames leave at their 30 FPS deadline plus the tick's
work. 48 kHz input adds the resampler's ~21 ms hold-back. Dropped video frames
{lat["dropped"]}, skipped {lat["skipped"]}, underruns {lat["underruns"]}, late ticks \
{lat["late_ticks"]}; the media clock ran {lat["wall_drift_ms"]:+.1f} ms against the wall \
clock over a run (median; a negative figure is the worker falling behind when the machine \
starves it).

### Capacity ({args.capacity_s:.0f} s runs)

Levels are picked with {args.screen_s:.0f} s runs, then the most sessions that passed is
confirmed with a {args.capacity_s:.0f} s run (one fewer if it fails).

Every session speaks (20 ms chunks at microphone pace) and has its own consumer task in
the same event loop; front ends made ahead (`Scheduler.prewarm`, as at server start-up).
Admission control lifted for the probe. A run passes when no video frame was dropped
(slow consumer) or skipped (worker behind), no audio underran, and 99% of frames left the
iterator less than one frame (33 ms) after their deadline on the session clock. Process
CPU: CPU time of the whole process (all threads) per wall-clock second, in cores (the
machine has 2).

{table(CAP_COLUMNS, cap_rows)}

**Most sessions with no dropped frame, measured at this load: {cap[512][0]} at 512×512,
{cap[256][0]} at 256×256.** Target: >= 4 at 512×512.
Admission control (default budget {DEFAULT_BUDGET:.0%} of 33.3 ms) admitted {adm[512][0]} at 512 and
{adm[256][0]} at 256 before refusing: "{adm[512][1] or adm[256][1]}"
{compare_text}
A session joining while another (512 px) is live: the live one's latest frame during the
join left {statistics.median(joins[False]):.0f} ms after its deadline when the joiner's
front end was made on the spot, and {statistics.median(joins[True]):.0f} ms with front ends
made ahead (medians of {len(joins[True])} trials; the renderer is made on the joiner's own
thread either way; {join_note()}).

Where the time goes, {n512} sessions at 512 px (every tick of the run, ms; from
`Scheduler.trace`):

| stage | median | p99 | max |
|---|---|---|---|
{stage_rows(r512["trace"])}

Its worst ticks:

{worst}

### A/V sync and drift ({dr["minutes"]:.0f} min of media, offline, {dr["speed"]:.0f}x real time)

{dr["segments"]} segments (one 3 s sentence every 10 s, 48 kHz int16): every segment started
on the frame the clock predicted (largest offset {dr["max_offset_frames"]} frames), its
samples came out bit-exact at 1600 × frame in {dr["segments"] - dr["mismatched"]} of
{dr["segments"]}, and audio pts ≠ video pts on {dr["bad_pts"]} frames. Drift: 0 frames by
construction (frame t carries samples [1600 t, 1600 (t+1))), checked above.

### Barge-in ({len(bi)} of {args.barge_trials} trials, real-time 256 px)

{barge_text}

### Memory

RSS over the {dr["minutes"]:.0f}-minute drift run: {dr["rss"][0]:.0f} → {dr["rss"][1]:.0f} MB;
over the {args.latency_s:.0f} s real-time 512 px latency run: \
{lat["rss"][0]:.0f} → {lat["rss"][1]:.0f} MB.
"""
    name, title = "session", "Live sessions (engine/session.py)"
    if Engine.motion != "baseline":
        name, title = f"session-{Engine.motion}", f"{title}, `--motion {Engine.motion}`"
    if Engine.rt_priority is not None:
        name, title = f"{name}-rt", f"{title}, real-time threads"
    write_section(name, title, body)
    print(body)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--latency-s", type=float, default=40.0)
    ap.add_argument("--latency-runs", type=int, default=3)
    ap.add_argument("--capacity-s", type=float, default=20.0)
    ap.add_argument("--drift-min", type=float, default=10.0)
    ap.add_argument("--barge-trials", type=int, default=10)
    ap.add_argument("--max-sessions", type=int, default=10)
    ap.add_argument("--start-512", type=int, default=4, help="first 512 px level tried")
    ap.add_argument("--start-256", type=int, default=6, help="first 256 px level tried")
    ap.add_argument("--compare-threads", action="store_true")
    ap.add_argument("--screen-s", type=float, default=20.0, help="short runs that pick the level")
    ap.add_argument("--compare-s", type=float, default=30.0, help="each --compare-threads run")
    ap.add_argument("--motion", default="baseline", help="motion backend (engine/backends.py)")
    ap.add_argument("--rt-priority", type=int, help="SCHED_RR priority of the engine's threads")
    args = ap.parse_args()
    Engine.motion, Engine.rt_priority = args.motion, args.rt_priority
    os.environ.setdefault("PYTHONHASHSEED", "0")
    asyncio.run(amain(args))


if __name__ == "__main__":
    main()
