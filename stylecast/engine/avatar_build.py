"""Portrait -> avatar bundle (needs mediapipe: the `[avatar]` extra).

    avatar = build_avatar(image_rgb, size=512)           # or build_avatar_from_file(path)
    save_avatar(avatar, "me.avatar")

Steps: find the face (MediaPipe, largest first); refuse what cannot make a good avatar
(no face, a face too small, a strongly turned head); crop and level a square around the
face (rotating the eye line horizontal); find the landmarks again in the crop; fit the rest
pose and the identity neutral; author the 52 shapes; build the frame mesh, eyes and mouth.
"""

from __future__ import annotations

import logging
from pathlib import Path

import cv2
import numpy as np

from stylecast.engine.avatar import Avatar
from stylecast.engine.avatar_mouth import build_mouth
from stylecast.engine.avatar_parts import build_eyes, build_ring
from stylecast.engine.errors import InputError, NoFaceError
from stylecast.engine.landmarks import FaceLandmarks, check_image, detect_faces
from stylecast.engine.rig import FaceRig, fit_rest_pose
from stylecast.engine.rig.refine import refine_lids
from stylecast.engine.rig.topology import build_topology

log = logging.getLogger(__name__)

SIZES = (256, 512)  # accepted output sizes, pixels
MAX_SIDE = 2048  # larger portraits are downscaled first (longest side, pixels)
MIN_FACE_PX = 64  # smallest usable face (bounding-box side in the portrait, pixels)
MAX_TURN_DEG = 30.0  # largest yaw or pitch of the portrait's head
CROP_IOD = 4.2  # side of the square crop, in inter-ocular distances
CROP_CENTRE_BELOW_EYES = 0.45  # crop centre below the eyes' midpoint, inter-ocular units


def read_image(path: str | Path) -> np.ndarray:
    """An image file -> (H, W, 3) uint8 RGB. Raises InputError for a missing, empty, corrupt
    or non-image file."""
    p = Path(path)
    if not p.is_file():
        raise InputError(f"portrait {str(path)!r}: no such file")
    data = np.fromfile(p, np.uint8)
    if data.size == 0:
        raise InputError(f"portrait {str(path)!r} is empty; expected a JPEG or PNG image")
    bgr = cv2.imdecode(data, cv2.IMREAD_COLOR)
    if bgr is None:
        raise InputError(
            f"portrait {str(path)!r} is not a readable image (corrupt, or not an image); "
            "expected JPEG, PNG, WebP, BMP or TIFF"
        )
    return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)


def build_avatar_from_file(path: str | Path, size: int = 512, face: int | None = None) -> Avatar:
    """Read a portrait file and build its avatar (see build_avatar)."""
    return build_avatar(read_image(path), size=size, face=face)


def build_avatar(image_rgb: np.ndarray, size: int = 512, face: int | None = None) -> Avatar:
    """Build an avatar from an RGB portrait.

    size: side of the square output (256 or 512). face: which face to use when there are
    several (0 = the largest); None uses the largest, with a warning.
    """
    if size not in SIZES:
        raise InputError(f"avatar size {size} is not supported; use one of {SIZES}")
    image = check_image(image_rgb)
    h, w = image.shape[:2]
    if max(h, w) > MAX_SIDE:
        f = MAX_SIDE / max(h, w)
        log.warning("portrait is %dx%d px; downscaling to %dx%d", w, h, round(w * f), round(h * f))
        image = cv2.resize(image, (round(w * f), round(h * f)), interpolation=cv2.INTER_AREA)
    chosen = choose_face(detect_faces(image), face)
    if chosen.size < MIN_FACE_PX:
        raise InputError(
            f"the face is only {chosen.size:.0f} px across; at least {MIN_FACE_PX} px is "
            "needed for a usable avatar (use a closer or larger portrait)"
        )
    check_frontal(chosen)
    aligned = align(image, chosen, size)
    faces = detect_faces(aligned, max_faces=1)
    if not faces:
        raise NoFaceError("the face was lost after cropping the portrait; try another photo")
    lm = faces[0]
    check_frontal(lm)
    return assemble(aligned, lm)


def choose_face(faces: list[FaceLandmarks], index: int | None) -> FaceLandmarks:
    """Pick one face of several (sorted largest first)."""
    if not faces:
        raise NoFaceError(
            "no face found in the portrait; use a photo of one face, looking roughly at the camera"
        )
    if index is not None:
        if not 0 <= index < len(faces):
            raise InputError(
                f"--face {index}: the portrait has {len(faces)} face(s); use 0..{len(faces) - 1}"
                " (0 = the largest)"
            )
        return faces[index]
    if len(faces) > 1:
        log.warning(
            "%d faces found; using the largest (sizes %s px). Use --face N to pick another.",
            len(faces),
            ", ".join(f"{f.size:.0f}" for f in faces),
        )
    return faces[0]


