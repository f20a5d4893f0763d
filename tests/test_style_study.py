"""training/style_study.py: which features carry a label, on planted made-up features."""

import numpy as np
import pytest
import torch

from stylecast.engine.face import INDEX
from stylecast.training import style_study as ss

N, PERFORMERS, EMOTIONS = 320, 4, ("happy", "sad")


@pytest.fixture(autouse=True)
def _one_thread():
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


def _arrays() -> dict:
    """A pool where the performer shows only in the mouth's means (most in the jaw's) and
    the emotion only in the other upper-face means; system 0 reproduces both, system 1
    only the emotion."""
    rng = np.random.default_rng(0)
    performer = (np.arange(N) // 2) % PERFORMERS  # the evaluated half (even) has them all
    emotion = np.array([EMOTIONS[(i // (2 * PERFORMERS)) % 2] for i in range(N)])
    x = rng.normal(0.0, 1.0, (N, 3 * ss.N_CHANNELS))
    mouth = ss.channel_groups()["mouth (lower face)"]  # mean columns: the channel indices
    jaw, brows = INDEX["jawOpen"], ss.channel_groups()["brows, squint, cheeks, nose"]
    x[:, mouth] += 1.0 * performer[:, None]
    x[:, jaw] += 3.0 * performer
    x[:, brows] += 2.0 * (emotion == "happy")[:, None]
    ids = np.arange(N) * 3
    evaluated = np.arange(0, N, 2)
    faithful = x[evaluated] + rng.normal(0.0, 0.1, x[evaluated].shape)
    no_person = faithful.copy()
    no_person[:, mouth] = rng.normal(0.0, 1.0, (len(evaluated), len(mouth)))
    codes = np.eye(PERFORMERS)[performer] + rng.normal(0.0, 0.05, (N, PERFORMERS))
    return {
        "utterances": ids[evaluated], "pool": ids, "pool_features": x,
        "pool_performer": performer, "pool_emotion": emotion,
        "pool_performer_emotion": np.char.add(performer.astype(str), emotion),
        "pool_style": (performer * 8 + (emotion == "sad")) * 3,
        "names": np.array(["faithful", "no person"]),
        "system0_features": faithful, "system1_features": no_person, "system0_codes": codes,
    }  # fmt: skip


def test_channel_groups_cover_every_channel_once():
    groups = ss.channel_groups()
    assert INDEX["jawOpen"] in groups["mouth (lower face)"]
    assert INDEX["eyeBlinkLeft"] in groups["eyelids (blink)"]
    assert sorted(ss.columns(np.arange(ss.N_CHANNELS))) == list(range(3 * ss.N_CHANNELS))


def test_the_study_finds_where_the_label_lives():
    s = ss.study(_arrays())
    assert s["truth"]["performer"] > 0.6 and s["truth"]["emotion"] > 0.9  # chance 25%, 50%
    ab = s["truth_ablation"]["performer"]
    assert ab["mouth (lower face) only"] > ab["head pose only"] + 0.3
    assert ab["mean only"] > ab["speed only"] + 0.3
    faithful, no_person = s["systems"]["faithful"], s["systems"]["no person"]
    assert faithful["eval"]["performer"] > no_person["eval"]["performer"] + 0.3
    assert faithful["own_kind"]["performer"] > no_person["own_kind"]["performer"] + 0.3
    assert no_person["eval"]["emotion"] > 0.9  # the emotion is still there
    assert no_person["true_mouth"]["performer"] > no_person["eval"]["performer"] + 0.3
    assert faithful["code_probe"]["performer"] > 0.9 and "code_probe" not in no_person
    assert s["fisher"]["features"][0] == "mean jawOpen"
    assert s["fisher"]["systems"]["no person"]["top"][0] < 0.5 * s["fisher"]["truth"][0]
    text = ss.markdown(s)
    assert "no style encoder" in text and "| mean jawOpen |" in text


def test_smoothing_lowers_the_speed_features():
    rng = np.random.default_rng(1)
    expr = [rng.random((60, 52)).astype(np.float32) for _ in range(2)]
    pose = [rng.random((60, 6)).astype(np.float32) for _ in range(2)]
    raw = ss.smoothed_features(expr, pose, 0.01)
    smooth = ss.smoothed_features(expr, pose, 2.0)
    speed = ss.columns(np.arange(ss.N_CHANNELS), ("speed",))
    mean = ss.columns(np.arange(ss.N_CHANNELS), ("mean",))
    assert np.all(smooth[:, speed] < 0.5 * raw[:, speed])
    assert np.allclose(smooth[:, mean], raw[:, mean], atol=0.02)
