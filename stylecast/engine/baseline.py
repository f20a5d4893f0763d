"""The rule-based viseme baseline: a real motion model without learning, in numpy.

Per frame and session: the recognized phoneme id -> its viseme class
(`phonemes.VISEME_OF_ID`) -> a fixed mouth shape over ARKit weights (`VISEME_SHAPES`),
scaled by a loudness gate (below -55 dBFS the target is the closed mouth, above -40 dBFS
the full shape) and lightly by loudness, then smoothed over time by a critically damped
filter (fast for closures: p/b/m, f/v and silence; slower for opening). A frame the
recognizer calls silence or noise while it is loud and voiced gets an unnamed open vowel,
so recognition errors do not shut the mouth in the middle of a word. On top: idle
behaviour (engine/idle.py: blinks, breathing, head motion, a little wider while speaking).

Styles: the baseline's style code is a weight per preset in `STYLE_PRESETS` (neutral,
happy, sad, angry, surprised); a code adds the weighted expression offsets and scales the
mouth and the head motion by the weighted gains. This is a stand-in: the learned models
(StyleTalk, SAAS) take style codes extracted from a reference clip and replace it.
It has no learned style encoder; `extract_style` only projects a clip onto its presets:
the clip's median expression on the channels the presets move, fitted as a non-negative
mix of the preset offsets (the rest is neutral). A clip whose style is not near such a
mix (a particular head motion, a lopsided smile) comes out as the nearest mix of the five.

Look-ahead 0 frames beyond the front end's own (3 frames for the phonemes and the mel
window), so it adds nothing to the latency; the filter lags its target by ~1 frame.
"""

from __future__ import annotations

import numpy as np

from stylecast.engine.face import FPS, INDEX, N_EXPR, N_POSE
from stylecast.engine.idle import NOISE_DIM, IdleState, damp, idle_step, init_idle
from stylecast.engine.motion_backend import (
    MotionInputs,
    MotionModel,
    MotionStep,
    State,
    style_clip,
)
from stylecast.engine.phonemes import N_VISEMES, VISEME_ID, VISEME_OF_ID, VISEMES

GATE_DB = (-55.0, -40.0)  # loudness (dBFS) at which the mouth starts to open / fully opens
LOUD_DB = (-35.0, -15.0)  # loudness over which the shape grows from 85% to 115%
OMEGA_OPEN = 40.0  # rad/s: filter towards an open shape (95% in ~120 ms)
OMEGA_CLOSE = 75.0  # rad/s: towards a closure or silence (95% in ~65 ms)
SPEAK_SMOOTH = 0.85  # per-frame decay of the "speaking" level that widens head motion


def _shape(**w: float) -> np.ndarray:
    """A (52,) target from ARKit names; '_LR' names set both sides."""
    x = np.zeros(N_EXPR, np.float32)
    for name, v in w.items():
        if name.endswith("_LR"):
            x[INDEX[name[:-3] + "Left"]] = v
            x[INDEX[name[:-3] + "Right"]] = v
        else:
            x[INDEX[name]] = v
    return x


