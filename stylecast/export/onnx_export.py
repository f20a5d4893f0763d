"""Export a StyleTalk or SAAS checkpoint to ONNX step graphs plus a manifest.

    manifest = export_checkpoint("runs/saas/expression/last", "assets/onnx/saas")

writes into the output folder:

- `step.onnx`: the streaming step, `(features, style[, uniform], *state) -> (expr, pose,
  *state)`; for StyleTalk it is the windowed decoder step (content window + style ->
  the motion of the window's centre frame), for SAAS the expression LSTMs and the pose
  branch (predictor, sampling, VQ decoder, smoothing) in one branchless graph.
- `style.onnx`: style clip (padded to the model's longest clip, with a mask) -> code.
- SAAS only: `pose_token.onnx` (history + audio + style + uniform -> logits and sampled
  code) and `pose_decode.onnx` (codes -> 8 frames of pose), for runners that draw codes
  on token boundaries only and for offline use.
- `manifest.json` (stylecast/engine/onnx_manifest.py): names, shapes, dtypes, state
  layout, look-ahead, opset, the checkpoint's sha256, the config, named style codes.

Batch is dynamic in every graph (one call serves many sessions), time is fixed (one
frame per step call). Graphs are traced with the legacy exporter (`dynamo=False`) at
batch 2, since the dynamo exporter freezes any dimension whose example size is 1; the
wrappers are put in eval mode first (the exporter restores the training flag afterwards).
After writing, every graph is run once in ONNX Runtime at batch 3 against PyTorch.
"""

from __future__ import annotations

import json
import logging
import tempfile
import warnings
from collections.abc import Mapping
from pathlib import Path

import numpy as np
import torch
from torch import Tensor, nn

from stylecast.engine.errors import BackendError, InputError
from stylecast.engine.onnx_manifest import (
    BATCH,
    EXPR,
    FEATURES,
    FORMAT,
    MANIFEST,
    POSE,
    STYLE,
    UNIFORM,
    VERSION,
    sha256_file,
)
from stylecast.export.graphs import (
    PoseDecodeGraph,
    PoseTokenGraph,
    StepGraph,
    StyleGraph,
    carried_fields,
    has_uniform,
)
from stylecast.models.checkpoint import CONFIG, WEIGHTS, load_model
from stylecast.models.config import config_to_dict
from stylecast.models.saas import SAAS

log = logging.getLogger(__name__)

OPSET = 17
EXPORT_BATCH = 2  # example batch for tracing (>= 2 so no axis is frozen at 1)
CHECK_BATCH = 3  # batch of the post-export check (another size than exported)
CHECK_TOLERANCE = 1e-4
DTYPE_NAMES = {torch.float32: "float32", torch.int64: "int64", torch.bool: "bool"}


def style_dim(model: nn.Module) -> int:
    return model.cfg.style_dim if isinstance(model, SAAS) else model.cfg.d_model


def style_frames(model: nn.Module) -> int:
    """Frames of the style graph's clip input (the model's longest style clip)."""
    return model.cfg.style.max_frames if isinstance(model, SAAS) else model.cfg.max_style_frames


def example_features(model: nn.Module, batch: int, gen: torch.Generator) -> Tensor:
    content = model.cfg.content
    if content.frontend == "phoneme":
        return torch.randint(0, content.n_phonemes, (batch,), generator=gen)
    return torch.randn(batch, content.mel_frames, content.n_mels, generator=gen)


def batch_axes(model: nn.Module) -> dict[str, int]:
    """Each carried state field's batch axis, found by comparing batch 2 and 3."""
    two, three = model.init_state(2), model.init_state(3)
    axes = {}
    for name in carried_fields(model):
        a, b = getattr(two, name).shape, getattr(three, name).shape
        diff = [i for i, (x, y) in enumerate(zip(a, b, strict=True)) if x != y]
        assert len(diff) == 1, (name, diff)
        axes[name] = diff[0]
    return axes


def state_layout(model: nn.Module) -> list[dict]:
    """The manifest's "state" list: name, graph names, per-session shape, batch axis,
    dtype and initial fill of every carried field."""
    init = model.init_state(1)
    layout = []
    for name, axis in batch_axes(model).items():
        value = getattr(init, name)
        flat = value.flatten()
        assert flat.numel() == 0 or bool((flat == flat[0]).all()), f"{name} is not a fill"
        shape = list(value.shape)
        del shape[axis]
        layout.append({
            "name": name, "input": f"state_in_{name}", "output": f"state_out_{name}",
            "shape": shape, "batch_axis": axis, "dtype": DTYPE_NAMES[value.dtype],
            "fill": float(flat[0]) if flat.numel() else 0.0,
        })  # fmt: skip
    return layout


