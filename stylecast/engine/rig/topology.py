"""The MediaPipe face-mesh topology, derived in code from MediaPipe's own connection sets.

MediaPipe ships the tessellation as a set of undirected edges (three per triangle); the
triangles are recovered as the 3-cliques of that graph, minus the cliques that are not
faces (their three edges are each shared by three cliques). The named groups (lip
contours, eyelids, brows, irises, face oval, nose) come from MediaPipe's connection sets,
split into upper/lower and left/right by walking each chain between its corners.

Only avatar building calls `build_topology()` (it needs mediapipe); the result is stored in
every avatar bundle so the runtime never imports mediapipe. "Left" and "right" are the
subject's, as in ARKit: the subject's left eye appears on the image right (+x).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

import numpy as np

from stylecast.engine.errors import BackendError

# Group names stored in a bundle, each an int32 index array into the 478 points.
GROUP_NAMES: tuple[str, ...] = (
    "face_oval",  # closed loop around the face, in order
    "lips_outer",  # closed loop, in order
    "lips_inner",  # closed loop around the mouth opening, in order
    "lips_outer_upper",  # corner to corner, in order (corners included)
    "lips_outer_lower",
    "lips_inner_upper",
    "lips_inner_lower",
    "eye_left",  # closed loop around the subject's left eye opening, in order
    "eye_right",
    "eyelid_left_upper",  # corner to corner (corners included)
    "eyelid_left_lower",
    "eyelid_right_upper",
    "eyelid_right_lower",
    "brow_left_upper",
    "brow_left_lower",
    "brow_right_upper",
    "brow_right_lower",
    "iris_left",  # centre first, then the 4 ring points
    "iris_right",
    "nose",
)


@dataclass(frozen=True)
class Topology:
    """triangles: (852, 3) int32 over the 468 mesh points; groups: name -> int32 indices."""

    triangles: np.ndarray
    groups: dict[str, np.ndarray]


def triangles_from_edges(edges: set[tuple[int, int]] | frozenset) -> np.ndarray:
    """Triangles of a triangulated surface given only its edges: (F, 3) int32, sorted."""
    adj: dict[int, set[int]] = {}
    for a, b in edges:
        adj.setdefault(a, set()).add(b)
        adj.setdefault(b, set()).add(a)
    cliques = set()
    for a, b in edges:
        for c in adj[a] & adj[b]:
            cliques.add(tuple(sorted((a, b, c))))
    use = Counter()
    for a, b, c in cliques:
        use.update([(a, b), (b, c), (a, c)])
    # A 3-cycle that is not a face: each of its edges already borders two real faces.
    faces = [t for t in cliques if not all(use[e] > 2 for e in _edges(t))]
    return np.array(sorted(faces), np.int32)


def _edges(t: tuple[int, int, int]) -> list[tuple[int, int]]:
    a, b, c = t
    return [(a, b), (b, c), (a, c)]


def chains(edges) -> list[list[int]]:
    """Connected components of a set of edges forming paths or cycles, each in walk order.
    A cycle is returned without repeating its first vertex."""
    adj: dict[int, list[int]] = {}
    for a, b in edges:
        adj.setdefault(a, []).append(b)
        adj.setdefault(b, []).append(a)
    seen: set[int] = set()
    out = []
    # Start paths at their ends (degree 1), then what is left are cycles.
    starts = [v for v in adj if len(adj[v]) == 1] + list(adj)
    for s in starts:
        if s in seen:
            continue
        walk, prev, cur = [s], None, s
        seen.add(s)
        while True:
            nxt = [v for v in adj[cur] if v != prev and v not in seen]
            if not nxt:
                break
            prev, cur = cur, nxt[0]
            walk.append(cur)
            seen.add(cur)
        out.append(walk)
    return out


def split_loop(loop: list[int], xy: np.ndarray) -> tuple[list[int], list[int]]:
    """Split a closed loop at its leftmost and rightmost points (in xy) into its upper and
    lower halves (y grows downwards), each running from the left corner to the right one."""
    xs = xy[loop, 0]
    i0, i1 = int(np.argmin(xs)), int(np.argmax(xs))
    n = len(loop)
    a = [loop[(i0 + k) % n] for k in range((i1 - i0) % n + 1)]
    b = [loop[(i0 - k) % n] for k in range((i0 - i1) % n + 1)]
    if xy[a, 1].mean() > xy[b, 1].mean():
        a, b = b, a
    return a, b


def build_topology(reference_xy: np.ndarray) -> Topology:
    """Derive the triangles and named groups from mediapipe's connection sets.

    reference_xy: (478, 2) landmarks of a roughly upright face (pixels or canonical), used
    only to tell upper from lower and the corners of each contour.
    """
    try:
        from mediapipe.python.solutions import face_mesh_connections as fmc
    except ImportError as e:  # pragma: no cover - depends on the environment
        raise BackendError(
            f"mediapipe is needed to build the face topology ({e}); pip install 'stylecast[avatar]'"
        ) from e
    xy = np.asarray(reference_xy, np.float64)
    groups: dict[str, list[int]] = {}

    (oval,) = chains(fmc.FACEMESH_FACE_OVAL)
    groups["face_oval"] = oval

    lip_loops = sorted(chains(fmc.FACEMESH_LIPS), key=lambda c: -_perimeter(c, xy))
    for name, loop in zip(("outer", "inner"), lip_loops, strict=True):
        groups[f"lips_{name}"] = loop
        upper, lower = split_loop(loop, xy)
        groups[f"lips_{name}_upper"], groups[f"lips_{name}_lower"] = upper, lower

    for side, eye, brow, iris in (
        ("left", fmc.FACEMESH_LEFT_EYE, fmc.FACEMESH_LEFT_EYEBROW, fmc.FACEMESH_LEFT_IRIS),
        ("right", fmc.FACEMESH_RIGHT_EYE, fmc.FACEMESH_RIGHT_EYEBROW, fmc.FACEMESH_RIGHT_IRIS),
    ):
        (loop,) = chains(eye)
        groups[f"eye_{side}"] = loop
        upper, lower = split_loop(loop, xy)
        groups[f"eyelid_{side}_upper"], groups[f"eyelid_{side}_lower"] = upper, lower
        brows = sorted(chains(brow), key=lambda c: xy[c, 1].mean())
        groups[f"brow_{side}_upper"] = sorted(brows[0], key=lambda i: xy[i, 0])
        groups[f"brow_{side}_lower"] = sorted(brows[1], key=lambda i: xy[i, 0])
        ring = sorted({i for e in iris for i in e})
        centre = min(ring) - 1  # 468 / 473: the centre precedes its ring
        groups[f"iris_{side}"] = [centre, *ring]

    groups["nose"] = sorted({i for e in fmc.FACEMESH_NOSE for i in e})

    # The subject's left is the image right: check the mediapipe naming agrees.
    assert xy[groups["iris_left"][0], 0] > xy[groups["iris_right"][0], 0], "mirrored face?"
    triangles = triangles_from_edges(fmc.FACEMESH_TESSELATION)
    return Topology(
        triangles=triangles,
        groups={k: np.array(groups[k], np.int32) for k in GROUP_NAMES},
    )


def _perimeter(loop: list[int], xy: np.ndarray) -> float:
    p = xy[loop]
    return float(np.linalg.norm(p - np.roll(p, 1, axis=0), axis=1).sum())