# The mouth of each viseme class (phonemes.VISEMES), ARKit weights at full loudness.
_VISEME_SHAPES: dict[str, np.ndarray] = {
    "sil": _shape(),
    "PP": _shape(jawOpen=0.02, mouthClose=0.04, mouthPress_LR=0.4, mouthRollLower=0.1,
                 mouthRollUpper=0.06),
    "FF": _shape(jawOpen=0.07, mouthRollLower=0.45, mouthUpperUp_LR=0.18, mouthShrugUpper=0.05),
    "TH": _shape(jawOpen=0.12, tongueOut=0.12, mouthLowerDown_LR=0.1, mouthUpperUp_LR=0.05),
    "DD": _shape(jawOpen=0.14, mouthLowerDown_LR=0.1, mouthUpperUp_LR=0.05,
                 mouthStretch_LR=0.08),
    "kk": _shape(jawOpen=0.2, mouthLowerDown_LR=0.1),
    "CH": _shape(jawOpen=0.1, mouthFunnel=0.42, mouthPucker=0.25, mouthUpperUp_LR=0.1,
                 mouthLowerDown_LR=0.1),
    "SS": _shape(jawOpen=0.06, mouthStretch_LR=0.2, mouthSmile_LR=0.1, mouthUpperUp_LR=0.1,
                 mouthLowerDown_LR=0.15),
    "nn": _shape(jawOpen=0.15, mouthLowerDown_LR=0.08, mouthUpperUp_LR=0.04),
    "RR": _shape(jawOpen=0.14, mouthPucker=0.3, mouthFunnel=0.25),
    "aa": _shape(jawOpen=0.5, mouthLowerDown_LR=0.28, mouthUpperUp_LR=0.1),
    "E": _shape(jawOpen=0.33, mouthStretch_LR=0.2, mouthLowerDown_LR=0.28, mouthUpperUp_LR=0.12),
    "I": _shape(jawOpen=0.16, mouthStretch_LR=0.3, mouthSmile_LR=0.2, mouthLowerDown_LR=0.12,
                mouthUpperUp_LR=0.1),
    "O": _shape(jawOpen=0.4, mouthFunnel=0.38, mouthPucker=0.15, mouthLowerDown_LR=0.12),
    "U": _shape(jawOpen=0.12, mouthPucker=0.65, mouthFunnel=0.32),
}  # fmt: skip
assert tuple(_VISEME_SHAPES) == VISEMES
VISEME_SHAPES = np.stack([_VISEME_SHAPES[v] for v in VISEMES])  # (15, 52)
# A loud, voiced frame the recognizer calls silence or noise: an unnamed mid vowel.
UNNAMED_VOWEL = _shape(jawOpen=0.28, mouthLowerDown_LR=0.15, mouthUpperUp_LR=0.06)
_VISEME_OF_ID = np.array(VISEME_OF_ID, np.int64)  # (41,) phoneme id -> viseme id
_CLOSURES = np.zeros(N_VISEMES, bool)
_CLOSURES[[VISEME_ID["PP"], VISEME_ID["FF"], VISEME_ID["sil"]]] = True
_UNGATED = np.zeros(N_VISEMES, bool)  # lips pressed whatever the loudness (p/b/m closures)
_UNGATED[VISEME_ID["PP"]] = True

# Style presets: (expression offset (52,), mouth gain, head-motion gain, head pitch offset).
STYLE_PRESETS: dict[str, tuple[np.ndarray, float, float, float]] = {
    "neutral": (_shape(), 1.0, 1.0, 0.0),
    "happy": (_shape(mouthSmile_LR=0.4, cheekSquint_LR=0.25, eyeSquint_LR=0.12,
                     browOuterUp_LR=0.1), 1.05, 1.3, -0.03),
    "sad": (_shape(mouthFrown_LR=0.35, browInnerUp=0.45, mouthShrugLower=0.1,
                   eyeLookDown_LR=0.15), 0.75, 0.6, 0.08),
    "angry": (_shape(browDown_LR=0.5, noseSneer_LR=0.2, eyeSquint_LR=0.2, mouthPress_LR=0.1),
              1.1, 1.2, 0.04),
    "surprised": (_shape(browInnerUp=0.5, browOuterUp_LR=0.5, eyeWide_LR=0.4), 1.1, 1.1,
                  -0.04),
}  # fmt: skip
STYLE_NAMES: tuple[str, ...] = tuple(STYLE_PRESETS)
_STYLE_OFFSETS = np.stack([p[0] for p in STYLE_PRESETS.values()])  # (S, 52)
_STYLE_GAINS = np.array([p[1:] for p in STYLE_PRESETS.values()], np.float32)  # (S, 3)


_MOVED = np.flatnonzero(np.abs(_STYLE_OFFSETS).sum(0) > 0)  # channels the presets move


def project_on_presets(expr: np.ndarray) -> np.ndarray:
    """(T, 52) ARKit weights -> (S,) preset weights, >= 0, summing to 1: the non-negative
    mix of preset offsets nearest to the clip's median expression on the channels they move
    (the median over frames leaves out most of the mouth's speech motion)."""
    target = np.median(expr[:, _MOVED], axis=0)  # (M,)
    offsets = _STYLE_OFFSETS[1:, _MOVED].astype(np.float64)  # (S-1, M), neutral is zero
    w = _nnls(offsets.T, target.astype(np.float64))  # (S-1,)
    if w.sum() > 1.0:
        w /= w.sum()
    return np.concatenate([[1.0 - w.sum()], w]).astype(np.float32)