def _spec(name: str, value: Tensor, axis: int = 0) -> dict:
    shape: list[int | str] = list(value.shape)
    shape[axis] = BATCH
    return {"name": name, "shape": shape, "dtype": DTYPE_NAMES[value.dtype]}


def _trace(
    graph: nn.Module,
    args: tuple[Tensor, ...],
    names_in: list[str],
    names_out: list[str],
    axes: dict[str, int],
    path: Path,
    opset: int,
) -> dict:
    """Trace `graph` (eval mode) to `path`; returns the manifest entry for it."""
    graph.eval()
    with torch.no_grad():
        outs = graph(*args)
    outs = outs if isinstance(outs, tuple) else (outs,)
    dynamic = {n: {axes.get(n, 0): BATCH} for n in names_in + names_out}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            graph, args, str(path), input_names=names_in, output_names=names_out,
            dynamic_axes=dynamic, opset_version=opset, dynamo=False,
        )  # fmt: skip
    return {
        "file": path.name,
        "sha256": sha256_file(path),
        "inputs": [_spec(n, a, axes.get(n, 0)) for n, a in zip(names_in, args, strict=True)],
        "outputs": [_spec(n, o, axes.get(n, 0)) for n, o in zip(names_out, outs, strict=True)],
    }


def step_example(model: nn.Module, batch: int, gen: torch.Generator) -> tuple[Tensor, ...]:
    """Inputs of StepGraph for `batch` sessions: features, style[, uniform], *state."""
    state = model.init_state(batch, torch.randn(batch, style_dim(model), generator=gen))
    args = [example_features(model, batch, gen), state.style]
    if has_uniform(model):
        args.append(torch.rand(batch, generator=gen))
    return (*args, *(getattr(state, f) for f in carried_fields(model)))


