"""The seam between a session and a motion model: a step with explicit numpy state.

    model = BaselineMotion()                      # or an ONNX Runtime backend (export work)
    state = model.init_state(batch=3)             # dict of arrays, batch on axis 0
    out = model.step(inputs, style, state)        # MotionStep(expr (3, 52), pose (3, 6), state)

Contract (what any backend, numpy, ONNX Runtime or TensorRT, must honour):

- `init_state(batch) -> State`: the state before the first frame, a dict of numpy arrays
  whose FIRST axis is the batch (an ONNX backend transposes LSTM h/c, (layers, B, H), to
  (B, layers, H) in its wrapper). The scheduler concatenates the states of the live sessions
  along axis 0 before a step and splits the result after it, so sessions join and leave
  between any two ticks and the order of sessions in a batch never matters.
- `step(inputs, style, state) -> MotionStep`: one frame for each of B sessions.
  `inputs` are the audio features of input frame t (`MotionInputs`, arrays with batch
  first) plus the session's own random numbers; `style` is (B, style_dim) float32, the
  style code of each session for this frame (the session blends codes over ~0.5 s on a
  style change, so a backend must accept any code, including mixtures); the result is the
  motion of frame t - `lookahead`: expr (B, 52) float32 ARKit weights in [0, 1] in
  `face.ARKIT_NAMES` order, pose (B, 6) float32 (`face.POSE_NAMES`), and the new state.
  A step must be a pure function of its arguments: no hidden caches, no global RNG (random
  draws come from `inputs.noise`, which each session draws from its own seeded generator),
  and row b of the result must depend only on row b of the arguments.
- Attributes: `name`; `lookahead` (frames: how far the step's output lags its input);
  `style_dim`; `noise_dim` (uniform numbers in [0, 1) needed per frame and session);
  `styles`, the named style codes the backend ships (preset name -> (style_dim,) float32);
  `reads`, the `MotionInputs` fields the step looks at (a front end may skip the others).
- Style codes: `extract_style(expr, pose)` turns a style clip into a code where the model
  has a style encoder (`has_style_encoder`); others raise BackendError saying so. A code
  is only meaningful for the weights that made it: a style library record (NAME.json,
  training/style_library.py) keeps `codes[codes_key]` and `models[codes_key]` (the
  weights id), and `library_code(record)` returns the code if it was made for this model.
- Silence is input like any other: while a session has no speech queued it feeds
  `silence_inputs`, and the model must idle (mouth closed, blinks, breathing, small head
  motion).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from typing import NamedTuple

import numpy as np

from stylecast.engine.audio import MEL_FRAMES, AudioFeatures
from stylecast.engine.errors import BackendError, InputError
from stylecast.engine.face import N_EXPR, N_POSE
from stylecast.engine.mel import N_MELS
from stylecast.engine.phonemes import SIL_ID

State = dict[str, np.ndarray]  # every array batch-first
SILENT_MEL = -4.0  # log-mel of digital silence (the scale's floor)
SILENT_PROSODY = (-100.0, 0.0, 0.0)  # loudness dB floor, voicing 0, pitch 0 Hz


class MotionInputs(NamedTuple):
    """The inputs of one frame for B sessions."""

    mel: np.ndarray  # (B, 16, 80) float32 log-mel window (engine/audio.py)
    phonemes: np.ndarray  # (B,) int64 phoneme ids 0..40 (engine/phonemes.py)
    prosody: np.ndarray  # (B, 3) float32: loudness dBFS, voicing 0..1, pitch Hz
    noise: np.ndarray  # (B, noise_dim) float32 uniform in [0, 1), per-session seeded RNG

    @property
    def batch(self) -> int:
        return len(self.phonemes)


class MotionStep(NamedTuple):
    """One step's result: the motion of one frame per session, and the next state."""

    expr: np.ndarray  # (B, 52) float32 in [0, 1]
    pose: np.ndarray  # (B, 6) float32 (pitch, yaw, roll rad; tx, ty, tz inter-ocular)
    state: State


