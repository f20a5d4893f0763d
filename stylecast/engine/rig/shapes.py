"""The 52 ARKit blendshapes, authored procedurally as vertex displacement fields on a
neutral face in the canonical head frame (inter-ocular distance = 1; x = subject's left,
y down, z away from the camera).

Each shape is written as displacements of the landmarks its name is about (lip contours,
lids, brows, irises...), with `spread` carrying them smoothly onto the skin around, and
zero-displacement anchors where a region must stay put. Magnitudes are in inter-ocular
units (1 ~ 63 mm on an adult) and were tuned by looking at the rendered contact sheet.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from stylecast.engine.face import ARKIT_NAMES, N_EXPR
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


class _Face:
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
        y_chain = np.interp(self.v[cand, 0], *_sorted(self.v, chain))
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


def _shape(face: _Face, ctrl: list[tuple[np.ndarray, np.ndarray]], radius: float, anchors=()):
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


def _vec(x=0.0, y=0.0, z=0.0) -> np.ndarray:
    return np.array([x, y, z])


# ---------------------------------------------------------------------------- eyes


def _eye_shapes(f: _Face) -> dict[str, np.ndarray]:
    out = {}
    for arkit, side, sx in SIDES:
        up, lo, gap, lower_at_up = f.lid(side)
        brow, _ = f.brow(side)
        iris = f.g[f"iris_{side}"]
        meet = lower_at_up - 0.1 * gap
        blink_up = np.zeros((len(up), 3))
        blink_up[:, 1] = meet - f.v[up, 1]
        g_lo = np.full(len(lo), gap.max())
        lo_up = np.zeros((len(lo), 3))
        lo_up[:, 1] = -0.1 * g_lo
        anchors = [*brow, *iris]
        # The skin just above the lid margin (the lashes) moves almost with it, so the lash
        # line stays thin and the stretch goes to the lid's skin higher up.
        lash = f.ring_beside(f.g[f"eyelid_{side}_upper"], above=True)
        lash_d = np.zeros((len(lash), 3))
        lash_d[:, 1] = 0.3 * np.interp(f.v[lash, 0], *_xs_sorted(f.v, up, blink_up[:, 1]))
        out[f"eyeBlink{arkit}"] = _shape(
            f, [(up, blink_up), (lo, lo_up), (lash, lash_d)], 0.18, anchors
        )
        sq_up, sq_lo = blink_up * 0.15, np.zeros((len(lo), 3))
        sq_lo[:, 1] = -0.4 * g_lo
        cheek_below = _vec(0, -0.04)
        out[f"eyeSquint{arkit}"] = _shape(
            f, [(up, sq_up), (lo, sq_lo)], 0.3, [*anchors, *f.anchors("nose")]
        ) + _region(f, f.v[lo].mean(0) + _vec(0, 0.18), 0.22, cheek_below)
        wide_up = np.zeros((len(up), 3))
        wide_up[:, 1] = -0.45 * gap
        out[f"eyeWide{arkit}"] = _shape(f, [(up, wide_up), (lo, -0.2 * lo_up)], 0.2, anchors)
        # Gaze: the iris slides over the eyeball; the lids follow a vertical look a little.
        look_h, look_v = 0.13, 0.08
        for name, d, lid_follow in (
            ("Out", _vec(sx * look_h), 0.0),
            ("In", _vec(-sx * look_h), 0.0),
            ("Up", _vec(0, -look_v), -0.25),
            ("Down", _vec(0, look_v), 0.35),
        ):
            field = np.zeros((478, 3))
            field[iris] = d
            if lid_follow:
                field += lid_follow * _shape(f, [(up, blink_up)], 0.15, anchors)
                field[iris] = d
            out[f"eyeLook{name}{arkit}"] = field
    return out


def _region(f: _Face, centre: np.ndarray, radius: float, d: np.ndarray) -> np.ndarray:
    """A smooth bump of displacement d around a point, zero on the eyes' openings."""
    r = np.linalg.norm(f.v[:478] - centre, axis=1) / radius
    w = np.clip(1 - r**2, 0, 1) ** 2
    w[np.r_[f.g["eyelid_left_upper"], f.g["eyelid_right_upper"]]] = 0.0
    w[468:] = 0.0
    return w[:, None] * d[None, :]


# ---------------------------------------------------------------------------- brows, cheeks, nose


