"""Motion files: .npz and Live Link Face CSV round trips, malformed files, reordering."""

from __future__ import annotations

import csv
import pickle

import numpy as np
import pytest

from stylecast.engine import livelink
from stylecast.engine.errors import FormatError, InputError
from stylecast.engine.face import ARKIT_NAMES, INDEX, rotation_matrix
from stylecast.engine.motion import Motion, load_motion, save_motion, scripted_motion


def random_motion(frames: int = 20, seed: int = 0, translation: bool = True) -> Motion:
    rng = np.random.default_rng(seed)
    pose = rng.uniform(-0.4, 0.4, (frames, 6))
    if not translation:
        pose[:, 3:] = 0
    return Motion(rng.uniform(0, 1, (frames, 52)), pose)


# --- Motion -----------------------------------------------------------------------------


def test_motion_validates_shapes_range_and_finiteness():
    with pytest.raises(InputError, match=r"\(T, 52\)"):
        Motion(np.zeros((5, 51)), np.zeros((5, 6)))
    with pytest.raises(InputError, match="same number of frames"):
        Motion(np.zeros((5, 52)), np.zeros((4, 6)))
    with pytest.raises(InputError, match=r"\[0, 1\]"):
        Motion(np.full((5, 52), 1.5), np.zeros((5, 6)))
    with pytest.raises(InputError, match="finite"):
        Motion(np.full((5, 52), np.nan), np.zeros((5, 6)))
    with pytest.raises(InputError, match="fps"):
        Motion(np.zeros((5, 52)), np.zeros((5, 6)), fps=0)


def test_motion_arrays_are_read_only_float32_copies():
    expr = np.zeros((3, 52))
    m = Motion(expr, np.zeros((3, 6)))
    assert m.expr.dtype == np.float32 and m.pose.dtype == np.float32
    with pytest.raises(ValueError):
        m.expr[0, 0] = 1.0
    expr[0, 0] = 1.0
    assert m.expr[0, 0] == 0.0


def test_resampled_keeps_duration_and_shape():
    m = Motion(np.linspace(0, 1, 61)[:, None].repeat(52, 1), np.zeros((61, 6)), fps=60)
    r = m.resampled(30)
    assert r.fps == 30 and r.frames == 31
    np.testing.assert_allclose(r.expr[:, 0], np.linspace(0, 1, 31), atol=1e-6)


# --- .npz -------------------------------------------------------------------------------


def test_npz_round_trip_is_exact(tmp_path):
    m = random_motion()
    save_motion(tmp_path / "m.npz", m)
    back = load_motion(tmp_path / "m.npz")
    np.testing.assert_array_equal(back.expr, m.expr)
    np.testing.assert_array_equal(back.pose, m.pose)
    assert back.fps == 30
    with np.load(tmp_path / "m.npz", allow_pickle=False) as data:
        assert sorted(data.files) == ["expr", "fps", "names", "pose"]
        assert data["names"].dtype.kind == "U"
        assert tuple(data["names"]) == ARKIT_NAMES


def test_npz_with_names_in_another_order_is_reordered(tmp_path):
    m = random_motion()
    order = np.random.default_rng(1).permutation(52)
    np.savez(
        tmp_path / "shuffled.npz",
        fps=30,
        names=np.array(ARKIT_NAMES)[order],
        expr=m.expr[:, order],
        pose=m.pose,
    )
    back = load_motion(tmp_path / "shuffled.npz")
    np.testing.assert_array_equal(back.expr, m.expr)


def test_npz_at_60_fps_is_resampled_to_30(tmp_path):
    t = np.arange(120) / 60
    expr = np.zeros((120, 52), np.float32)
    expr[:, INDEX["jawOpen"]] = t / t[-1]
    np.savez(tmp_path / "m60.npz", fps=60, names=np.array(ARKIT_NAMES), expr=expr,
             pose=np.zeros((120, 6)))  # fmt: skip
    back = load_motion(tmp_path / "m60.npz")
    assert back.fps == 30 and back.frames == 60
    np.testing.assert_allclose(back.channel("jawOpen"), (np.arange(60) / 30) / t[-1], atol=1e-6)


