"""Motion backends that run exported step graphs (numpy + onnxruntime only; no torch).

    model = OnnxMotion("assets/onnx/saas", providers="cpu")   # a MotionModel
    state = model.init_state(batch=8)                          # {name: (8, ...) array}
    out = model.step(inputs, style, state)                     # MotionStep(expr, pose, state)
    code = model.extract_style(expr, pose)                     # (style_dim,) from a clip

`GraphMotion` holds everything that does not depend on the runtime: it reads the manifest
(engine/onnx_manifest.py), keeps the state batch-first as the session's `MotionModel`
contract asks (LSTM h/c are moved from the graph's (layers, B, H) to (B, layers, H) and
back around each run), feeds the style code and `inputs.noise[:, 0]` (SAAS's sampling
uniform) as inputs on every frame, and checks shapes. Subclasses only run graphs:
`OnnxMotion` (ONNX Runtime with the CPU, CUDA or TensorRT execution providers) and
`TensorRTMotion` (engine/tensorrt_backend.py, fp16 engines built with `tensorrt`).

Execution providers are chosen by a name: "cpu", "cuda" (CUDA, then CPU) or "tensorrt"
(TensorRT fp16, then CUDA, then CPU). A provider this onnxruntime build does not offer
is skipped with a warning that names what was asked for and what is available; with
`strict=True` it raises BackendError instead.
"""

from __future__ import annotations

import json
import logging
from abc import abstractmethod
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from stylecast.engine.errors import BackendError, InputError
from stylecast.engine.face import N_EXPR, N_POSE
from stylecast.engine.motion_backend import (
    MotionInputs,
    MotionModel,
    MotionStep,
    State,
    style_clip,
)
from stylecast.engine.onnx_manifest import (
    EXPR,
    FEATURES,
    POSE,
    STYLE,
    UNIFORM,
    Manifest,
    load_manifest,
)
from stylecast.paths import assets_dir

log = logging.getLogger(__name__)

MIN_CHUNK = 32  # frames: the shortest tail chunk of a long style clip that is encoded

PROVIDER_CHAINS: dict[str, tuple[str, ...]] = {
    "cpu": ("CPUExecutionProvider",),
    "cuda": ("CUDAExecutionProvider", "CPUExecutionProvider"),
    "tensorrt": ("TensorrtExecutionProvider", "CUDAExecutionProvider", "CPUExecutionProvider"),
}


class GraphMotion(MotionModel):
    """A MotionModel around an exported folder; subclasses say how a graph runs."""

    runtime = "graph"  # the runtime's name, part of `name`

    def __init__(self, folder: str | Path, styles_dir: str | Path | None = None) -> None:
        self.manifest: Manifest = load_manifest(folder)
        m = self.manifest
        self.name = f"{m.model.lower()}-{self.runtime}"
        self.lookahead = m.lookahead_frames
        self.style_dim = m.style_dim
        self.noise_dim = m.noise_dim
        self.styles = dict(m.styles)
        step = m.graphs["step"]
        outputs = {t.name: t for t in step.outputs}
        if outputs[EXPR].shape[-1] != N_EXPR or outputs[POSE].shape[-1] != N_POSE:
            raise BackendError(
                f"{folder}: the step writes expr {outputs[EXPR].shape} and pose "
                f"{outputs[POSE].shape}; the engine needs ({N_EXPR},) ARKit weights and "
                f"({N_POSE},) pose per frame"
            )
        self._inputs = {t.name for t in step.inputs}
        self._uniform = UNIFORM in self._inputs
        self.reads = frozenset(
            {"phonemes" if m.frontend == "phoneme" else "mel"}
            | ({"noise"} if self._uniform else set())
        )
        self.has_style_encoder = "style" in m.graphs
        self.codes_key = m.model.lower()  # "saas" / "styletalk", as training/style_library.py
        # codes belong to the checkpoint's weights (what `stylecast style` records); an
        # export without one (straight from a module) keys them by its step graph instead
        weights = m.source.get("sha256", {}).get("model.safetensors", "")[:12]
        self.weights_id = weights or f"graph-{step.sha256[:12]}"
        self.load_style_library(assets_dir() / "styles" if styles_dir is None else styles_dir)

    @abstractmethod
    def run(self, graph: str, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Run one graph of the manifest: input name -> array, output name -> array."""

    # ------------------------------------------------------------ MotionModel

    def init_state(self, batch: int) -> State:
        return {
            s.name: np.full((batch, *s.shape), s.fill, np.dtype(s.dtype))
            for s in self.manifest.state
        }

    def features(self, inputs: MotionInputs) -> np.ndarray:
        if self.manifest.frontend == "phoneme":
            return np.ascontiguousarray(inputs.phonemes, np.int64)
        return np.ascontiguousarray(inputs.mel, np.float32)

    def step(self, inputs: MotionInputs, style: np.ndarray, state: State) -> MotionStep:
        batch = inputs.batch
        assert style.shape == (batch, self.style_dim), style.shape
        feeds = {FEATURES: self.features(inputs), STYLE: np.ascontiguousarray(style, np.float32)}
        if self._uniform:
            feeds[UNIFORM] = np.ascontiguousarray(inputs.noise[:, 0], np.float32)
        for s in self.manifest.state:
            feeds[s.input] = np.ascontiguousarray(np.moveaxis(state[s.name], 0, s.batch_axis))
        out = self.run("step", feeds)
        new_state = {
            s.name: np.ascontiguousarray(np.moveaxis(out[s.output], s.batch_axis, 0))
            for s in self.manifest.state
        }
        return MotionStep(out[EXPR], out[POSE], new_state)

    # ------------------------------------------------------------ style codes

    def extract_style(self, expr: np.ndarray, pose: np.ndarray) -> np.ndarray:
        """A style clip, expr (T, 52) + pose (T, 6) at 30 FPS, -> its (style_dim,) code: the
        style graph's code, averaged over chunks of `style_frames` (a last chunk shorter
        than MIN_CHUNK frames is dropped unless it is the only one), as `stylecast style
        add` makes the codes of the style library."""
        if not self.has_style_encoder:
            return super().extract_style(expr, pose)
        motion = style_clip(expr, pose, self.manifest.n_motion)
        limit = self.manifest.style_frames
        chunks = [motion[i : i + limit] for i in range(0, len(motion), limit)]
        if len(chunks) > 1 and len(chunks[-1]) < MIN_CHUNK:
            chunks = chunks[:-1]
        clip = np.zeros((len(chunks), limit, motion.shape[1]), np.float32)  # (N, F, 58)
        valid = np.zeros((len(chunks), limit), bool)
        for i, c in enumerate(chunks):
            clip[i, : len(c)] = c
            valid[i, : len(c)] = True
        codes = self.run("style", {"clip": clip, "valid": valid})["code"]  # (N, style_dim)
        return codes.mean(axis=0).astype(np.float32)

    def load_style_library(self, folder: str | Path) -> list[str]:
        """Add the named codes of a style library folder (`stylecast style`, NAME.json with
        "codes" {model: code} and "models" {model: weights id}) that were made with this
        export's weights; codes made with other weights are skipped. Returns the names."""
        added, skipped = [], []
        for path in sorted(Path(folder).glob("*.json")) if Path(folder).is_dir() else []:
            try:
                record = json.loads(path.read_text())
            except (OSError, ValueError):
                continue  # not a style
            code = self.library_code(record) if isinstance(record, dict) else None
            if code is None:
                skipped.append(path.stem)
                continue
            self.styles[path.stem] = code
            added.append(path.stem)
        if skipped:
            log.info("%s: styles without a code for these weights skipped: %s", self.name, skipped)
        return added

    def add_style(self, name: str, expr: np.ndarray, pose: np.ndarray) -> np.ndarray:
        """Extract a clip's code and make it a named style of this backend."""
        self.styles[name] = self.extract_style(expr, pose)
        return self.styles[name]


