"""The face parameter space every part of stylecast agrees on.

Expression: the 52 ARKit blendshape weights, in Apple's order (the order Live Link Face
writes), each in [0, 1]. Pose: (pitch, yaw, roll) in radians and (tx, ty, tz) in units of
the face's inter-ocular distance, relative to the avatar's rest pose. 30 FPS everywhere.
"""

from __future__ import annotations

import numpy as np

FPS = 30  # frames per second inside the engine; one frame = 33.3 ms

# The 52 ARKit blendshapes in Apple's order (ARFaceAnchor / Live Link Face CSV columns).
ARKIT_NAMES: tuple[str, ...] = (
    "eyeBlinkLeft",
    "eyeLookDownLeft",
    "eyeLookInLeft",
    "eyeLookOutLeft",
    "eyeLookUpLeft",
    "eyeSquintLeft",
    "eyeWideLeft",
    "eyeBlinkRight",
    "eyeLookDownRight",
    "eyeLookInRight",
    "eyeLookOutRight",
    "eyeLookUpRight",
    "eyeSquintRight",
    "eyeWideRight",
    "jawForward",
    "jawRight",
    "jawLeft",
    "jawOpen",
    "mouthClose",
    "mouthFunnel",
    "mouthPucker",
    "mouthRight",
    "mouthLeft",
    "mouthSmileLeft",
    "mouthSmileRight",
    "mouthFrownLeft",
    "mouthFrownRight",
    "mouthDimpleLeft",
    "mouthDimpleRight",
    "mouthStretchLeft",
    "mouthStretchRight",
    "mouthRollLower",
    "mouthRollUpper",
    "mouthShrugLower",
    "mouthShrugUpper",
    "mouthPressLeft",
    "mouthPressRight",
    "mouthLowerDownLeft",
    "mouthLowerDownRight",
    "mouthUpperUpLeft",
    "mouthUpperUpRight",
    "browDownLeft",
    "browDownRight",
    "browInnerUp",
    "browOuterUpLeft",
    "browOuterUpRight",
    "cheekPuff",
    "cheekSquintLeft",
    "cheekSquintRight",
    "noseSneerLeft",
    "noseSneerRight",
    "tongueOut",
)
N_EXPR = len(ARKIT_NAMES)  # 52
assert N_EXPR == 52

INDEX: dict[str, int] = {name: i for i, name in enumerate(ARKIT_NAMES)}


def is_lower_face(name: str) -> bool:
    """Lower face = the jaw*, mouth*, cheekPuff and tongueOut shapes (DESIGN.md)."""
    return name.startswith(("jaw", "mouth")) or name in ("cheekPuff", "tongueOut")


LOWER_FACE_NAMES: tuple[str, ...] = tuple(n for n in ARKIT_NAMES if is_lower_face(n))
UPPER_FACE_NAMES: tuple[str, ...] = tuple(n for n in ARKIT_NAMES if not is_lower_face(n))

# Boolean masks over the 52 dimensions, for models that split lower and upper face.
LOWER_FACE_MASK = np.array([is_lower_face(n) for n in ARKIT_NAMES])
UPPER_FACE_MASK = ~LOWER_FACE_MASK

# 6-DoF head pose, relative to the avatar's rest pose.
POSE_NAMES: tuple[str, ...] = ("pitch", "yaw", "roll", "tx", "ty", "tz")
N_POSE = len(POSE_NAMES)  # 6
# Convention: OpenCV's camera frame (x to the image right, y down, z away from the camera),
# right-handed, R = Rz(roll) @ Ry(yaw) @ Rx(pitch) applied to head-centred points. So:
#   pitch > 0: the nose tip moves down (a nod)
#   yaw   > 0: the nose tip moves to the image left (the avatar's right)
#   roll  > 0: the top of the head moves to the image right
#   tx > 0: right on screen; ty > 0: down on screen; tz > 0: away from the camera


def rotation_matrix(pitch: float, yaw: float, roll: float) -> np.ndarray:
    """(3, 3) float64 rotation R = Rz(roll) @ Ry(yaw) @ Rx(pitch), angles in radians."""
    cp, sp = np.cos(pitch), np.sin(pitch)
    cy, sy = np.cos(yaw), np.sin(yaw)
    cr, sr = np.cos(roll), np.sin(roll)
    rx = np.array([[1, 0, 0], [0, cp, -sp], [0, sp, cp]])
    ry = np.array([[cy, 0, sy], [0, 1, 0], [-sy, 0, cy]])
    rz = np.array([[cr, -sr, 0], [sr, cr, 0], [0, 0, 1]])
    return rz @ ry @ rx


def euler_from_matrix(r: np.ndarray) -> tuple[float, float, float]:
    """Inverse of rotation_matrix for |yaw| < 90 degrees: (pitch, yaw, roll) in radians."""
    yaw = float(np.arcsin(np.clip(-r[2, 0], -1.0, 1.0)))
    pitch = float(np.arctan2(r[2, 1], r[2, 2]))
    roll = float(np.arctan2(r[1, 0], r[0, 0]))
    return pitch, yaw, roll


def indices(names: tuple[str, ...] | list[str]) -> np.ndarray:
    """Indices of the given blendshape names in ARKIT_NAMES; raises KeyError on a bad name."""
    return np.array([INDEX[n] for n in names], dtype=np.int64)


def neutral_expr(frames: int | None = None) -> np.ndarray:
    """All-zero expression: (52,) or (frames, 52) float32."""
    shape = (N_EXPR,) if frames is None else (frames, N_EXPR)
    return np.zeros(shape, np.float32)


def rest_pose(frames: int | None = None) -> np.ndarray:
    """Identity pose: (6,) or (frames, 6) float32."""
    shape = (N_POSE,) if frames is None else (frames, N_POSE)
    return np.zeros(shape, np.float32)
