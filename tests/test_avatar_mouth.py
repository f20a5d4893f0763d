"""engine/avatar_mouth: the mouth interior is teeth, gum and a rounded tongue, and the
renderer shows them where the lips part."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

from stylecast.engine.avatar_mouth import LOWER_TEETH, UPPER_TEETH, build_mouth
from stylecast.engine.face import INDEX


@pytest.fixture(scope="module")
def mouth(avatar):
    return build_mouth(avatar.rig, 1.0)


def pieces(part) -> list[np.ndarray]:
    """Vertex indices of each connected piece of a mesh, in drawing order."""
    t = part.triangles
    n = len(part.vertices)
    rows = np.concatenate([t[:, 0], t[:, 1], t[:, 2]])
    cols = np.concatenate([t[:, 1], t[:, 2], t[:, 0]])
    graph = coo_matrix((np.ones(len(rows)), (rows, cols)), shape=(n, n))
    _, label = connected_components(graph, directed=False)
    order = label[t[:, 0]]
    first = [order[i] for i in sorted(np.unique(order, return_index=True)[1])]
    return [np.flatnonzero(label == k) for k in first]


def luma(img: np.ndarray) -> np.ndarray:
    return img.astype(np.float32) @ np.array([0.299, 0.587, 0.114], np.float32)


@pytest.mark.parametrize(("which", "teeth", "down"), [(0, UPPER_TEETH, 1), (1, LOWER_TEETH, -1)])
def test_each_arch_is_a_gum_a_backing_then_separate_teeth(mouth, which, teeth, down):
    part = mouth[which]
    gum, backing, *each = pieces(part)
    assert len(each) == 2 * len(teeth)  # one piece per tooth: the gaps between are real
    colour = part.attrib[:, :3]
    # The gum is drawn first (under the teeth) and is red; the teeth are near white.
    assert (colour[gum, 0] > 1.5 * colour[gum, 1]).all()
    # The backing (what the gaps show) is a shadowed enamel, neither red nor as bright as
    # the teeth, and reaches from the gum nearly down to the cutting edges.
    assert (colour[backing, 0] < 1.3 * colour[backing, 1]).all()
    assert colour[backing].mean() < 0.85 * np.concatenate([colour[t] for t in each]).max(0).mean()
    y = part.vertices[:, 1] * down  # increasing towards the cutting edges
    teeth_y = np.concatenate([y[t] for t in each])
    assert y[backing].min() < y[gum].max() and y[backing].max() > np.percentile(teeth_y, 90)
    for tooth in each:
        assert colour[tooth].mean(1).max() > 0.35
        assert (colour[tooth, 0] - colour[tooth, 2]).max() < 0.25  # not red: enamel
        # Hanging from the gum: the cutting edge is the lowest row for upper teeth.
        y = part.vertices[tooth, 1]
        edge = tooth[y * down >= (y * down).max() - 1e-6]
        neck = tooth[y * down <= (y * down).min() + 1e-6]
        assert part.vertices[edge, 1].mean() * down > part.vertices[neck, 1].mean() * down
    # The middle teeth are lit, the ones at the back of the arch are in shadow.
    middle, back = each[len(teeth)], each[0]
    assert colour[middle].mean() > colour[back].mean() + 0.1


def test_tongue_tip_is_rounded(mouth):
    tongue = mouth[2].vertices
    z = tongue[:, 2]
    rows = np.unique(np.round(z, 5))
    width = np.array([np.ptp(tongue[np.isclose(z, r, atol=1e-5), 0]) for r in rows])
    assert width[0] < 0.25 * width.max()  # a tip...
    assert width[2] > 0.6 * width.max()  # ...that widens quickly: a half disc, not a point


def test_open_mouth_shows_separate_upper_teeth(renderer, avatar):
    e = np.zeros(52, np.float32)
    e[INDEX["jawOpen"]] = 1.0
    frame = renderer.render(e, np.zeros(6, np.float32))
    # A line across the upper teeth just above their cutting edges, over the middle teeth.
    jaw_px = renderer.vertices(e, np.zeros(6, np.float32))
    part = renderer._slices["teeth_upper"]
    px = (jaw_px[part, :2] + 1) * (renderer.size / 2)
    y = int(np.percentile(px[:, 1], 97) - 0.03 * avatar.rest.scale)
    xs = np.sort(px[:, 0])
    x0, x1 = int(np.percentile(xs, 25)), int(np.percentile(xs, 75))
    line = luma(frame[y, x0:x1])
    assert line.max() > 150  # enamel
    # Darker gaps between neighbouring teeth: several dips below the teeth's brightness.
    dark = line < 0.8 * np.percentile(line, 90)
    assert np.count_nonzero(np.diff(dark.astype(int)) == 1) >= 3


def test_tongue_out_is_round_not_pointed(renderer, avatar):
    e = np.zeros(52, np.float32)
    e[INDEX["tongueOut"]] = 1.0
    out = renderer.render(e, np.zeros(6, np.float32)).astype(int)
    base = renderer.render(np.zeros(52, np.float32), np.zeros(6, np.float32)).astype(int)
    changed = np.abs(out - base).sum(2) > 40
    reddish = (out[..., 0] > out[..., 1] + 50) & (out[..., 0] > out[..., 2] + 40) & changed
    lip = avatar.landmarks[avatar.rig.groups["lips_outer_lower"], :2]
    below = reddish.copy()
    below[: int(lip[:, 1].max()) - 4] = False  # the part of the tongue over the chin
    rows = np.flatnonzero(below.any(1))
    assert len(rows) > 5
    widths = below[rows].sum(1)
    # Near its bottom the tongue is still at least half as wide as at its widest (a
    # V-shaped tip is a few pixels wide there).
    assert widths[int(0.8 * len(rows))] > 0.5 * widths.max()
