"""Where live sessions stall: n real-time sessions, every stall over a threshold, and what
happened in the process and on the machine at that moment.

    python -m bench.bench_stalls [--sessions 4] [--size 512] [--seconds 120] [--motion baseline]

The same load as bench_session's capacity probe (every session speaks 20 ms chunks at
microphone pace and has its own consumer task). Recorded while it runs:

- each frame's lateness as its consumer sees it (deadline on the session clock),
- the scheduler's tick trace (`Scheduler.trace`: start lateness, front end, model, render),
- the event loop's lag (a task that sleeps 2 ms and notes how much longer it took),
- Python's garbage collections (`gc.callbacks`: generation, duration, thread),
- per thread of the process, from a sampler *process* (so the GIL cannot hold it up):
  CPU time, time runnable but waiting for a CPU (`/proc/PID/task/TID/schedstat`) and page
  faults, every 10 ms; and the CPU the rest of the machine used (`/proc/stat`).

A stall is a frame that left more than --stall-ms after its deadline, a tick that started
or lasted that long, or an event-loop lag that long; overlapping ones are merged into
episodes and each is printed with what the recorders saw in its window.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections import defaultdict
from pathlib import Path

import numpy as np

from bench.bench_session import load, pace_pushes, speech
from bench.report import write_section
from stylecast.engine import render_worker
from stylecast.engine.backends import load_backend
from stylecast.engine.scheduler import DEFAULT_RENDER_THREADS, Scheduler
from stylecast.engine.session import Session, SessionConfig

SAMPLE_S = 0.010  # the sampler's period
CLK_TCK = os.sysconf("SC_CLK_TCK")
MAX_DOC_LINES = 70  # of the report, in docs/benchmarks.md


# ---------------------------------------------------------------------- sampler process


def sample(pid: int, out: Path) -> None:
    """Read /proc for `pid`'s threads every SAMPLE_S until SIGTERM; write JSON to `out`."""
    stop = False

    def on_term(*_: object) -> None:
        nonlocal stop
        stop = True

    signal.signal(signal.SIGTERM, on_term)
    fds: dict[int, tuple[int, int]] = {}  # tid -> (schedstat fd, stat fd)
    names: dict[int, str] = {}
    rows: dict[int, list] = defaultdict(list)  # tid -> [(t, run_ns, wait_ns, minflt)]
    machine: list = []  # (t, busy jiffies, total jiffies)
    task = f"/proc/{pid}/task"
    stat_fd = os.open("/proc/stat", os.O_RDONLY)
    next_scan = 0.0
    while not stop:
        t = time.monotonic()
        if t >= next_scan:
            try:
                for tid in map(int, os.listdir(task)):
                    if tid not in fds:
                        try:
                            fds[tid] = (
                                os.open(f"{task}/{tid}/schedstat", os.O_RDONLY),
                                os.open(f"{task}/{tid}/stat", os.O_RDONLY),
                            )
                            names[tid] = Path(f"{task}/{tid}/comm").read_text().strip()
                        except OSError:
                            pass
            except OSError:
                break  # the process ended
            next_scan = t + 0.25
        for tid, (fs, ft) in list(fds.items()):
            try:
                run, wait, _ = os.pread(fs, 200, 0).split()
                st = os.pread(ft, 1000, 0).decode()
            except OSError:
                del fds[tid]
                continue
            fields = st[st.rindex(")") + 2 :].split()
            rows[tid].append((t, int(run), int(wait), int(fields[7])))  # minflt = field 10
        cpu = os.pread(stat_fd, 200, 0).split(b"\n", 1)[0].split()[1:]
        v = [int(x) for x in cpu]
        machine.append((t, sum(v) - v[3] - v[4], sum(v)))  # busy = all but idle, iowait
        time.sleep(max(SAMPLE_S - (time.monotonic() - t), 0.001))
    out.write_text(json.dumps({"names": names, "rows": rows, "machine": machine}))


# ---------------------------------------------------------------------- the run


class Recorder:
    """GC collections and event-loop lag, stamped with time.monotonic()."""

    def __init__(self) -> None:
        self.gc: list[tuple[float, float, int, str, int]] = []  # start, end, gen, thread, n
        self.lag: list[tuple[float, float]] = []  # (time, lag ms) over 5 ms
        self._gc_start: dict[int, float] = {}

    def on_gc(self, phase: str, info: dict) -> None:
        tid = threading.get_native_id()
        if phase == "start":
            self._gc_start[tid] = time.monotonic()
        elif tid in self._gc_start:
            t0 = self._gc_start.pop(tid)
            name = threading.current_thread().name
            self.gc.append((t0, time.monotonic(), info["generation"], name, info["collected"]))

    async def watch_loop(self, until: float) -> None:
        while time.monotonic() < until:
            t = time.monotonic()
            await asyncio.sleep(0.002)
            lag = 1000 * (time.monotonic() - t) - 2.0
            if lag > 5:
                self.lag.append((time.monotonic(), lag))


