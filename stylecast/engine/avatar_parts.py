"""The parts of an avatar bundle besides the face rig, made at build time from the aligned
portrait: the frame mesh around the face (hair, ears, neck, background) and the eyeballs
(an atlas of the two eyes with the lids painted out); the mouth interior is in
avatar_mouth.py. All geometry is in the canonical head frame; see docs/avatar.md.
"""

from __future__ import annotations

from typing import NamedTuple

import cv2
import numpy as np

from stylecast.engine.avatar import MeshPart
from stylecast.engine.rig import FaceRig, RestPose

# Distances of the ring vertices from the face outline, inter-ocular units (compressed
# smoothly so they never pass the image border).
RING_DISTANCES = (0.1, 0.25, 0.45, 0.72, 1.05, 1.5, 2.1, 2.9)
# How far head motion reaches beyond the outline (Gaussian width, inter-ocular units):
# far above the face (hair moves with the skull), less at the sides, little below (neck).
REACH_UP, REACH_SIDE, REACH_DOWN = 1.5, 1.0, 0.4
FOLLOW_REACH = 0.2  # how far below/around the outline the skin follows expressions
EYE_ATLAS = 64  # side of each eye's square in the atlas, pixels


def canonical_at_depth(rest: RestPose, xy: np.ndarray, z: np.ndarray) -> np.ndarray:
    """Canonical points (N, 3) whose image x, y are `xy` (N, 2) and canonical z is `z`."""
    a = rest.rotation.T / rest.scale  # canonical = a @ (p - t)
    q = xy - rest.translation[:2]  # (N, 2)
    # z = a[2,0] q0 + a[2,1] q1 + a[2,2] (d - t2)  -> solve for image depth d
    depth = (z - a[2, 0] * q[:, 0] - a[2, 1] * q[:, 1]) / a[2, 2] + rest.translation[2]
    p = np.concatenate([xy, depth[:, None]], axis=1)
    return rest.to_canonical(p)


class Ring(NamedTuple):
    vertices: np.ndarray  # (R, 3) canonical
    uv: np.ndarray  # (R, 2)
    triangles: np.ndarray  # (G, 3) over [478 face points, R ring vertices]
    weight: np.ndarray  # (R,)
    parent: np.ndarray  # (R,)
    follow: np.ndarray  # (R,)


