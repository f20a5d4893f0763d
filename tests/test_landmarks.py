"""engine/landmarks: MediaPipe face mesh in pixels, still images and video tracking."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("mediapipe")
skimage_data = pytest.importorskip("skimage.data")

from stylecast.engine.errors import InputError  # noqa: E402
from stylecast.engine.landmarks import (  # noqa: E402
    N_LANDMARKS,
    LandmarkTracker,
    check_image,
    detect_faces,
)


@pytest.fixture(scope="module")
def astronaut() -> np.ndarray:
    return skimage_data.astronaut()


def test_one_face_in_pixels(astronaut):
    faces = detect_faces(astronaut)
    assert len(faces) == 1
    f = faces[0]
    assert f.points.shape == (N_LANDMARKS, 3) and f.points.dtype == np.float32
    h, w = astronaut.shape[:2]
    x0, y0, x1, y1 = f.bbox
    # The astronaut's face is in the upper middle of the 512 x 512 picture.
    assert 100 < x0 < x1 < 350 and 30 < y0 < y1 < 250
    assert f.image_size == (w, h)
    # The subject's right iris (468) is on the image left of the left one (473).
    assert f.points[468, 0] < f.points[473, 0]
    assert 30 < f.interocular < 60
    # Depth is in pixels too: the nose tip (1) is nearer than the face's outline.
    assert f.points[1, 2] < f.points[234, 2] - 10


def test_no_face_is_an_empty_list():
    rng = np.random.default_rng(0)
    noise = rng.integers(0, 255, (256, 256, 3), dtype=np.uint8)
    assert detect_faces(noise) == []
    assert detect_faces(np.full((128, 128, 3), 200, np.uint8)) == []


def test_several_faces_largest_first(astronaut):
    import cv2

    face = astronaut[20:260, 100:360]  # 240 x 260 crop around the face
    small = cv2.resize(face, None, fx=0.6, fy=0.6, interpolation=cv2.INTER_AREA)
    canvas = np.full((300, 460, 3), 230, np.uint8)
    canvas[20:260, 0:260] = face
    canvas[40 : 40 + small.shape[0], 290 : 290 + small.shape[1]] = small
    faces = detect_faces(canvas)
    assert len(faces) == 2
    assert faces[0].size > faces[1].size
    assert faces[0].points[1, 0] < 260 < faces[1].points[1, 0]


@pytest.mark.parametrize(
    "bad",
    [np.zeros((64, 64), np.uint8), np.zeros((64, 64, 4), np.uint8), np.zeros((64, 64, 3))],
)
def test_check_image_rejects_wrong_arrays(bad):
    with pytest.raises(InputError):
        check_image(bad)


def test_tracker_follows_a_moving_face(astronaut):
    xs = []
    with LandmarkTracker() as tracker:
        for shift in (0, 8, 16):
            frame = np.roll(astronaut, shift, axis=1)
            face = tracker.track(frame)
            assert face is not None
            xs.append(float(face.points[1, 0]))
        tracker.close()  # a second close is harmless
    assert xs[0] + 4 < xs[1] < xs[2] - 4
    with pytest.raises(RuntimeError):
        tracker.track(astronaut)
