"""training/metrics.py: the evaluation's motion metrics on inputs with known answers."""

import numpy as np
import pytest

from stylecast.engine.avatar import load_avatar
from stylecast.engine.face import INDEX
from stylecast.training import metrics as M
from stylecast.training.timeline import Phone


@pytest.fixture(scope="module")
def rig():
    return load_avatar("default").rig


def _talk(frames=90, seed=0):
    """A mouth that opens and closes: jawOpen follows a slow random walk in [0, 0.6]."""
    rng = np.random.default_rng(seed)
    e = np.zeros((frames, 52), np.float32)
    e[:, INDEX["jawOpen"]] = np.clip(np.cumsum(rng.normal(0, 0.08, frames)), 0, 0.6)
    e[:, INDEX["mouthSmileLeft"]] = rng.random(frames) * 0.3
    return e


def test_perfect_prediction_scores_zero_and_a_shuffled_one_does_not(rig):
    true = _talk()
    assert M.mouth_lvd(true, true, rig) == 0.0 and M.face_lvd(true, true, rig) == 0.0
    shuffled = true[np.random.default_rng(1).permutation(len(true))]
    m, f = M.mouth_lvd(shuffled, true, rig), M.face_lvd(shuffled, true, rig)
    assert m > 0.01 and f > 0.0
    assert m > f  # the jaw and lips move more than the face as a whole
    with pytest.raises(ValueError):
        M.mouth_lvd(true[:10], true, rig)


def test_bilabial_closure_is_counted_within_one_frame(rig):
    frames = 60
    open_mouth = np.zeros((frames, 52), np.float32)
    open_mouth[:, INDEX["jawOpen"]] = 0.5
    phones = [Phone("SIL", 0.0, 0.5), Phone("P", 0.5, 0.6), Phone("AA", 0.6, 1.0),
              Phone("M", 1.0, 1.1), Phone("SIL", 1.1, 2.0)]  # fmt: skip
    spans = M.bilabial_frames(phones, frames)
    assert len(spans) == 2 and spans[0][0] == 14 and spans[0][-1] == 18  # 15..17 +- 1
    closed_below = M.closed_threshold(rig)
    closing = open_mouth.copy()
    closing[18, INDEX["jawOpen"]] = 0.0  # closed one frame after the /p/ ends: counts
    closing[33, INDEX["jawOpen"]] = 0.0  # the /m/ covers frames 30..32 (+1 = 33)
    assert M.closure_rate(M.lip_opening(open_mouth, rig), spans, closed_below) == (0, 2)
    assert M.closure_rate(M.lip_opening(closing, rig), spans, closed_below) == (2, 2)
    late = open_mouth.copy()
    late[20, INDEX["jawOpen"]] = 0.0  # two frames late: does not count
    assert M.closure_rate(M.lip_opening(late, rig), spans, closed_below) == (0, 2)


def test_pose_metrics():
    t = np.arange(120)
    pose = np.zeros((120, 6), np.float32)
    pose[:, 1] = 0.1 * np.sin(t / 10)
    jittery = pose + np.random.default_rng(0).normal(0, 0.01, pose.shape).astype(np.float32)
    assert M.pose_jerk(pose) < M.pose_jerk(jittery)
    loud = np.where(np.abs(np.cos(t / 10)) > 0.5, -20.0, -70.0)  # loud while the head moves
    assert M.energy_correlation(pose, loud) > 0.5
    assert np.isnan(M.energy_correlation(np.zeros((120, 6)), loud))
    samples = np.stack([pose, pose])
    assert M.pose_diversity(samples) == 0.0
    assert M.pose_diversity(np.stack([pose, jittery])) > 0.0


def test_nearest_neighbour_retrieval_and_step_sizes():
    codes = np.array([[1, 0], [0.9, 0.1], [0, 1], [0.1, 0.9], [-1, 0]], np.float32)
    labels = np.array([0, 0, 1, 1, 2])
    assert M.nearest_neighbour_accuracy(codes, labels) == (4, 4)  # label 2 has one clip
    assert M.nearest_neighbour_accuracy(codes, np.array([0, 1, 0, 1, 2])) == (0, 4)
    path = np.linspace(0, 1, 5)[:, None] * np.ones((5, 3))
    np.testing.assert_allclose(M.step_sizes(path), 0.25)


def test_lagged_correlation_finds_the_shift():
    rng = np.random.default_rng(2)
    y = np.convolve(rng.normal(size=200), np.ones(5) / 5, mode="same")
    r = M.lagged_correlations(np.roll(y, 4), y, 10)  # x follows y 4 frames late
    assert len(r) == 21 and int(np.nanargmax(r)) - 10 == 4 and r[14] > 0.99
    assert np.isnan(M.lagged_correlations(np.ones(200), y, 3)).all()
    with pytest.raises(ValueError):
        M.lagged_correlations(y[:50], y, 3)


def test_lip_sync_offset_needs_no_judge(rig):
    """A mouth that opens while the speech is loud is in sync; shifted, the lag shows it."""
    rng = np.random.default_rng(3)
    frames = 150
    syllables = (np.sin(np.arange(frames) / 2.5) > 0.2) & (rng.random(frames) > 0.1)
    loud = np.where(syllables, -20.0, -80.0)  # floored at -60 inside
    expr = np.zeros((frames, 52), np.float32)
    expr[:, INDEX["jawOpen"]] = np.convolve(syllables * 0.5, np.ones(3) / 3, mode="same")
    r, lag = M.lip_sync_offset(M.lip_opening(expr, rig), loud)
    assert r > 0.8 and lag == 0
    r_late, lag_late = M.lip_sync_offset(M.lip_opening(np.roll(expr, 6, axis=0), rig), loud)
    assert lag_late == 6 and r_late < r - 0.3
    still = np.zeros((frames, 52), np.float32)
    assert all(np.isnan(M.lip_sync_offset(M.lip_opening(still, rig), loud)))
