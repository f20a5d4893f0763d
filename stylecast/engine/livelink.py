"""Live Link Face CSV: import and export of motion (docs/formats.md).

Columns: `Timecode`, `BlendShapeCount`, the 52 ARKit blendshapes in Apple's order with a
capitalised first letter (`EyeBlinkLeft` ... `TongueOut`), then `HeadYaw`, `HeadPitch`,
`HeadRoll`, `LeftEyeYaw`, `LeftEyePitch`, `LeftEyeRoll`, `RightEyeYaw`, `RightEyePitch`,
`RightEyeRoll`. The timecode is `HH:MM:SS:FF.fff`: FF is the frame within the second (at
30 or 60 FPS) and `.fff` the fraction of a frame.

Head angles are radians in ARKit's face-anchor frame (x to the viewer's right, y up, z
toward the viewer). Our pose lives in OpenCV's camera frame (x right, y down, z away), so:

    pitch = +HeadPitch   (both: > 0 nods the nose down)
    yaw   = -HeadYaw     (ARKit > 0 turns the nose to the viewer's right; ours to the left)
    roll  = -HeadRoll    (ARKit > 0 tips the top of the head to the viewer's left)

Translation is not in the file: it is zero on import. The eye rotation columns are ignored
on import (gaze is in the eyeLook* blendshapes) and written as zero on export.
"""

from __future__ import annotations

import csv
import logging
import re
from pathlib import Path

import numpy as np

from stylecast.engine.errors import FormatError
from stylecast.engine.face import ARKIT_NAMES, FPS, N_EXPR, N_POSE
from stylecast.engine.motion import Motion, clip_expr, resample_arrays

log = logging.getLogger(__name__)

HEAD_COLUMNS = ("HeadYaw", "HeadPitch", "HeadRoll")
EYE_COLUMNS = (
    "LeftEyeYaw",
    "LeftEyePitch",
    "LeftEyeRoll",
    "RightEyeYaw",
    "RightEyePitch",
    "RightEyeRoll",
)
BLENDSHAPE_COLUMNS = tuple(n[0].upper() + n[1:] for n in ARKIT_NAMES)  # EyeBlinkLeft ...
HEADER = ("Timecode", "BlendShapeCount", *BLENDSHAPE_COLUMNS, *HEAD_COLUMNS, *EYE_COLUMNS)
BLEND_SHAPE_COUNT = len(BLENDSHAPE_COLUMNS) + len(HEAD_COLUMNS) + len(EYE_COLUMNS)  # 61
CAPTURE_RATES = (30, 60)  # the frame rates Live Link Face records at
TIMECODE = re.compile(r"^(\d{1,2}):(\d{2}):(\d{2})[:;](\d{2})(?:\.(\d+))?$")


def parse_timecode(text: str) -> tuple[int, float]:
    """`HH:MM:SS:FF.fff` -> (whole seconds, frames within the second incl. fraction)."""
    m = TIMECODE.match(text.strip())
    if m is None:
        raise ValueError(f"not a timecode HH:MM:SS:FF.fff: {text!r}")
    h, mi, s, ff, frac = m.groups()
    frames = int(ff) + (float("0." + frac) if frac else 0.0)
    return int(h) * 3600 + int(mi) * 60 + int(s), frames


def format_timecode(frame: int, fps: int = FPS) -> str:
    """Frame index -> `HH:MM:SS:FF.000` at `fps`."""
    seconds, ff = divmod(frame, fps)
    minutes, s = divmod(seconds, 60)
    h, mi = divmod(minutes, 60)
    return f"{h:02d}:{mi:02d}:{s:02d}:{ff:02d}.000"


def head_to_pose(head: np.ndarray) -> np.ndarray:
    """(T, 3) HeadYaw, HeadPitch, HeadRoll -> (T, 6) pose with zero translation."""
    pose = np.zeros((head.shape[0], N_POSE), np.float32)
    pose[:, 0] = head[:, 1]  # pitch
    pose[:, 1] = -head[:, 0]  # yaw
    pose[:, 2] = -head[:, 2]  # roll
    return pose


def pose_to_head(pose: np.ndarray) -> np.ndarray:
    """(T, 6) pose -> (T, 3) HeadYaw, HeadPitch, HeadRoll (translation is dropped)."""
    return np.stack([-pose[:, 1], pose[:, 0], -pose[:, 2]], axis=1)