class MotionModel(ABC):
    """A streaming motion model stepped once per 30 FPS frame (see the module docstring)."""

    name: str = "motion"
    lookahead: int = 0  # frames: step(inputs of frame t) -> motion of frame t - lookahead
    style_dim: int = 0  # length of a style code
    noise_dim: int = 0  # uniform random numbers per frame and session
    styles: Mapping[str, np.ndarray] = {}  # preset name -> (style_dim,) float32 code
    reads: frozenset[str] = frozenset(MotionInputs._fields)  # inputs the step looks at
    has_style_encoder: bool = False  # extract_style works
    codes_key: str = "motion"  # this model's key in a style record's "codes"
    weights_id: str = ""  # the weights its codes belong to ("": codes fit any instance)

    @abstractmethod
    def init_state(self, batch: int) -> State:
        """State before the first frame for `batch` sessions (arrays batch-first)."""

    @abstractmethod
    def step(self, inputs: MotionInputs, style: np.ndarray, state: State) -> MotionStep:
        """inputs of frame t, style (B, style_dim) -> motion of frame t - lookahead."""

    def extract_style(self, expr: np.ndarray, pose: np.ndarray) -> np.ndarray:
        """A style clip, expr (T, 52) + pose (T, 6) at 30 FPS, -> its (style_dim,) code."""
        raise BackendError(
            f"the {self.name} motion model has no style encoder, so it cannot turn a clip "
            "into a style code; use its presets, or a learned model (e.g. 'onnx-cpu')"
        )

    def library_code(self, record: Mapping) -> np.ndarray | None:
        """The code a style library record (module doc) holds for this model, or None when
        it has none, or one made with other weights, of another length, or not finite."""
        codes, models = record.get("codes"), record.get("models")
        if not isinstance(codes, Mapping) or codes.get(self.codes_key) is None:
            return None
        if self.weights_id:
            made_for = models.get(self.codes_key) if isinstance(models, Mapping) else None
            if made_for != self.weights_id:
                return None
        try:
            code = np.asarray(codes[self.codes_key], np.float32)
        except (TypeError, ValueError):
            return None
        if code.shape != (self.style_dim,) or not np.all(np.isfinite(code)):
            return None
        return code

    def style_code(self, name: str) -> np.ndarray:
        """The (style_dim,) code of a named preset; InputError naming the known ones."""
        try:
            return np.asarray(self.styles[name], np.float32)
        except KeyError:
            raise InputError(
                f"unknown style {name!r} for the {self.name} motion model; known styles: "
                f"{', '.join(sorted(self.styles))}"
            ) from None


def parse_style_mix(spec: str) -> dict[str, float]:
    """ "happy" or "happy:0.7,sad:0.3" -> {name: weight}: weights > 0, a name given twice
    adds up, not normalised (a mix's code is the weighted mean of the codes)."""
    out: dict[str, float] = {}
    for part in spec.split(","):
        name, _, w = part.strip().partition(":")
        try:
            weight = float(w) if w else 1.0
        except ValueError:
            raise InputError(f"style mix {spec!r}: weight {w!r} is not a number") from None
        if not np.isfinite(weight) or weight <= 0:
            raise InputError(f"style mix {spec!r}: weights must be > 0, got {weight}")
        out[name] = out.get(name, 0.0) + weight
    return out