def write_npz(path, **overrides):
    arrays = dict(fps=30, names=np.array(ARKIT_NAMES), expr=np.zeros((4, 52), np.float32),
                  pose=np.zeros((4, 6), np.float32))  # fmt: skip
    arrays.update(overrides)
    arrays = {k: v for k, v in arrays.items() if v is not None}
    np.savez(path, **arrays)
    return path


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"names": None}, "missing"),
        ({"names": np.array((*ARKIT_NAMES[:-1], "tongueIn"))}, "unknown"),
        ({"names": np.array(ARKIT_NAMES[:51])}, r"\(T, 51\)"),
        ({"expr": np.full((4, 52), np.nan, np.float32)}, "NaN"),
        ({"expr": np.full((4, 52), 2.0, np.float32)}, r"\[0, 1\]"),
        ({"pose": np.zeros((3, 6))}, "pose"),
        ({"fps": 29.5}, "fps"),
        ({"expr": np.zeros((0, 52)), "pose": np.zeros((0, 6))}, "no frames"),
    ],
)
def test_malformed_npz_is_refused_with_a_clear_error(tmp_path, overrides, message):
    path = write_npz(tmp_path / "bad.npz", **overrides)
    with pytest.raises(FormatError, match=message):
        load_motion(path)


def test_pickled_npz_is_refused(tmp_path):
    names = np.array(list(ARKIT_NAMES), dtype=object)  # object arrays are stored pickled
    path = write_npz(tmp_path / "pickled.npz", names=names)
    with pytest.raises(FormatError, match="holds pickled objects"):
        load_motion(path)


def test_a_plain_pickle_or_truncated_npz_is_refused(tmp_path):
    (tmp_path / "p.npz").write_bytes(pickle.dumps({"expr": [1, 2, 3]}))
    with pytest.raises(FormatError, match="not a zip archive"):
        load_motion(tmp_path / "p.npz")
    good = write_npz(tmp_path / "good.npz")
    (tmp_path / "cut.npz").write_bytes(good.read_bytes()[:300])
    with pytest.raises(FormatError):
        load_motion(tmp_path / "cut.npz")


def test_unknown_suffix_and_missing_file(tmp_path):
    with pytest.raises(InputError, match="accepted"):
        save_motion(tmp_path / "m.json", random_motion())
    with pytest.raises(InputError, match="no such"):
        load_motion(tmp_path / "absent.npz")


# --- Live Link Face CSV ----------------------------------------------------------------


def test_csv_header_is_live_link_face(tmp_path):
    save_motion(tmp_path / "m.csv", random_motion(3))
    with (tmp_path / "m.csv").open() as f:
        rows = list(csv.reader(f))
    header = rows[0]
    assert header[:4] == ["Timecode", "BlendShapeCount", "EyeBlinkLeft", "EyeLookDownLeft"]
    assert header[53] == "TongueOut" and header[54:57] == ["HeadYaw", "HeadPitch", "HeadRoll"]
    assert header[-1] == "RightEyeRoll" and len(header) == 2 + 61
    assert rows[1][0] == "00:00:00:00.000" and rows[1][1] == "61"
    assert rows[3][0] == "00:00:00:02.000"


def test_csv_round_trip(tmp_path):
    m = random_motion(translation=False)
    save_motion(tmp_path / "m.csv", m)
    back = load_motion(tmp_path / "m.csv")
    assert back.frames == m.frames
    np.testing.assert_allclose(back.expr, m.expr, atol=1e-5)
    np.testing.assert_allclose(back.pose, m.pose, atol=1e-5)


def test_csv_drops_translation(tmp_path):
    m = random_motion()
    save_motion(tmp_path / "m.csv", m)
    back = load_motion(tmp_path / "m.csv")
    np.testing.assert_array_equal(back.pose[:, 3:], 0)
    np.testing.assert_allclose(back.pose[:, :3], m.pose[:, :3], atol=1e-5)


def test_head_angle_signs_follow_arkit_axes():
    """ARKit face anchor: x to the viewer's right, y up, z toward the viewer. A positive
    HeadYaw turns the nose toward +x (viewer's right); in our frame the nose goes to
    -x (image left) only for negative yaw; so the signs below must hold."""
    pose = livelink.head_to_pose(np.array([[0.3, 0.0, 0.0], [0.0, 0.2, 0.0], [0, 0, 0.1]]))
    nose = np.array([0.0, 0.0, -1.0])  # our frame: the nose points at the camera (-z)
    yawed = rotation_matrix(*pose[0, :3]) @ nose
    assert yawed[0] > 0  # ARKit yaw > 0: nose to the viewer's right
    pitched = rotation_matrix(*pose[1, :3]) @ nose
    assert pitched[1] > 0  # ARKit pitch > 0 (about x, y up, z to viewer): nose down
    top = rotation_matrix(*pose[2, :3]) @ np.array([0.0, -1.0, 0.0])  # top of head is -y
    assert top[0] < 0  # ARKit roll > 0: top of the head to the viewer's left