def _brow_shapes(f: _Face) -> dict[str, np.ndarray]:
    out = {}
    lids = f.anchors("eyes")
    inner_up = []
    for arkit, side, sx in SIDES:
        b, u = f.brow(side)
        down = np.stack([-sx * 0.025 * (1 - u), np.full_like(u, 0.09), np.zeros_like(u)], 1)
        out[f"browDown{arkit}"] = _shape(f, [(b, down)], 0.3, [*lids, *f.anchors("nose")])
        outer = np.stack([np.zeros_like(u), -0.11 * u**1.5, np.zeros_like(u)], 1)
        out[f"browOuterUp{arkit}"] = _shape(f, [(b, outer)], 0.35, lids)
        inner_up.append((b, np.stack([sx * 0.01 * (1 - u), -0.11 * (1 - u) ** 1.5, 0 * u], 1)))
    out["browInnerUp"] = _shape(f, inner_up, 0.4, lids)
    return out


def _cheek_nose_shapes(f: _Face) -> dict[str, np.ndarray]:
    out = {}
    v = f.v
    fixed = [*f.anchors("eyes", "nose"), f.chin]
    puff = []
    for arkit, side, sx in SIDES:
        # Cheek centre: beside the mouth corner, a bit above it.
        c = v[f.corner[side]] + _vec(sx * 0.32, -0.12)
        puff.append((c, _vec(sx * 0.1, 0.0, -0.07)))
        # cheekSquint: the cheek under the eye rises, the lower lid with it.
        _, lo, gap, _ = f.lid(side)
        eye_c = v[f.eye_points(side)].mean(0)
        lo_d = np.zeros((len(lo), 3))
        lo_d[:, 1] = -0.25 * gap.max()
        out[f"cheekSquint{arkit}"] = _shape(
            f, [(lo, lo_d)], 0.25, [*f.g[f"eyelid_{side}_upper"], *f.nose]
        ) + _region(f, eye_c + _vec(sx * 0.1, 0.3), 0.3, _vec(0, -0.05))
        # noseSneer: the nostril wing and the skin beside the nose rise.
        nose = f.nose
        lateral = nose[np.argsort(-sx * v[nose, 0])[:4]]  # the nostril wing's points
        out[f"noseSneer{arkit}"] = (
            _shape(
                f,
                [(lateral, _vec(sx * 0.015, -0.085))],
                0.3,
                [
                    *f.anchors("eyes", "upper_lip", "lower_lip"),
                    *f.corners,
                    *np.setdiff1d(nose, lateral),
                ],
            )
            + _region(f, v[lateral].mean(0) + _vec(sx * 0.05, -0.15), 0.22, _vec(0, -0.045))
            * _off_lips(f)[:, None]
        )
    out["cheekPuff"] = sum(
        _region(f, c, 0.48, d) * _cheek_mask(f)[:, None] for c, d in puff
    ) + _shape(
        f,
        [(f.corner["left"], _vec(-0.03)), (f.corner["right"], _vec(0.03))],
        0.2,
        fixed,
    )
    return out


def _off_lips(f: _Face) -> np.ndarray:
    """1 everywhere but on the lips (0): upper-face shapes leave the mouth alone."""
    w = np.ones(478)
    w[f.lips] = 0.0
    return w


def _cheek_mask(f: _Face) -> np.ndarray:
    """0 on and inside the lips, 1 elsewhere."""
    w = np.ones(478)
    w[f.lips] = 0.3
    return w


# ---------------------------------------------------------------------------- jaw and mouth


