"""engine/render_fringe: the strip that antialiases the lips' and lids' edges (no OpenGL
needed)."""

from __future__ import annotations

import numpy as np
import pytest

from stylecast.engine.render_fringe import FRINGE_PX, Fringe
from stylecast.engine.render_geometry import Geometry
from tests.test_render import expr, pose


@pytest.fixture(scope="module")
def geometry(avatar):
    return Geometry(avatar, 512)


@pytest.fixture(scope="module")
def fringe(avatar):
    return Fringe(avatar, 512)


def test_edge_fringe_is_as_wide_as_asked_on_open_holes_and_gone_on_closed_ones(geometry, fringe):
    def widths(e):
        f = fringe.vertices(geometry.vertices(e, pose()))
        n = len(f) // 2
        return np.linalg.norm(f[n:, :2] - f[:n, :2], axis=1) * (fringe.size / 2)  # px

    loops = fringe.loops
    eyes = loops.loop > 0  # lips first, then the eyes
    open_mouth = widths(expr(jawOpen=0.5))
    assert np.allclose(open_mouth, FRINGE_PX, atol=1e-3)  # on every edge
    closed = widths(expr(eyeBlinkLeft=1.0, eyeBlinkRight=1.0))
    assert np.allclose(closed[eyes], 0.0)  # closed lids: nothing to fade into
    assert np.allclose(closed[~eyes], widths(expr())[~eyes])  # the lips as they were
    # The inside is the side the portrait says, not whatever a closing loop's area says.
    f = fringe.vertices(geometry.vertices(expr(jawOpen=0.5), pose()))
    n = len(f) // 2
    lips = slice(0, int(np.sum(~eyes)))
    centre = f[:n][lips, :2].mean(0)
    inward = np.sum((f[n:][lips, :2] - f[:n][lips, :2]) * (centre - f[:n][lips, :2]), axis=1)
    assert (inward > 0).mean() >= 0.85  # all but at the sharp corners


def test_mouth_box_holds_the_lips_with_two_pixels_to_spare(geometry, fringe):
    # The interior is drawn only inside this box (scissor): it must hold the whole lip
    # opening as drawn this frame, 2 px wider each side and not much more.
    pos = geometry.vertices(expr(jawOpen=0.5), pose(yaw=10))
    fringe.vertices(pos)
    x, y, w, h = fringe.mouth_box
    loops = fringe.loops
    lips = (pos[loops.points[: loops.starts[1]], :2] + 1.0) * (fringe.size / 2)  # px
    lo, hi = lips.min(0), lips.max(0)
    assert lo[0] - 3 < x <= lo[0] - 2 and lo[1] - 3 < y <= lo[1] - 2
    assert hi[0] + 2 <= x + w < hi[0] + 3 and hi[1] + 2 <= y + h < hi[1] + 3
    assert fringe.hole_area[0] > 0  # the lips are open...
    fringe.vertices(geometry.vertices(expr(eyeBlinkLeft=1.0, eyeBlinkRight=1.0), pose()))
    closed = fringe.hole_area[1:] / loops.open_area[1:]
    assert (closed < 0.01).all(), closed  # ...closed lids none (their sides meet or cross)
