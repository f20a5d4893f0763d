import numpy as np
import pytest

from stylecast.engine import face


def test_52_unique_names_in_apple_order():
    assert len(face.ARKIT_NAMES) == 52
    assert len(set(face.ARKIT_NAMES)) == 52
    assert face.ARKIT_NAMES[0] == "eyeBlinkLeft"
    assert face.ARKIT_NAMES[-1] == "tongueOut"
    assert face.ARKIT_NAMES.index("jawOpen") == 17


def test_lower_upper_split_is_by_name():
    assert set(face.LOWER_FACE_NAMES) | set(face.UPPER_FACE_NAMES) == set(face.ARKIT_NAMES)
    assert not set(face.LOWER_FACE_NAMES) & set(face.UPPER_FACE_NAMES)
    assert "cheekPuff" in face.LOWER_FACE_NAMES and "tongueOut" in face.LOWER_FACE_NAMES
    assert "cheekSquintLeft" in face.UPPER_FACE_NAMES
    assert all(n.startswith(("eye", "brow", "cheek", "nose")) for n in face.UPPER_FACE_NAMES)
    assert face.LOWER_FACE_MASK.sum() == len(face.LOWER_FACE_NAMES) == 29  # 4 jaw, 23 mouth, 2


def test_indices_rejects_unknown_name():
    assert list(face.indices(["jawOpen", "eyeBlinkLeft"])) == [17, 0]
    with pytest.raises(KeyError):
        face.indices(["jawOpn"])


@pytest.mark.parametrize("angles", [(0.1, -0.3, 0.2), (-0.25, 0.4, -0.1), (0.0, 0.0, 0.0)])
def test_rotation_round_trip(angles):
    r = face.rotation_matrix(*angles)
    assert np.allclose(r @ r.T, np.eye(3))
    assert np.allclose(face.euler_from_matrix(r), angles)


def test_pose_sign_convention():
    nose = np.array([0.0, 0.0, -1.0])  # towards the camera
    assert (face.rotation_matrix(0.2, 0, 0) @ nose)[1] > 0  # pitch > 0: nose moves down
    assert (face.rotation_matrix(0, 0.2, 0) @ nose)[0] < 0  # yaw > 0: nose to image left
    top = np.array([0.0, -1.0, 0.0])
    assert (face.rotation_matrix(0, 0, 0.2) @ top)[0] > 0  # roll > 0: top to image right
