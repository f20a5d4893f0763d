"""engine/render_geometry: where each frame puts the vertices (no OpenGL needed)."""

from __future__ import annotations

import numpy as np
import pytest

from stylecast.engine.render_geometry import Geometry
from tests.test_render import expr, pose


@pytest.fixture(scope="module")
def geometry(avatar):
    """The default avatar's geometry at 512 px (the shared renderer's size)."""
    return Geometry(avatar, 512)


def test_turns_stretch_no_part_of_the_face_into_streaks(geometry):
    # The mesh's sides wrap round to the ears, seen edge-on in the portrait; turned towards
    # the camera unchecked, edges there grew 3.3-5x (a pixel of hair smeared into streaks).
    tri = geometry.indices["face"]
    edges = np.unique(np.sort(np.concatenate([tri[:, :2], tri[:, 1:], tri[:, ::2]]), 1), axis=0)

    def lengths(p):
        v = geometry.vertices(expr(), p)[:, :2]
        return np.linalg.norm(v[edges[:, 0]] - v[edges[:, 1]], axis=1) * (geometry.size / 2)

    rest = lengths(pose())
    for p in (pose(yaw=25), pose(yaw=-25), pose(pitch=15), pose(pitch=-15)):
        grown = lengths(p)[rest > 2.0] / rest[rest > 2.0]
        assert grown.max() < 2.0, grown.max()


def test_turns_keep_the_far_jaw_line_smooth(geometry, avatar):
    # How far each outline point sits outside the chord of its two neighbours, in pixels:
    # a turn must not make any point of the lower face's outline stick out more than at
    # rest (a relief that lowered some outline points and not the next left a 3.4 px bump
    # at the far jaw at yaw 25).
    oval = avatar.rig.groups["face_oval"]
    lower = avatar.landmarks[oval, 1] > avatar.landmarks[468, 1]

    def outward(p):
        xy = (geometry.vertices(expr(), p)[oval, :2] + 1.0) * (geometry.size / 2)
        before, after = np.roll(xy, 1, axis=0), np.roll(xy, -1, axis=0)
        t = after - before
        normal = np.stack([t[:, 1], -t[:, 0]], axis=1) / np.linalg.norm(t, axis=1)[:, None]
        normal *= np.sign(np.sum(normal * (xy - xy.mean(0)), axis=1))[:, None]
        return np.sum((xy - 0.5 * (before + after)) * normal, axis=1)

    rest = outward(pose())
    for p in (pose(yaw=25), pose(yaw=-25)):
        grown = (outward(p) - rest)[lower]
        assert grown.max() < 1.5, grown.round(1)


def test_yaw_turns_the_nose_the_right_way(geometry, avatar):
    v = geometry.vertices(expr(), pose(yaw=20)).copy()
    v0 = geometry.vertices(expr(), pose()).copy()
    assert v[1, 0] < v0[1, 0]  # yaw > 0: the nose moves to the image left
    v = geometry.vertices(expr(), pose(pitch=10)).copy()
    assert v[1, 1] > v0[1, 1]  # pitch > 0: the nose moves down


def test_nodding_spreads_the_hairs_stretch_over_the_hair(geometry, avatar):
    # Above the forehead the hair runs into the top of the frame, which stays put: the
    # frame mesh's rings between them take up the forehead's motion. Squeezed into the
    # last rings, a nod (pitch +15) stretched the hair there 2.4x into streaks.
    oval = avatar.rig.groups["face_oval"]
    n = len(oval)
    levels = (len(avatar.ring_vertices) - 4) // n
    top = np.argsort(avatar.landmarks[oval, 1])[:5]  # the rays straight up
    ids = np.array([[oval[i]] + [478 + k * n + i for k in range(levels)] for i in top])

    def spacing(p):
        v = geometry.vertices(expr(), p)[:, :2]
        return np.linalg.norm(np.diff(v[ids], axis=1), axis=2) * (geometry.size / 2)

    rest = spacing(pose())
    for p in (pose(pitch=15), pose(pitch=-15)):
        ratio = spacing(p)[rest > 1.0] / rest[rest > 1.0]
        assert ratio.min() > 0.4 and ratio.max() < 1.8, (ratio.min(), ratio.max())
