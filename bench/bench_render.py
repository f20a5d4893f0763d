"""Renderer-only frame rate: the default avatar, a talking-and-nodding coefficient sequence,
frames read back to numpy. One process, one Renderer per size; medians of several runs.

    python -m bench.bench_render [--frames 300] [--runs 5] [--before REV]

Writes section "render" of docs/benchmarks.md. --before REV measures git revision REV's
renderer too (its tree exported with git archive), interleaved run by run with this one's,
each run in a fresh child process, so both see the same state of a shared machine.

On a shared machine the frame rate says as much about the neighbours as about the renderer,
so it also measures the work per frame: CPU time with llvmpipe rasterising on the calling
thread (LP_NUM_THREADS=0, in a child process: llvmpipe reads it once per process), the
least of the runs.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from bench.bench_session import autogroup_note, cpu_share
from bench.report import write_section
from stylecast.engine.avatar import load_avatar
from stylecast.engine.face import FPS, INDEX, N_EXPR
from stylecast.engine.render import Renderer

SIZES = (512, 256)


def sequence(frames: int) -> tuple[np.ndarray, np.ndarray]:
    """A plausible talking sequence: jaw at syllable rate, blinks, a smile, head motion."""
    t = np.arange(frames) / FPS
    expr = np.zeros((frames, N_EXPR), np.float32)
    expr[:, INDEX["jawOpen"]] = 0.35 * (0.5 + 0.5 * np.sin(2 * np.pi * 4.0 * t)) ** 2
    blink = ((t % 3.0) < 0.15).astype(np.float32)
    expr[:, INDEX["eyeBlinkLeft"]] = expr[:, INDEX["eyeBlinkRight"]] = blink
    expr[:, INDEX["mouthSmileLeft"]] = expr[:, INDEX["mouthSmileRight"]] = 0.3
    pose = np.zeros((frames, 6), np.float32)
    pose[:, 0] = np.radians(5) * np.sin(2 * np.pi * 0.4 * t)
    pose[:, 1] = np.radians(15) * np.sin(2 * np.pi * 0.25 * t)
    pose[:, 2] = np.radians(3) * np.sin(2 * np.pi * 0.3 * t)
    return expr, pose


def measure(renderer: Renderer, expr: np.ndarray, pose: np.ndarray) -> tuple[float, float]:
    """(frames per second of wall-clock time, CPU ms per frame over all threads)."""
    renderer.render(expr[0], pose[0])  # warm-up: shader variants get compiled here
    wall, cpu = time.perf_counter(), time.process_time()
    for e, p in zip(expr, pose, strict=True):
        renderer.render(e, p)
    wall = time.perf_counter() - wall
    cpu = time.process_time() - cpu
    return len(expr) / wall, 1000 * cpu / len(expr)


def one_thread_ms(size: int, frames: int, runs: int) -> float:
    """Least CPU ms per frame over `runs` runs, llvmpipe on the calling thread only (a child
    process with LP_NUM_THREADS=0)."""
    env = dict(os.environ, LP_NUM_THREADS="0")
    argv = [sys.executable, "-m", "bench.bench_render", "--one-thread", str(size)]
    argv += ["--frames", str(frames), "--runs", str(runs)]
    out = subprocess.run(argv, env=env, capture_output=True, text=True, check=True).stdout
    return float(out.split()[-1])


def child_run(tree: Path, size: int, frames: int, one_thread: bool) -> tuple[float, float]:
    """(FPS, CPU ms per frame) of one run in a fresh child process whose stylecast (and
    bench) come from `tree`; one_thread: llvmpipe on the calling thread only."""
    env = dict(os.environ, PYTHONPATH=str(tree))
    if one_thread:
        env["LP_NUM_THREADS"] = "0"
    argv = [sys.executable, str(Path(__file__).resolve()), "--child", str(size)]
    argv += ["--frames", str(frames)]
    out = subprocess.run(argv, env=env, cwd=tree, capture_output=True, text=True, check=True)
    fps, cpu = json.loads(out.stdout.strip().splitlines()[-1])
    return fps, cpu


def compare(revision: str, frames: int, runs: int) -> str:
    """A markdown table: REV's renderer against this one, run by run in child processes."""
    with tempfile.TemporaryDirectory() as tmp:
        archive = subprocess.run(["git", "archive", revision], capture_output=True, check=True)
        subprocess.run(["tar", "-x", "-C", tmp], input=archive.stdout, check=True)
        trees = {"before": Path(tmp), "now": Path(__file__).resolve().parents[1]}
        lines = []
        for size in SIZES:
            got = {(k, one): [] for k in trees for one in (False, True)}
            for _ in range(runs):
                for one in (False, True):
                    for k, tree in trees.items():
                        got[(k, one)].append(child_run(tree, size, frames, one))
            fps = {k: statistics.median(f for f, _ in got[(k, False)]) for k in trees}
            one_ms = {k: min(c for _, c in got[(k, True)]) for k in trees}
            before, now = got[("before", False)], got[("now", False)]
            pairs = [n[0] / b[0] for b, n in zip(before, now, strict=True)]
            lines.append(
                f"| {size}×{size} | {fps['before']:.0f} | {fps['now']:.0f} | "
                f"{statistics.median(pairs) - 1:+.1%} | {one_ms['before']:.2f} | "
                f"{one_ms['now']:.2f} | {one_ms['now'] / one_ms['before'] - 1:+.1%} |"
            )
            print(lines[-1])
    return (
        f"Against `{revision}` (`--before {revision}`), run by run in fresh child processes, "
        f"alternating, {runs} runs each:\n\n"
        "| size | FPS before (median) | FPS now (median) | change (median of paired runs) "
        "| one-thread CPU ms before (least) | now (least) | change |\n"
        "|---|---|---|---|---|---|---|\n" + "\n".join(lines)
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--frames", type=int, default=300)
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--before", metavar="REV", help="also measure git revision REV's renderer")
    ap.add_argument("--one-thread", type=int, metavar="SIZE", help=argparse.SUPPRESS)
    ap.add_argument("--child", type=int, metavar="SIZE", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.one_thread:  # the child of one_thread_ms: print the least CPU ms per frame
        expr, pose = sequence(args.frames)
        with Renderer(load_avatar("default"), size=args.one_thread) as r:
            print(min(measure(r, expr, pose)[1] for _ in range(args.runs)))
        return
    if args.child:  # the child of child_run: one run, printed as [FPS, CPU ms per frame]
        expr, pose = sequence(args.frames)
        with Renderer(load_avatar("default"), size=args.child) as r:
            print(json.dumps(measure(r, expr, pose)))
        return
    avatar = load_avatar("default")
    expr, pose = sequence(args.frames)
    share0 = cpu_share()
    rows = []
    for size in SIZES:
        with Renderer(avatar, size=size) as r:
            device = r.device
            runs = [measure(r, expr, pose) for _ in range(args.runs)]
        fps = statistics.median(f for f, _ in runs)
        cpu = statistics.median(c for _, c in runs)
        spread = f"{min(f for f, _ in runs):.0f}–{max(f for f, _ in runs):.0f}"
        one = one_thread_ms(size, args.frames, args.runs)
        rows.append((size, fps, spread, cpu, one))
        print(
            f"{size}x{size}: {fps:.0f} FPS median ({spread}), {cpu:.2f} CPU-ms/frame; "
            f"one thread {one:.2f} CPU-ms/frame"
        )
    load, share1 = os.getloadavg()[0], cpu_share()
    body = (
        f"Default avatar, {args.frames}-frame talking sequence (jaw, blinks, smile, head "
        f"yaw ±15°), `Renderer.render` with read-back to numpy, one process; median of "
        f"{args.runs} runs. OpenGL: {device}. Load average when run: {load:.1f}; a busy "
        f"Python thread got {share0:.0%} / {share1:.0%} of a core before / after (the "
        f"machine is shared; figures drop when it is busy). {autogroup_note()}\n\n"
        "Work per frame, which depends less on the neighbours (their load still slows "
        "caches and clocks): CPU ms with llvmpipe on the calling thread "
        "(`LP_NUM_THREADS=0`), the least of the runs; 1000 / that is about the frame rate "
        "one idle core would give.\n\n"
        "| size | FPS (median) | FPS (min–max) | CPU ms per frame (all threads) "
        "| CPU ms per frame, one thread (least) | FPS one idle core would give |\n"
        "|---|---|---|---|---|---|\n"
        + "\n".join(
            f"| {s}×{s} | {f:.0f} | {sp} | {c:.2f} | {o:.2f} | {1000 / o:.0f} |"
            for s, f, sp, c, o in rows
        )
    )
    if args.before:
        body += "\n\n" + compare(args.before, args.frames, args.runs)
    write_section("render", "Renderer (engine/render.py)", body)


if __name__ == "__main__":
    main()
