"""Motion capture from a user's footage: a video or a folder of images -> landmarks per
frame (MediaPipe) -> the identity's neutral -> the fitter -> a 30 FPS motion.

    track = track_video("clip.mp4")                     # Track: landmarks per frame, fps
    motion = fit_track(track, avatar.rig)               # neutral estimated from the video
    motion = fit_track(track, avatar.rig, neutral_of_avatar(renderer))  # a rendered avatar

MediaPipe is needed here (the `[avatar]` extra), never by the real-time engine.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import TYPE_CHECKING, NamedTuple, Protocol

import cv2
import numpy as np

from stylecast.engine.errors import FormatError, InputError, NoFaceError
from stylecast.engine.face import ARKIT_NAMES, FPS, N_EXPR, N_POSE
from stylecast.engine.fit import (
    FitConfig,
    Fitter,
    SeenAt,
    basis_in_frame_of,
    estimate_neutral,
    rest_of,
)
from stylecast.engine.fit_calibrate import blend_basis, perceived_basis
from stylecast.engine.landmarks import LandmarkTracker
from stylecast.engine.motion import Motion
from stylecast.engine.video import VideoReader

if TYPE_CHECKING:
    from stylecast.engine.rig import FaceRig

log = logging.getLogger(__name__)

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".webp")
STABLE_COUNT = 60  # points the rigid alignment uses: the ones the rig's shapes move least
EYE_CORNERS = {"left": (362, 263), "right": (33, 133)}  # MediaPipe: inner, outer (subject's)


def eye_regions(groups: dict[str, np.ndarray]) -> tuple[tuple[np.ndarray, np.ndarray], ...]:
    """Each eye's lids and iris, anchored on its two corners: the eye's opening is then
    measured against the corners, not against the head's global alignment."""
    regions = []
    for side, corners in EYE_CORNERS.items():
        names = (f"eye_{side}", f"eyelid_{side}_upper", f"eyelid_{side}_lower", f"iris_{side}")
        points = np.unique(np.concatenate([groups[n] for n in names]))
        regions.append((np.setdiff1d(points, corners), np.array(corners)))
    return tuple(regions)


class Track(NamedTuple):
    """Landmarks of the largest face in each frame of one piece of footage."""

    points: list[np.ndarray | None]  # per frame: (478, 3) float32 pixels, None: no face
    fps: float  # frames per second of the footage
    source: str  # where the frames came from, for messages


class FrameRenderer(Protocol):
    def render(self, expr: np.ndarray, pose: np.ndarray) -> np.ndarray: ...


def track_frames(
    frames: Iterable[np.ndarray],
    fps: float,
    source: str,
    on_frame: Callable[[int], None] | None = None,
) -> Track:
    """Landmarks of (H, W, 3) uint8 RGB frames in order, with MediaPipe's tracking mode."""
    points: list[np.ndarray | None] = []
    with LandmarkTracker() as tracker:
        for i, frame in enumerate(frames):
            face = tracker.track(frame)
            points.append(None if face is None else face.points)
            if on_frame:
                on_frame(i)
    if not points:
        raise FormatError(f"{source}: holds no frames")
    return Track(points, fps, source)


def image_folder_frames(folder: Path) -> list[Path]:
    files = sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
    if not files:
        raise InputError(f"{folder}: a folder of footage needs images {IMAGE_SUFFIXES}; none found")
    return files


def read_image(path: Path) -> np.ndarray:
    image = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if image is None:
        raise FormatError(f"{path}: not a readable image")
    return cv2.cvtColor(image, cv2.COLOR_BGR2RGB)


def footage_length(path: str | Path) -> int:
    """Number of frames in a video (as declared; 0 if unknown) or images in a folder."""
    path = Path(path)
    if path.is_dir():
        return len(image_folder_frames(path))
    with VideoReader(path) as reader:
        return reader.frames


def track_video(
    path: str | Path,
    fps: float = FPS,
    on_frame: Callable[[int], None] | None = None,
) -> Track:
    """Landmarks of a video file, or of a folder of images (taken in name order at `fps`)."""
    path = Path(path)
    if path.is_dir():
        files = image_folder_frames(path)
        return track_frames((read_image(f) for f in files), fps, str(path), on_frame)
    if not path.exists():
        raise InputError(f"{path}: no such video file or folder")
    with VideoReader(path) as reader:
        return track_frames(reader, reader.fps, str(path), on_frame)