def _jaw_mouth_shapes(f: _Face) -> dict[str, np.ndarray]:
    out = {}
    v = f.v
    zero = np.zeros(N_EXPR)

    def jaw(name: str) -> np.ndarray:
        e = zero.copy()
        e[ARKIT_NAMES.index(name)] = 1.0
        return f.jaw_displacement(*f.jaw.transform(e))

    for n in ("jawOpen", "jawForward", "jawLeft", "jawRight"):
        out[n] = jaw(n)
    # mouthClose: with the jaw open, the lips close: the lower lip's red part comes back up
    # to where it rests (rigidly), the skin between it and the chin stretches.
    d_open = out["jawOpen"]
    ol_all = f.g["lips_outer_lower"]
    below = v[:478, 1] - np.interp(v[:478, 0], *_sorted(v, ol_all))
    t = np.clip((below - 0.02) / 0.3, 0.0, 1.0)
    lateral = np.abs(v[:478, 0] - f.mouth_x) / (0.5 * f.mouth_w)
    side = np.clip((1.6 - lateral) / 0.6, 0.0, 1.0)
    mask = (1 - t * t * (3 - 2 * t)) * side * f.jaw_weight
    out["mouthClose"] = -d_open * mask[:, None]

    upper, lower_l = f.upper_lip, f.lower_lip
    lips_fixed = [*f.anchors("nose", "eyes", "brows"), f.chin]
    ou, ol = f.g["lips_outer_upper"][1:-1], f.g["lips_outer_lower"][1:-1]
    iu, il = f.g["lips_inner_upper"][1:-1], f.g["lips_inner_lower"][1:-1]
    cr, cl = f.corner["right"], f.corner["left"]
    icr, icl = f.inner_corner["right"], f.inner_corner["left"]

    def corners_and_lips(dc_left: np.ndarray, radius: float, falloff: float = 2.0):
        """Both corners moved (right corner mirrored in x), lips following by closeness."""
        dc_right = dc_left * np.array([-1.0, 1.0, 1.0])
        ctrl = [([cl, icl], dc_left), ([cr, icr], dc_right)]
        for idx in (upper, lower_l):
            a = f.along_lip(idx) ** falloff
            s = np.sign(v[idx, 0] - f.mouth_x)[:, None]
            ctrl.append((idx, a[:, None] * np.where(s > 0, dc_left, dc_right)))
        return ctrl

    # Rounded, pushed lips.
    funnel = corners_and_lips(_vec(-0.14 * f.mouth_w, 0.0, -0.04), 0.4, 1.0)
    funnel += [
        (iu, _vec(0, -0.035, -0.08)),
        (il, _vec(0, 0.06, -0.08)),
        (ou, _vec(0, -0.04, -0.1)),
        (ol, _vec(0, 0.05, -0.1)),
    ]
    out["mouthFunnel"] = _shape(f, funnel, 0.55, lips_fixed)
    pucker = corners_and_lips(_vec(-0.2 * f.mouth_w, 0.0, -0.05), 0.4, 1.0)
    pucker += [
        (iu, _vec(0, 0.0, -0.12)),
        (il, _vec(0, 0.0, -0.12)),
        (ou, _vec(0, -0.02, -0.14)),
        (ol, _vec(0, 0.02, -0.14)),
    ]
    out["mouthPucker"] = _shape(f, pucker, 0.55, lips_fixed)

    for arkit, side, sx in SIDES:
        # mouthLeft/Right: the whole mouth slides towards that side.
        out[f"mouth{arkit}"] = _shape(
            f, [(f.lips, _vec(sx * 0.1))], 0.45, [*f.anchors("nose", "eyes", "brows")]
        )
        c, ic = f.corner[side], f.inner_corner[side]
        near_u = upper[(v[upper, 0] - f.mouth_x) * sx > 0]
        near_l = lower_l[(v[lower_l, 0] - f.mouth_x) * sx > 0]
        wu, wl = f.along_lip(near_u)[:, None], f.along_lip(near_l)[:, None]
        other = [f.corner[o] for _, o, _ in SIDES if o != side]
        other += [f.inner_corner[o] for _, o, _ in SIDES if o != side]

        def corner_shape(
            d,
            radius,
            extra=(),
            lip_pow=2.0,
            c=c,
            ic=ic,
            wu=wu,
            wl=wl,
            nu=near_u,
            nl=near_l,
            o=other,
        ):
            ctrl = [([c, ic], d), (nu, wu**lip_pow * d), (nl, wl**lip_pow * d)]
            return _shape(f, ctrl + list(extra), radius, [*lips_fixed, *o])

        out[f"mouthSmile{arkit}"] = corner_shape(_vec(sx * 0.09, -0.11, 0.02), 0.5) + _region(
            f, v[c] + _vec(sx * 0.2, -0.3), 0.3, _vec(sx * 0.01, -0.04)
        )
        out[f"mouthFrown{arkit}"] = corner_shape(_vec(sx * 0.015, 0.08), 0.4)
        out[f"mouthDimple{arkit}"] = corner_shape(_vec(sx * 0.05, -0.01, 0.05), 0.35)
        out[f"mouthStretch{arkit}"] = corner_shape(
            _vec(sx * 0.1, 0.035), 0.4, [(near_l, _vec(0, 0.03))], lip_pow=1.0
        )
        # mouthPress: lips thin on that side (outer contours move towards the inner ones).
        su, sl = ou[(v[ou, 0] - f.mouth_x) * sx > 0], ol[(v[ol, 0] - f.mouth_x) * sx > 0]
        press_u = np.zeros((len(su), 3))
        press_u[:, 1] = 0.35 * (np.interp(v[su, 0], *_sorted(v, iu)) - v[su, 1])
        press_l = np.zeros((len(sl), 3))
        press_l[:, 1] = 0.35 * (np.interp(v[sl, 0], *_sorted(v, il)) - v[sl, 1])
        out[f"mouthPress{arkit}"] = _shape(
            f, [(su, press_u), (sl, press_l), ([c, ic], _vec(sx * 0.02))], 0.25, lips_fixed
        )
        # mouthLowerDown / mouthUpperUp: one side of a lip moves off the teeth.
        ws_l = f.side_weight(sx, lower_l)[:, None] * (1 - 0.6 * f.along_lip(lower_l)[:, None])
        out[f"mouthLowerDown{arkit}"] = _shape(
            f, [(lower_l, ws_l * _vec(0, 0.11, -0.01))], 0.35, [*upper, *f.corners, *f.nose]
        )
        ws_u = f.side_weight(sx, upper)[:, None] * (1 - 0.6 * f.along_lip(upper)[:, None])
        out[f"mouthUpperUp{arkit}"] = _shape(
            f, [(upper, ws_u * _vec(0, -0.075, -0.01))], 0.25, [*lower_l, *f.corners, f.nose_tip]
        )

    # Rolls: the lip's red part turns inwards (outer contour to the inner one, and back).
    roll_l = np.zeros((len(ol), 3))
    roll_l[:, 1] = 0.75 * (np.interp(v[ol, 0], *_sorted(v, il)) - v[ol, 1])
    roll_l[:, 2] = 0.04
    out["mouthRollLower"] = _shape(f, [(ol, roll_l), (il, _vec(0, -0.01, 0.04))], 0.3, lips_fixed)
    roll_u = np.zeros((len(ou), 3))
    roll_u[:, 1] = 0.75 * (np.interp(v[ou, 0], *_sorted(v, iu)) - v[ou, 1])
    roll_u[:, 2] = 0.04
    out["mouthRollUpper"] = _shape(f, [(ou, roll_u), (iu, _vec(0, 0.01, 0.04))], 0.3, lips_fixed)
    # Shrugs: the lower lip and chin push up; the upper lip rises.
    out["mouthShrugLower"] = _shape(
        f,
        [
            (lower_l, _vec(0, -0.04, -0.03)),
            (upper, _vec(0, -0.02, -0.01)),
            (f.chin, _vec(0, -0.03)),
        ],
        0.4,
        f.anchors("nose", "eyes"),
    )
    out["mouthShrugUpper"] = _shape(
        f, [(upper, _vec(0, -0.04, -0.02)), (lower_l, _vec(0, -0.01))], 0.3, [*f.nose, f.chin]
    )
    # tongueOut: the jaw drops a little (JawModel adds 0.3 of jawOpen) and the lower lip
    # rolls down so the tongue shows; the tongue itself is drawn by the renderer.
    out["tongueOut"] = 0.3 * d_open + _shape(
        f, [(lower_l, _vec(0, 0.05, -0.02))], 0.3, [*upper, *f.corners]
    )
    return out


