"""Mesh geometry the renderer derives once per avatar: a depth relief that keeps turned
faces from smearing (with an even depth along the face's outline, so turned jaws keep
their shape), closed polygons (the lips' and lids' edges) with their inward normals, for
the edge fringe, and the mouth interior's meshes unshared with their outlines marked, for
antialiasing. See docs/avatar.md, "The renderer".
"""

from __future__ import annotations

import numpy as np


def depth_relief(vertices: np.ndarray, triangles: np.ndarray, slope: float) -> np.ndarray:
    """(V,) depth offsets (<= 0: towards the camera) that make the mesh's depth rise no
    faster than `slope` per unit of (x, y) distance along any edge: the least such depth
    below the given one, z'_i = min_j (z_j + slope |xy_i - xy_j|) over paths (a distance
    transform, by relaxing the edges until nothing changes)."""
    edges = np.concatenate([triangles[:, [0, 1]], triangles[:, [1, 2]], triangles[:, [2, 0]]])
    edges = np.unique(np.sort(edges, axis=1), axis=0)  # (K, 2)
    cost = slope * np.linalg.norm(vertices[edges[:, 0], :2] - vertices[edges[:, 1], :2], axis=1)
    z = vertices[:, 2].astype(np.float64)
    for _ in range(len(vertices)):
        before = z.copy()
        np.minimum.at(z, edges[:, 0], z[edges[:, 1]] + cost)
        np.minimum.at(z, edges[:, 1], z[edges[:, 0]] + cost)
        if np.array_equal(z, before):
            break
    return (z - vertices[:, 2]).astype(np.float32)


def even_outline(z: np.ndarray, passes: int) -> np.ndarray:
    """(N,) depths along a closed outline, brought forward (never back) where a point lies
    behind the mean of its two neighbours: `passes` rounds of z_i = min(z_i, mean of its
    neighbours). A yaw moves each point sideways in proportion to its depth, so a point
    left deeper than both neighbours (the relief lowers some of the outline and not the
    next point) stays behind as they move: a bump on the turned-away side."""
    z = np.asarray(z, np.float64).copy()
    for _ in range(passes):
        z = np.minimum(z, 0.5 * (np.roll(z, 1) + np.roll(z, -1)))
    return z


def outline_relief(
    vertices: np.ndarray, triangles: np.ndarray, slope: float, outline: np.ndarray, passes: int
) -> np.ndarray:
    """(V,) depth offsets (<= 0): depth_relief, then the closed `outline` (point indices in
    order) evened by even_outline, then the relief again (so the slope holds around it)."""
    z = vertices[:, 2] + depth_relief(vertices, triangles, slope)
    z[outline] = even_outline(z[outline], passes)
    evened = np.concatenate([vertices[:, :2], z[:, None]], axis=1)
    z = z + depth_relief(evened, triangles, slope)
    return (z - vertices[:, 2]).astype(np.float32)


def triangle_stretch(before: np.ndarray, after: np.ndarray, triangles: np.ndarray) -> np.ndarray:
    """(F,) how much each triangle is stretched from `before` to `after` (V, 2): the larger
    singular value of the affine map between them (1 for a degenerate triangle)."""
    t = triangles

    def edges(xy):  # (F, 2, 2): the two edge vectors from the first corner, as columns
        return np.stack([xy[t[:, 1]] - xy[t[:, 0]], xy[t[:, 2]] - xy[t[:, 0]]], axis=-1)

    a, b = edges(before), edges(after)
    ok = np.abs(np.linalg.det(a)) > 1e-9 * np.abs(a).max() ** 2
    maps = b @ np.linalg.inv(np.where(ok[:, None, None], a, np.eye(2)))
    return np.where(ok, np.linalg.svd(maps, compute_uv=False)[:, 0], 1.0)


def outlined(triangles: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """A mesh unshared (three vertices per triangle) with its outline marked, for
    antialiasing its edges in a fragment shader without multisampling.

    Returns (corners (3F,) the original vertex of each new vertex, edge (3F, 3) float32).
    edge holds, for each triangle, barycentric coordinates that fall to 0 on the triangle's
    outline edges (those of the mesh's boundary: used by one triangle only) and stay 1 for
    its inner edges: the least of them over its screen-space gradient is a fragment's
    distance in pixels to the mesh's outline."""
    t = np.asarray(triangles)
    opposite = np.stack([t[:, [1, 2]], t[:, [2, 0]], t[:, [0, 1]]], axis=1)  # (F, 3, 2)
    key = np.sort(opposite, axis=2).reshape(-1, 2)
    _, inverse, counts = np.unique(key, axis=0, return_inverse=True, return_counts=True)
    outline = (counts[inverse.reshape(-1)] == 1).reshape(-1, 3)  # (F, 3): edge opposite k
    corner = np.eye(3, dtype=np.float32)  # corner k: 1 in component k, 0 in the others
    edge = np.where(outline[:, None, :], corner[None], 1.0)  # (F, 3 corners, 3)
    return t.reshape(-1), edge.reshape(-1, 3).astype(np.float32)


class Loops:
    """Closed polygons given by point indices, concatenated (N points in all)."""

    def __init__(self, loops: list[np.ndarray]) -> None:
        self.points = np.concatenate(loops)  # (N,) vertex indices
        sizes = [len(loop) for loop in loops]
        self.starts = np.cumsum([0, *sizes[:-1]])  # (L,) first point of each loop
        self.loop = np.repeat(np.arange(len(loops)), sizes)  # (N,) loop of each point
        k = np.arange(len(self.points)) - self.starts[self.loop]  # position within its loop
        size = np.asarray(sizes)[self.loop]
        self.next = self.starts[self.loop] + (k + 1) % size  # (N,) the following point
        self.prev = self.starts[self.loop] + (k - 1) % size

    def area(self, xy: np.ndarray) -> np.ndarray:
        """(L,) signed area of each polygon (xy: (N, 2))."""
        cross = xy[:, 0] * xy[self.next, 1] - xy[self.next, 0] * xy[:, 1]
        return 0.5 * np.add.reduceat(cross, self.starts)

    def orient(self, xy: np.ndarray) -> None:
        """Fix which side is inside from one drawing of the polygons (N, 2) where they are
        open (the portrait): closing lips or lids leave no area to tell it by, and a side
        that flipped between frames would flicker."""
        area = self.area(xy)
        self.sign = np.where(area >= 0, 1.0, -1.0)[self.loop]
        self.open_area = np.abs(area)  # (L,) each polygon's area there

    def inward(self, xy: np.ndarray) -> np.ndarray:
        """(N, 2) unit normals at the points (xy: (N, 2)), towards each polygon's inside
        (the side `orient` found; mirror-free maps such as poses keep it)."""
        t = xy[self.next] - xy[self.prev]
        n = np.stack([-t[:, 1], t[:, 0]], axis=1) * self.sign[:, None]
        return n / np.maximum(np.linalg.norm(n, axis=1, keepdims=True), 1e-9)