def choose_providers(
    request: str, available: Sequence[str] | None = None, strict: bool = False
) -> list[str]:
    """The execution providers to ask ONNX Runtime for, given a name in PROVIDER_CHAINS."""
    if request not in PROVIDER_CHAINS:
        raise InputError(
            f"unknown execution provider {request!r}; choose one of {sorted(PROVIDER_CHAINS)}"
        )
    if available is None:
        import onnxruntime as ort

        available = ort.get_available_providers()
    chain = PROVIDER_CHAINS[request]
    chosen = [p for p in chain if p in available]
    if chosen[:1] != [chain[0]]:
        message = (
            f"{chain[0]} was requested ({request!r}) but this onnxruntime offers only "
            f"{', '.join(available)}"
        )
        if strict or not chosen:
            raise BackendError(message + "; install onnxruntime-gpu (with CUDA/TensorRT "
                               "libraries) on a machine with an NVIDIA GPU")  # fmt: skip
        log.warning("%s; falling back to %s", message, chosen[0])
    return chosen


class OnnxMotion(GraphMotion):
    """The step graphs in ONNX Runtime, on the execution providers `providers` names."""

    runtime = "onnxruntime"

    def __init__(
        self,
        folder: str | Path,
        providers: str = "cpu",
        threads: int = 1,
        strict: bool = False,
        styles_dir: str | Path | None = None,
    ) -> None:
        import onnxruntime as ort

        super().__init__(folder, styles_dir)
        self.providers = choose_providers(providers, ort.get_available_providers(), strict)
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        provider_options = [self._options(p) for p in self.providers]
        self._sessions = {}
        for key in self.manifest.graphs:
            try:
                self._sessions[key] = ort.InferenceSession(
                    str(self.manifest.path(key)), options, providers=self.providers,
                    provider_options=provider_options,
                )  # fmt: skip
            except Exception as e:  # onnxruntime raises its own exception types
                raise BackendError(f"onnxruntime cannot load {self.manifest.path(key)}: {e}") from e
        self._outputs = {k: [o.name for o in s.get_outputs()] for k, s in self._sessions.items()}

    def _options(self, provider: str) -> dict:
        if provider == "TensorrtExecutionProvider":
            cache = self.manifest.folder / "trt_cache"
            return {"trt_fp16_enable": True, "trt_engine_cache_enable": True,
                    "trt_engine_cache_path": str(cache)}  # fmt: skip
        return {}

    def run(self, graph: str, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        values = self._sessions[graph].run(None, feeds)
        return dict(zip(self._outputs[graph], values, strict=True))
