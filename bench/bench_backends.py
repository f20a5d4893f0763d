"""Motion backends: per-frame step latency (expression + pose in one step graph) of the
exported models in the engine's ONNX Runtime backend, at batch 1, 8 and 64.

Each model is exported with `stylecast.export` (random weights: the cost does not depend
on their values), loaded by `OnnxMotion` and stepped through the engine's `MotionModel`
interface (state batch-first, style and uniform fed every frame), so the figures include
the backend's own numpy work. Medians of several runs of several steps, one thread.

    python -m bench.bench_backends [--presets small default] [--batches 1 8 64] [--runs 5]

Writes section "backends" of docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

import numpy as np
import onnxruntime as ort
import torch

from bench.report import write_section
from stylecast.engine.motion_backend import MotionInputs
from stylecast.engine.onnx_backend import OnnxMotion
from stylecast.export.onnx_export import export_model
from stylecast.models.config import saas_config, styletalk_config
from stylecast.models.saas import SAAS
from stylecast.models.styletalk import StyleTalk

FRAME_MS = 1000.0 / 30.0  # 33.3 ms per frame at 30 FPS
RUN_S = 0.4  # aim for about this long per timed run


def models(preset: str) -> list[tuple[str, torch.nn.Module]]:
    return [
        (f"SAAS {preset} (mel)", SAAS(saas_config(preset, "mel"))),
        (f"StyleTalk {preset} (phoneme)", StyleTalk(styletalk_config(preset, "phoneme"))),
    ]


def inputs(batch: int, noise_dim: int, rng: np.random.Generator) -> MotionInputs:
    return MotionInputs(
        mel=rng.standard_normal((batch, 16, 80)).astype(np.float32),
        phonemes=rng.integers(0, 41, batch).astype(np.int64),
        prosody=np.zeros((batch, 3), np.float32),
        noise=rng.random((batch, noise_dim), np.float32),
    )


def time_step(backend: OnnxMotion, batch: int, runs: int) -> float:
    """Median ms per step over `runs` runs, state carried from step to step."""
    rng = np.random.default_rng(0)
    style = rng.standard_normal((batch, backend.style_dim)).astype(np.float32)
    x = inputs(batch, backend.noise_dim, rng)
    state = backend.init_state(batch)
    t = time.perf_counter()
    state = backend.step(x, style, state).state  # warm-up (and a first estimate)
    first = time.perf_counter() - t
    steps = int(np.clip(RUN_S / max(first, 1e-4), 3, 50))
    times = []
    for _ in range(runs):
        t = time.perf_counter()
        for _ in range(steps):
            state = backend.step(x, style, state).state
        times.append((time.perf_counter() - t) / steps * 1000.0)
    return float(np.median(times))


def load() -> str:
    return Path("/proc/loadavg").read_text().split()[0] if Path("/proc/loadavg").exists() else "?"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--presets", nargs="+", default=["small", "default"])
    parser.add_argument("--batches", nargs="+", type=int, default=[1, 8, 64])
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    torch.set_num_threads(1)
    torch.manual_seed(0)
    load_start = load()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for preset in args.presets:
            for name, model in models(preset):
                folder = Path(tmp) / name.replace(" ", "_")
                export_model(model.eval(), folder)
                size = sum(f.stat().st_size for f in folder.glob("step.onnx")) / 1e6
                backend = OnnxMotion(folder, providers="cpu", threads=1)
                cells = [name, f"{sum(p.numel() for p in model.parameters()) / 1e6:.1f} M",
                         f"{size:.1f} MB"]  # fmt: skip
                for batch in args.batches:
                    ms = time_step(backend, batch, args.runs)
                    cells.append(f"{ms:.2f} ({ms / batch:.2f})")
                    if batch == args.batches[-1]:
                        cells.append(f"{batch * FRAME_MS / ms:.0f}")
                print(" | ".join(cells), flush=True)
                rows.append("| " + " | ".join(cells) + " |")
    header = " | ".join(f"b{b} ms (per session)" for b in args.batches)
    gpu = " | ".join("not measured: no GPU in this session" for _ in args.batches)
    body = (
        "ONNX Runtime "
        f"{ort.__version__}, CPUExecutionProvider, one thread (`intra_op_num_threads=1`): "
        "milliseconds per step of the whole exported step graph (expression LSTMs / windowed "
        "decoder + pose branch: one 33 ms video frame for every session in the batch), "
        "measured through the engine backend `OnnxMotion.step` with the state carried; "
        f"median of {args.runs} runs (each ~{RUN_S:.1f} s of steps). In brackets: per session. "
        "'sessions' = sessions one core could step at 30 FPS at the largest batch "
        "(33.3 ms x batch / step time), the motion step alone (no front end, no render).\n\n"
        f"The machine is shared with other engineers' jobs: load average {load_start} at the "
        f"start and {load()} at the end on {os.cpu_count()} cores, so the figures are upper "
        "bounds.\n\n"
        f"| model | params | step.onnx | {header} | sessions |\n"
        f"|---|---|---|{'---|' * len(args.batches)}---|\n" + "\n".join(rows) + "\n"
        f"| any, CUDA / TensorRT execution providers or TensorRT engines | | | {gpu} | |\n"
    )
    write_section("backends", "Motion backends: ONNX Runtime step latency by batch", body)


if __name__ == "__main__":
    main()