def _sorted(v: np.ndarray, idx: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    order = np.argsort(v[idx, 0])
    return v[idx[order], 0], v[idx[order], 1]


def _xs_sorted(v: np.ndarray, idx: np.ndarray, vals: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    order = np.argsort(v[idx, 0])
    return v[idx[order], 0], vals[order]


AUTHORS: tuple[Callable[[_Face], dict[str, np.ndarray]], ...] = (
    _eye_shapes,
    _brow_shapes,
    _cheek_nose_shapes,
    _jaw_mouth_shapes,
)


def author_blendshapes(
    neutral: np.ndarray, groups: dict[str, np.ndarray], triangles: np.ndarray
) -> tuple[np.ndarray, JawModel]:
    """All 52 shapes on this neutral: ((52, 478, 3) float32 in ARKIT_NAMES order, jaw).
    triangles: (F, 3) face-mesh triangles (for the lids' neighbouring rings)."""
    face = _Face(np.asarray(neutral, np.float64), groups, triangles)
    fields: dict[str, np.ndarray] = {}
    for author in AUTHORS:
        fields.update(author(face))
    missing = set(ARKIT_NAMES) - set(fields)
    extra = set(fields) - set(ARKIT_NAMES)
    assert not missing and not extra, (missing, extra)
    basis = np.stack([fields[n] for n in ARKIT_NAMES]).astype(np.float32)
    return basis, face.jaw
