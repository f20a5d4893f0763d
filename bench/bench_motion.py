"""Motion-model step cost: PyTorch vs ONNX Runtime, per frame, on this machine.

Exports each model with `stylecast.export` (step graph `(features, style[, uniform],
*state) -> (expr, pose, *state)`, legacy exporter, batch axis dynamic), checks onnxruntime
against PyTorch, and times one step at batch 1 and 4 with one thread: medians of several
runs.

    python -m bench.bench_motion [--presets small default] [--runs 5] [--steps 30]

Writes section "motion-step" of docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import onnxruntime as ort
import torch

from bench.report import write_section
from stylecast.export.onnx_export import export_model, style_dim
from stylecast.models.config import saas_config, styletalk_config
from stylecast.models.saas import SAAS
from stylecast.models.styletalk import StyleTalk


def features(model, batch: int) -> torch.Tensor:
    if model.cfg.content.frontend == "phoneme":
        return torch.randint(0, 41, (batch,))
    return torch.randn(batch, 16, 80)


def export(model, folder: Path) -> tuple[dict, ort.InferenceSession]:
    """The model's step graph as `stylecast export` writes it, in a one-thread session."""
    manifest = export_model(model, folder, check=False)
    options = ort.SessionOptions()
    options.intra_op_num_threads = options.inter_op_num_threads = 1
    session = ort.InferenceSession(
        str(folder / "step.onnx"), options, providers=["CPUExecutionProvider"]
    )
    return manifest, session


def step_feeds(manifest: dict, x: torch.Tensor, state) -> dict[str, np.ndarray]:
    """The step graph's inputs: features, style[, uniform] and the carried state."""
    feeds = {"features": x.numpy(), "style": state.style.numpy()}
    if manifest["noise_dim"]:
        feeds["uniform"] = state.uniform.numpy()
    feeds.update({s["input"]: getattr(state, s["name"]).numpy() for s in manifest["state"]})
    return feeds


def max_difference(model, manifest, session, batch: int = 3, steps: int = 10) -> float:
    state = model.init_state(batch, torch.randn(batch, style_dim(model)))
    carried = [s["name"] for s in manifest["state"]]
    worst = 0.0
    for _ in range(steps):
        if hasattr(state, "uniform"):
            state = state._replace(uniform=torch.rand(batch))
        x = features(model, batch)
        got = session.run(None, step_feeds(manifest, x, state))
        with torch.no_grad():
            ref = model.step(x, state)
        expected = (ref.expr, ref.pose, *(getattr(ref.state, n) for n in carried))
        for a, b in zip(expected, got, strict=True):
            if a.numel():
                worst = max(worst, float(np.abs(a.numpy().astype(np.float64) - b).max()))
        state = ref.state
    return worst


def time_steps(model, manifest, session, batch: int, runs: int, steps: int) -> tuple[float, float]:
    """Median ms per step (torch, onnxruntime) over `runs` runs of `steps` steps."""
    state = model.init_state(batch, torch.randn(batch, style_dim(model)))
    x = features(model, batch)
    feeds = step_feeds(manifest, x, state)
    torch_ms, ort_ms = [], []
    with torch.no_grad():
        for _ in range(runs):
            t = time.perf_counter()
            for _ in range(steps):
                model.step(x, state)
            torch_ms.append((time.perf_counter() - t) / steps * 1000)
            t = time.perf_counter()
            for _ in range(steps):
                session.run(None, feeds)
            ort_ms.append((time.perf_counter() - t) / steps * 1000)
    return float(np.median(torch_ms)), float(np.median(ort_ms))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--presets", nargs="+", default=["small", "default"])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--steps", type=int, default=30)
    args = parser.parse_args()
    torch.set_num_threads(1)
    torch.manual_seed(0)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for preset in args.presets:
            for name, model in (
                ("SAAS (mel)", SAAS(saas_config(preset, "mel"))),
                ("StyleTalk (phoneme)", StyleTalk(styletalk_config(preset, "phoneme"))),
            ):
                model.eval()
                manifest, session = export(model, Path(tmp) / name.split()[0] / preset)
                diff = max_difference(model, manifest, session)
                params = sum(p.numel() for p in model.parameters()) / 1e6
                cells = [f"{name} {preset}", f"{params:.1f} M", f"{diff:.1e}"]
                for batch in (1, 4):
                    t_ms, o_ms = time_steps(model, manifest, session, batch, args.runs, args.steps)
                    cells += [f"{t_ms:.2f}", f"{o_ms:.2f}"]
                print(" | ".join(cells), flush=True)
                rows.append("| " + " | ".join(cells) + " |")
    load = Path("/proc/loadavg").read_text().split()[0] if Path("/proc/loadavg").exists() else "?"
    body = (
        "One streaming step (one 33 ms video frame for every session in the batch), one "
        "thread, milliseconds per step, median of "
        f"{args.runs} runs of {args.steps} steps; max |torch − onnxruntime| over all outputs "
        f"of 10 steps at batch 3 (exported at batch 2). Load average at the end: {load}.\n\n"
        "| model | params | max diff | torch b1 | ort b1 | torch b4 | ort b4 |\n"
        "|---|---|---|---|---|---|---|\n" + "\n".join(rows)
    )
    write_section("motion-step", "Motion models: streaming step, PyTorch vs ONNX Runtime", body)


if __name__ == "__main__":
    main()