async def run(args: argparse.Namespace, rec: Recorder) -> dict:
    model = load_backend(args.motion)
    # (rt_priority only when asked for: the script also measures engines from before it)
    rt = {} if args.rt_priority is None else {"rt_priority": args.rt_priority}
    scheduler = Scheduler(model, "realtime", budget=100.0, render_threads=args.render_threads, **rt)
    if rt:
        from stylecast.engine.scheduler import consumer_priority, use_rt_priority

        use_rt_priority(consumer_priority(args.rt_priority))  # the event loop (the consumers) too
    scheduler.prewarm(args.sessions)
    audio = speech(args.seconds + 10)
    sessions = [
        Session(
            "default",
            "neutral",
            SessionConfig(size=args.size, seed=i, motion=args.motion),
            scheduler,
        )
        for i in range(args.sessions)
    ]
    frames: list[tuple[float, int, int, float, bool]] = []  # (t, session, index, late, video)
    t_end = time.monotonic() + args.seconds + 10.0  # moved once every session is in

    async def consume(i: int, s: Session) -> None:
        async for m in s:
            now = time.monotonic()
            due = scheduler._t0 + (s._first_tick + m.index) / 30
            frames.append((now, i, m.index, 1000 * (now - due), m.video is not None))
            if now > t_end:
                return

    consumers = []
    for i, s in enumerate(sessions):  # each read from the moment it is in, as a server does
        await s.start()
        consumers.append(asyncio.create_task(consume(i, s)))
    t_end = time.monotonic() + args.seconds
    roles = {threading.get_native_id(): "event loop", scheduler._thread.native_id: "worker"}
    for i, s in enumerate(sessions):
        if s._worker is not None and s._worker._thread is not None:
            roles[s._worker._thread.native_id] = f"render {i}"
    pushers = [
        asyncio.create_task(pace_pushes(s, np.roll(audio, 8000 * i), 16_000, []))
        for i, s in enumerate(sessions)
    ]
    watcher = asyncio.create_task(rec.watch_loop(t_end))
    await asyncio.gather(*consumers)
    await watcher
    for p in pushers:
        p.cancel()
    stats = [s.stats for s in sessions]
    for s in sessions:
        await s.aclose()
    ticks = [
        (scheduler._t0 + t.tick / 30 + t.late_ms / 1000, t) for t in scheduler.trace if t.sessions
    ]
    return {"frames": frames, "ticks": ticks, "roles": roles, "stats": stats}


# ---------------------------------------------------------------------- analysis


def episodes(result: dict, rec: Recorder, stall_ms: float) -> list[tuple[float, float, str]]:
    """Merged windows (start, end, what) in which something stalled over stall_ms."""
    spans = []
    for t, i, idx, late, _ in result["frames"]:
        if late > stall_ms:
            spans.append((t - late / 1000, t, f"frame s{i}#{idx} {late:.0f} ms late"))
    for start, tr in result["ticks"]:
        if tr.late_ms > stall_ms or tr.total_ms > stall_ms:
            what = (
                f"tick {tr.tick} late {tr.late_ms:.0f} ingest {tr.ingest_ms:.0f} model "
                f"{tr.model_ms:.0f} render {tr.render_ms:.0f} total {tr.total_ms:.0f}"
            )
            spans.append((start - tr.late_ms / 1000, start + tr.total_ms / 1000, what))
    for t, lag in rec.lag:
        if lag > stall_ms:
            spans.append((t - lag / 1000, t, f"event loop lag {lag:.0f} ms"))
    spans.sort()
    merged: list[list] = []
    for a, b, what in spans:
        if merged and a <= merged[-1][1] + 0.02:
            merged[-1][1] = max(merged[-1][1], b)
            merged[-1][2].append(what)
        else:
            merged.append([a, b, [what]])
    return [(a, b, "; ".join(_squash(w))) for a, b, w in merged]


def _squash(whats: list[str]) -> list[str]:
    frames = [w for w in whats if w.startswith("frame")]
    rest = [w for w in whats if not w.startswith("frame")]
    if frames:
        worst = max(frames, key=lambda w: float(w.split()[2]))
        rest.insert(0, f"{len(frames)} frames late (worst: {worst})")
    return rest


