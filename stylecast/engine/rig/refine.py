"""A render-only refinement of the face mesh along the upper eyelids.

MediaPipe's mesh has one ring of points just above each upper lid margin. In a blink the
margin travels the whole eye opening while that ring (which MediaPipe itself tracks, so the
rig moves it only partly) stays behind, and the thin band of lashes between them would be
stretched into streaks. Splitting each margin-to-ring edge adds a vertex 70 % of the way up
that follows the margin closely in the blink shapes, so the lashes stay a thin line and the
stretch goes to the lid's skin above. The 478 rig points and their motion are unchanged
(the fitter and every landmark consumer see the same rig); only the renderer draws the
extra vertices.

    ref = refine_lids(rig, face_uv)     # at build time; stored in the avatar bundle
    # ref.triangles index [0..477] = rig points, [478..478+E) = ref's extra vertices
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from stylecast.engine.face import INDEX
from stylecast.engine.rig.measure import FaceMeasures

SPLIT_AT = 0.7  # where the new vertex sits on the margin-to-ring edge (0 = on the margin)
BLINK_FOLLOW = 0.1  # in a blink it moves like the edge's point this far up (0 = the margin)


class LidRefinement(NamedTuple):
    triangles: np.ndarray  # (F', 3) int32 face triangles to draw instead of rig.triangles
    neutral: np.ndarray  # (E, 3) float32 canonical rest positions of the extra vertices
    basis: np.ndarray  # (52, E, 3) float32 their blendshape displacements
    uv: np.ndarray  # (E, 2) float32 their texture coordinates
    edges: np.ndarray  # (E, 2) int32 the (lid margin point, ring point) each one splits


def refine_lids(rig, face_uv: np.ndarray) -> LidRefinement:
    """Split the upper lids' margin-to-ring edges (see the module docstring).

    rig: a FaceRig; face_uv: (478, 2) texture coordinates of the rig's points."""
    f = FaceMeasures(rig.neutral.astype(np.float64), rig.groups, rig.triangles)
    margin: dict[int, str] = {}
    ring: set[int] = set()
    for side in ("left", "right"):
        chain = rig.groups[f"eyelid_{side}_upper"]
        margin.update({int(i): side for i in chain})
        ring.update(int(i) for i in f.ring_beside(chain, above=True))

    new_index: dict[tuple[int, int], int] = {}
    pairs: list[tuple[int, int, str]] = []  # (margin point, ring point, side)

    def split(m: int, o: int) -> int:
        key = (m, o)
        if key not in new_index:
            new_index[key] = 478 + len(pairs)
            pairs.append((m, o, margin[m]))
        return new_index[key]

    triangles = []
    for tri in rig.triangles.tolist():
        ms = [v for v in tri if v in margin]
        rs = [v for v in tri if v in ring]
        if not ms or not rs:
            triangles.append(tri)
            continue
        if len(ms) == 2:  # (m1, m2, o): cut the two edges to o
            (m1, m2), o = ms, next(v for v in tri if v not in ms)
            p1, p2 = split(m1, o), split(m2, o)
            triangles += [[m1, m2, p2], [m1, p2, p1], [p1, p2, o]]
        elif len(rs) == 2:  # (m, o1, o2): cut both edges from m
            m, (o1, o2) = ms[0], rs
            p1, p2 = split(m, o1), split(m, o2)
            triangles += [[m, p1, p2], [p1, o1, o2], [p1, o2, p2]]
        else:  # (m, o, x): cut m-o only
            m, o = ms[0], rs[0]
            x = next(v for v in tri if v not in (m, o))
            p = split(m, o)
            triangles += [[m, p, x], [p, o, x]]

    m_idx = np.array([p[0] for p in pairs])
    o_idx = np.array([p[1] for p in pairs])
    t = np.full((len(pairs), 1), SPLIT_AT)
    neutral = (1 - t) * rig.neutral[m_idx] + t * rig.neutral[o_idx]
    uv = (1 - t) * face_uv[m_idx] + t * face_uv[o_idx]
    basis = (1 - t)[None] * rig.basis[:, m_idx] + t[None] * rig.basis[:, o_idx]
    for side, arkit in (("left", "Left"), ("right", "Right")):
        k = INDEX[f"eyeBlink{arkit}"]
        sel = np.array([p[2] == side for p in pairs])
        s = BLINK_FOLLOW
        basis[k, sel] = (1 - s) * rig.basis[k, m_idx[sel]] + s * rig.basis[k, o_idx[sel]]
    return LidRefinement(
        triangles=np.array(triangles, np.int32),
        neutral=neutral.astype(np.float32),
        basis=basis.astype(np.float32),
        uv=uv.astype(np.float32),
        edges=np.stack([m_idx, o_idx], axis=1).astype(np.int32),
    )