def live_link_rows(frames: int, rate: int) -> list[list[str]]:
    rows = [list(livelink.HEADER)]
    for t in range(frames):
        s, ff = divmod(t, rate)
        values = np.zeros(61)
        values[INDEX["jawOpen"]] = t / (frames - 1)
        values[52] = 0.1  # HeadYaw
        rows.append([f"10:00:{s:02d}:{ff:02d}.5", "61", *[f"{v:.6f}" for v in values]])
    return rows


def write_rows(path, rows):
    with path.open("w", newline="") as f:
        csv.writer(f).writerows(rows)
    return path


def test_csv_at_60_fps_is_resampled_to_30(tmp_path):
    path = write_rows(tmp_path / "60.csv", live_link_rows(121, 60))
    m = load_motion(path)
    assert m.fps == 30 and m.frames == 61
    np.testing.assert_allclose(m.channel("jawOpen"), np.linspace(0, 1, 61), atol=1e-5)
    np.testing.assert_allclose(m.pose[:, 1], -0.1, atol=1e-6)


def test_csv_column_order_does_not_matter(tmp_path):
    rows = live_link_rows(10, 30)
    order = [0, 1, *np.random.default_rng(0).permutation(np.arange(2, len(rows[0])))]
    path = write_rows(tmp_path / "shuffled.csv", [[r[i] for i in order] for r in rows])
    m = load_motion(path)
    np.testing.assert_allclose(m.channel("jawOpen"), np.linspace(0, 1, 10), atol=1e-5)


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda rows: rows[:1], "no frames"),
        (lambda rows: [rows[0], *rows[1:5], rows[5][:20]], "line 6 has 20 fields"),
        (lambda rows: [[c.replace("JawOpen", "Jaw") for c in rows[0]], *rows[1:]], "JawOpen"),
        (lambda rows: [rows[0], *rows[1:3], [rows[3][0], "61", "nan", *rows[3][3:]]], "NaN"),
        (lambda rows: [rows[0], *rows[1:3], ["12:3", *rows[3][1:]]], "timecode"),
        (lambda rows: [rows[0], rows[2], rows[1], *rows[3:]], "does not increase"),
        (lambda rows: [rows[0], [rows[1][0], "61", "abc", *rows[1][3:]]], "abc"),
        (lambda rows: [rows[0], [rows[1][0], "61", "3.0", *rows[1][3:]]], r"\[0, 1\]"),
        (lambda rows: [], "empty"),
    ],
)
def test_malformed_csv_is_refused_with_a_clear_error(tmp_path, edit, message):
    path = write_rows(tmp_path / "bad.csv", edit(live_link_rows(10, 30)))
    with pytest.raises(FormatError, match=message):
        load_motion(path)


def test_binary_file_with_csv_suffix_is_refused(tmp_path):
    (tmp_path / "b.csv").write_bytes(b"\xff\xfe\x00\x81" * 50)
    with pytest.raises(FormatError):
        load_motion(tmp_path / "b.csv")


# --- the scripted motion ------------------------------------------------------------------


def test_scripted_motion_has_the_promised_shapes():
    m = scripted_motion(seconds=6.0)
    assert m.frames == 180 and m.fps == 30
    for name in ("jawOpen", "eyeBlinkLeft", "eyeBlinkRight", "mouthSmileLeft", "mouthSmileRight"):
        assert m.channel(name).max() > 0.6, name
        assert m.channel(name)[0] == 0.0, name
    # Left and right channels differ (winks, one-sided smiles).
    assert np.abs(m.channel("eyeBlinkLeft") - m.channel("eyeBlinkRight")).max() > 0.5
    assert np.abs(m.channel("mouthSmileLeft") - m.channel("mouthSmileRight")).max() > 0.5
    np.testing.assert_allclose(np.rad2deg(m.pose[:, 1]).max(), 20, atol=0.2)
    np.testing.assert_allclose(np.rad2deg(m.pose[:, 1]).min(), -20, atol=0.2)
    np.testing.assert_allclose(np.rad2deg(np.abs(m.pose[:, 0])).max(), 10, atol=0.2)
    others = [i for i, n in enumerate(ARKIT_NAMES) if m.channel(n).max() == 0]
    assert len(others) == 52 - 5
    # Smooth: no jumps bigger than a blink's steepest slope.
    assert np.abs(np.diff(m.expr, axis=0)).max() < 0.5