def save_csv(path: str | Path, motion: Motion) -> None:
    """Write `motion` as a Live Link Face CSV at its own frame rate."""
    head = pose_to_head(np.asarray(motion.pose, np.float64))
    with Path(path).open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(HEADER)
        for t in range(motion.frames):
            values = [*motion.expr[t].tolist(), *head[t].tolist(), *[0.0] * len(EYE_COLUMNS)]
            writer.writerow(
                [format_timecode(t, motion.fps), BLEND_SHAPE_COUNT]
                + [f"{v + 0.0:.6g}" for v in values]  # + 0.0: no "-0"
            )
    if np.any(motion.pose[:, 3:] != 0):
        log.warning("%s: Live Link Face CSV has no head translation; it was dropped", path)


def load_csv(path: str | Path, fps: int = FPS, capture_fps: int | None = None) -> Motion:
    """Read a Live Link Face CSV, resampled to `fps`. The capture rate (30 or 60) is taken
    from the timecodes' frame numbers unless `capture_fps` is given."""
    path = Path(path)
    try:
        with path.open(newline="", encoding="utf-8-sig") as f:
            rows = list(csv.reader(f))
    except (OSError, UnicodeDecodeError) as e:
        raise FormatError(f"{path}: not a readable text CSV file ({e})") from e
    rows = [r for r in rows if any(cell.strip() for cell in r)]
    if not rows:
        raise FormatError(f"{path}: empty file; expected a Live Link Face CSV")
    header = [c.strip() for c in rows[0]]
    columns = {name: i for i, name in enumerate(header)}
    needed = ("Timecode", *BLENDSHAPE_COLUMNS, *HEAD_COLUMNS)
    missing = [c for c in needed if c not in columns]
    if missing:
        raise FormatError(
            f"{path}: not a Live Link Face CSV: missing columns {missing[:6]}"
            f"{' ...' if len(missing) > 6 else ''} ({len(missing)} of {len(needed)}); "
            f"expected Timecode, BlendShapeCount, EyeBlinkLeft ... TongueOut, HeadYaw, "
            f"HeadPitch, HeadRoll, eye angles"
        )
    body = rows[1:]
    if not body:
        raise FormatError(f"{path}: the CSV has a header but no frames")

    times = []  # (whole seconds, frames)
    values = np.empty((len(body), N_EXPR + 3), np.float64)
    value_cols = [columns[c] for c in (*BLENDSHAPE_COLUMNS, *HEAD_COLUMNS)]
    for r, row in enumerate(body):
        line = r + 2
        if len(row) != len(header):
            raise FormatError(
                f"{path}: line {line} has {len(row)} fields, the header has {len(header)} "
                f"(truncated or malformed file)"
            )
        try:
            times.append(parse_timecode(row[columns["Timecode"]]))
            values[r] = [float(row[c]) for c in value_cols]
        except ValueError as e:
            raise FormatError(f"{path}: line {line}: {e}") from e
    if not np.isfinite(values).all():
        bad = int(np.argwhere(~np.isfinite(values))[0, 0]) + 2
        raise FormatError(f"{path}: line {bad} holds NaN or infinity")

    rate = capture_fps or detect_capture_rate(times)
    if rate not in CAPTURE_RATES:
        raise FormatError(f"{path}: capture rate must be one of {CAPTURE_RATES}, got {rate}")
    seconds = np.array([s + f / rate for s, f in times])
    if len(seconds) > 1 and np.any(np.diff(seconds) <= 0):
        bad = int(np.argmax(np.diff(seconds) <= 0)) + 3
        raise FormatError(f"{path}: line {bad}: the timecode does not increase")

    expr = clip_expr(values[:, :N_EXPR], str(path))
    pose = head_to_pose(values[:, N_EXPR:])
    if len(seconds) == 1:
        return Motion(expr.astype(np.float32), pose, fps=fps)
    expr, pose = resample_arrays(seconds, [expr, pose], fps)
    return Motion(np.clip(expr, 0.0, 1.0), pose, fps=fps)


def detect_capture_rate(times: list[tuple[int, float]]) -> int:
    """60 if any timecode frame number reaches 30 (impossible at 30 FPS), else the rate
    implied by the number of rows per whole second, else 30."""
    frames = np.array([f for _, f in times])
    if frames.max() >= 30:
        return 60
    _, counts = np.unique([s for s, _ in times], return_counts=True)
    return 60 if counts.max() > 30 else 30
