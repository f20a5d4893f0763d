"""Measurements of a neutral face and the tools the blendshape authors share: where the
mouth, lids, brows and jaw are; `spread_shape`, which carries displacements given at a few
landmarks smoothly onto the skin around; the rigid jaw. Canonical head frame, inter-ocular
units (x = subject's left, y down, z away from the camera).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from stylecast.engine.face import ARKIT_NAMES
from stylecast.engine.rig.neutral import IRIS_RIGHT, spread

JAW_OPEN_DEG = 20.0  # jaw rotation at jawOpen = 1
JAW_SIDE = 0.10  # jawLeft/jawRight translation at weight 1
JAW_FORWARD = 0.10  # jawForward translation (towards the camera) at weight 1
SIDES = (("Left", "left", 1.0), ("Right", "right", -1.0))  # ARKit side, group side, x sign


@dataclass(frozen=True)
class JawModel:
    """The rigid jaw that carries the lower teeth and tongue: a rotation about the x axis
    through `pivot` (canonical) by jawOpen * open_deg, then a translation."""

    pivot: np.ndarray  # (3,) canonical position of the jaw hinge (temporomandibular joint)
    open_deg: float  # rotation at jawOpen = 1, degrees
    side: float  # x translation at jawLeft = 1 (jawRight: the opposite)
    forward: float  # -z translation at jawForward = 1

    def transform(self, expr: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(R (3, 3), t (3,)) such that a jaw point v moves to R @ (v - pivot) + pivot + t."""
        e = dict(zip(ARKIT_NAMES, np.asarray(expr, np.float64), strict=True))
        a = np.radians(self.open_deg) * (e["jawOpen"] + 0.3 * e["tongueOut"])
        c, s = np.cos(a), np.sin(a)
        rot = np.array([[1.0, 0, 0], [0, c, -s], [0, s, c]])
        t = np.array(
            [self.side * (e["jawLeft"] - e["jawRight"]), 0.0, -self.forward * e["jawForward"]]
        )
        return rot, t


class FaceMeasures:
    """Measurements of a neutral face the authoring functions share."""

    def __init__(self, v: np.ndarray, groups: dict[str, np.ndarray], triangles) -> None:
        self.v = v
        self.g = groups
        self.triangles = np.asarray(triangles)
        outer = groups["lips_outer"]
        self.corner = {
            "right": int(outer[np.argmin(v[outer, 0])]),
            "left": int(outer[np.argmax(v[outer, 0])]),
        }
        inner = groups["lips_inner"]
        self.inner_corner = {
            "right": int(inner[np.argmin(v[inner, 0])]),
            "left": int(inner[np.argmax(v[inner, 0])]),
        }
        self.mouth_x = 0.5 * (v[self.corner["left"], 0] + v[self.corner["right"], 0])
        self.mouth_w = v[self.corner["left"], 0] - v[self.corner["right"], 0]
        self.mouth_y = v[inner, 1].mean()
        self.lips = np.unique(np.concatenate([outer, inner]))
        self.upper_lip = np.unique(np.r_[groups["lips_outer_upper"], groups["lips_inner_upper"]])
        self.lower_lip = np.unique(np.r_[groups["lips_outer_lower"], groups["lips_inner_lower"]])
        corners = [*self.corner.values(), *self.inner_corner.values()]
        self.upper_lip = np.setdiff1d(self.upper_lip, corners)
        self.lower_lip = np.setdiff1d(self.lower_lip, corners)
        self.corners = np.array(corners)
        oval = groups["face_oval"]
        self.chin = int(oval[np.argmax(v[oval, 1])])
        eyes = np.r_[groups["eye_left"], groups["eye_right"]]
        self.eye_y = v[eyes, 1].mean()
        self.eye_z = v[eyes, 2].mean()
        self.nose = groups["nose"]
        self.nose_tip = int(self.nose[np.argmin(v[self.nose, 2])])
        self.jaw = JawModel(
            pivot=np.array([0.0, self.eye_y + 0.45, self.eye_z + 1.25]),
            open_deg=JAW_OPEN_DEG,
            side=JAW_SIDE,
            forward=JAW_FORWARD,
        )
        self.jaw_weight = self._jaw_weight()

    def side_weight(self, sign: float, idx: np.ndarray) -> np.ndarray:
        """1 on the given side of the mouth, 0 on the other, 0.5 at the centre."""
        u = sign * (self.v[idx, 0] - self.mouth_x) / (0.5 * self.mouth_w)
        return np.clip(0.5 + 0.75 * u, 0.0, 1.0)

    def along_lip(self, idx: np.ndarray) -> np.ndarray:
        """0 at the mouth's centre, 1 at the corners."""
        return np.clip(np.abs(self.v[idx, 0] - self.mouth_x) / (0.5 * self.mouth_w), 0, 1)

    def _jaw_weight(self) -> np.ndarray:
        """How much each vertex follows the jaw: 1 on the lower lip and chin, 0 on the upper
        lip and above. Across the mouth the split is sharp, along the line where the lips
        meet; towards and beyond the corners it becomes a smooth seam across the cheeks."""
        v = self.v
        iu, il = self.g["lips_inner_upper"], self.g["lips_inner_lower"]
        cx = np.r_[v[iu, 0], v[il, 0]]
        cy = np.r_[v[iu, 1], v[il, 1]]
        order = np.argsort(cx)
        contact = np.interp(v[:, 0], cx[order], cy[order])  # where the lips meet
        half = 0.5 * self.mouth_w
        lateral = np.maximum(np.abs(v[:, 0] - self.mouth_x) - 0.75 * half, 0.0)
        y_rel = v[:, 1] - contact
        lo, hi = -0.01 - 0.1 * lateral, 0.01 + 0.9 * lateral
        t = np.clip((y_rel - lo) / (hi - lo), 0.0, 1.0)
        w = t * t * (3 - 2 * t)
        w[self.upper_lip] = 0.0
        w[self.lower_lip] = 1.0
        w[self.corners] = 0.5
        w[IRIS_RIGHT:] = 0.0
        return w

    def jaw_displacement(self, rot: np.ndarray, t: np.ndarray) -> np.ndarray:
        """(N, 3): jaw-weighted displacement of a rigid jaw motion."""
        p = self.jaw.pivot
        moved = (self.v - p) @ rot.T + p + t
        return (moved - self.v) * self.jaw_weight[:, None]

    def lid(self, side: str) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Upper and lower lid points without the corners, the local lid gap at each upper
        point, and the lower lid's height at each upper point."""
        up, lo = self.g[f"eyelid_{side}_upper"], self.g[f"eyelid_{side}_lower"]
        xs, ys = self.v[lo, 0], self.v[lo, 1]
        order = np.argsort(xs)
        up_mid, lo_mid = up[1:-1], lo[1:-1]
        lower_at_up = np.interp(self.v[up_mid, 0], xs[order], ys[order])
        gap = np.maximum(lower_at_up - self.v[up_mid, 1], 0.0)
        return up_mid, lo_mid, gap, lower_at_up

    def ring_beside(self, chain: np.ndarray, above: bool) -> np.ndarray:
        """Mesh neighbours of a contour's points on one side of it (above or below), not
        on the contour itself: the next ring of skin (e.g. the lash line's other edge)."""
        chain = np.asarray(chain)
        tri = self.triangles[np.isin(self.triangles, chain).any(1)]
        cand = np.setdiff1d(np.unique(tri), chain)
        cand = np.setdiff1d(cand, np.concatenate([self.g["eye_left"], self.g["eye_right"]]))
        y_chain = np.interp(self.v[cand, 0], *sorted_by_x(self.v, chain))
        side = self.v[cand, 1] < y_chain if above else self.v[cand, 1] > y_chain
        return cand[side]

    def brow(self, side: str) -> tuple[np.ndarray, np.ndarray]:
        """Brow points and u along the brow: 0 at its inner (nose) end, 1 at its outer end."""
        b = np.r_[self.g[f"brow_{side}_upper"], self.g[f"brow_{side}_lower"]]
        ax = np.abs(self.v[b, 0] - self.mouth_x)
        u = (ax - ax.min()) / max(ax.max() - ax.min(), 1e-6)
        return b, u

    def eye_points(self, side: str) -> np.ndarray:
        return self.g[f"eye_{side}"]

    def anchors(self, *names: str) -> np.ndarray:
        out = []
        for n in names:
            if n == "eyes":
                out += [*self.g["eye_left"], *self.g["eye_right"]]
            elif n == "brows":
                for s in ("left", "right"):
                    out += [*self.g[f"brow_{s}_upper"], *self.g[f"brow_{s}_lower"]]
            elif n == "nose":
                out += list(self.nose)
            elif n == "chin":
                out.append(self.chin)
            elif n == "upper_lip":
                out += list(self.upper_lip)
            elif n == "lower_lip":
                out += list(self.lower_lip)
        return np.array(out, np.int64)