def build_ring(landmarks: np.ndarray, rest: RestPose, rig: FaceRig, size: int) -> Ring:
    """Rings of vertices from the face outline out to the image border, quad strips between
    them, and the four image corners; see the module docstring."""
    oval = rig.groups["face_oval"]
    n = len(oval)
    o = landmarks[oval, :2].astype(np.float64)  # (n, 2) px
    centre = o.mean(0)
    dirs = o - centre
    dirs /= np.linalg.norm(dirs, axis=1, keepdims=True)
    # Distance from each outline point to the border along its ray.
    with np.errstate(divide="ignore"):
        tx = np.where(dirs[:, 0] > 0, (size - o[:, 0]) / dirs[:, 0], -o[:, 0] / dirs[:, 0])
        ty = np.where(dirs[:, 1] > 0, (size - o[:, 1]) / dirs[:, 1], -o[:, 1] / dirs[:, 1])
    reach = np.maximum(np.minimum(np.abs(tx), np.abs(ty)), 1.0)  # (n,) px
    iod = rest.scale
    levels = []
    for d in RING_DISTANCES:
        levels.append(reach * (1 - np.exp(-d * iod / reach)))
    levels.append(reach)  # on the border
    dist_px = np.stack(levels)  # (L, n)
    pts = o[None] + dirs[None] * dist_px[..., None]  # (L, n, 2)
    corners = np.array([[0, 0], [size, 0], [size, size], [0, size]], np.float64)

    # Motion weights: Gaussian in the distance from the outline, widest upwards.
    up = -dirs[:, 1]
    reach_iod = np.where(
        up > 0,
        REACH_SIDE + (REACH_UP - REACH_SIDE) * up,
        REACH_SIDE + (REACH_DOWN - REACH_SIDE) * (-up),
    )
    d_iod = dist_px / iod
    border_fade = np.clip((reach - dist_px) / (0.3 * reach), 0, 1)
    weight = np.exp(-((d_iod / reach_iod) ** 2)) * border_fade**2 * (3 - 2 * border_fade)
    # Where the border is near (hair cut off by the top of the frame), never more than a
    # straight fall from the outline to the border: a fall squeezed into the last stretch
    # stretched the hair there 2.4x as the head nodded (pitch +15 deg); spread over the
    # whole way, at most ~1.6x.
    weight = np.minimum(weight, 1.0 - dist_px / reach)
    # Exactly zero where it is small: those triangles never move and are not drawn.
    weight = np.clip((weight - 0.03) / 0.97, 0.0, 1.0)
    weight[-1] = 0.0
    follow = np.exp(-d_iod / FOLLOW_REACH)
    follow[-1] = 0.0

    # Canonical depth: from the outline's depth towards the pivot's (the head's middle).
    z_oval = rig.neutral[oval, 2].astype(np.float64)
    t = np.clip(d_iod / 1.6, 0, 1)
    z = z_oval[None] * (1 - t)  # pivot depth is 0
    xy = np.concatenate([pts.reshape(-1, 2), corners])
    zz = np.concatenate([z.reshape(-1), np.zeros(4)])
    verts = canonical_at_depth(rest, xy, zz)

    levels_n = len(levels)
    base = 478

    def vid(level: int, i: int) -> int:
        return int(oval[i % n]) if level < 0 else base + level * n + (i % n)

    tris = []
    for lv in range(-1, levels_n - 1):
        for i in range(n):
            a0, a1, b0, b1 = vid(lv, i), vid(lv, i + 1), vid(lv + 1, i), vid(lv + 1, i + 1)
            tris += [(a0, a1, b1), (a0, b1, b0)]
    border = pts[-1]
    for k, c in enumerate(corners):
        cv = c - centre
        for i in range(n):
            d0, d1 = dirs[i], dirs[(i + 1) % n]
            s = np.sign(_cross(d0, d1))
            if np.sign(_cross(d0, cv)) == s and np.sign(_cross(cv, d1)) == s:
                tris.append(
                    (vid(levels_n - 1, i), base + levels_n * n + k, vid(levels_n - 1, i + 1))
                )
                break
    del border
    r = len(verts)
    return Ring(
        vertices=verts.astype(np.float32),
        uv=(xy / size).astype(np.float32),
        triangles=np.array(tris, np.int32),
        weight=np.concatenate([weight.reshape(-1), np.zeros(4)]).astype(np.float32),
        parent=np.concatenate([np.tile(oval, levels_n), oval[[0, 0, 0, 0]]]).astype(np.int32)[:r],
        follow=np.concatenate([follow.reshape(-1), np.zeros(4)]).astype(np.float32),
    )


def _cross(a: np.ndarray, b: np.ndarray) -> float:
    return float(a[0] * b[1] - a[1] * b[0])


# ---------------------------------------------------------------------------- eyes


def build_eyes(
    image: np.ndarray, landmarks: np.ndarray, rest: RestPose, rig: FaceRig
) -> tuple[np.ndarray, tuple[MeshPart, MeshPart]]:
    """The eye atlas (A, 2A, 3) and the two eyeball meshes (subject's right, left).

    Each eyeball is a disc larger than the eye opening (the lids hide its rim): the iris
    (centre + ring, gaze = 1) slides over it; its texture is the portrait's eye with the
    parts the lids hid in the portrait painted in (iris by radial fill, sclera by its
    median colour, shaded darker under the upper lid)."""
    atlas = np.zeros((EYE_ATLAS, 2 * EYE_ATLAS, 3), np.uint8)
    parts = []
    for slot, side in enumerate(("right", "left")):
        loop = rig.groups[f"eye_{side}"]
        iris = rig.groups[f"iris_{side}"]
        eye_xy = landmarks[loop, :2].astype(np.float64)
        c_eye = eye_xy.mean(0)
        c_iris = landmarks[iris[0], :2].astype(np.float64)
        r_iris = float(np.linalg.norm(landmarks[iris[1:], :2] - c_iris, axis=1).mean())
        half_w = 0.5 * (eye_xy[:, 0].max() - eye_xy[:, 0].min())
        r_out = 1.45 * half_w
        half = 1.1 * r_out  # patch half side, px
        scale = EYE_ATLAS / (2 * half)
        m = np.array(
            [[scale, 0, -scale * (c_eye[0] - half)], [0, scale, -scale * (c_eye[1] - half)]]
        )
        patch = cv2.warpAffine(
            image,
            m,
            (EYE_ATLAS, EYE_ATLAS),
            flags=cv2.INTER_AREA if scale < 1 else cv2.INTER_CUBIC,
            borderMode=cv2.BORDER_REPLICATE,
        )
        origin = c_eye - half

        def to_patch(p, origin=origin, scale=scale):
            return (p - origin) * scale

        atlas[:, slot * EYE_ATLAS : (slot + 1) * EYE_ATLAS] = _paint_eyeball(
            patch, to_patch(eye_xy), to_patch(c_iris), r_iris * scale
        )
        # Mesh: iris centre, iris ring (gaze), outer ring (fixed to the skull).
        k = 16
        ang = np.linspace(0, 2 * np.pi, k, endpoint=False)
        ring = np.stack([np.cos(ang), np.sin(ang)], 1)
        xy = np.concatenate([c_iris[None], c_iris + 1.08 * r_iris * ring, c_eye + r_out * ring])
        depth = float(rig.neutral[loop, 2].mean()) + 0.05
        verts = canonical_at_depth(rest, xy, np.full(len(xy), depth))
        uv = to_patch(xy) / EYE_ATLAS
        uv[:, 0] = (uv[:, 0] + slot) / 2.0
        gaze = np.r_[np.ones(1 + k), np.zeros(k)]
        tris = [(0, 1 + i, 1 + (i + 1) % k) for i in range(k)]
        for i in range(k):
            a0, a1 = 1 + i, 1 + (i + 1) % k
            b0, b1 = 1 + k + i, 1 + k + (i + 1) % k
            tris += [(a0, a1, b1), (a0, b1, b0)]
        attrib = np.stack([uv[:, 0], uv[:, 1], gaze, np.zeros(len(xy))], 1)
        parts.append(
            MeshPart(verts.astype(np.float32), np.array(tris, np.int32), attrib.astype(np.float32))
        )
    return atlas, (parts[0], parts[1])