def window(samples: dict, roles: dict, names: dict, a: float, b: float) -> list[str]:
    """Per thread: CPU ms, runnable-waiting ms and page faults in [a, b] (sampled)."""
    out = []
    for tid, rows in samples["rows"].items():
        arr = np.array(rows, dtype=np.float64)
        if len(arr) < 2 or arr[0, 0] > b or arr[-1, 0] < a:
            continue
        i0 = max(np.searchsorted(arr[:, 0], a) - 1, 0)
        i1 = min(np.searchsorted(arr[:, 0], b), len(arr) - 1)
        d = arr[i1] - arr[i0]
        run, wait, flt = d[1] / 1e6, d[2] / 1e6, int(d[3])
        if run > 2 or wait > 2 or flt > 50:
            role = roles.get(int(tid), names.get(tid, "?"))
            out.append((run + wait, f"{role}: cpu {run:.0f}, waiting {wait:.0f}, faults {flt}"))
    return [s for _, s in sorted(out, reverse=True)]


def threads_summary(samples: dict, roles: dict, names: dict, a: float, b: float) -> list[str]:
    """CPU and runqueue wait of each kind of thread over [a, b], in cores."""
    total: dict[str, list[float]] = defaultdict(lambda: [0.0, 0.0, 0])
    for tid, rows in samples["rows"].items():
        arr = np.array(rows, dtype=np.float64)
        i0 = min(np.searchsorted(arr[:, 0], a), len(arr) - 1)
        i1 = min(np.searchsorted(arr[:, 0], b), len(arr) - 1)
        role = roles.get(int(tid), names.get(tid, "?"))
        role = "render threads" if role.startswith("render") else role
        t = total[role]
        t[0] += (arr[i1, 1] - arr[i0, 1]) / 1e9 / (b - a)
        t[1] += (arr[i1, 2] - arr[i0, 2]) / 1e9 / (b - a)
        t[2] += 1
    return [
        f"{role} (x{n}): {run:.2f} / {wait:.2f}"
        for role, (run, wait, n) in sorted(total.items(), key=lambda x: -x[1][0])
        if run > 0.005 or wait > 0.005
    ]


def machine_share(samples: dict, ours: dict, a: float, b: float) -> tuple[float, float]:
    """(cores busy on the machine, cores used by this process) over [a, b]."""
    m = np.array(samples["machine"], dtype=np.float64)
    i0 = max(np.searchsorted(m[:, 0], a) - 1, 0)
    i1 = min(np.searchsorted(m[:, 0], b), len(m) - 1)
    dt = max(m[i1, 0] - m[i0, 0], 1e-3)
    busy = (m[i1, 1] - m[i0, 1]) / CLK_TCK / dt
    mine = 0.0
    for rows in samples["rows"].values():
        arr = np.array(rows, dtype=np.float64)
        j0 = np.searchsorted(arr[:, 0], m[i0, 0])
        j1 = np.searchsorted(arr[:, 0], m[i1, 0])
        j0, j1 = min(j0, len(arr) - 1), min(j1, len(arr) - 1)
        mine += (arr[j1, 1] - arr[j0, 1]) / 1e9 / dt
    return busy, mine


