"""engine/rig: topology, canonical frame, the 52 shapes move what their names say."""

from __future__ import annotations

import numpy as np
import pytest

from stylecast.engine.avatar import load_avatar
from stylecast.engine.face import ARKIT_NAMES, INDEX, LOWER_FACE_NAMES, UPPER_FACE_NAMES

MOVES = 0.02  # a point "moves" when it moves more than this (inter-ocular units)
STILL = 1e-3


@pytest.fixture(scope="module")
def rig():
    return load_avatar("default").rig


def disp(rig, name: str) -> np.ndarray:
    return rig.basis[INDEX[name]]


def group(rig, *names: str) -> np.ndarray:
    return np.unique(np.concatenate([rig.groups[n] for n in names]))


def test_shapes_and_topology(rig):
    assert rig.neutral.shape == (478, 3)
    assert rig.basis.shape == (52, 478, 3)
    assert rig.triangles.shape == (852, 3)
    assert rig.triangles.max() < 468
    # Each edge borders one or two triangles; the holes (eye openings, mouth) and the
    # outline are bounded by the edges that border one.
    tri = rig.triangles
    edges = np.sort(np.concatenate([tri[:, [0, 1]], tri[:, [1, 2]], tri[:, [0, 2]]]), axis=1)
    uniq, counts = np.unique(edges, axis=0, return_counts=True)
    assert counts.max() == 2
    boundary = np.unique(uniq[counts == 1])
    for g in ("lips_inner", "eye_left", "eye_right", "face_oval"):
        assert np.isin(rig.groups[g], boundary).all(), g


def test_canonical_frame(rig):
    n = rig.neutral
    assert np.linalg.norm(n[473] - n[468]) == pytest.approx(1.0, abs=0.02)
    assert n[473, 0] > n[468, 0]  # subject's left = +x
    assert n[152, 1] > n[1, 1] > n[168, 1]  # chin below nose below the brow (y down)
    assert n[1, 2] < n[234, 2]  # the nose is nearer the camera than the cheek's edge
    # The neutral's lips meet.
    assert abs(n[14, 1] - n[13, 1]) < 0.01


def test_topology_matches_mediapipe(rig):
    pytest.importorskip("mediapipe")
    from stylecast.engine.rig.topology import build_topology

    topo = build_topology(rig.neutral[:, :2])
    assert np.array_equal(topo.triangles, rig.triangles)
    for name, idx in topo.groups.items():
        assert np.array_equal(idx, rig.groups[name]), name


def test_upper_shapes_leave_the_mouth_and_lower_shapes_the_eyes(rig):
    lips = group(rig, "lips_outer", "lips_inner")
    eyes = group(
        rig,
        "eye_left",
        "eye_right",
        "brow_left_upper",
        "brow_right_upper",
        "iris_left",
        "iris_right",
    )
    for name in UPPER_FACE_NAMES:
        if name.startswith("cheek"):
            continue  # cheekSquint raises the cheek, which may touch the lips' corners
        assert np.abs(disp(rig, name)[lips]).max() < STILL, name
    for name in LOWER_FACE_NAMES:
        assert np.abs(disp(rig, name)[eyes]).max() < STILL, name


def test_every_shape_moves_something(rig):
    for name in ARKIT_NAMES:
        assert np.linalg.norm(disp(rig, name), axis=1).max() > MOVES, name


def test_left_and_right_mirror(rig):
    for name in ARKIT_NAMES:
        if "Left" not in name:
            continue
        left, right = disp(rig, name), disp(rig, name.replace("Left", "Right"))
        # The left shape moves mostly points at +x, the right one points at -x.
        wl = np.linalg.norm(left, axis=1)
        wr = np.linalg.norm(right, axis=1)
        x = rig.neutral[:, 0] - rig.neutral[[468, 473], 0].mean()
        if name in ("jawLeft", "mouthLeft"):  # translations towards that side
            assert left[:, 0].sum() > 0 > right[:, 0].sum(), name
        else:
            assert (wl * x).sum() > 0 > (wr * x).sum(), name
        assert wl.sum() == pytest.approx(wr.sum(), rel=0.35), name


def test_blink_closes_the_lids(rig):
    for side in ("Left", "Right"):
        s = side.lower()
        closed = rig.deform(_expr(**{f"eyeBlink{side}": 1.0}))
        up, lo = rig.groups[f"eyelid_{s}_upper"][1:-1], rig.groups[f"eyelid_{s}_lower"][1:-1]
        gap_open = rig.neutral[lo, 1].mean() - rig.neutral[up, 1].mean()
        gap_closed = closed[lo, 1].mean() - closed[up, 1].mean()
        assert gap_open > 0.05
        assert abs(gap_closed) < 0.15 * gap_open
        other = "right" if s == "left" else "left"
        assert np.abs(disp(rig, f"eyeBlink{side}")[rig.groups[f"eye_{other}"]]).max() < STILL


def test_jaw_opens_and_mouth_close_closes(rig):
    n = rig.neutral
    opened = rig.deform(_expr(jawOpen=1.0))
    assert opened[14, 1] - n[14, 1] > 0.25  # lower lip drops
    assert abs(opened[13, 1] - n[13, 1]) < STILL  # upper lip stays
    assert opened[152, 1] - n[152, 1] > 0.2  # chin drops
    assert np.abs(opened[:468] - n[:468])[n[:468, 1] < n[1, 1]].max() < STILL  # above the nose
    closed = rig.deform(_expr(jawOpen=1.0, mouthClose=1.0))
    assert abs(closed[14, 1] - closed[13, 1]) < 0.01  # lips meet again
    assert closed[152, 1] - n[152, 1] > 0.2  # with the jaw still open
    # All along, corners included: every lip point back where it rests (a corner left
    # half open showed a dark slit at each end of closed lips).
    lips = group(rig, "lips_inner", "lips_outer")
    assert np.abs(closed[lips] - n[lips]).max() < 0.005


