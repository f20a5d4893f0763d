"""The fitter: face landmarks per frame -> motion (52 ARKit weights + 6-DoF pose).

Per frame:
1. Pose: a similarity (rotation, scale, translation) aligns the identity's neutral
   landmarks to the frame's on stable points (forehead, nose bridge, eye corners, temples;
   never lips, jaw, lids or brows), weighted least squares in closed form (Umeyama), then
   refined once with the expression removed.
2. Expression: the frame's landmarks are brought back into the neutral's frame; their
   offset from the neutral is explained by the rig's 52 displacement fields with weights in
   [0, 1] (box-constrained least squares with light L1 + L2 regularisation, solved for all
   frames at once by projected coordinate descent).
3. For footage of a face that can be rendered (a stylecast avatar), analysis by synthesis:
   the fitted face is rendered and tracked again, and what the tracker reports beyond the
   rig's geometry (its own error on this face and pose) is taken off before refitting.
4. Light temporal smoothing; frames without a face are interpolated from their neighbours.

Everything is in the neutral's units divided by its inter-ocular distance, so the
regularisation means the same for every image size. The identity neutral comes from the
avatar (its own rendered rest frame) or is estimated from the video (`estimate_neutral`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np

from stylecast.engine.errors import InputError, NoFaceError
from stylecast.engine.face import FPS, INDEX, N_EXPR, euler_from_matrix
from stylecast.engine.motion import Motion, resample_arrays

# MediaPipe face-mesh indices that move with the skull, not with expressions.
STABLE_POINTS: tuple[int, ...] = (
    # forehead
    10, 151, 9, 108, 337, 67, 297, 109, 338, 104, 333, 69, 299, 103, 332, 54, 284,
    # nose bridge and dorsum
    168, 6, 197, 195, 5, 4, 1,
    # eye corners
    33, 133, 362, 263,
    # temples and the sides of the face at eye level
    127, 356, 234, 454, 162, 389, 21, 251,
)  # fmt: skip
LEFT_IRIS, RIGHT_IRIS = 473, 468  # the subject's iris centres (MediaPipe refined points)
ROBUST_CHUNK = 128  # frames per batch of the reweighted solve (~76 MB of design matrices)
# How the tracker sees a renderable face (a stylecast avatar) rendered with (T, 52) weights
# at (T, 6) poses: (T, N, 3) landmarks, tracked in order like the frames being fitted.
SeenAt = Callable[[np.ndarray, np.ndarray], np.ndarray]
CAMERA_DISTANCE = 10.0  # assumed camera distance in inter-ocular units (~63 cm), for tz


@dataclass(frozen=True)
class FitConfig:
    """How the fitter weighs and regularises. Units: inter-ocular distances."""

    depth_weight: float = 1.0  # weight of z residuals (MediaPipe depth, in pixel scale)
    l2: float = 1e-3  # ridge on the weights, per weight
    l1: float = 1e-3  # sparsity on the weights (the weights are >= 0, so a linear term)
    sweeps: int = 300  # at most this many coordinate-descent sweeps (until converged)
    passes: int = 3  # alternations of pose alignment and expression solve
    # Shapes held at 0: MediaPipe has no tongue landmarks, so a tongue shows only through the
    # lips' shape, which the other shapes explain; fitted, it steals from jawOpen.
    unfitted: tuple[str, ...] = ("tongueOut",)
    huber: float = 0.003  # robust loss: residuals above this (inter-ocular units) count less
    # With a renderable face (`seen_at`): how many times the fitted face is rendered and
    # tracked again, and whether with its fitted expression (else without, at its pose).
    reference_iterations: int = 4
    reference_expression: bool = True
    # With a renderable face: the share of the tracker's calibrated view of each shape in
    # the basis (fit_calibrate.perceived_basis), the rest the rig's geometric field. 0: the
    # geometric fields alone, and no calibration clip is rendered.
    perceived_weight: float = 0.5
    robust_iterations: int = 3  # reweighting steps of the robust fit (0: plain least squares)
    smooth_expr: float = 0.6  # Gaussian smoothing of weights over time, sigma in frames
    smooth_pose: float = 1.0  # Gaussian smoothing of pose over time, sigma in frames
    min_face_fraction: float = 0.5  # refuse a video with a face in fewer frames than this

    def __post_init__(self) -> None:
        for name in ("depth_weight", "l2", "l1", "smooth_expr", "smooth_pose", "huber"):
            if getattr(self, name) < 0:
                raise InputError(f"FitConfig.{name} must be >= 0, got {getattr(self, name)}")
        if not 0.0 <= self.perceived_weight <= 1.0:
            raise InputError(
                f"FitConfig.perceived_weight must be in [0, 1], got {self.perceived_weight}"
            )
        unknown = [n for n in self.unfitted if n not in INDEX]
        if unknown:
            raise InputError(f"FitConfig.unfitted: not ARKit blendshape names: {unknown}")
        if (
            min(self.passes, self.sweeps) < 1
            or min(self.robust_iterations, self.reference_iterations) < 0
        ):
            raise InputError(
                f"FitConfig passes and sweeps must be >= 1, the iteration counts >= 0, got {self}"
            )
        if not 0.0 < self.min_face_fraction <= 1.0:
            raise InputError(
                f"FitConfig.min_face_fraction must be in (0, 1], got {self.min_face_fraction}"
            )


class Similarity(NamedTuple):
    """dst ≈ scale * src @ rotation.T + translation."""

    rotation: np.ndarray  # (3, 3)
    scale: float
    translation: np.ndarray  # (3,)

    def apply(self, points: np.ndarray) -> np.ndarray:
        return self.scale * points @ self.rotation.T + self.translation

    def invert(self, points: np.ndarray) -> np.ndarray:
        """Points in dst space -> src space."""
        return (points - self.translation) @ self.rotation / self.scale


def umeyama(src: np.ndarray, dst: np.ndarray, weights: np.ndarray | None = None) -> Similarity:
    """The similarity that best maps src (N, 3) onto dst (N, 3) in weighted least squares,
    with a proper rotation (det +1)."""
    w = np.ones(len(src)) if weights is None else np.asarray(weights, np.float64)
    w = w / w.sum()
    mu_s, mu_d = w @ src, w @ dst
    s, d = src - mu_s, dst - mu_d
    cov = (d * w[:, None]).T @ s  # (3, 3)
    u, sig, vt = np.linalg.svd(cov)
    fix = np.diag([1.0, 1.0, np.sign(np.linalg.det(u @ vt)) or 1.0])
    rotation = u @ fix @ vt
    var_s = w @ (s**2).sum(axis=1)
    scale = float(np.trace(np.diag(sig) @ fix) / var_s)
    return Similarity(rotation, scale, mu_d - scale * rotation @ mu_s)


def interocular(points: np.ndarray) -> float:
    """Distance between the iris centres (refined landmarks) or, for 468 points, between
    the eye-corner midpoints."""
    if len(points) > LEFT_IRIS:
        return float(np.linalg.norm(points[LEFT_IRIS, :2] - points[RIGHT_IRIS, :2]))
    right = (points[33] + points[133]) / 2
    left = (points[362] + points[263]) / 2
    return float(np.linalg.norm(left[:2] - right[:2]))


def pose_from_similarity(sim: Similarity, rest: Similarity) -> np.ndarray:
    """(6,) pose of a frame whose landmarks are `sim` applied to the neutral's, where
    `rest` maps the head's canonical frame (inter-ocular units, origin at the pivot) onto
    the neutral's coordinates. The rotation is expressed in the head frame, as the renderer
    applies it (image = rest(R @ v + t)); tx, ty from the pivot's shift; tz from the change
    of scale, under a camera CAMERA_DISTANCE away."""
    r_rest = rest.rotation
    rotation = r_rest.T @ sim.rotation @ r_rest
    pitch, yaw, roll = euler_from_matrix(rotation)
    pivot = rest.translation
    shift = r_rest.T @ (sim.apply(pivot[None])[0] - pivot) / rest.scale
    tz = (1.0 / sim.scale - 1.0) * CAMERA_DISTANCE
    return np.array([pitch, yaw, roll, shift[0], shift[1], tz], np.float32)


def solve_box_qp(
    gram: np.ndarray,
    rhs: np.ndarray,
    l1: float = 0.0,
    sweeps: int = 300,
    start: np.ndarray | None = None,
    tol: float = 1e-4,
) -> np.ndarray:
    """min_w 0.5 wᵀ G w - bᵀ w + l1·Σw subject to 0 <= w <= 1, for many right-hand sides.

    gram: (K, K) symmetric positive definite, shared, or (T, K, K), one per problem;
    rhs: (T, K); start: (T, K) initial weights (zeros by default). Returns (T, K) float64.
    Projected coordinate descent, vectorised over the T problems, until no weight moves by
    more than `tol` in a sweep (or `sweeps` sweeps).
    """
    shared = gram.ndim == 2
    g = gram[None] if shared else gram  # (1 or T, K, K)
    k = g.shape[-1]
    diag = np.einsum("tkk->tk", g)  # (1 or T, K)
    assert np.all(diag > 0), "the Gram matrix needs a positive diagonal"
    w = np.zeros(rhs.shape) if start is None else np.array(start, np.float64)
    grad = np.einsum("tkj,tj->tk", g, w) if start is not None else np.zeros(rhs.shape)
    grad += -rhs + l1  # G w - b + l1; (T, K)
    for _ in range(sweeps):
        largest = 0.0  # the largest change of any weight in this sweep
        for j in range(k):
            new = np.clip(w[:, j] - grad[:, j] / diag[:, j], 0.0, 1.0)
            delta = new - w[:, j]
            if np.any(delta):
                w[:, j] = new
                grad += delta[:, None] * g[:, j, :]
                largest = max(largest, float(np.abs(delta).max()))
        if largest < tol:
            break
    return w


def gaussian_smooth(x: np.ndarray, sigma: float) -> np.ndarray:
    """Smooth (T, C) along time with a Gaussian of `sigma` frames, edges reflected."""
    if sigma <= 0 or len(x) < 2:
        return x
    radius = max(1, int(np.ceil(3 * sigma)))
    taps = np.exp(-0.5 * (np.arange(-radius, radius + 1) / sigma) ** 2)
    taps /= taps.sum()
    padded = np.pad(x, ((radius, radius), (0, 0)), mode="reflect" if len(x) > radius else "edge")
    out = np.empty_like(x, dtype=np.float64)
    for c in range(x.shape[1]):
        out[:, c] = np.convolve(padded[:, c], taps, mode="valid")
    return out


def fill_missing(values: np.ndarray, present: np.ndarray) -> np.ndarray:
    """(T, C) values with rows where `present` is False linearly interpolated (held at
    the ends)."""
    if present.all():
        return values
    t = np.arange(len(values))
    out = values.copy()
    for c in range(values.shape[1]):
        out[~present, c] = np.interp(t[~present], t[present], values[present, c])
    return out


class Fitter:
    """Fits frames of landmarks against one identity.

    neutral: (N, 3) the identity's landmarks at rest (no expression, rest pose), in the
        frames' coordinates (pixels; MediaPipe depth as z). N is 468 or 478.
    basis: (52, N, 3) the rig's displacement per unit weight, in the neutral's coordinates
        (see `basis_in_frame_of`).
    rest: maps the head's canonical frame onto the neutral's coordinates (`rest_of`); the
        fitted rotations are expressed in it. None: the neutral's own axes, pivot at the
        stable points' centre, one inter-ocular distance per unit.
    stable: indices of the points the rigid alignment uses.
    regions: (points, anchors) index pairs: each region's points are re-anchored on its
        anchors before the expression solve (e.g. eyelids on the eye corners), so a small
        error of the global pose does not read as a blink.
    """

    def __init__(
        self,
        neutral: np.ndarray,
        basis: np.ndarray,
        rest: Similarity | None = None,
        config: FitConfig | None = None,
        stable: tuple[int, ...] | np.ndarray = STABLE_POINTS,
        regions: tuple[tuple[np.ndarray, np.ndarray], ...] = (),
    ) -> None:
        neutral = np.asarray(neutral, np.float64)
        basis = np.asarray(basis, np.float64)
        if neutral.ndim != 2 or neutral.shape[1] != 3:
            raise InputError(f"neutral landmarks must be (N, 3), got {neutral.shape}")
        if basis.shape != (N_EXPR, *neutral.shape):
            raise InputError(f"basis must be (52, {len(neutral)}, 3), got {basis.shape}")
        self.config = config or FitConfig()
        self.iod = interocular(neutral)
        self.neutral = neutral / self.iod  # (N, 3) in inter-ocular units
        self.basis = basis / self.iod  # (52, N, 3)
        self.stable = np.asarray(stable, np.int64)
        self.regions = tuple((np.asarray(p, np.int64), np.asarray(a, np.int64)) for p, a in regions)
        if rest is None:
            pivot = self.neutral[self.stable].mean(axis=0)
            self.rest = Similarity(np.eye(3), 1.0, pivot)
        else:  # the same map, into the neutral's inter-ocular units
            self.rest = Similarity(
                rest.rotation, rest.scale / self.iod, rest.translation / self.iod
            )
        self.axis_weight = np.array([1.0, 1.0, np.sqrt(self.config.depth_weight)])
        a = (self.basis * self.axis_weight).reshape(N_EXPR, -1).T  # (3N, 52) design matrix
        self.design = a
        self.gram = a.T @ a + self.config.l2 * np.eye(N_EXPR)
        self.penalty = np.full(N_EXPR, self.config.l1)  # (52,) L1 per weight
        self.penalty[[INDEX[n] for n in self.config.unfitted]] = np.inf  # held at 0

    def align(self, points: np.ndarray, offset: np.ndarray | None = None) -> Similarity:
        """Similarity from the neutral (plus an expression `offset`, (N, 3)) to `points`
        (N, 3) in inter-ocular units, on the stable points."""
        src = self.neutral if offset is None else self.neutral + offset
        return umeyama(src[self.stable], points[self.stable])

    def fit_points(
        self, frames: np.ndarray, seen_at: SeenAt | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """frames: (T, N, 3) landmarks in the neutral's coordinates. Returns unsmoothed
        (T, 52) weights and (T, 6) poses.

        seen_at: for footage of a face that can be rendered (a stylecast avatar), how the
        tracker sees it rendered with given weights and poses (`SeenAt`). The tracker's
        own errors on this face are then measured and taken off (analysis by synthesis):
        the fitted face is rendered and tracked; what the tracker reports beyond the rig's
        geometry (on a turned head it reads the turn about a fifth short and shifts the
        lower face sideways by up to half a smile; it sees about half of a blink, a smile
        or an open jaw) is taken off the frame, which is fitted again, and the pose is
        corrected by how far the tracker misread the rendered one. Repeated
        config.reference_iterations times."""
        frames = np.asarray(frames, np.float64) / self.iod
        bias = np.zeros((len(frames), *self.neutral.shape))  # (T, N, 3) neutral's change
        expr, sims = self.fit_aligned(frames, bias)
        poses = np.stack([pose_from_similarity(s, self.rest) for s in sims])
        if seen_at is None:
            return expr.astype(np.float32), poses
        shown = poses.copy()  # the poses the face is shown at
        for _ in range(self.config.reference_iterations):
            shown_expr = expr if self.config.reference_expression else np.zeros_like(expr)
            refs = np.asarray(seen_at(shown_expr, shown), np.float64) / self.iod  # (T, N, 3)
            offsets = np.einsum("tk,knc->tnc", shown_expr, self.basis)
            ref_sims = [self.align(r, o) for r, o in zip(refs, offsets, strict=True)]
            ref_seen = np.stack([pose_from_similarity(s, self.rest) for s in ref_sims])
            bias = np.stack([s.invert(r) for s, r in zip(ref_sims, refs, strict=True)])
            bias -= self.neutral + offsets
            expr, sims = self.fit_aligned(frames, bias)
            seen = np.stack([pose_from_similarity(s, self.rest) for s in sims])
            # The face shown at `shown` is seen at `ref_seen`, the frame at `seen`: the
            # frame's pose is `shown` plus the difference.
            poses = shown = shown + (seen - ref_seen)
        return expr.astype(np.float32), poses.astype(np.float32)

    def fit_aligned(
        self, frames: np.ndarray, bias: np.ndarray
    ) -> tuple[np.ndarray, list[Similarity]]:
        """(T, 52) weights and the frames' similarities, alternating alignment and
        expression solve config.passes times. frames: (T, N, 3) in inter-ocular units;
        bias: (T, N, 3) what the tracker adds to the rig's geometry in each frame, in the
        neutral's frame (zeros: nothing)."""
        offsets = np.zeros((len(frames), *self.neutral.shape))  # (T, N, 3) expression
        for _ in range(self.config.passes):
            # Align with each frame's current expression removed (a smile or an open jaw
            # nudges even the stable points a little), then solve the expression again.
            sims = [self.align(f, o) for f, o in zip(frames, bias + offsets, strict=True)]
            expr = self.solve_expression(frames, sims, offsets, bias)
            offsets = np.einsum("tk,knc->tnc", expr, self.basis)
        return expr, sims

    def solve_expression(
        self,
        frames: np.ndarray,
        sims: list[Similarity],
        offsets: np.ndarray,
        bias: np.ndarray | None = None,
    ) -> np.ndarray:
        """(T, 52) weights explaining each de-posed frame's offset from the neutral, once
        `bias` (T, N, 3), the tracker's own error in that frame, is taken off. `offsets`
        (T, N, 3), the current estimate of each frame's expression, is what the anchors of
        each local region should show; what they show beyond it is a local error of the
        global alignment and is taken off the region's points."""
        depos = np.stack([s.invert(f) for s, f in zip(sims, frames, strict=True)])
        if bias is not None:
            depos -= bias
        for points, anchors in self.regions:
            shift = (depos[:, anchors] - self.neutral[anchors] - offsets[:, anchors]).mean(1)
            depos[:, points] -= shift[:, None, :]
        residual = (depos - self.neutral) * self.axis_weight  # (T, N, 3)
        residual = residual.reshape(len(frames), -1)  # (T, 3N)
        cfg = self.config
        expr = solve_box_qp(self.gram, residual @ self.design, self.penalty, cfg.sweeps)
        for _ in range(cfg.robust_iterations):
            expr = self.reweighted_solve(residual, expr)
        return expr

    def reweighted_solve(self, residual: np.ndarray, expr: np.ndarray) -> np.ndarray:
        """One iteratively-reweighted step of a Huber fit: points whose residual under the
        current weights `expr` exceeds config.huber (inter-ocular units) count with weight
        huber / |residual|, so a few misplaced landmarks cannot pull in other shapes.
        residual: (T, 3N) weighted offsets from the neutral. Returns (T, 52)."""
        cfg = self.config
        n = len(self.neutral)
        out = np.empty_like(expr)
        for lo in range(0, len(residual), ROBUST_CHUNK):  # bounds memory: (chunk, 3N, 52)
            r, w = residual[lo : lo + ROBUST_CHUNK], expr[lo : lo + ROBUST_CHUNK]
            misfit = np.linalg.norm((r - w @ self.design.T).reshape(len(r), n, 3), axis=2)
            weight = np.where(misfit < cfg.huber, 1.0, cfg.huber / np.maximum(misfit, 1e-12))
            root = np.repeat(np.sqrt(weight), 3, axis=1)  # (chunk, 3N)
            design = self.design[None] * root[:, :, None]  # (chunk, 3N, 52)
            gram = design.transpose(0, 2, 1) @ design + cfg.l2 * np.eye(N_EXPR)
            rhs = np.einsum("tnk,tn->tk", design, root * r)
            out[lo : lo + ROBUST_CHUNK] = solve_box_qp(gram, rhs, self.penalty, cfg.sweeps, start=w)
        return out

    def fit(
        self, frames: list[np.ndarray | None], fps: float = FPS, seen_at: SeenAt | None = None
    ) -> Motion:
        """A 30 FPS motion from per-frame landmarks ((N, 3) each, None where no face was
        found) captured at `fps`: fitted, gaps interpolated, smoothed, resampled."""
        present = np.array([f is not None for f in frames])
        if len(frames) == 0:
            raise InputError("no frames to fit")
        if present.mean() < self.config.min_face_fraction:
            raise NoFaceError(
                f"a face was found in only {present.sum()} of {len(frames)} frames; the "
                f"fitter needs one in at least {self.config.min_face_fraction:.0%} of them"
            )
        stack = np.stack([f for f in frames if f is not None])
        expr_p, pose_p = self.fit_points(stack, seen_at)
        expr = np.zeros((len(frames), N_EXPR))
        pose = np.zeros((len(frames), 6))
        expr[present], pose[present] = expr_p, pose_p
        expr = fill_missing(expr, present)
        pose = fill_missing(pose, present)
        expr = gaussian_smooth(expr, self.config.smooth_expr)
        pose = gaussian_smooth(pose, self.config.smooth_pose)
        if fps != FPS and len(frames) > 1:
            expr, pose = resample_arrays(np.arange(len(frames)) / fps, [expr, pose], FPS)
        return Motion(np.clip(expr, 0.0, 1.0), pose, fps=FPS)


