"""engine/render_mesh: the depth relief and the closed loops of the edge fringe."""

from __future__ import annotations

import numpy as np
import pytest

from stylecast.engine.render_mesh import Loops, depth_relief, even_outline


def test_depth_relief_limits_the_slope_and_keeps_gentle_parts():
    # A strip of 5 points along x, 1 apart, with a cliff at the end; triangles joining them.
    v = np.array([[0, 0, 0.0], [1, 0, 0.5], [2, 0, 1.0], [3, 0, 4.0], [1.5, 1, 0.75]])
    tri = np.array([[0, 1, 4], [1, 2, 4], [2, 3, 4]])
    dz = depth_relief(v, tri, 1.0)
    assert np.allclose(dz[:3], 0.0) and dz[4] == pytest.approx(0.0)  # slopes <= 1 kept
    assert v[3, 2] + dz[3] == pytest.approx(2.0)  # the cliff: 1.0 + 1 x distance 1
    assert (dz <= 0).all()


def test_loops_know_their_inside_even_once_closed():
    square = np.array([[0, 0], [1, 0], [1, 1], [0, 1]], float)  # counter-clockwise (y up)
    tri = np.array([[0, 0], [0, 2], [2, 0]], float)  # clockwise
    loops = Loops([np.arange(4), np.arange(4, 7)])
    xy = np.concatenate([square, tri])
    loops.orient(xy)
    assert np.allclose(np.abs(loops.area(xy)), [1.0, 2.0])
    n = loops.inward(xy)
    assert np.allclose(np.linalg.norm(n, axis=1), 1.0)
    centres = np.array([[0.5, 0.5], [0.67, 0.67]])[loops.loop]
    assert (np.sum(n * (centres - xy), axis=1) > 0).all()  # towards the inside
    # Squashed flat (a closed eye), the inside is still the side found when it was open.
    flat = xy * np.array([1.0, 1e-9])
    assert np.allclose(loops.inward(flat)[:, 1] * loops.inward(xy)[:, 1] >= 0, True)
    assert loops.next[3] == 0 and loops.prev[4] == 6  # each loop closes on itself


def test_even_outline_brings_a_dent_forward_and_keeps_a_smooth_outline():
    # Depth round a closed outline: a smooth profile (one deepest point at each side, as a
    # head's outline has) with one point left 0.15 deeper than its neighbours.
    angle = np.linspace(0, 2 * np.pi, 24, endpoint=False)
    smooth = -0.6 - 0.4 * np.cos(angle) ** 2
    dented = smooth.copy()
    dented[7] += 0.15
    z = even_outline(dented, 8)
    assert (z <= dented + 1e-12).all()  # only ever forward

    def behind(z):  # how far each point lies behind its neighbours' mean
        return z - 0.5 * (np.roll(z, 1) + np.roll(z, -1))

    assert behind(dented)[7] > 0.15 and behind(z)[7] < 0.03  # the dent is gone
    assert behind(z).max() < 0.03
    # The front of the outline (least deep) does not move.
    assert np.abs(z - smooth)[[0, 1, 11, 12, 13, 23]].max() < 0.01