def spread_shape(
    face: FaceMeasures, ctrl: list[tuple[np.ndarray, np.ndarray]], radius: float, anchors=()
):
    """Spread control displacements [(indices, (K,3) or (3,))] with zero anchors. A vertex
    named by several controls gets the sum of their displacements."""
    idx, disp = [], []
    for i, d in ctrl:
        i = np.atleast_1d(np.asarray(i))
        d = np.broadcast_to(np.asarray(d, np.float64), (len(i), 3))
        idx.append(i)
        disp.append(d)
    all_idx = np.concatenate(idx)
    uniq, inverse = np.unique(all_idx, return_inverse=True)
    summed = np.zeros((len(uniq), 3))
    np.add.at(summed, inverse, np.concatenate(disp))
    a = np.setdiff1d(np.asarray(anchors, np.int64), uniq)
    field = spread(
        face.v[:478], np.r_[uniq, a], np.concatenate([summed, np.zeros((len(a), 3))]), radius
    )
    # The irises ride on the eyeballs: only gaze controls move them.
    iris = np.setdiff1d(np.arange(IRIS_RIGHT, 478), uniq)
    field[iris] = 0.0
    return field


def vec(x=0.0, y=0.0, z=0.0) -> np.ndarray:
    return np.array([x, y, z])


def region(f: FaceMeasures, centre: np.ndarray, radius: float, d: np.ndarray) -> np.ndarray:
    """A smooth bump of displacement d around a point, zero on the eyes' openings."""
    r = np.linalg.norm(f.v[:478] - centre, axis=1) / radius
    w = np.clip(1 - r**2, 0, 1) ** 2
    w[np.r_[f.g["eyelid_left_upper"], f.g["eyelid_right_upper"]]] = 0.0
    w[468:] = 0.0
    return w[:, None] * d[None, :]


def off_lips(f: FaceMeasures) -> np.ndarray:
    """1 everywhere but on the lips (0): upper-face shapes leave the mouth alone."""
    w = np.ones(478)
    w[f.lips] = 0.0
    return w


def cheek_mask(f: FaceMeasures) -> np.ndarray:
    """0 on and inside the lips, 1 elsewhere."""
    w = np.ones(478)
    w[f.lips] = 0.3
    return w


def sorted_by_x(v: np.ndarray, idx: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    order = np.argsort(v[idx, 0])
    return v[idx[order], 0], v[idx[order], 1]


def values_by_x(v: np.ndarray, idx: np.ndarray, vals: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    order = np.argsort(v[idx, 0])
    return v[idx[order], 0], vals[order]
