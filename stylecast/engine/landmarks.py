"""Face landmarks: a thin wrapper over MediaPipe Face Mesh (refined, 478 points).

MediaPipe is imported lazily, only when a detector is made: building avatars and fitting
video need it (the `[avatar]` extra), the real-time engine never does.

Coordinates: `points[:, 0]` and `points[:, 1]` are pixels in the input image (x to the
right, y down); `points[:, 2]` is MediaPipe's relative depth converted to the same pixel
scale (smaller = nearer the camera; zero near the face's centre of mass). Indices 0..467
are MediaPipe's face-mesh topology; 468 is the centre of the subject's right iris (image
left for a frontal face) and 469..472 its ring; 473 the subject's left iris centre and
474..477 its ring (MediaPipe's own order, unchanged).

    faces = detect_faces(image_rgb)            # list[FaceLandmarks], largest first
    with LandmarkTracker() as tracker:         # video: temporal tracking between frames
        for frame in frames:
            face = tracker.track(frame)        # FaceLandmarks | None
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from stylecast.engine.errors import BackendError, InputError

N_LANDMARKS = 478  # 468 face-mesh points + 2 x 5 iris points (refine_landmarks=True)
N_MESH = 468  # the face-mesh points without the irises

_INSTALL_HINT = "install the avatar extra: pip install 'stylecast[avatar]' (mediapipe==0.10.21)"


@dataclass(frozen=True)
class FaceLandmarks:
    """One face's landmarks in an image.

    points: (478, 3) float32: x, y in pixels, z in the same pixel scale (MediaPipe depth).
    image_size: (width, height) of the image the points refer to.
    """

    points: np.ndarray
    image_size: tuple[int, int]

    @property
    def xy(self) -> np.ndarray:
        """(478, 2) float32 pixel positions."""
        return self.points[:, :2]

    @property
    def bbox(self) -> tuple[float, float, float, float]:
        """(x0, y0, x1, y1) of the 468 mesh points, in pixels."""
        xy = self.points[:N_MESH, :2]
        x0, y0 = xy.min(axis=0)
        x1, y1 = xy.max(axis=0)
        return float(x0), float(y0), float(x1), float(y1)

    @property
    def size(self) -> float:
        """The face's size in pixels: the larger side of its bounding box."""
        x0, y0, x1, y1 = self.bbox
        return max(x1 - x0, y1 - y0)

    @property
    def interocular(self) -> float:
        """Distance between the two iris centres (points 468 and 473), in pixels."""
        return float(np.linalg.norm(self.points[468, :2] - self.points[473, :2]))


def check_image(image_rgb: np.ndarray) -> np.ndarray:
    """Validate an RGB image: (H, W, 3) uint8. Returns it C-contiguous."""
    if not isinstance(image_rgb, np.ndarray):
        raise InputError(f"expected an RGB image as a numpy array, got {type(image_rgb).__name__}")
    if image_rgb.ndim != 3 or image_rgb.shape[2] != 3:
        raise InputError(f"expected an RGB image of shape (H, W, 3), got shape {image_rgb.shape}")
    if image_rgb.dtype != np.uint8:
        raise InputError(f"expected a uint8 RGB image, got dtype {image_rgb.dtype}")
    if min(image_rgb.shape[:2]) < 16:
        raise InputError(f"image of {image_rgb.shape[1]}x{image_rgb.shape[0]} px is too small")
    return np.ascontiguousarray(image_rgb)


def _face_mesh_module():
    try:
        from mediapipe.python.solutions import face_mesh
    except ImportError as e:  # pragma: no cover - depends on the environment
        raise BackendError(f"mediapipe is not installed ({e}); {_INSTALL_HINT}") from e
    return face_mesh


def _to_faces(result, width: int, height: int) -> list[FaceLandmarks]:
    faces = []
    for lms in result.multi_face_landmarks or []:
        arr = np.array([(p.x, p.y, p.z) for p in lms.landmark], np.float32)  # (478, 3) normalized
        if arr.shape[0] != N_LANDMARKS:
            raise BackendError(
                f"mediapipe returned {arr.shape[0]} landmarks, expected {N_LANDMARKS}; "
                "use mediapipe==0.10.21 with refine_landmarks"
            )
        # MediaPipe normalizes x by width, y by height and z roughly by width.
        arr *= np.array([width, height, width], np.float32)
        faces.append(FaceLandmarks(points=arr, image_size=(width, height)))
    faces.sort(key=lambda f: f.size, reverse=True)
    return faces


def detect_faces(
    image_rgb: np.ndarray, max_faces: int = 5, min_confidence: float = 0.5
) -> list[FaceLandmarks]:
    """All faces in one still image, largest first (empty list when there is none).

    image_rgb: (H, W, 3) uint8 RGB. Each face has 478 points in this image's pixels.
    """
    image = check_image(image_rgb)
    face_mesh = _face_mesh_module()
    with face_mesh.FaceMesh(
        static_image_mode=True,
        refine_landmarks=True,
        max_num_faces=max_faces,
        min_detection_confidence=min_confidence,
    ) as fm:
        result = fm.process(image)
    return _to_faces(result, image.shape[1], image.shape[0])


class LandmarkTracker:
    """Landmarks over the frames of one video: MediaPipe's tracking mode, which reuses the
    last frame's face region (steadier and faster than detecting every frame).

    Frames must come in order; make a new tracker for a new video. Use as a context manager
    or call close().
    """

    def __init__(self, max_faces: int = 1, min_confidence: float = 0.5) -> None:
        face_mesh = _face_mesh_module()
        self._mesh = face_mesh.FaceMesh(
            static_image_mode=False,
            refine_landmarks=True,
            max_num_faces=max_faces,
            min_detection_confidence=min_confidence,
            min_tracking_confidence=min_confidence,
        )

    def track_all(self, frame_rgb: np.ndarray) -> list[FaceLandmarks]:
        """All tracked faces in this frame, largest first."""
        if self._mesh is None:
            raise RuntimeError("LandmarkTracker is closed")
        image = check_image(frame_rgb)
        result = self._mesh.process(image)
        return _to_faces(result, image.shape[1], image.shape[0])

    def track(self, frame_rgb: np.ndarray) -> FaceLandmarks | None:
        """The largest face in this frame, or None when there is no face."""
        faces = self.track_all(frame_rgb)
        return faces[0] if faces else None

    def close(self) -> None:
        """Release MediaPipe's graph. Safe to call twice."""
        if self._mesh is not None:
            self._mesh.close()
            self._mesh = None

    def __enter__(self) -> LandmarkTracker:
        return self

    def __exit__(self, *exc) -> None:
        self.close()
