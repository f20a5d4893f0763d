"""Motion metrics of the evaluation (`stylecast eval`), in numpy: pure functions of motion
arrays, the default avatar's rig and the corpus's timed phones.

    rig = load_avatar("default").rig
    mouth_lvd(pred_expr, true_expr, rig)            # M-LVD, rig units
    closure_rate(lip_opening(expr, rig), bilabial_frames(phones, n_frames))

Vertex distances are in the rig's canonical units: the neutral face is 2.15 units wide
(x from -1.08 to 1.07), so on a 14 cm wide face one unit is about 65 mm
(`MM_PER_UNIT`). Head pose is not applied: LVD compares expression only (pose has its
own metrics).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from stylecast.engine.face import FPS

MM_PER_UNIT = 140.0 / 2.15  # a 14 cm face over the rig's 2.15 units of width
# The lips' inner contour, upper and lower, ordered corner to corner (MediaPipe indices);
# the 5 pairs at the middle of the mouth measure how far the lips are apart.
INNER_UPPER_MID = (81, 82, 13, 312, 311)
INNER_LOWER_MID = (178, 87, 14, 317, 402)
MOUTH_GROUPS = ("lips_inner", "lips_outer")  # M-LVD's vertices
# Lips count as closed when their middle gap is within this of the rig's rest gap (0.035
# units: the neutral mouth's lips touch at the corners, not quite at the middle). On the
# corpus's ground truth this calls 89% of p/b/m closed and 7% of all frames.
CLOSED_MARGIN = 0.005
BILABIALS = ("P", "B", "M")
N_ANGLES = 3  # pitch, yaw, roll come first in a pose row
SYNC_MAX_LAG = 15  # frames (0.5 s) either way searched for the lips' offset from the sound
LOUDNESS_FLOOR_DB = -60.0
STILL_LIPS = 1e-5  # rig units (< 1 µm): a lip gap that varies less than this is not moving


def mouth_vertices(rig) -> np.ndarray:
    """Indices of the rig points M-LVD compares: the inner and outer lip contours (40)."""
    return np.unique(np.concatenate([rig.groups[g] for g in MOUTH_GROUPS])).astype(np.int64)


def _vertices(expr: np.ndarray, rig, index: np.ndarray | None) -> np.ndarray:
    basis = rig.basis if index is None else rig.basis[:, index]  # (52, V, 3)
    neutral = rig.neutral if index is None else rig.neutral[index]
    e = np.asarray(expr, np.float32)
    flat = e @ basis.reshape(len(basis), -1).astype(np.float32)  # a BLAS matmul, not einsum
    return neutral + flat.reshape(len(e), *basis.shape[1:])


def vertex_l2(pred: np.ndarray, true: np.ndarray, rig, index: np.ndarray | None) -> float:
    """Mean over frames and vertices of the L2 distance between the rig meshes that two
    (T, 52) expression sequences give (all 478 points when index is None)."""
    if pred.shape != true.shape:
        raise ValueError(f"pred {pred.shape} and true {true.shape} differ")
    d = _vertices(pred, rig, index) - _vertices(true, rig, index)
    return float(np.linalg.norm(d, axis=-1).mean())


def mouth_lvd(pred: np.ndarray, true: np.ndarray, rig) -> float:
    """M-LVD: vertex L2 over the lip contours."""
    return vertex_l2(pred, true, rig, mouth_vertices(rig))


def face_lvd(pred: np.ndarray, true: np.ndarray, rig) -> float:
    """F-LVD: vertex L2 over the whole mesh (478 points)."""
    return vertex_l2(pred, true, rig, None)


def lip_opening(expr: np.ndarray, rig) -> np.ndarray:
    """(T, 52) -> (T,) distance between the inner lips at the middle of the mouth, rig
    units (mean of 5 upper/lower point pairs)."""
    upper = _vertices(expr, rig, np.array(INNER_UPPER_MID))
    lower = _vertices(expr, rig, np.array(INNER_LOWER_MID))
    return np.linalg.norm(upper - lower, axis=-1).mean(axis=-1)


def bilabial_frames(phones: Sequence, n_frames: int, fps: int = FPS) -> list[np.ndarray]:
    """For each p/b/m phone (objects with .phone, .start, .end in seconds): the frames it
    covers widened by one frame each side (the +-1 frame tolerance), clipped to the clip."""
    out = []
    for p in phones:
        if p.phone not in BILABIALS:
            continue
        first = int(np.floor(p.start * fps)) - 1
        last = int(np.ceil(p.end * fps))  # exclusive end, +1 frame of tolerance
        frames = np.arange(max(first, 0), min(last + 1, n_frames))
        if len(frames):
            out.append(frames)
    return out


def closed_threshold(rig) -> float:
    """The lip gap (rig units) under which lips count as closed: rest gap + CLOSED_MARGIN."""
    return float(lip_opening(np.zeros((1, rig.basis.shape[0]), np.float32), rig)[0]) + CLOSED_MARGIN


def closure_rate(
    opening: np.ndarray, spans: Sequence[np.ndarray], closed_below: float
) -> tuple[int, int]:
    """(closed, total): how many p/b/m spans have a frame with the lips closer than
    `closed_below` (see closed_threshold)."""
    closed = sum(int(opening[s].min() < closed_below) for s in spans)
    return closed, len(spans)


def lagged_correlations(x: np.ndarray, y: np.ndarray, max_lag: int) -> np.ndarray:
    """(2 * max_lag + 1,) Pearson r of x[t + lag] with y[t] for lag = -max_lag..max_lag
    (a positive lag: x follows y that many frames late); nan where either overlap is
    constant or shorter than 3 frames."""
    x, y = np.asarray(x, np.float64), np.asarray(y, np.float64)
    if x.shape != y.shape:
        raise ValueError(f"x {x.shape} and y {y.shape} differ")
    out = np.full(2 * max_lag + 1, np.nan)
    n = len(x)
    for k, lag in enumerate(range(-max_lag, max_lag + 1)):
        a = x[max(lag, 0) : n + min(lag, 0)]
        b = y[max(-lag, 0) : n - max(lag, 0)]
        if len(a) < 3:
            continue
        a, b = a - a.mean(), b - b.mean()
        norm = np.sqrt((a * a).sum() * (b * b).sum())
        if norm > 1e-12 * len(a):
            out[k] = (a * b).sum() / norm
    return out


def lip_sync_offset(
    opening: np.ndarray, loudness_db: np.ndarray, max_lag: int = SYNC_MAX_LAG
) -> tuple[float, float]:
    """How the lips follow the sound, with no learned judge: (r, lag). r is the Pearson
    correlation of the inner-lip gap with the loudness (dBFS floored at -60) in the same
    frame; lag is the shift (frames, positive = lips late) at which that correlation
    peaks. In-sync talking has a high r at lag ~0; lips shifted by k frames peak at k.
    (nan, nan) for a mouth that does not move or silence."""
    if np.std(opening) < STILL_LIPS:
        return float("nan"), float("nan")
    loud = np.maximum(np.asarray(loudness_db, np.float64), LOUDNESS_FLOOR_DB)
    r = lagged_correlations(opening, loud, max_lag)
    if np.all(np.isnan(r)):
        return float("nan"), float("nan")
    return float(r[max_lag]), float(np.nanargmax(r) - max_lag)


def pose_jerk(pose: np.ndarray) -> float:
    """Mean |second difference| of the head angles, rad/frame^2 (lower is smoother)."""
    if len(pose) < 3:
        return float("nan")
    return float(np.abs(np.diff(pose[:, :N_ANGLES], n=2, axis=0)).mean())


def head_speed(pose: np.ndarray) -> np.ndarray:
    """(T, 6) -> (T,) angular speed of the head, rad/frame (first frame repeats)."""
    d = np.linalg.norm(np.diff(pose[:, :N_ANGLES], axis=0), axis=-1)
    return np.concatenate([d[:1], d]) if len(d) else np.zeros(len(pose))


def energy_correlation(
    pose: np.ndarray, loudness_db: np.ndarray, floor: float = LOUDNESS_FLOOR_DB
) -> float:
    """Pearson correlation of head speed with speech loudness (dBFS floored at -60); nan
    when either is constant."""
    speed = head_speed(pose)
    loud = np.maximum(np.asarray(loudness_db, np.float64), floor)
    if len(speed) < 3 or speed.std() < 1e-12 or loud.std() < 1e-12:
        return float("nan")
    return float(np.corrcoef(speed, loud)[0, 1])


def pose_diversity(samples: np.ndarray) -> float:
    """(N samples, T, 6) poses of one input -> mean over frames of the angles' standard
    deviation across samples (rad); 0 for a deterministic model."""
    return float(samples[..., :N_ANGLES].std(axis=0).mean())


def motion_features(expr: np.ndarray, pose: np.ndarray) -> np.ndarray:
    """One clip's style features for the style classifier: mean and std of every
    expression weight and pose value, and the mean speed of each (T>=2) -> (3 * 58,)."""
    m = np.concatenate([expr, pose], axis=1).astype(np.float64)
    speed = np.abs(np.diff(m, axis=0)).mean(axis=0) if len(m) > 1 else np.zeros(m.shape[1])
    return np.concatenate([m.mean(0), m.std(0), speed])


def nearest_neighbour_accuracy(codes: np.ndarray, labels: np.ndarray) -> tuple[int, int]:
    """(hits, queries): for each code whose label occurs at least twice, is its nearest
    other code (cosine) of the same label?"""
    x = codes / np.maximum(np.linalg.norm(codes, axis=1, keepdims=True), 1e-12)
    sim = x @ x.T
    np.fill_diagonal(sim, -np.inf)
    nearest = sim.argmax(axis=1)
    counts = {v: int((labels == v).sum()) for v in np.unique(labels)}
    queries = np.array([counts[v] >= 2 for v in labels])
    hits = (labels[nearest] == labels) & queries
    return int(hits.sum()), int(queries.sum())


def step_sizes(sequence: np.ndarray) -> np.ndarray:
    """(K, ...) motions along an interpolation path -> (K-1,) mean |change| per step."""
    k = len(sequence)
    return np.abs(np.diff(sequence.reshape(k, -1), axis=0)).mean(axis=1)
