"""The renderer's edge fringe: the face's holes (the lips' and the lids' edges) antialiased
by a strip just inside each hole, fading from the edge's colour to transparent.

    fringe = Fringe(avatar, size=512)
    strip = fringe.vertices(pos)   # (2N, 7) for this frame's clip-space positions
    fringe.hole_area, fringe.mouth_box   # what that frame's draw also needs

The strip's triangles and texture coordinates are fixed once; each frame moves its two
rows of N vertices (on the edge, and FRINGE_PX further in) with the loops' points.
"""

from __future__ import annotations

import numpy as np

from stylecast.engine.avatar import Avatar
from stylecast.engine.render_mesh import Loops

# The strip is this many output pixels wide, sampled this many portrait pixels back from
# the edge (on the lip or lid).
FRINGE_PX, FRINGE_SAMPLE_PX = 1.2, 1.5
FRINGE_OPEN = 0.03  # the fringe narrows to nothing as a hole closes below this much of its
# area in the portrait (closed lips and lids have no inside to fade into)


class Fringe:
    """The fringe strips along one avatar's lips' and lids' edges at `size` px (module
    doc). vertices() writes into an array it keeps."""

    def __init__(self, avatar: Avatar, size: int) -> None:
        a, g = avatar, avatar.rig.groups
        self.size = size
        inner = g["lips_inner"]
        self.loops = Loops([inner, g["eye_right"], g["eye_left"]])
        n = len(self.loops.points)
        self._strip = np.zeros((2 * n, 7), np.float32)  # (x, y, z, u, v, alpha, 0)
        # Sample the portrait a little back from the edge, away from the hole.
        uv = a.face_uv[self.loops.points].astype(np.float64)
        self.loops.orient(uv)
        uv -= self.loops.inward(uv) * (FRINGE_SAMPLE_PX / a.size)
        self._strip[:n, 3:5] = self._strip[n:, 3:5] = uv
        self._strip[:n, 5] = 1.0  # opaque on the edge, clear inside
        # The lips' area (uv units) -> their mean opening (inter-ocular units): over their
        # width in the portrait, in output pixels per inter-ocular distance.
        px = size / a.size  # output pixels per avatar pixel
        lips_px = np.ptp(a.landmarks[inner, 0]) * px
        self.area_to_opening = size**2 / (lips_px * a.rest.scale * px)
        i = np.arange(n)
        j = self.loops.next
        self.triangles = np.concatenate(
            [np.stack([i, j, n + j], 1), np.stack([i, n + j, n + i], 1)]
        ).astype(np.int32)  # (2N, 3)
        self.hole_area = np.zeros(3)  # (3,) lips, right eye, left eye: uv units, last frame
        self.mouth_box = (0, 0, 0, 0)  # the lips' box in pixels (x, y, width, height)

    @property
    def nbytes(self) -> int:
        """Bytes of the strip's vertices (its vertex buffer's size)."""
        return self._strip.nbytes

    def vertices(self, pos: np.ndarray) -> np.ndarray:
        """(2N, 7) fringe vertices for this frame's clip-space positions `pos`. On the way
        it notes each hole's (lips, right eye, left eye) area (uv units), and the lips'
        box in pixels (x, y, width, height), 2 px wider each side, for this frame's draw."""
        f, n = self._strip, len(self.loops.points)
        edge = pos[self.loops.points]  # (N, 3)
        f[:n, :3] = edge
        f[n:, :3] = edge
        # Narrower as a hole closes, none when closed (its sides meet or cross: no inside).
        loops = self.loops
        area = loops.area(edge[:, :2]) * loops.sign[loops.starts] / 4.0  # uv units
        self.hole_area = area
        lips = edge[: loops.starts[1], :2]
        lo = np.floor((lips.min(0) + 1.0) * (0.5 * self.size)) - 2.0
        hi = np.ceil((lips.max(0) + 1.0) * (0.5 * self.size)) + 2.0
        x0, y0 = np.maximum(lo, 0.0).astype(int).tolist()
        x1, y1 = np.minimum(hi, self.size).astype(int).tolist()
        self.mouth_box = (x0, y0, max(x1 - x0, 0), max(y1 - y0, 0))
        opened = np.clip(area / (FRINGE_OPEN * loops.open_area), 0.0, 1.0)[loops.loop]
        width = (FRINGE_PX * 2.0 / self.size) * opened[:, None]  # clip units
        f[n:, :2] += width * loops.inward(edge[:, :2])
        return f
