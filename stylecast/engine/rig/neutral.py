"""The canonical head frame: rest pose of a portrait, and its identity neutral face.

Canonical head frame (DESIGN.md pose units): OpenCV axes (x to the image right = the
subject's left, y down, z away from the camera), the subject's eye line along x, inter-ocular
distance (iris centre to iris centre) = 1, origin at the head's pivot (behind the face, at
about the level of the nose's base), so a pose rotation turns the head about its neck.

Projection (orthographic, as MediaPipe's landmarks are): for a canonical point v and a
pose (R, t) relative to rest,

    image_px = scale * rest_rotation @ (R @ v + t) + rest_translation      # (3,) x, y, depth

`image_px[2]` is depth in pixels (larger = further away).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from stylecast.engine.face import euler_from_matrix

IRIS_RIGHT, IRIS_LEFT = 468, 473  # iris centres (subject's right = image left)
# The pivot of head rotation, relative to the iris midpoint, in inter-ocular units:
# below the eyes at about the nose's base, and deep behind the eyes (the neck's axis).
PIVOT_BELOW_EYES = 0.9
PIVOT_BEHIND_EYES = 1.0


@dataclass(frozen=True)
class RestPose:
    """image_px = scale * rotation @ v + translation, for canonical points v (N, 3)."""

    rotation: np.ndarray  # (3, 3) float64: canonical axes as columns, in image axes
    scale: float  # pixels per inter-ocular unit
    translation: np.ndarray  # (3,) float64: the pivot in image pixels (x, y, depth)

    def to_image(self, v: np.ndarray) -> np.ndarray:
        """(N, 3) canonical -> (N, 3) image pixels (x, y, depth)."""
        return self.scale * v @ self.rotation.T + self.translation

    def to_canonical(self, p: np.ndarray) -> np.ndarray:
        """(N, 3) image pixels -> (N, 3) canonical."""
        return (p - self.translation) @ self.rotation / self.scale

    @property
    def angles(self) -> tuple[float, float, float]:
        """(pitch, yaw, roll) of the rest rotation, radians (face.py convention)."""
        return euler_from_matrix(self.rotation)


def _unit(v: np.ndarray) -> np.ndarray:
    return v / np.linalg.norm(v)


def fit_rest_pose(points: np.ndarray, groups: dict[str, np.ndarray]) -> RestPose:
    """The rest pose of a face from its (478, 3) landmarks in pixels.

    x axis: the mean of left-minus-right vectors over symmetric features (eye corners, iris
    centres, mouth corners, face oval sides); y axis: nose bridge to chin, made orthogonal to
    x; z = x cross y. Scale: the 3D inter-ocular distance.
    """
    p = np.asarray(points, np.float64)
    pairs = []
    for side_l, side_r in (("eye_left", "eye_right"), ("brow_left_upper", "brow_right_upper")):
        pairs.append(p[groups[side_l]].mean(0) - p[groups[side_r]].mean(0))
    pairs.append(p[IRIS_LEFT] - p[IRIS_RIGHT])
    lips = groups["lips_outer"]
    pairs.append(p[lips[np.argmax(p[lips, 0])]] - p[lips[np.argmin(p[lips, 0])]])
    x = _unit(np.mean([_unit(v) for v in pairs], axis=0))
    eyes = 0.5 * (p[IRIS_LEFT] + p[IRIS_RIGHT])
    oval = groups["face_oval"]
    chin = p[oval[np.argmax(p[oval, 1])]]
    y = chin - eyes
    y = _unit(y - x * (y @ x))
    z = np.cross(x, y)
    rot = np.stack([x, y, z], axis=1)
    scale = float(np.linalg.norm(p[IRIS_LEFT] - p[IRIS_RIGHT]))
    # Pivot: below and behind the iris midpoint, in canonical units.
    eye_depth = p[np.concatenate([groups["eye_left"], groups["eye_right"]])] @ z
    pivot_rel = np.array([0.0, PIVOT_BELOW_EYES, PIVOT_BEHIND_EYES])
    base = eyes + z * (eye_depth.mean() - eyes @ z)
    translation = base + scale * rot @ pivot_rel
    return RestPose(rotation=rot, scale=scale, translation=translation)


def close_mouth(canonical: np.ndarray, groups: dict[str, np.ndarray]) -> np.ndarray:
    """An identity neutral from a portrait's canonical landmarks: lips parted in the
    portrait are brought together (each lip moving half of the gap, the skin around following
    smoothly), and a smile's raised, widened corners are brought back to a resting width and
    height. A closed, unsmiling mouth is returned unchanged (up to rounding).

    canonical: (478, 3). Returns (478, 3) float64.
    """
    v = np.asarray(canonical, np.float64)
    iu, il = groups["lips_inner_upper"], groups["lips_inner_lower"]
    ou, ol = groups["lips_outer_upper"], groups["lips_outer_lower"]
    ctrl_idx, ctrl_d = [], []

    def lip_gap(xs: np.ndarray) -> np.ndarray:
        lower = np.interp(xs, *_sorted_xy(v, il))
        upper = np.interp(xs, *_sorted_xy(v, iu))
        return np.maximum(lower - upper, 0.0)

    # 1. Close the gap: each inner lip point moves half the local gap; outer follows inner.
    for chain, sign in ((iu, 1.0), (ou, 1.0), (il, -1.0), (ol, -1.0)):
        mid = chain[1:-1]
        d = np.zeros((len(mid), 3))
        d[:, 1] = sign * 0.5 * lip_gap(v[mid, 0])
        ctrl_idx.extend(mid)
        ctrl_d.extend(d)
    # 2. Un-smile: corners to the lip line's height and at most a resting width.
    outer = groups["lips_outer"]
    cr, cl = outer[np.argmin(v[outer, 0])], outer[np.argmax(v[outer, 0])]
    inner = groups["lips_inner"]
    icr, icl = inner[np.argmin(v[inner, 0])], inner[np.argmax(v[inner, 0])]
    centre_y = 0.5 * (v[iu, 1].max() + v[il, 1].min())
    mid_x = 0.5 * (v[cr, 0] + v[cl, 0])
    width = v[cl, 0] - v[cr, 0]
    rest_width = min(width, 0.92)  # mouth ~ as wide as the pupils are apart
    for corner_pair in ((cr, icr), (cl, icl)):
        for c in corner_pair:
            d = np.zeros(3)
            d[0] = mid_x + rest_width * (v[c, 0] - mid_x) / width - v[c, 0]
            d[1] = max(centre_y - v[c, 1], 0.0)  # raised corners come down, never up
            ctrl_idx.append(c)
            ctrl_d.append(d)
    # Blend the corner move into the lips: points near a corner move with it.
    ctrl_idx = np.array(ctrl_idx)
    ctrl_d = np.array(ctrl_d)
    for k, i in enumerate(ctrl_idx):
        u = abs(v[i, 0] - mid_x) / (0.5 * width)  # 0 at the centre, 1 at a corner
        corner = cl if v[i, 0] > mid_x else cr
        ck = int(np.flatnonzero(ctrl_idx == corner)[0])
        if i not in (cl, cr, icl, icr):
            ctrl_d[k, :2] += u**3 * ctrl_d[ck, :2]
    return v + spread(v, ctrl_idx, ctrl_d, radius=0.45)


def _sorted_xy(v: np.ndarray, chain: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    order = np.argsort(v[chain, 0])
    return v[chain[order], 0], v[chain[order], 1]


def spread(v: np.ndarray, idx: np.ndarray, disp: np.ndarray, radius: float) -> np.ndarray:
    """Smoothly extend displacements given at control vertices to the whole mesh.

    Each vertex gets the inverse-square-distance weighted mean of the control displacements
    (Shepard interpolation: smooth, no creases between controls), faded to zero by its
    distance to the nearest control (compact support `radius`). Control vertices get exactly
    their own displacement (a vertex listed twice gets its last entry).
    v: (N, 3); idx: (K,); disp: (K, 3). Returns (N, 3).
    """
    idx = np.asarray(idx)
    disp = np.asarray(disp, np.float64)
    d2 = ((v[:, None, :] - v[None, idx, :]) ** 2).sum(-1)  # (N, K)
    k = 1.0 / (d2 + 0.02**2) ** 1.5
    mean = k @ disp / k.sum(1, keepdims=True)
    dmin = np.sqrt(d2.min(1))
    fade = np.clip(1.0 - (dmin / radius) ** 2, 0.0, 1.0) ** 2
    out = mean * fade[:, None]
    out[idx] = disp
    return out