def rest_of(rig_neutral: np.ndarray, neutral: np.ndarray) -> Similarity:
    """The similarity from the rig's canonical head frame onto a neutral's coordinates
    (the rest pose of that neutral), fitted on all points."""
    return umeyama(np.asarray(rig_neutral, np.float64), np.asarray(neutral, np.float64))


def basis_in_frame_of(
    rig_neutral: np.ndarray, rig_basis: np.ndarray, neutral: np.ndarray
) -> np.ndarray:
    """The rig's (52, N, 3) displacement fields, defined on `rig_neutral` (N, 3) in the
    rig's own space, carried into the frame of another neutral (N, 3) of the same topology
    (pixels of a video, another size) by the similarity that best aligns the two."""
    sim = rest_of(rig_neutral, neutral)
    return sim.scale * np.asarray(rig_basis, np.float64) @ sim.rotation.T


# Channels whose rest value is an extreme of what a speaker does: a speaker's resting face
# has the jaw at its most closed, so the estimated neutral takes that (see estimate_neutral).
REST_AT_MINIMUM: tuple[str, ...] = ("jawOpen",)
REST_PERCENTILE = 5.0  # the "most closed" is the 5th percentile (robust to outliers)


def estimate_neutral(
    frames: list[np.ndarray], rig_neutral: np.ndarray, rig_basis: np.ndarray
) -> np.ndarray:
    """An identity's neutral landmarks (N, 3) from a video of that person (frames of
    (N, 3) landmarks), in the coordinates of the first frame. How:

    1. De-pose every frame onto the first by a similarity on the stable points; their
       per-point median is a first neutral (people rest more than they blink or smile).
    2. Explain each frame's offset from it with the rig's fields (unbounded ridge least
       squares) and take the median of the frames with that expression removed: the
       identity without expression, robust to a mouth that is open half the time.
    3. Put the jaw at the most closed it is seen (5th percentile of its weight), since a
       resting face has the mouth closed.
    """
    from stylecast.engine.face import INDEX

    stack = np.asarray(frames, np.float64)
    stable = np.array(STABLE_POINTS)
    ref = stack[0]
    for _ in range(2):  # align to the first frame, then to the median of the aligned
        depos = np.stack([umeyama(ref[stable], f[stable]).invert(f) for f in stack])
        ref = np.median(depos, axis=0)
    basis = basis_in_frame_of(rig_neutral, rig_basis, ref)  # (52, N, 3)
    a = basis.reshape(N_EXPR, -1).T  # (3N, 52)
    gram = a.T @ a + 1e-3 * interocular(ref) ** 2 * np.eye(N_EXPR)

    def coefficients(neutral: np.ndarray) -> np.ndarray:
        return np.linalg.solve(gram, a.T @ (depos - neutral).reshape(len(depos), -1).T).T

    identity = np.median(depos - np.einsum("tk,knc->tnc", coefficients(ref), basis), axis=0)
    coef = coefficients(identity)  # (T, 52)
    rest = np.zeros(N_EXPR)
    for name in REST_AT_MINIMUM:
        k = INDEX[name]
        rest[k] = min(0.0, float(np.percentile(coef[:, k], REST_PERCENTILE)))
    return identity + np.einsum("k,knc->nc", rest, basis)
