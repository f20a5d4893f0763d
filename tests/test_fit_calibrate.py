"""The tracker's view of a renderable face's shapes (fit_calibrate), on a made-up face
and a made-up tracker whose errors are known."""

from __future__ import annotations

import numpy as np
import pytest

from stylecast.engine.errors import InputError
from stylecast.engine.face import INDEX, N_EXPR
from stylecast.engine.fit import STABLE_POINTS, FitConfig, Fitter
from stylecast.engine.fit_calibrate import (
    CALIBRATION_POSES,
    RAMP,
    SETTLE,
    blend_basis,
    calibration_clip,
    perceived_basis,
)
from tests.test_fit import SCALE, project, synthetic_face

SMILE, DIMPLE = INDEX["mouthSmileLeft"], INDEX["mouthDimpleLeft"]


def mixing(gain: float = 0.5, leak: float = 0.4) -> np.ndarray:
    """(52, 52) what a made-up tracker sees of the weights: `gain` of every shape, and of
    the left smile a further `leak` read as the left dimple."""
    m = gain * np.eye(N_EXPR)
    m[DIMPLE, SMILE] = leak
    return m


def made_up_tracker(neutral, basis, m, rng, noise):
    """SeenAt of a tracker that sees weights e as m @ e, turns 0.8 of the head's yaw and
    pitch, and adds `noise` pixels."""

    def seen_at(expr: np.ndarray, pose: np.ndarray) -> np.ndarray:
        seen = np.asarray(expr, np.float64) @ m.T
        return project(neutral, basis, seen, 0.8 * pose[:, :3], rng, camera=None, noise=noise)

    return seen_at


def test_calibration_clip_ramps_one_shape_at_a_time():
    clip = calibration_clip([3, 7])
    per_pose = SETTLE + 2 * len(RAMP)
    assert clip.expr.shape == (len(CALIBRATION_POSES) * per_pose, N_EXPR)
    assert np.all((clip.expr > 0).sum(axis=1) <= 1)  # never two shapes at once
    ramped = clip.shape >= 0
    np.testing.assert_array_equal(clip.expr[ramped, clip.shape[ramped]], clip.weight[ramped])
    assert set(clip.shape[ramped]) == {3, 7}
    # every calibration pose is held while its shapes ramp, and has rest frames
    for i, angles in enumerate(CALIBRATION_POSES):
        held = clip.pose[clip.at == i, :3]
        np.testing.assert_allclose(held, np.deg2rad([angles] * len(held)), atol=1e-6)
        assert np.any((clip.at == i) & (clip.shape < 0))


def test_perceived_basis_is_what_the_tracker_sees():
    """A tracker that sees half of each shape, and the left smile partly as the dimple:
    the calibrated fields are those, whatever it does to the head pose."""
    neutral, basis = synthetic_face(seed=11)
    m = mixing()
    seen_at = made_up_tracker(neutral, basis, m, np.random.default_rng(0), noise=0.05)
    shapes = [INDEX[n] for n in ("jawOpen", "mouthSmileLeft", "eyeBlinkRight")]
    got = perceived_basis(seen_at, neutral, STABLE_POINTS, shapes)
    want = np.einsum("jk,jnc->knc", m, basis)  # (52, N, 3): shape k seen as sum_j m[j,k] b_j
    for k in shapes:
        error = np.abs(got[k] - want[k]).max() / SCALE  # inter-ocular units
        assert error < 0.01, (k, error)
        assert np.abs(got[k] - basis[k]).max() / SCALE > 0.05  # not the geometric field
    untouched = np.setdiff1d(np.arange(N_EXPR), shapes)
    assert not np.any(got[untouched])


def test_a_calibrated_basis_takes_the_trackers_confusion_off_in_one_step():
    """With the tracker's view as the fitter's basis, one re-rendering step recovers a
    smile that the tracker reads partly as a dimple; the geometric basis needs more."""
    neutral, basis = synthetic_face(seed=12)
    m = mixing()
    rng = np.random.default_rng(1)
    frames_n = 30
    t = np.arange(frames_n)
    expr = np.zeros((frames_n, N_EXPR))
    expr[:, SMILE] = np.clip(np.sin(t / 4.0), 0, 1) * 0.8
    expr[:, INDEX["jawOpen"]] = np.clip(np.cos(t / 3.0), 0, 1) * 0.6
    angles = np.deg2rad(np.stack([6 * np.sin(t / 7), 12 * np.sin(t / 5), 0 * t], 1))
    pose = np.concatenate([angles, np.zeros((frames_n, 3))], axis=1)
    seen_at = made_up_tracker(neutral, basis, m, rng, noise=0.05)
    frames = seen_at(expr, pose)
    seen_noiseless = made_up_tracker(neutral, basis, m, rng, noise=0.0)
    perceived = perceived_basis(seen_noiseless, neutral, STABLE_POINTS)
    one_step = FitConfig(reference_iterations=1, unfitted=())
    errors = {}
    for name, b in (("geometric", basis), ("perceived", perceived)):
        got, _ = Fitter(neutral, b, config=one_step).fit_points(frames, seen_noiseless)
        errors[name] = np.abs(got - expr).max()
    assert errors["perceived"] < 0.05 < errors["geometric"], errors


def test_blend_keeps_uncalibrated_shapes_geometric_and_checks_its_weight():
    geometric = np.ones((N_EXPR, 4, 3))
    perceived = np.zeros((N_EXPR, 4, 3))
    perceived[2] = 3.0
    out = blend_basis(geometric, perceived, 0.25)
    np.testing.assert_allclose(out[2], 0.25 * 3.0 + 0.75)
    np.testing.assert_allclose(np.delete(out, 2, axis=0), 1.0)
    with pytest.raises(InputError, match=r"got 1\.5"):
        blend_basis(geometric, perceived, 1.5)
    with pytest.raises(InputError, match="perceived_weight"):
        FitConfig(perceived_weight=-0.1)
