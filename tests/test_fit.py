"""The fitter: landmarks -> pose and ARKit weights.

Synthetic tests project a made-up face with known pose and weights; the round trip renders
the default avatar with a scripted motion, runs MediaPipe and the fitter on the frames, and
compares with the script.
"""

from __future__ import annotations

import numpy as np
import pytest
from scipy.optimize import lsq_linear

from stylecast.engine.errors import InputError, NoFaceError
from stylecast.engine.face import FPS, INDEX, rotation_matrix
from stylecast.engine.fit import (
    STABLE_POINTS,
    FitConfig,
    Fitter,
    Similarity,
    basis_in_frame_of,
    estimate_neutral,
    fill_missing,
    gaussian_smooth,
    rest_of,
    solve_box_qp,
    umeyama,
)
from stylecast.engine.motion import scripted_motion

N_POINTS = 478
CENTRE = np.array([256.0, 256.0, 0.0])  # where the synthetic face sits, in pixels
SCALE = 100.0  # pixels per inter-ocular distance


def synthetic_face(seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """A made-up face: (478, 3) neutral points on the front of an ellipsoid (pixels, z
    away from the camera) with irises one inter-ocular distance apart, and (52, 478, 3)
    random displacement fields that leave the stable points nearly still."""
    rng = np.random.default_rng(seed)
    u = rng.uniform(-1, 1, (N_POINTS, 2))
    pts = np.zeros((N_POINTS, 3))
    pts[:, 0] = 1.3 * u[:, 0]
    pts[:, 1] = 1.7 * u[:, 1]
    pts[:, 2] = -0.9 * np.sqrt(np.clip(1 - 0.8 * u[:, 0] ** 2 - 0.5 * u[:, 1] ** 2, 0, 1))
    pts[468] = [-0.5, -0.4, -0.6]  # the subject's right iris (image left)
    pts[473] = [0.5, -0.4, -0.6]
    basis = rng.normal(0, 0.05, (52, N_POINTS, 3))
    basis[:, list(STABLE_POINTS)] *= 0.02
    return pts * SCALE + CENTRE, basis * SCALE


def project(
    neutral: np.ndarray,
    basis: np.ndarray,
    expr: np.ndarray,
    angles: np.ndarray,
    rng: np.random.Generator,
    camera: float | None = 1000.0,
    noise: float = 0.3,
) -> np.ndarray:
    """(T, N, 3) landmarks of the face with `expr` (T, 52) and (pitch, yaw, roll) `angles`
    (T, 3), rotated about the stable points' centre, seen by a pinhole `camera` pixels
    away (None: orthographic), with Gaussian pixel noise."""
    pivot = neutral[list(STABLE_POINTS)].mean(axis=0)
    frames = []
    for w, a in zip(expr, angles, strict=True):
        pts = neutral + np.einsum("k,knc->nc", w, basis)
        pts = (pts - pivot) @ rotation_matrix(*a).T + pivot + [6.0, -4.0, 0.0]
        if camera is not None:
            depth = camera / (pts[:, 2] + camera)
            pts[:, :2] = CENTRE[:2] + (pts[:, :2] - CENTRE[:2]) * depth[:, None]
        frames.append(pts + rng.normal(0, noise, pts.shape))
    return np.stack(frames)


def random_script(frames: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Sparse random weights (T, 52) and smooth head angles (T, 3) up to 20/10/5 deg."""
    rng = np.random.default_rng(seed)
    expr = rng.uniform(0, 1, (frames, 52)) * (rng.uniform(0, 1, (frames, 52)) < 0.15)
    t = np.linspace(0, 2 * np.pi, frames)
    angles = np.deg2rad(np.stack([10 * np.sin(2 * t), 20 * np.sin(t), 5 * np.cos(t)], 1))
    return expr, angles


def test_umeyama_recovers_a_similarity():
    rng = np.random.default_rng(0)
    src = rng.normal(size=(40, 3))
    rot = rotation_matrix(0.3, -0.5, 0.2)
    dst = 2.5 * src @ rot.T + [1.0, -2.0, 3.0]
    sim = umeyama(src, dst)
    np.testing.assert_allclose(sim.rotation, rot, atol=1e-9)
    assert sim.scale == pytest.approx(2.5)
    np.testing.assert_allclose(sim.invert(dst), src, atol=1e-9)


def test_box_qp_matches_scipy_lsq_linear():
    rng = np.random.default_rng(1)
    a = rng.normal(size=(120, 52))
    b = rng.normal(size=(5, 120))
    ours = solve_box_qp(a.T @ a, b @ a, sweeps=400)
    for row, target in zip(ours, b, strict=True):
        ref = lsq_linear(a, target, bounds=(0, 1)).x
        np.testing.assert_allclose(row, ref, atol=1e-4)
    assert ours.min() >= 0 and ours.max() <= 1


@pytest.mark.parametrize("camera", [None, 1000.0])
def test_pose_and_weights_recovered_from_projected_landmarks(camera):
    neutral, basis = synthetic_face()
    expr, angles = random_script(60, seed=2)
    frames = project(neutral, basis, expr, angles, np.random.default_rng(3), camera=camera)
    fit_all = FitConfig(unfitted=())  # the synthetic face's tongueOut is as visible as any
    got_expr, got_pose = Fitter(neutral, basis, config=fit_all).fit_points(frames)
    error = np.rad2deg(np.abs(got_pose[:, :3] - angles))
    # Orthographic landmarks fit exactly up to the noise; a pinhole camera at ~4 face
    # widths bends them a little.
    assert np.median(error) < (0.1 if camera is None else 0.6), np.median(error, axis=0)
    assert error.max() < (0.3 if camera is None else 1.5)
    corr = np.array([np.corrcoef(got_expr[:, k], expr[:, k])[0, 1] for k in range(52)])
    assert np.all(corr > 0.95), corr.round(3)


def test_pose_signs_follow_the_convention():
    """A face turned with pose yaw > 0 (nose to the image left) is fitted as yaw > 0."""
    neutral, basis = synthetic_face()
    angles = np.deg2rad([[0.0, 15.0, 0.0], [8.0, 0.0, 0.0], [0.0, 0.0, -6.0]])
    frames = project(neutral, basis, np.zeros((3, 52)), angles, np.random.default_rng(0))
    _, pose = Fitter(neutral, basis).fit_points(frames)
    got = np.rad2deg([pose[0, 1], pose[1, 0], pose[2, 2]])
    np.testing.assert_allclose(got, [15.0, 8.0, -6.0], atol=1.0)


def test_basis_follows_a_neutral_in_another_frame():
    neutral, basis = synthetic_face()
    rot = rotation_matrix(0.1, 0.2, -0.1)
    other = 0.5 * neutral @ rot.T + [10.0, 20.0, 0.0]
    moved = basis_in_frame_of(neutral, basis, other)
    np.testing.assert_allclose(moved, 0.5 * basis @ rot.T, atol=1e-9)


def test_estimated_neutral_of_a_speaker():
    """A speaker whose jaw is open half the time, who blinks and smiles: the estimated
    neutral is close to the truth, and fitting with it tracks the weights."""
    neutral, basis = synthetic_face(seed=4)
    frames_n = 150
    rng = np.random.default_rng(5)
    expr = np.zeros((frames_n, 52))
    t = np.arange(frames_n)
    expr[:, INDEX["jawOpen"]] = np.clip(np.sin(t / 3.0), 0, 1) * 0.8
    expr[:, INDEX["eyeBlinkLeft"]] = (t % 40 < 4) * 1.0
    expr[:, INDEX["mouthSmileLeft"]] = np.clip(np.sin(t / 25.0), 0, 1) * 0.6
    angles = np.deg2rad(np.stack([5 * np.sin(t / 20), 15 * np.sin(t / 30), 0 * t], 1))
    frames = project(neutral, basis, expr, angles, rng)
    estimate = estimate_neutral(list(frames), neutral, basis)
    # Compare with the neutral as the camera sees it (perspective included), after a
    # similarity: the estimate lives in the first frame's coordinates.
    seen = project(neutral, basis, np.zeros((1, 52)), np.zeros((1, 3)), rng, noise=0)[0]
    aligned = umeyama(estimate, seen).apply(estimate)
    error = np.abs(aligned - seen) / SCALE  # inter-ocular units
    assert np.median(error) < 0.015 and np.percentile(error, 95) < 0.04 and error.max() < 0.08
    fitter = Fitter(estimate, basis_in_frame_of(neutral, basis, estimate))
    got = fitter.fit(list(frames))
    for name in ("jawOpen", "eyeBlinkLeft", "mouthSmileLeft"):
        corr = np.corrcoef(got.channel(name), expr[:, INDEX[name]])[0, 1]
        assert corr > 0.9, (name, corr)


def test_fit_interpolates_missing_frames_and_refuses_faceless_videos():
    neutral, basis = synthetic_face()
    expr, angles = random_script(20, seed=6)
    frames = list(project(neutral, basis, expr, angles, np.random.default_rng(7)))
    frames[5] = None
    motion = Fitter(neutral, basis).fit(frames)
    assert motion.frames == 20 and np.isfinite(motion.pose).all()
    with pytest.raises(NoFaceError, match="2 of 20"):
        Fitter(neutral, basis).fit([frames[0], frames[1]] + [None] * 18)
    with pytest.raises(InputError, match="no frames"):
        Fitter(neutral, basis).fit([])


def test_smoothing_and_gap_filling():
    x = np.zeros((11, 1))
    x[5] = 1.0
    y = gaussian_smooth(x, 1.0)
    assert y.sum() == pytest.approx(1.0) and y[5, 0] < 0.5 and y[5, 0] == y.max()
    present = np.ones(5, bool)
    present[[0, 2]] = False
    filled = fill_missing(np.array([[9.0], [1.0], [9.0], [3.0], [4.0]]), present)
    np.testing.assert_allclose(filled[:, 0], [1, 1, 2, 3, 4])


def test_pose_is_relative_to_a_turned_rest_pose():
    """Renderer convention: image = rest(R @ v + t) with the rig's canonical points v.
    With a rest pose turned 12 deg (yaw) and 6 deg (pitch), the fitted angles are R's."""
    canonical, basis = synthetic_face()
    canonical = (canonical - CENTRE) / SCALE  # inter-ocular units, pivot at the origin
    basis = basis / SCALE
    rest_rot = rotation_matrix(np.deg2rad(6.0), np.deg2rad(12.0), 0.0)
    rest = Similarity(rest_rot, 90.0, np.array([200.0, 240.0, 0.0]))
    expr, angles = random_script(30, seed=8)
    frames = np.stack(
        [
            rest.apply((canonical + np.einsum("k,knc->nc", w, basis)) @ rotation_matrix(*a).T)
            for w, a in zip(expr, angles, strict=True)
        ]
    )
    neutral = rest.apply(canonical)
    fitted_rest = rest_of(canonical, neutral)
    np.testing.assert_allclose(fitted_rest.rotation, rest_rot, atol=1e-9)
    fitter = Fitter(neutral, basis_in_frame_of(canonical, basis, neutral), fitted_rest)
    _, pose = fitter.fit_points(frames)
    np.testing.assert_allclose(pose[:, :3], angles, atol=1e-4)
    np.testing.assert_allclose(pose[:, 3:5], 0, atol=1e-4)


def test_a_trackers_own_errors_are_taken_off_with_seen_at():
    """A tracker that sees only half of every expression, reads turns a fifth short and
    shifts the lower face sideways with the yaw: fitted plainly, the weights come out
    about half and the turns short; with `seen_at` (the same tracker on the face rendered
    with given weights and poses) both are recovered."""
    neutral, basis = synthetic_face(seed=9)
    frames_n = 40
    rng = np.random.default_rng(10)
    expr = np.zeros((frames_n, 52))
    t = np.arange(frames_n)
    for name, phase in (("jawOpen", 0.0), ("mouthSmileLeft", 1.0), ("eyeBlinkRight", 2.0)):
        expr[:, INDEX[name]] = np.clip(np.sin(t / 4.0 + phase), 0, 1) * 0.8
    angles = np.deg2rad(np.stack([4 * np.sin(t / 9), 18 * np.sin(t / 7), 0 * t], 1))
    lower = neutral[:, 1] > np.median(neutral[:, 1])  # the lower half of the face

    def tracker(e: np.ndarray, a: np.ndarray, noise: float) -> np.ndarray:
        seen = project(neutral, basis, 0.5 * e, 0.8 * a, rng, camera=None, noise=noise)
        seen[:, lower, 0] += 0.1 * SCALE * a[:, 1:2]  # the lower face slides with the yaw
        return seen

    frames = tracker(expr, angles, noise=0.3)

    def seen_at(e: np.ndarray, pose: np.ndarray) -> np.ndarray:
        return tracker(e, pose[:, :3], noise=0.0)

    # Each iteration closes the gap by the tracker's gain (1/2 here): 4 leave 1/32 of it.
    fitter = Fitter(neutral, basis, config=FitConfig(reference_iterations=4))
    plain_expr, plain_pose = fitter.fit_points(frames)
    got_expr, got_pose = fitter.fit_points(frames, seen_at)
    plain_error = np.abs(plain_pose[:, 1] - angles[:, 1]).max()
    assert np.rad2deg(np.abs(got_pose[:, :3] - angles)).max() < 1.0 < np.rad2deg(plain_error)
    for name in ("jawOpen", "mouthSmileLeft", "eyeBlinkRight"):
        k = INDEX[name]
        assert got_expr[:, k].max() > 0.7 > 0.5 > plain_expr[:, k].max(), name
        assert np.corrcoef(got_expr[:, k], expr[:, k])[0, 1] > 0.95, name


# --- the round trip: render the default avatar, track it with MediaPipe, fit it ----------

ROUND_TRIP_SIZE = 256  # pixels: MediaPipe tracks it well and it keeps the test fast
ROUND_TRIP_SECONDS = 4.0  # 120 frames of the scripted motion
TRACKED = ("jawOpen", "eyeBlinkLeft", "eyeBlinkRight", "mouthSmileLeft", "mouthSmileRight")


@pytest.fixture(scope="module")
def round_trip():
    """(truth, fitted) motions: the scripted motion rendered with the default avatar, then
    fitted from MediaPipe's landmarks on the rendered frames, against the avatar's own rest
    frame, with MediaPipe's view of the avatar's shapes calibrated on a clip of its own
    (fit_calibrate) and its errors taken off by re-rendering (seen_at). About 20 s of CPU."""
    from stylecast.engine.avatar import load_avatar
    from stylecast.engine.capture import fit_track, neutral_of_avatar, seen_at_of, track_frames
    from stylecast.engine.render import Renderer

    avatar = load_avatar("default")
    truth = scripted_motion(ROUND_TRIP_SECONDS)
    renderer = Renderer(avatar, ROUND_TRIP_SIZE)
    try:
        frames = [renderer.render(e, p) for e, p in zip(truth.expr, truth.pose, strict=True)]
        track = track_frames(frames, FPS, "rendered default avatar")
        neutral = neutral_of_avatar(renderer)
        fitted = fit_track(track, avatar.rig, neutral, seen_at=seen_at_of(renderer))
    finally:
        renderer.close()
    return truth, fitted


@pytest.mark.parametrize("own_neutral", [True, False])
def test_fit_inverts_the_default_rig_exactly(own_neutral):
    """The scripted motion projected straight from the default avatar's rig (the renderer's
    geometry, no image, no MediaPipe) plus 0.3 px noise is recovered almost exactly, with
    the avatar's neutral or one estimated from the frames: whatever the round trip below
    loses is lost in the image and in MediaPipe, not in the fitter."""
    from stylecast.engine.avatar import load_avatar
    from stylecast.engine.capture import Track, fit_track

    avatar = load_avatar("default")
    rig, rest = avatar.rig, avatar.rest
    truth = scripted_motion(ROUND_TRIP_SECONDS)
    rng = np.random.default_rng(0)
    frames = [
        rest.to_image(rig.deform(e) @ rotation_matrix(*p[:3]).T + p[3:])
        + rng.normal(0, 0.3, (478, 3))
        for e, p in zip(truth.expr, truth.pose, strict=True)
    ]
    neutral = rest.to_image(rig.neutral) if own_neutral else None
    fitted = fit_track(Track(frames, FPS, "projected rig"), rig, neutral)
    for name in TRACKED:
        assert np.corrcoef(fitted.channel(name), truth.channel(name))[0, 1] > 0.99, name
    assert np.rad2deg(np.abs(fitted.pose[:, :3] - truth.pose[:, :3])).max() < 0.5


@pytest.mark.slow
@pytest.mark.parametrize("name", TRACKED)
def test_round_trip_recovers_expression(round_trip, name):
    truth, fitted = round_trip
    corr = np.corrcoef(fitted.channel(name), truth.channel(name))[0, 1]
    assert corr >= 0.9, (
        f"{name}: correlation {corr:.3f} (peak fitted {fitted.channel(name).max():.2f})"
    )


@pytest.mark.slow
def test_round_trip_recovers_pose(round_trip):
    truth, fitted = round_trip
    errors = np.rad2deg(np.abs(fitted.pose[:, :3] - truth.pose[:, :3]))  # (T, 3) degrees
    medians = np.median(errors, axis=0)
    assert medians.max() <= 2.0, f"median |error| pitch, yaw, roll: {medians.round(2)} deg"
    # Turns are found in the right direction, at most a third short at the extremes.
    for axis, peak in ((0, 10.0), (1, 20.0)):
        fitted_deg = np.rad2deg(fitted.pose[:, axis])
        assert fitted_deg.max() > peak * 0.66 and fitted_deg.min() < -peak * 0.66