def test_named_motions(rig):
    n = rig.neutral
    cl = rig.groups["lips_outer"][np.argmax(n[rig.groups["lips_outer"], 0])]
    d = disp(rig, "mouthSmileLeft")[cl]
    assert d[0] > 0.03 and d[1] < -0.05  # out and up
    d = disp(rig, "mouthFrownLeft")[cl]
    assert d[1] > 0.1  # down, enough to undo the default portrait's resting smile (0.11 up)
    for side, sx in (("Left", 1), ("Right", -1)):
        iris = rig.groups[f"iris_{side.lower()}"]
        assert sx * disp(rig, f"eyeLookOut{side}")[iris, 0].min() > 0.05
        assert sx * disp(rig, f"eyeLookIn{side}")[iris, 0].max() < -0.05
        assert disp(rig, f"eyeLookUp{side}")[iris, 1].max() < -0.03
        assert disp(rig, f"eyeLookDown{side}")[iris, 1].min() > 0.03
        brow = rig.groups[f"brow_{side.lower()}_upper"]
        assert disp(rig, f"browDown{side}")[brow, 1].mean() > 0.05
        inner_end = brow[np.argmin(np.abs(rig.neutral[brow, 0]))]
        assert sx * disp(rig, f"browDown{side}")[inner_end, 0] < -0.03  # drawn together
        assert disp(rig, f"browOuterUp{side}")[brow, 1].min() < -0.05
    inner_brows = [rig.groups[f"brow_{s}_upper"] for s in ("left", "right")]
    for b in inner_brows:
        inner = b[np.argmin(np.abs(n[b, 0]))]
        assert disp(rig, "browInnerUp")[inner, 1] < -0.05
    corners = rig.groups["lips_outer"][
        [np.argmin(n[rig.groups["lips_outer"], 0]), np.argmax(n[rig.groups["lips_outer"], 0])]
    ]
    width = lambda v: v[corners[1], 0] - v[corners[0], 0]  # noqa: E731
    assert width(rig.deform(_expr(mouthPucker=1.0))) < width(n) - 0.1
    assert width(rig.deform(_expr(mouthStretchLeft=1.0, mouthStretchRight=1.0))) > width(n) + 0.1
    assert disp(rig, "mouthLeft")[rig.groups["lips_outer"], 0].mean() > 0.05


def test_deform_is_linear_and_batched(rig):
    rng = np.random.default_rng(1)
    e = rng.uniform(0, 1, (3, 52)).astype(np.float32)
    out = rig.deform(e)
    assert out.shape == (3, 478, 3)
    manual = rig.neutral + np.einsum("k,kpc->pc", e[1], rig.basis)
    np.testing.assert_allclose(out[1], manual, atol=1e-5)
    flat = rig.neutral.reshape(-1) + rig.basis_matrix @ e[2]
    np.testing.assert_allclose(out[2].reshape(-1), flat, atol=1e-5)
    with pytest.raises(ValueError):
        rig.deform(np.zeros(51))


def test_stable_points_avoid_mouth_and_eyes(rig):
    stable = rig.stable_points(40)
    assert len(stable) == 40 and stable.max() < 468
    moving = group(rig, "lips_outer", "lips_inner", "eye_left", "eye_right")
    assert not np.isin(stable, moving).any()


def _expr(**weights: float) -> np.ndarray:
    e = np.zeros(52, np.float32)
    for k, v in weights.items():
        e[INDEX[k]] = v
    return e


def test_lid_refinement_keeps_the_surface_and_the_lashes_together():
    from stylecast.engine.rig.refine import SPLIT_AT, refine_lids

    avatar = load_avatar("default")
    rig, uv = avatar.rig, avatar.face_uv
    ref = refine_lids(rig, uv)
    np.testing.assert_array_equal(ref.triangles, avatar.lids.triangles)  # as stored
    all_uv = np.concatenate([uv, ref.uv])

    def area(tri, pts):
        a, b, c = pts[tri[:, 0]], pts[tri[:, 1]], pts[tri[:, 2]]
        return 0.5 * np.abs(np.cross(b - a, c - a)).sum()

    assert len(ref.triangles) > len(rig.triangles)
    assert area(ref.triangles, all_uv) == pytest.approx(area(rig.triangles, uv), rel=1e-5)
    # Each extra vertex lies on an edge from an upper-lid point; for most shapes it moves
    # as that edge's linear interpolation, in a blink it keeps up with the lid margin.
    m, o = ref.edges[:, 0], ref.edges[:, 1]
    np.testing.assert_allclose(
        ref.neutral, (1 - SPLIT_AT) * rig.neutral[m] + SPLIT_AT * rig.neutral[o], atol=1e-6
    )
    smile = INDEX["mouthSmileLeft"]
    np.testing.assert_allclose(
        ref.basis[smile],
        (1 - SPLIT_AT) * rig.basis[smile, m] + SPLIT_AT * rig.basis[smile, o],
        atol=1e-6,
    )
    for side in ("Left", "Right"):
        k = INDEX[f"eyeBlink{side}"]
        mine = np.isin(m, rig.groups[f"eyelid_{side.lower()}_upper"])
        assert mine.sum() >= 7
        extra = np.linalg.norm(ref.basis[k, mine], axis=1)
        margin = np.linalg.norm(rig.basis[k, m[mine]], axis=1)
        assert (extra >= 0.85 * margin - 0.005).all()
    jaw = ref.basis[INDEX["jawOpen"]]
    assert np.abs(jaw).max() < 1e-6  # the jaw never reaches the lids
    assert 0 < SPLIT_AT < 1