def report(args, result: dict, rec: Recorder, samples: dict) -> list[str]:
    lines = []
    frames = result["frames"]
    late = np.array([f[3] for f in frames])
    stats = result["stats"]
    lines.append(
        f"{args.sessions} x {args.size} px, {args.motion}, {args.seconds:.0f} s: {len(frames)} "
        f"frames, late p50 {np.median(late):.1f} / p99 {np.percentile(late, 99):.1f} / max "
        f"{late.max():.0f} ms; dropped {sum(s.dropped_video for s in stats)}, skipped "
        f"{sum(s.skipped_video for s in stats)}, underruns {sum(s.underruns for s in stats)}"
    )
    ticks = [t for _, t in result["ticks"]]
    for key in ("late_ms", "ingest_ms", "model_ms", "render_ms", "total_ms"):
        v = np.array([getattr(t, key) for t in ticks])
        lines.append(
            f"  tick {key}: median {np.median(v):.1f}, p99 "
            f"{np.percentile(v, 99):.1f}, max {v.max():.1f}"
        )
    gcs = defaultdict(list)
    for a, b, gen, _, _ in rec.gc:
        gcs[gen].append(1000 * (b - a))
    for gen in sorted(gcs):
        v = gcs[gen]
        lines.append(
            f"  gc gen {gen}: {len(v)} collections, median {np.median(v):.2f} ms, "
            f"max {max(v):.1f} ms"
        )
    lag = [x for _, x in rec.lag]
    lines.append(f"  event-loop lags over 5 ms: {len(lag)}, max {max(lag, default=0):.0f} ms")
    names = samples["names"]
    t0 = min(f[0] for f in frames) - 1
    t1 = max(f[0] for f in frames)
    busy, mine = machine_share(samples, result["roles"], t0, t1)
    lines.append(
        f"  machine busy {busy:.2f} cores, this process {mine:.2f}, others {busy - mine:.2f}"
    )
    lines.append("  per thread over the run (cores): on a CPU / runnable but waiting for one")
    for s in threads_summary(samples, result["roles"], names, t0, t1):
        lines.append(f"    {s}")
    eps = episodes(result, rec, args.stall_ms)
    lines.append(f"  stalls over {args.stall_ms:.0f} ms: {len(eps)} episode(s)")
    for a, b, what in eps:
        pad = 0.05
        lines.append(f"- at {a - t0:.2f} s, {1000 * (b - a):.0f} ms: {what}")
        for ga, gb, gen, thread, n in rec.gc:
            if ga <= b + pad and gb >= a - pad:
                lines.append(
                    f"    gc gen {gen} on {thread}: {1000 * (gb - ga):.1f} ms "
                    f"at {ga - a:+.3f} s ({n} collected)"
                )
        busy, mine = machine_share(samples, result["roles"], a - pad, b)
        lines.append(f"    machine {busy:.2f} cores busy, this process {mine:.2f}")
        for s in window(samples, result["roles"], names, a - pad, b)[:8]:
            lines.append(f"    {s}")
    return lines


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sessions", type=int, default=4)
    ap.add_argument("--size", type=int, default=512)
    ap.add_argument("--seconds", type=float, default=120.0)
    ap.add_argument("--motion", default="baseline")
    ap.add_argument("--stall-ms", type=float, default=50.0)
    ap.add_argument("--lp-threads", help="LP_NUM_THREADS for this run (default: llvmpipe's own)")
    ap.add_argument(
        "--gil-render",
        action="store_true",
        help="render holding the GIL (no ctypes glFinish; the old behaviour)",
    )
    ap.add_argument("--render-threads", type=int, default=DEFAULT_RENDER_THREADS)
    ap.add_argument("--rt-priority", type=int, help="SCHED_RR priority of the engine's threads")
    ap.add_argument("--write", metavar="LABEL", help="write section stalls-LABEL of the docs")
    ap.add_argument("--sample", nargs=2, metavar=("PID", "OUT"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.sample:
        sample(int(args.sample[0]), Path(args.sample[1]))
        return
    if args.lp_threads is not None:
        os.environ["LP_NUM_THREADS"] = args.lp_threads
    if args.gil_render:
        render_worker._finish_before_read = lambda renderer: None

    out = Path(f"/tmp/stalls-{os.getpid()}.json")
    sampler = subprocess.Popen(
        [sys.executable, "-m", "bench.bench_stalls", "--sample", str(os.getpid()), str(out)]
    )
    rec = Recorder()
    gc.callbacks.append(rec.on_gc)
    up0 = load()
    try:
        result = asyncio.run(run(args, rec))
    finally:
        gc.callbacks.remove(rec.on_gc)
        sampler.send_signal(signal.SIGTERM)
        sampler.wait()
    samples = json.loads(out.read_text())
    out.unlink()
    up1 = load()
    lines = report(args, result, rec, samples)
    print(f"load before: {up0}\nload after: {up1}")
    print("\n".join(lines))
    if args.write:
        setup = (
            f"SCHED_RR priority {args.rt_priority}"
            if args.rt_priority
            else "the ordinary scheduler (the process's nice value)"
        )
        if args.gil_render:
            setup += ", renders holding the GIL (no ctypes glFinish)"
        body = (
            f"Load: before `{up0}`; after `{up1}`. Engine threads: {setup}; render threads "
            f"{args.render_threads}; LP_NUM_THREADS {os.environ.get('LP_NUM_THREADS', 'unset')}."
            "\n\n```\n"
            + "\n".join(lines[:MAX_DOC_LINES])
            + "\n```"
            + ("\n\n(more episodes: the script's output)" if len(lines) > MAX_DOC_LINES else "")
        )
        title = f"Stalls, {args.sessions} x {args.size} px, {args.motion} ({args.write})"
        write_section(f"stalls-{args.write}", title, body)


if __name__ == "__main__":
    main()