REST_REPEATS = 8  # rest frames tracked before the neutral is read (the face region settles)


def neutral_of_avatar(renderer: FrameRenderer) -> np.ndarray:
    """(478, 3) landmarks of an avatar's rest frame (no expression, rest pose), found by
    MediaPipe on the renderer's own output: the neutral to fit that avatar's renderings
    with, so MediaPipe's biases on this face cancel out. Read in tracking mode, as videos
    are (`track_frames`), after the face region has settled: on the same image, tracking
    mode places the mouth corners about 0.02 inter-ocular distances wider and higher than
    a single detection does, which reads as a smile of about 0.2."""
    frame = renderer.render(np.zeros(N_EXPR, np.float32), np.zeros(N_POSE, np.float32))
    with LandmarkTracker() as tracker:
        for _ in range(REST_REPEATS):
            face = tracker.track(frame)
    if face is None:
        raise NoFaceError("no face found in the avatar's own rest frame")
    return face.points


def seen_at_of(renderer: FrameRenderer) -> SeenAt:
    """For footage of a stylecast avatar: (T, 52) weights and (T, 6) poses -> (T, 478, 3)
    MediaPipe's landmarks of the avatar rendered with them, tracked in order after the
    rest frame (fit.SeenAt), so the fitter can take off what MediaPipe misreads on this
    face. A frame where no face is found repeats the previous one's landmarks."""
    rest = neutral_of_avatar(renderer)
    still = renderer.render(np.zeros(N_EXPR, np.float32), np.zeros(N_POSE, np.float32))

    def seen_at(exprs: np.ndarray, poses: np.ndarray) -> np.ndarray:
        out, last = [], rest
        with LandmarkTracker() as tracker:  # in order, as the video's frames were tracked
            for _ in range(REST_REPEATS):
                tracker.track(still)
            for e, p in zip(
                np.asarray(exprs, np.float32), np.asarray(poses, np.float32), strict=True
            ):
                face = tracker.track(renderer.render(e, p))
                last = last if face is None else face.points
                out.append(last)
        return np.stack(out)

    return seen_at


def fit_track(
    track: Track,
    rig: FaceRig,
    neutral: np.ndarray | None = None,
    config: FitConfig | None = None,
    seen_at: SeenAt | None = None,
) -> Motion:
    """A 30 FPS motion from tracked landmarks, against `rig`'s 52 shapes (carried onto the
    subject's face). Without a `neutral`, the subject's is estimated from the track
    (fit.estimate_neutral); pose is then relative to the subject's average head pose.
    `seen_at` (`seen_at_of(renderer)` for a stylecast rendering) lets the fitter measure
    and take off the tracker's own errors on that face (Fitter.fit_points)."""
    config = config or FitConfig()
    present = [p for p in track.points if p is not None]
    found = len(present) / len(track.points)
    if found < config.min_face_fraction:
        raise NoFaceError(
            f"{track.source}: a face was found in {len(present)} of {len(track.points)} "
            f"frames ({found:.0%}); at least {config.min_face_fraction:.0%} are needed"
        )
    if found < 1.0:
        log.info(
            "%s: no face in %d frames; interpolated", track.source, len(track.points) - len(present)
        )
    if neutral is None:
        neutral = estimate_neutral(present, rig.neutral, rig.basis)
    basis = basis_in_frame_of(rig.neutral, rig.basis, neutral)
    stable = rig.stable_points(STABLE_COUNT)
    if seen_at is not None and config.perceived_weight > 0:
        # A face we can render: measure how the tracker sees each shape on it
        # (fit_calibrate), so the re-rendering loop steps by what the tracker sees.
        fitted = [k for k in range(N_EXPR) if ARKIT_NAMES[k] not in config.unfitted]
        perceived = perceived_basis(seen_at, neutral, stable, fitted)
        basis = blend_basis(basis, perceived, config.perceived_weight)
    fitter = Fitter(
        neutral,
        basis,
        rest_of(rig.neutral, neutral),
        config,
        stable=stable,
        regions=eye_regions(rig.groups),
    )
    return fitter.fit(track.points, track.fps, seen_at)
