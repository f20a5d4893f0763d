"""The manifest of an exported motion model: which graphs, their inputs and outputs, the
streaming state's layout, look-ahead and provenance (docs/export.md).

`stylecast export` (stylecast/export/) writes `manifest.json` next to the graphs; engine
backends read it with `load_manifest` and never guess a name or a shape.

    {"format": "stylecast-onnx", "version": 1, "model": "SAAS", "opset": 17,
     "frontend": "mel", "lookahead_frames": 0, "style_dim": 256, "noise_dim": 1,
     "style_frames": 256, "n_motion": 58,
     "graphs": {"step": {"file": "step.onnx", "sha256": ...,
                         "inputs": [{"name": "features", "shape": ["batch", 16, 80],
                                     "dtype": "float32"}, ...], "outputs": [...]}, ...},
     "state": [{"name": "can_h", "input": "state_in_can_h", "output": "state_out_can_h",
                "shape": [4, 64], "batch_axis": 1, "dtype": "float32", "fill": 0.0}, ...],
     "styles": {"neutral": [...]},
     "source": {"checkpoint": "...", "sha256": {"model.safetensors": ..., "config.json": ...}},
     "config": {"type": "SAASConfig", "fields": {...}}}

`state[i].shape` is one session's shape (the batch axis removed); `batch_axis` is where
the graph keeps the batch (1 for LSTM h/c, 0 otherwise). Every state starts as `fill`.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from stylecast.engine.errors import FormatError

FORMAT = "stylecast-onnx"
VERSION = 1
MANIFEST = "manifest.json"
BATCH = "batch"  # the symbolic batch axis in graph shapes
DTYPES = ("float32", "int64", "bool")
# Graph input names that are not state (the step's per-frame inputs).
FEATURES, STYLE, UNIFORM = "features", "style", "uniform"
EXPR, POSE = "expr", "pose"


@dataclass(frozen=True)
class TensorSpec:
    """One graph input or output."""

    name: str  # the ONNX name
    shape: tuple[int | str, ...]  # "batch" marks the dynamic batch axis
    dtype: str  # one of DTYPES


@dataclass(frozen=True)
class GraphSpec:
    """One exported graph file."""

    file: str  # file name inside the export folder
    sha256: str  # of the .onnx file
    inputs: tuple[TensorSpec, ...]
    outputs: tuple[TensorSpec, ...]


@dataclass(frozen=True)
class StateSpec:
    """One field of the streaming state, as the step graph carries it."""

    name: str  # the model's state field (and the backend's state-dict key)
    input: str  # step-graph input name
    output: str  # step-graph output name (never equal to an input name)
    shape: tuple[int, ...]  # one session's shape, batch axis removed
    batch_axis: int  # where the graph keeps the batch (1 for LSTM h/c)
    dtype: str  # "float32" or "int64"
    fill: float  # every element's value before the first frame


@dataclass(frozen=True)
class Manifest:
    """A parsed manifest.json (module docstring)."""

    folder: Path  # where the graphs are
    model: str  # "SAAS" or "StyleTalk"
    opset: int
    frontend: str  # "mel" (features (B, 16, 80) float32) or "phoneme" (features (B,) int64)
    lookahead_frames: int  # step(frame t) emits frame t - lookahead
    style_dim: int
    noise_dim: int  # uniform numbers per step and session (1 for SAAS's pose sampling)
    style_frames: int  # frames of a style clip the style graph takes (pad + mask)
    n_motion: int  # values per style-clip frame: expr then pose
    graphs: dict[str, GraphSpec]
    state: tuple[StateSpec, ...]
    styles: dict[str, np.ndarray]  # named style codes (style_dim,) float32
    source: dict
    config: dict

    def path(self, graph: str) -> Path:
        return self.folder / self.graphs[graph].file


def sha256_file(path: str | Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _tensor(d: dict, where: str) -> TensorSpec:
    shape = tuple(d["shape"])
    if d["dtype"] not in DTYPES or not all(isinstance(s, int) or s == BATCH for s in shape):
        raise FormatError(f"{where}: bad tensor spec {d!r:.200}")
    return TensorSpec(d["name"], shape, d["dtype"])


def load_manifest(folder: str | Path, verify: bool = True) -> Manifest:
    """Parse FOLDER/manifest.json; FormatError naming what is wrong. verify: check that
    every graph file exists and matches its sha256."""
    folder = Path(folder)
    path = folder / MANIFEST
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError as e:
        raise FormatError(f"no {MANIFEST} in {folder}: not an exported motion model") from e
    except json.JSONDecodeError as e:
        raise FormatError(f"{path} is not valid JSON: {e}") from e
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise FormatError(f"{path}: expected format {FORMAT!r}, got {data.get('format')!r}")
    if data.get("version") != VERSION:
        raise FormatError(f"{path}: version {data.get('version')!r}, this reads {VERSION}")
    try:
        graphs = {
            key: GraphSpec(
                g["file"],
                g["sha256"],
                tuple(_tensor(t, f"{path} {key}") for t in g["inputs"]),
                tuple(_tensor(t, f"{path} {key}") for t in g["outputs"]),
            )
            for key, g in data["graphs"].items()
        }
        state = tuple(
            StateSpec(s["name"], s["input"], s["output"], tuple(s["shape"]), s["batch_axis"],
                      s["dtype"], float(s["fill"]))
            for s in data["state"]
        )  # fmt: skip
        styles = {k: np.asarray(v, np.float32) for k, v in data["styles"].items()}
        manifest = Manifest(
            folder, data["model"], int(data["opset"]), data["frontend"],
            int(data["lookahead_frames"]), int(data["style_dim"]), int(data["noise_dim"]),
            int(data["style_frames"]), int(data["n_motion"]), graphs, state, styles,
            data["source"], data["config"],
        )  # fmt: skip
    except (KeyError, TypeError, ValueError) as e:
        raise FormatError(f"{path}: malformed manifest ({type(e).__name__}: {e})") from e
    if "step" not in graphs:
        raise FormatError(f"{path}: no 'step' graph; graphs are {sorted(graphs)}")
    for name, code in styles.items():
        if code.shape != (manifest.style_dim,):
            raise FormatError(f"{path}: style {name!r} has shape {code.shape}")
    if verify:
        for key, g in graphs.items():
            file = folder / g.file
            if not file.is_file():
                raise FormatError(f"{path}: graph {key!r} file {file} is missing")
            if sha256_file(file) != g.sha256:
                raise FormatError(f"{file} does not match its sha256 in {path}")
    return manifest