def style_example(model: nn.Module, batch: int, gen: torch.Generator) -> tuple[Tensor, Tensor]:
    frames = style_frames(model)
    clip = torch.randn(batch, frames, model.cfg.motion.n_motion, generator=gen)
    valid = (
        torch.arange(frames)[None].expand(batch, -1) < (frames // 2 + torch.arange(batch))[:, None]
    )
    return clip, valid


def pose_token_example(model: SAAS, batch: int, gen: torch.Generator) -> tuple[Tensor, ...]:
    p = model.cfg.pose
    return (
        torch.randint(0, p.codebook_size + 1, (batch, p.context_tokens), generator=gen),
        torch.randn(batch, p.audio_frames, model.cfg.expression.d_audio, generator=gen),
        torch.randn(batch, model.cfg.style_dim, generator=gen),
        torch.rand(batch, generator=gen),
    )


def graph_specs(model: nn.Module) -> dict[str, tuple]:
    """graph key -> (wrapper, example-args factory, input names, output names, axes)."""
    layout = state_layout(model)
    step_in = [FEATURES, STYLE] + ([UNIFORM] if has_uniform(model) else [])
    step_in += [s["input"] for s in layout]
    step_out = [EXPR, POSE] + [s["output"] for s in layout]
    axes = {s["input"]: s["batch_axis"] for s in layout}
    axes.update({s["output"]: s["batch_axis"] for s in layout})
    specs = {
        "step": (StepGraph(model), step_example, step_in, step_out, axes),
        "style": (StyleGraph(model), style_example, ["clip", "valid"], ["code"], {}),
    }
    if isinstance(model, SAAS):
        specs["pose_token"] = (
            PoseTokenGraph(model), pose_token_example,
            ["tokens", "audio", STYLE, UNIFORM], ["logits", "code"], {},
        )  # fmt: skip
        specs["pose_decode"] = (
            PoseDecodeGraph(model),
            lambda m, b, g: (torch.randint(0, m.cfg.pose.codebook_size, (b,), generator=g),),
            ["codes"], ["chunk"], {},
        )  # fmt: skip
    return specs


def neutral_clip(model: nn.Module) -> tuple[Tensor, Tensor]:
    """The rest face held still for the whole clip: the 'neutral' style's source."""
    frames = style_frames(model)
    return torch.zeros(1, frames, model.cfg.motion.n_motion), torch.ones(1, frames, dtype=bool)


def clip_tensors(model: nn.Module, expr: np.ndarray, pose: np.ndarray) -> tuple[Tensor, Tensor]:
    """A motion (T, 52) + (T, 6) -> (1, S, 58) clip and mask; the last S frames if longer."""
    frames = style_frames(model)
    motion = np.concatenate([expr, pose], axis=1)[-frames:].astype(np.float32)
    n = len(motion)
    clip = torch.zeros(1, frames, motion.shape[1])
    clip[0, :n] = torch.from_numpy(motion)
    return clip, torch.arange(frames)[None] < n


@torch.no_grad()
def style_codes(model: nn.Module, clips: Mapping[str, tuple[Tensor, Tensor]]) -> dict:
    codes = {"neutral": StyleGraph(model).eval()(*neutral_clip(model))[0]}
    for name, (clip, valid) in clips.items():
        codes[name] = StyleGraph(model).eval()(clip, valid)[0]
    return {k: [float(x) for x in v] for k, v in codes.items()}


def export_model(
    model: nn.Module,
    out_dir: str | Path,
    source: dict | None = None,
    opset: int = OPSET,
    style_clips: Mapping[str, tuple[Tensor, Tensor]] | None = None,
    check: bool = True,
) -> dict:
    """Write the graphs and manifest.json of `model` into out_dir; returns the manifest."""
    model = model.eval()
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    cfg = model.cfg
    graphs = {}
    for key, (wrapper, example, names_in, names_out, axes) in graph_specs(model).items():
        args = example(model, EXPORT_BATCH, torch.Generator().manual_seed(0))
        graphs[key] = _trace(wrapper, args, names_in, names_out, axes,
                             out_dir / f"{key}.onnx", opset)  # fmt: skip
    manifest = {
        "format": FORMAT,
        "version": VERSION,
        "model": type(model).__name__,
        "opset": opset,
        "frontend": cfg.content.frontend,
        "lookahead_frames": cfg.lookahead_frames,
        "style_dim": style_dim(model),
        "noise_dim": 1 if has_uniform(model) else 0,
        "style_frames": style_frames(model),
        "n_motion": cfg.motion.n_motion,
        "graphs": graphs,
        "state": state_layout(model),
        "styles": style_codes(model, style_clips or {}),
        "source": source or {},
        "config": config_to_dict(cfg),
    }
    (out_dir / MANIFEST).write_text(json.dumps(manifest, indent=1) + "\n")
    if check:
        worst = check_export(model, out_dir)
        log.info("exported %s to %s; onnxruntime vs torch max |diff| %.1e", manifest["model"],
                 out_dir, worst)  # fmt: skip
    return manifest


def check_export(model: nn.Module, out_dir: Path, batch: int = CHECK_BATCH) -> float:
    """Run every graph once in ONNX Runtime at `batch` against PyTorch; BackendError when
    an output differs by more than CHECK_TOLERANCE. Returns the largest difference."""
    import onnxruntime as ort

    worst = 0.0
    for key, (wrapper, example, names_in, _, _) in graph_specs(model).items():
        args = example(model, batch, torch.Generator().manual_seed(1))
        with torch.no_grad():
            ref = wrapper.eval()(*args)
        ref = ref if isinstance(ref, tuple) else (ref,)
        session = ort.InferenceSession(str(out_dir / f"{key}.onnx"),
                                       providers=["CPUExecutionProvider"])  # fmt: skip
        got = session.run(None, {n: a.numpy() for n, a in zip(names_in, args, strict=True)})
        for r, g in zip(ref, got, strict=True):
            if r.numel():
                worst = max(worst, float(np.abs(r.numpy().astype(np.float64) - g).max()))
    if not worst <= CHECK_TOLERANCE:
        raise BackendError(f"exported graphs in {out_dir} differ from PyTorch by {worst:.2e} "
                           f"(> {CHECK_TOLERANCE})")  # fmt: skip
    return worst


def export_checkpoint(
    checkpoint: str | Path,
    out_dir: str | Path,
    opset: int = OPSET,
    style_motions: Mapping[str, str | Path] | None = None,
) -> dict:
    """Export a checkpoint folder (model.safetensors + config.json) into out_dir.

    style_motions: style name -> motion file (.npz / Live Link .csv) whose code the
    manifest lists beside 'neutral'."""
    from stylecast.engine.motion import load_motion

    checkpoint = Path(checkpoint)
    if not checkpoint.is_dir():
        raise InputError(f"checkpoint must be a folder with {WEIGHTS} and {CONFIG}; "
                         f"got {checkpoint}")  # fmt: skip
    model, _, meta = load_model(checkpoint)
    clips = {}
    for name, path in (style_motions or {}).items():
        motion = load_motion(path)
        clips[name] = clip_tensors(model, motion.expr, motion.pose)
    source = {
        "checkpoint": str(checkpoint),
        "sha256": {f: sha256_file(checkpoint / f) for f in (WEIGHTS, CONFIG)},
        "meta": meta,
        "parameters": sum(p.numel() for p in model.parameters()),
    }
    return export_model(model, out_dir, source, opset, clips)


def export_to_temp(model: nn.Module, **kwargs) -> tuple[tempfile.TemporaryDirectory, dict]:
    """Export into a fresh temporary folder (tests, benchmarks); keep the handle alive."""
    tmp = tempfile.TemporaryDirectory()
    return tmp, export_model(model, tmp.name, **kwargs)