def _paint_eyeball(patch: np.ndarray, loop_xy: np.ndarray, c_iris: np.ndarray, r_iris: float):
    """Keep the visible eye; fill the hidden iris radially and the hidden sclera flat."""
    h, w = patch.shape[:2]
    visible = np.zeros((h, w), np.uint8)
    cv2.fillPoly(visible, [np.round(loop_xy * 16).astype(np.int32)], 1, cv2.LINE_AA, shift=4)
    visible = cv2.erode(visible, np.ones((3, 3), np.uint8)).astype(bool)
    yy, xx = np.mgrid[0:h, 0:w]
    r = np.hypot(xx - c_iris[0], yy - c_iris[1])
    out = patch.astype(np.float32)
    in_iris = r < r_iris
    # The sclera is the brightest part of the eye: the mean of the brightest quarter of the
    # visible pixels outside the iris (the rest are lid shadow, lashes and the corners).
    sclera_px = patch[visible & (r > 1.15 * r_iris)].astype(np.float32)
    lum = patch.reshape(-1, 3).mean(0).mean()
    if len(sclera_px) > 8:
        bright = sclera_px.mean(1) >= np.percentile(sclera_px.mean(1), 75)
        sclera = sclera_px[bright].mean(0)
    else:
        sclera = np.array([215.0, 205.0, 200.0]) * min(1.0, lum / 150.0)
    sclera = np.maximum(sclera, patch.reshape(-1, 3).mean(0))  # never darker than the skin
    iris_px = patch[visible & in_iris]
    iris_all = np.median(iris_px, 0) if len(iris_px) else np.array([80.0, 60.0, 45.0])
    # Hidden sclera: flat colour, a little darker towards the top (the upper lid's shadow)
    # and towards the corners (the eyeball curves away).
    shade = np.clip(0.82 + 0.2 * (yy - (c_iris[1] - 2 * r_iris)) / (4 * r_iris), 0.82, 1.0)
    shade = shade * (1 - 0.12 * np.clip(np.abs(xx - c_iris[0]) / (3 * r_iris), 0, 1) ** 2)
    fill = sclera[None, None, :] * shade[..., None]
    # Hidden iris: the mean visible colour at the same radius.
    bins = np.clip((r / max(r_iris, 1e-3) * 6).astype(int), 0, 5)
    for b in range(6):
        sel = visible & in_iris & (bins == b)
        col = patch[sel].mean(0) if sel.sum() >= 3 else iris_all
        m = in_iris & (bins == b)
        fill[m] = col
    # Soft limbus edge.
    edge = np.clip(r_iris + 0.7 - r, 0, 1)[..., None]
    fill = np.where(in_iris[..., None], fill, fill * (1 - edge) + iris_all * 0.7 * edge)
    vis = cv2.GaussianBlur(visible.astype(np.float32), (5, 5), 0)[..., None]
    out = vis * out + (1 - vis) * fill
    return np.clip(out, 0, 255).astype(np.uint8)