def _nnls(a: np.ndarray, b: np.ndarray, iters: int = 500) -> np.ndarray:
    """min ||a x - b|| over x >= 0 by projected gradient (a few columns; no scipy)."""
    step = 1.0 / max(np.linalg.norm(a, 2) ** 2, 1e-12)
    x = np.zeros(a.shape[1])
    for _ in range(iters):
        x = np.maximum(x - step * (a.T @ (a @ x - b)), 0.0)
    return x


class BaselineMotion(MotionModel):
    """Viseme shapes + loudness gate + critically damped smoothing + idle (module doc)."""

    name = "baseline"
    lookahead = 0
    style_dim = len(STYLE_NAMES)  # one weight per preset
    noise_dim = NOISE_DIM
    reads = frozenset({"phonemes", "prosody", "noise"})  # no log-mel
    codes_key = "baseline"  # its codes are preset weights: valid for every instance

    def __init__(self) -> None:
        self.styles = {
            n: np.eye(self.style_dim, dtype=np.float32)[i] for i, n in enumerate(STYLE_NAMES)
        }

    has_style_encoder = True  # a projection onto the presets (module doc), not learned

    def extract_style(self, expr: np.ndarray, pose: np.ndarray) -> np.ndarray:
        """A style clip -> the mix of presets nearest to it (module doc)."""
        motion = style_clip(expr, pose)
        return project_on_presets(motion[:, :N_EXPR])

    def init_state(self, batch: int) -> State:
        idle = init_idle(batch)
        return {
            "mouth": np.zeros((batch, N_EXPR), np.float32),  # smoothed lower-face weights
            "mouth_vel": np.zeros((batch, N_EXPR), np.float32),  # their velocity, 1/s
            "speaking": np.zeros(batch, np.float32),  # smoothed loudness gate, 0..1
            **{f"idle_{k}": v for k, v in idle._asdict().items()},
        }

    def step(self, inputs: MotionInputs, style: np.ndarray, state: State) -> MotionStep:
        """inputs of frame t (B sessions), style (B, 5) preset weights -> motion of frame t."""
        b = inputs.batch
        style = np.asarray(style, np.float32)
        assert style.shape == (b, self.style_dim), style.shape
        offset = style @ _STYLE_OFFSETS  # (B, 52)
        mouth_gain, head_gain, head_pitch = (style @ _STYLE_GAINS).T  # (B,) each

        loud = inputs.prosody[:, 0]
        voicing = inputs.prosody[:, 1]
        vis = _VISEME_OF_ID[inputs.phonemes]  # (B,)
        gate = np.clip((loud - GATE_DB[0]) / (GATE_DB[1] - GATE_DB[0]), 0.0, 1.0)
        size = 0.85 + 0.3 * np.clip((loud - LOUD_DB[0]) / (LOUD_DB[1] - LOUD_DB[0]), 0.0, 1.0)
        target = VISEME_SHAPES[vis]  # (B, 52)
        unnamed = (vis == VISEME_ID["sil"]) & (gate > 0.5) & (voicing > 0.5)
        target = np.where(unnamed[:, None], UNNAMED_VOWEL, target)
        scale = np.where(_UNGATED[vis], 1.0, gate * size) * mouth_gain
        target = target * scale[:, None]
        closing = _CLOSURES[vis] & ~unnamed | (gate < 0.5)
        omega = np.where(closing, OMEGA_CLOSE, OMEGA_OPEN)[:, None]
        mouth, mouth_vel = damp(state["mouth"], state["mouth_vel"], target, omega, 1.0 / FPS)
        speaking = SPEAK_SMOOTH * state["speaking"] + (1.0 - SPEAK_SMOOTH) * gate

        idle = IdleState(**{k: state[f"idle_{k}"] for k in IdleState._fields})
        blink, pose, idle = idle_step(idle, inputs.noise, speaking, head_gain)
        pose[:, 0] += head_pitch
        expr = np.clip(np.maximum(mouth, 0.0) + blink + offset, 0.0, 1.0).astype(np.float32)
        new_state = {
            "mouth": mouth,
            "mouth_vel": mouth_vel,
            "speaking": speaking.astype(np.float32),
            **{f"idle_{k}": v for k, v in idle._asdict().items()},
        }
        assert pose.shape == (b, N_POSE)
        return MotionStep(expr, pose.astype(np.float32), new_state)
