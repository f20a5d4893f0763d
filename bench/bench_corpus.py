"""How long the synthetic corpus takes to make, extrapolated to 20 hours of audio.

    python -m bench.bench_corpus [--hours 0.2] [--runs 3] [--workers 2]

1. Stage costs, in this process, on utterances of a real plan: CPU seconds per second of
   audio for espeak-ng synthesis, the performer, the streaming phone recognizer, packing.
2. End to end: `stylecast data synth` of HOURS with WORKERS processes, RUNS times (different
   seeds); wall time and the workers' CPU time. Medians.
3. Extrapolation to 20 hours: wall time measured here (under whatever load the machine has:
   the load average is printed), and the CPU-bound time on WORKERS otherwise idle cores.
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np

from bench.report import write_section
from stylecast.training import styles
from stylecast.training.corpus import CorpusConfig, _Worker, plan, synthesize
from stylecast.training.timeline import phone_ids_per_frame

TARGET_HOURS = 20.0


def children_cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def stage_costs(n_utts: int) -> dict[str, float]:
    """CPU seconds per audio second of each stage (process_time, so load-independent)."""
    specs = [u for s in plan(CorpusConfig(hours=0.5, seed=99)) for u in s.utterances][:n_utts]
    w = _Worker()
    cost = {"tts": 0.0, "performer": 0.0, "recognizer": 0.0, "true ids": 0.0}
    audio_s = 0.0
    for spec in specs:
        t0 = time.process_time()
        utt = w.tts.synthesize(spec.text, spec.voice)
        t1 = time.process_time()
        w.perform(utt, styles.style(spec.style_id), spec.seed)
        t2 = time.process_time()
        w.recognize(utt.audio, utt.n_frames)
        t3 = time.process_time()
        phone_ids_per_frame(utt.phones, utt.n_frames)
        t4 = time.process_time()
        for k, dt in zip(cost, (t1 - t0, t2 - t1, t3 - t2, t4 - t3), strict=True):
            cost[k] += dt
        audio_s += utt.duration
    return {k: v / audio_s for k, v in cost.items()}


def end_to_end(hours: float, workers: int, seed: int) -> tuple[float, float, float]:
    """(wall s, worker CPU s, audio s) of one synth into a temporary folder."""
    with tempfile.TemporaryDirectory() as tmp:
        cpu0, t0 = children_cpu(), time.perf_counter()
        synthesize(CorpusConfig(hours=hours, seed=seed), Path(tmp), workers, progress=False)
        wall, cpu = time.perf_counter() - t0, children_cpu() - cpu0
        audio = sum(len(np.load(p)["audio"]) for p in Path(tmp).glob("*.npz")) / 16_000
    return wall, cpu, audio


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--hours", type=float, default=0.2)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--stage-utterances", type=int, default=40)
    args = ap.parse_args()

    stage_runs = [stage_costs(args.stage_utterances) for _ in range(3)]
    stages = {k: statistics.median(r[k] for r in stage_runs) for k in stage_runs[0]}
    total_stage = sum(stages.values())
    for k, v in stages.items():
        print(f"{k:12s} {1000 * v:7.2f} ms CPU per audio second ({100 * v / total_stage:4.1f}%)")

    runs = []
    for r in range(args.runs):
        load = os.getloadavg()[0]
        wall, cpu, audio = end_to_end(args.hours, args.workers, seed=1000 + r)
        runs.append((wall, cpu, audio, load))
        print(f"run {r}: {audio / 3600:.3f} h audio in {wall:.1f} s wall, {cpu:.1f} s worker CPU, "
              f"load {load:.1f}")  # fmt: skip
    wall_per_h = statistics.median(w / (a / 3600) for w, _, a, _ in runs)
    cpu_per_h = statistics.median(c / (a / 3600) for _, c, a, _ in runs)
    load = statistics.median(x for *_, x in runs)
    est_wall = TARGET_HOURS * wall_per_h
    est_idle = TARGET_HOURS * cpu_per_h / args.workers
    print(f"20 h: {est_wall / 60:.0f} min at this load, {est_idle / 60:.0f} min on idle cores")

    rows = "\n".join(
        f"| {k} | {1000 * v:.1f} | {100 * v / total_stage:.0f}% |" for k, v in stages.items()
    )
    body = f"""
Corpus synthesis (`stylecast data synth`), measured on {args.hours} h runs and **extrapolated**
to {TARGET_HOURS:.0f} h; medians of {args.runs} end-to-end runs ({args.workers} worker
processes) and 3 stage runs of {args.stage_utterances} utterances.

| stage | CPU ms per audio second | share |
|---|---|---|
{rows}
| all | {1000 * total_stage:.1f} | |

| end to end ({args.workers} workers) | value |
|---|---|
| wall time per audio hour, measured | {wall_per_h:.0f} s (load average {load:.1f} on {os.cpu_count()} cores: shared machine) |
| worker CPU time per audio hour | {cpu_per_h:.0f} s |
| **20 h corpus, extrapolated at the measured load** | **{est_wall / 60:.0f} min** |
| **20 h corpus, extrapolated on {args.workers} idle cores** (CPU time / workers) | **{est_idle / 60:.0f} min** |

The phone recognizer (pocketsphinx allphone search, the same streaming code live sessions
run) dominates; espeak-ng synthesis runs at several hundred times real time. Target:
≤ 60 min for 20 h.
"""  # noqa: E501
    write_section("corpus", "Corpus synthesis", body)


if __name__ == "__main__":
    main()
