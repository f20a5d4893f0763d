"""The viseme baseline: vowels open, p/b/m close, silence closes, rows independent."""

from __future__ import annotations

import numpy as np
import pytest

from stylecast.engine.audio import AudioFeatures
from stylecast.engine.baseline import STYLE_NAMES, BaselineMotion
from stylecast.engine.errors import InputError
from stylecast.engine.face import INDEX
from stylecast.engine.motion_backend import (
    MotionInputs,
    motion_for_features,
    silence_inputs,
    split_state,
    stack_states,
)
from stylecast.engine.phonemes import PHONEME_ID

JAW = INDEX["jawOpen"]
PRESS = INDEX["mouthPressLeft"]


def features(phones: list[str], loudness: float = -20.0) -> AudioFeatures:
    ids = np.array([PHONEME_ID[p] for p in phones], np.int64)
    pros = np.tile(np.array([loudness, 0.9, 120.0], np.float32), (len(ids), 1))
    pros[ids == PHONEME_ID["SIL"]] = (-100.0, 0.0, 0.0)
    return AudioFeatures(np.full((len(ids), 16, 80), -1.0, np.float32), ids, pros)


def test_vowels_open_bilabials_close_silence_closes():
    phones = ["SIL"] * 3 + ["AA"] * 6 + ["M"] * 3 + ["AA"] * 6 + ["SIL"] * 6
    expr, pose = motion_for_features(BaselineMotion(), features(phones))
    assert expr.shape == (len(phones), 52) and pose.shape == (len(phones), 6)
    jaw = expr[:, JAW]
    assert jaw[:3].max() < 0.01
    assert jaw[6:9].min() > 0.4  # AA open
    assert jaw[11] < 0.06 and expr[11, PRESS] > 0.3  # M: lips pressed by its last frame
    assert jaw[16:18].min() > 0.4
    assert jaw[-2:].max() < 0.02  # closed again in silence


def test_quiet_audio_keeps_the_mouth_closed():
    expr, _ = motion_for_features(BaselineMotion(), features(["AA"] * 10, loudness=-70.0))
    assert expr[:, JAW].max() < 0.01


def test_rows_of_a_batch_are_independent():
    model = BaselineMotion()
    rng = np.random.default_rng(0)
    steps = 40
    noise = rng.random((steps, 3, model.noise_dim), np.float32)
    style = np.stack([model.styles[n] for n in ("neutral", "happy", "sad")])
    phon = rng.integers(0, 41, (steps, 3))
    pros = np.stack([rng.uniform(-60, -10, (steps, 3)), rng.random((steps, 3)),
                     np.full((steps, 3), 100.0)], -1).astype(np.float32)  # fmt: skip

    def inputs(t, rows):
        base = silence_inputs(len(rows), noise[t, rows])
        return MotionInputs(base.mel, phon[t, rows], pros[t, rows], base.noise)

    batched = model.init_state(3)
    alone = [model.init_state(1) for _ in range(3)]
    for t in range(steps):
        out = model.step(inputs(t, [0, 1, 2]), style, batched)
        batched = out.state
        for b in range(3):
            one = model.step(inputs(t, [b]), style[b : b + 1], alone[b])
            alone[b] = one.state
            np.testing.assert_allclose(one.expr[0], out.expr[b], atol=1e-6)
            np.testing.assert_allclose(one.pose[0], out.pose[b], atol=1e-6)
    parts = split_state(stack_states(alone), [1, 1, 1])
    for p, a in zip(parts, alone, strict=True):
        assert p.keys() == a.keys()


def test_styles_are_named_presets():
    model = BaselineMotion()
    assert set(model.styles) == set(STYLE_NAMES) >= {"neutral", "happy", "sad"}
    happy, _ = motion_for_features(model, features(["SIL"] * 20), "happy")
    neutral, _ = motion_for_features(model, features(["SIL"] * 20), "neutral")
    assert happy[-1, INDEX["mouthSmileLeft"]] > neutral[-1, INDEX["mouthSmileLeft"]] + 0.3
    with pytest.raises(InputError, match="known styles"):
        model.style_code("grumpy")
