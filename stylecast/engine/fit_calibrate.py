"""How a tracker sees a renderable face's blendshapes: a calibrated basis for the fitter.

MediaPipe does not see the rig's shapes as the rig moves them: on the default avatar it
reports about half of a smile's corner movement, half of an open jaw, almost none of
jawForward, and points the shapes in other directions too (a smile's displacement as
MediaPipe reports it correlates about 0.7 with the rig's). Fitting such landmarks against
the rig's geometric fields leaves the analysis-by-synthesis loop (`Fitter.fit_points` with
`seen_at`) a Jacobian that is wrong in size and direction, so each re-rendering closes
only part of the gap, and shapes that MediaPipe confuses (a smile read as a dimple on a
nodding head) stay confused.

For a face that can be rendered, the tracker's view of each shape is measured instead:
a calibration clip holds the head still at a few poses and, at each, ramps one shape at a
time up while the others rest. Tracked in order (`SeenAt`), each frame is
mapped back into the neutral's frame by the similarity of that pose's rest frames, and
the displacement per unit weight is the least-squares slope through the origin. The
poses' slopes are averaged. The calibration clip shares nothing with the footage being
fitted: one shape at a time, still heads, fixed weights.

    perceived = perceived_basis(seen_at, neutral, stable)        # (52, N, 3)
    basis = blend_basis(geometric, perceived, weight=0.5)
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from stylecast.engine.errors import InputError
from stylecast.engine.face import N_EXPR, N_POSE
from stylecast.engine.fit import SeenAt, umeyama

# Head poses the shapes are measured at, (pitch, yaw, roll) in degrees: frontal and a turn
# either way. Measured on four motions, adding a nod either way (pitch +-8) and two more
# weights per ramp (0.35, 0.7, 1, 0.5) cost 4x the frames and changed no correlation by
# more than MediaPipe's run-to-run noise (docs/fitting.md).
CALIBRATION_POSES: tuple[tuple[float, float, float], ...] = (
    (0.0, 0.0, 0.0),
    (0.0, 12.0, 0.0),
    (0.0, -12.0, 0.0),
)
RAMP: tuple[float, ...] = (0.0, 0.5, 1.0)  # one shape's weights, from rest
SETTLE = 3  # frames to move the head from one calibration pose to the next


class CalibrationClip(NamedTuple):
    """A clip of one shape at a time at still poses, and what each frame shows."""

    expr: np.ndarray  # (F, 52) float32 weights
    pose: np.ndarray  # (F, 6) float32 poses (radians)
    shape: np.ndarray  # (F,) int: the shape ramped in this frame, -1 for a rest frame
    weight: np.ndarray  # (F,) float32: its weight (as rendered)
    at: np.ndarray  # (F,) int: index into the poses, -1 while the head moves


def calibration_clip(
    shapes: np.ndarray | list[int],
    poses_deg: tuple[tuple[float, float, float], ...] = CALIBRATION_POSES,
) -> CalibrationClip:
    """For each pose: SETTLE frames moving the head there, then, for each shape index in
    `shapes`, the RAMP of weights (starting at rest). F = len(poses) * (SETTLE +
    len(shapes) * len(RAMP)) frames."""
    expr, pose, shape, weight, at = [], [], [], [], []
    previous = np.zeros(3)
    for i, angles in enumerate(poses_deg):
        target = np.deg2rad(np.asarray(angles, np.float64))
        for s in range(SETTLE):
            step = previous + (target - previous) * (s + 1) / SETTLE
            expr.append(np.zeros(N_EXPR))
            pose.append(np.r_[step, np.zeros(N_POSE - 3)])
            shape.append(-1)
            weight.append(0.0)
            at.append(-1)
        previous = target
        for k in shapes:
            for w in RAMP:
                e = np.zeros(N_EXPR)
                e[k] = w
                expr.append(e)
                pose.append(np.r_[target, np.zeros(N_POSE - 3)])
                shape.append(k if w > 0 else -1)
                weight.append(w)
                at.append(i)
    return CalibrationClip(
        np.array(expr, np.float32),
        np.array(pose, np.float32),
        np.array(shape),
        np.array(weight, np.float32),
        np.array(at),
    )


def perceived_basis(
    seen_at: SeenAt,
    neutral: np.ndarray,
    stable: np.ndarray | tuple[int, ...],
    shapes: np.ndarray | list[int] | None = None,
    poses_deg: tuple[tuple[float, float, float], ...] = CALIBRATION_POSES,
) -> np.ndarray:
    """(52, N, 3) displacement per unit weight of each shape as the tracker reports it,
    in the coordinates of `neutral` (N, 3) (the face's rest landmarks as the tracker reads
    them), averaged over `poses_deg`. Shapes not in `shapes` (default: all) are zero.

    At each pose, the rest frames' similarity onto the neutral (on the `stable` points)
    maps every frame back; a shape's field is the slope of its frames' displacement from
    the pose's mean rest frame against the weight."""
    neutral = np.asarray(neutral, np.float64)
    stable = np.asarray(stable, np.int64)
    shapes = np.arange(N_EXPR) if shapes is None else np.asarray(shapes, np.int64)
    clip = calibration_clip(shapes, poses_deg)
    seen = np.asarray(seen_at(clip.expr, clip.pose), np.float64)  # (F, N, 3)
    if seen.shape != (len(clip.expr), *neutral.shape):
        raise InputError(
            f"the tracker returned landmarks {seen.shape}, expected "
            f"{(len(clip.expr), *neutral.shape)}"
        )
    out = np.zeros((len(poses_deg), N_EXPR, *neutral.shape))
    for i in range(len(poses_deg)):
        rest = seen[(clip.at == i) & (clip.shape < 0)]  # (R, N, 3)
        sim = umeyama(neutral[stable], rest.mean(axis=0)[stable])
        rest_back = sim.invert(rest.mean(axis=0))  # (N, 3)
        for k in shapes:
            frames = (clip.at == i) & (clip.shape == k)
            w = clip.weight[frames]  # (n,)
            d = sim.invert(seen[frames]) - rest_back  # (n, N, 3)
            out[i, k] = np.einsum("n,nij->ij", w, d) / (w @ w)
    return out.mean(axis=0)


def blend_basis(geometric: np.ndarray, perceived: np.ndarray, weight: float) -> np.ndarray:
    """(52, N, 3): `weight` of the tracker's view of each shape plus the rest of the rig's
    geometric field. Shapes the calibration left out (all zero) stay geometric."""
    if not 0.0 <= weight <= 1.0:
        raise InputError(f"the perceived basis weight must be in [0, 1], got {weight}")
    geometric = np.asarray(geometric, np.float64)
    perceived = np.asarray(perceived, np.float64)
    measured = np.abs(perceived).reshape(len(perceived), -1).max(axis=1) > 0  # (52,)
    out = geometric.copy()
    out[measured] = weight * perceived[measured] + (1.0 - weight) * geometric[measured]
    return out