def style_clip(expr: np.ndarray, pose: np.ndarray, n_motion: int = N_EXPR + N_POSE) -> np.ndarray:
    """Check a style clip, expr (T, 52) + pose (T, 6) with T >= 1, finite; -> (T, 58) float32
    (expr then pose). InputError naming the shapes received."""
    expr = np.asarray(expr, np.float32)
    pose = np.asarray(pose, np.float32)
    if (
        expr.ndim != 2
        or pose.ndim != 2
        or len(expr) != len(pose)
        or len(expr) == 0
        or expr.shape[1] + pose.shape[1] != n_motion
    ):
        raise InputError(
            f"a style clip needs expr (T, {N_EXPR}) and pose (T, {N_POSE}) with T >= 1 "
            f"({n_motion} values a frame); got {expr.shape} and {pose.shape}"
        )
    if not (np.isfinite(expr).all() and np.isfinite(pose).all()):
        raise InputError("a style clip must be finite; got NaN or infinity")
    return np.concatenate([expr, pose], axis=1)


def silence_inputs(batch: int, noise: np.ndarray) -> MotionInputs:
    """What the front end gives for digital silence, for `batch` sessions."""
    return MotionInputs(
        mel=np.full((batch, MEL_FRAMES, N_MELS), SILENT_MEL, np.float32),
        phonemes=np.full(batch, SIL_ID, np.int64),
        prosody=np.tile(np.array(SILENT_PROSODY, np.float32), (batch, 1)),
        noise=np.asarray(noise, np.float32).reshape(batch, -1),
    )


def stack_inputs(rows: Sequence[MotionInputs]) -> MotionInputs:
    """Concatenate per-session inputs (each batch >= 1) along the batch axis."""
    return MotionInputs(*(np.concatenate(parts) for parts in zip(*rows, strict=True)))


def stack_states(states: Sequence[State]) -> State:
    """Concatenate per-session states along axis 0 (they come from one model)."""
    return {k: np.concatenate([s[k] for s in states]) for k in states[0]}


def split_state(state: State, sizes: Sequence[int]) -> list[State]:
    """Inverse of stack_states: one state per session, of the given batch sizes."""
    cuts = np.cumsum(sizes)[:-1]
    parts = {k: np.split(v, cuts) for k, v in state.items()}
    return [{k: parts[k][i] for k in state} for i in range(len(sizes))]


def check_step(model: MotionModel, out: MotionStep, batch: int) -> None:
    """Internal invariant check of a backend's result (shapes and dtypes)."""
    assert out.expr.shape == (batch, N_EXPR) and out.expr.dtype == np.float32, out.expr.shape
    assert out.pose.shape == (batch, N_POSE) and out.pose.dtype == np.float32, out.pose.shape
    for k, v in out.state.items():
        assert v.shape[0] == batch, (model.name, k, v.shape)


def motion_for_features(
    model: MotionModel,
    features: AudioFeatures,
    style: str | np.ndarray = "neutral",
    seed: int = 0,
) -> tuple[np.ndarray, np.ndarray]:
    """Offline: a whole utterance's features -> (expr (T, 52), pose (T, 6)), as a live
    session would step the model frame by frame (batch 1, silence fed past the end for the
    model's look-ahead). For evaluations; sessions use `step` directly."""
    code = model.style_code(style) if isinstance(style, str) else np.asarray(style, np.float32)
    if code.shape != (model.style_dim,):
        raise InputError(f"style code must have shape ({model.style_dim},); got {code.shape}")
    rng = np.random.default_rng(seed)
    n = len(features.phonemes)
    state = model.init_state(1)
    exprs, poses = [], []
    for t in range(n + model.lookahead):
        noise = rng.random((1, model.noise_dim), np.float32)
        if t < n:
            inputs = MotionInputs(
                features.mel[t : t + 1].astype(np.float32),
                features.phonemes[t : t + 1].astype(np.int64),
                features.prosody[t : t + 1].astype(np.float32),
                noise,
            )
        else:
            inputs = silence_inputs(1, noise)
        out = model.step(inputs, code[None], state)
        state = out.state
        if t >= model.lookahead:
            exprs.append(out.expr[0])
            poses.append(out.pose[0])
    if not exprs:
        return np.zeros((0, N_EXPR), np.float32), np.zeros((0, N_POSE), np.float32)
    return np.stack(exprs), np.stack(poses)