def check_frontal(face: FaceLandmarks) -> None:
    """Refuse a head turned or tilted more than MAX_TURN_DEG away from the camera."""
    topo_groups = _groups_for(face)
    pitch, yaw, _ = fit_rest_pose(face.points, topo_groups).angles
    turn = max(abs(np.degrees(yaw)), abs(np.degrees(pitch)))
    if turn > MAX_TURN_DEG:
        raise InputError(
            f"the head is turned too far from the camera (yaw {np.degrees(yaw):.0f} deg, "
            f"pitch {np.degrees(pitch):.0f} deg); use a portrait within +-{MAX_TURN_DEG:.0f} deg"
            " of frontal"
        )


def _groups_for(face: FaceLandmarks) -> dict[str, np.ndarray]:
    return build_topology(face.xy).groups


def align(image: np.ndarray, face: FaceLandmarks, size: int) -> np.ndarray:
    """A square crop around the face with the eye line level, resampled to size x size."""
    p = face.points
    eye_r, eye_l = p[468, :2].astype(np.float64), p[473, :2].astype(np.float64)
    d = eye_l - eye_r
    iod = float(np.hypot(*d))
    angle = np.degrees(np.arctan2(d[1], d[0]))
    down = np.array([-d[1], d[0]]) / iod  # perpendicular, towards the chin
    centre = 0.5 * (eye_r + eye_l) + CROP_CENTRE_BELOW_EYES * iod * down
    scale = size / (CROP_IOD * iod)
    m = cv2.getRotationMatrix2D((float(centre[0]), float(centre[1])), angle, scale)
    m[:, 2] += np.array([size / 2, size / 2]) - centre
    interp = cv2.INTER_AREA if scale < 1 else cv2.INTER_LANCZOS4
    return cv2.warpAffine(image, m, (size, size), flags=interp, borderMode=cv2.BORDER_REPLICATE)


def assemble(image: np.ndarray, face: FaceLandmarks) -> Avatar:
    """Rig and parts for an aligned square portrait and its landmarks."""
    size = image.shape[0]
    topo = build_topology(face.xy)
    rest = fit_rest_pose(face.points, topo.groups)
    canonical = rest.to_canonical(face.points.astype(np.float64))
    rig = FaceRig.from_portrait(canonical, topo)
    ring = build_ring(face.points, rest, rig, size)
    atlas, eyes = build_eyes(image, face.points, rest, rig)
    skin = image[_face_mask(face, size)]
    light = float(np.clip(np.median(skin.mean(1)) / 165.0, 0.55, 1.1)) if len(skin) else 1.0
    teeth_upper, teeth_lower, tongue, cavity = build_mouth(rig, light)
    return Avatar(
        image=image,
        landmarks=face.points.astype(np.float32),
        rest=rest,
        rig=rig,
        portrait_expr=portrait_expression(rig, canonical),
        ring_vertices=ring.vertices,
        ring_uv=ring.uv,
        ring_triangles=ring.triangles,
        ring_weight=ring.weight,
        ring_parent=ring.parent,
        ring_follow=ring.follow,
        eye_atlas=atlas,
        eyes=eyes,
        teeth_upper=teeth_upper,
        teeth_lower=teeth_lower,
        tongue=tongue,
        cavity_color=cavity,
        lids=refine_lids(rig, face.points[:, :2] / size),
    )


def _face_mask(face: FaceLandmarks, size: int) -> np.ndarray:
    """Cheek skin: a disc below each eye, inside the image."""
    mask = np.zeros((size, size), bool)
    yy, xx = np.mgrid[0:size, 0:size]
    r = 0.18 * face.interocular
    for eye in (468, 473):
        c = face.points[eye, :2] + np.array([0.0, 0.6 * face.interocular])
        mask |= (xx - c[0]) ** 2 + (yy - c[1]) ** 2 < r * r
    return mask


def portrait_expression(rig: FaceRig, canonical: np.ndarray) -> np.ndarray:
    """The 52 weights in [0, 1] that best explain the portrait from the neutral (least
    squares): how much the portrait smiles, opens its mouth..."""
    from scipy.optimize import lsq_linear

    target = (np.asarray(canonical, np.float64) - rig.neutral).reshape(-1)
    res = lsq_linear(rig.basis_matrix.astype(np.float64), target, bounds=(0.0, 1.0))
    return res.x.astype(np.float32)
