"""Motion sequences: per-frame ARKit-52 expression weights and 6-DoF head pose.

A `Motion` is what the motion models produce, what the renderer consumes frame by frame
and what the fitter recovers from video. On disk it is one of two formats (documented in
docs/formats.md), chosen by the file suffix:

- `.npz`: keys `fps` (int), `names` (unicode array of the 52 ARKit names), `expr` (T, 52)
  float32 in [0, 1] and `pose` (T, 6) float32 (pitch, yaw, roll in radians; tx, ty, tz in
  inter-ocular distances). Loaded with `allow_pickle=False`.
- `.csv`: Live Link Face CSV (what the ARKit capture app writes, Unreal and Blender read);
  see `stylecast.engine.livelink`.

Files at other frame rates are resampled to the engine's 30 FPS on load.
"""

from __future__ import annotations

import logging
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from stylecast.engine.errors import FormatError, InputError
from stylecast.engine.face import ARKIT_NAMES, FPS, INDEX, N_EXPR, N_POSE

log = logging.getLogger(__name__)

SUFFIXES = (".npz", ".csv")  # the motion formats save_motion / load_motion accept
# Expression values a file may hold slightly outside [0, 1] (capture tools round and
# overshoot a little); they are clipped. Anything further out is refused.
EXPR_TOLERANCE = 0.05
NPZ_KEYS = ("fps", "names", "expr", "pose")


@dataclass(frozen=True)
class Motion:
    """A motion sequence of T frames. The arrays are read-only copies."""

    expr: np.ndarray  # (T, 52) float32, ARKit weights in Apple's order, each in [0, 1]
    pose: np.ndarray  # (T, 6) float32: pitch, yaw, roll (rad), tx, ty, tz (inter-ocular units)
    fps: int = FPS  # frames per second of expr and pose

    def __post_init__(self) -> None:
        expr = np.array(self.expr, dtype=np.float32)
        pose = np.array(self.pose, dtype=np.float32)
        if expr.ndim != 2 or expr.shape[1] != N_EXPR:
            raise InputError(f"motion expr must have shape (T, {N_EXPR}), got {expr.shape}")
        if pose.ndim != 2 or pose.shape[1] != N_POSE:
            raise InputError(f"motion pose must have shape (T, {N_POSE}), got {pose.shape}")
        if expr.shape[0] != pose.shape[0]:
            raise InputError(
                f"motion expr and pose must have the same number of frames, got "
                f"{expr.shape[0]} and {pose.shape[0]}"
            )
        if expr.shape[0] == 0:
            raise InputError("a motion needs at least one frame, got 0")
        if not (np.isfinite(expr).all() and np.isfinite(pose).all()):
            raise InputError("motion expr and pose must be finite, got NaN or infinity")
        if expr.min() < 0.0 or expr.max() > 1.0:
            raise InputError(
                f"motion expr weights must lie in [0, 1], got [{expr.min():.4g}, {expr.max():.4g}]"
            )
        if isinstance(self.fps, bool) or int(self.fps) != self.fps or self.fps <= 0:
            raise InputError(f"motion fps must be a positive integer, got {self.fps!r}")
        expr.flags.writeable = False
        pose.flags.writeable = False
        object.__setattr__(self, "expr", expr)
        object.__setattr__(self, "pose", pose)
        object.__setattr__(self, "fps", int(self.fps))

    @property
    def frames(self) -> int:
        return self.expr.shape[0]

    @property
    def duration(self) -> float:
        """Length in seconds."""
        return self.frames / self.fps

    def channel(self, name: str) -> np.ndarray:
        """(T,) weights of one blendshape by its ARKit name."""
        return self.expr[:, INDEX[name]]

    def resampled(self, fps: int = FPS) -> Motion:
        """This motion at another frame rate, by linear interpolation over time."""
        if fps == self.fps:
            return self
        times = np.arange(self.frames) / self.fps
        return Motion(*resample_arrays(times, [self.expr, self.pose], fps), fps=fps)


def resample_arrays(
    times: np.ndarray, arrays: list[np.ndarray], fps: int
) -> tuple[np.ndarray, ...]:
    """Linearly resample (T, C) arrays sampled at increasing `times` (s) onto a regular
    grid at `fps` starting at times[0]. Returns one (T', C) float32 array per input."""
    assert np.all(np.diff(times) > 0), "times must increase"
    span = times[-1] - times[0]
    n = int(np.floor(span * fps + 1e-6)) + 1
    grid = times[0] + np.arange(n) / fps
    out = []
    for a in arrays:
        cols = [np.interp(grid, times, a[:, c]) for c in range(a.shape[1])]
        out.append(np.stack(cols, axis=1).astype(np.float32))
    return tuple(out)


def clip_expr(expr: np.ndarray, source: str) -> np.ndarray:
    """Clip expression weights that overshoot [0, 1] a little; refuse larger excursions."""
    lo, hi = float(np.min(expr)), float(np.max(expr))
    if lo < -EXPR_TOLERANCE or hi > 1.0 + EXPR_TOLERANCE:
        raise FormatError(
            f"{source}: expression weights must lie in [0, 1], got values in [{lo:.4g}, {hi:.4g}]"
        )
    return np.clip(expr, 0.0, 1.0)


# --- .npz ------------------------------------------------------------------------------


def save_npz(path: str | Path, motion: Motion) -> None:
    path = Path(path)
    with path.open("wb") as f:
        np.savez(
            f,
            fps=np.int64(motion.fps),
            names=np.array(ARKIT_NAMES, dtype=np.str_),
            expr=np.asarray(motion.expr, np.float32),
            pose=np.asarray(motion.pose, np.float32),
        )


def load_npz(path: str | Path, fps: int = FPS) -> Motion:
    path = Path(path)
    with path.open("rb") as f:
        magic = f.read(4)
    if magic[:2] != b"PK":  # np.load would take any other file for a pickle
        raise FormatError(f"{path}: not a readable .npz motion file (not a zip archive)")
    try:
        with np.load(path, allow_pickle=False) as data:
            missing = [k for k in NPZ_KEYS if k not in data.files]
            if missing:
                raise FormatError(
                    f"{path}: a motion .npz needs the arrays {list(NPZ_KEYS)}; missing "
                    f"{missing} (found {sorted(data.files)})"
                )
            arrays = {k: data[k] for k in NPZ_KEYS}
    except FormatError:
        raise
    except ValueError as e:  # object arrays need pickle, which is refused
        raise FormatError(f"{path}: refused: the file holds pickled objects ({e})") from e
    except (OSError, zipfile.BadZipFile, EOFError) as e:
        raise FormatError(f"{path}: not a readable .npz motion file ({e})") from e

    names = arrays["names"]
    if names.dtype.kind != "U" or names.ndim != 1:
        raise FormatError(
            f"{path}: `names` must be a 1-d unicode array, got dtype {names.dtype} shape "
            f"{names.shape}"
        )
    expr = np.asarray(arrays["expr"])
    pose = np.asarray(arrays["pose"])
    if expr.ndim != 2 or expr.shape[1] != len(names):
        raise FormatError(
            f"{path}: `expr` must have shape (T, {len(names)}) to match `names`, got {expr.shape}"
        )
    expr = reorder_columns(expr, [str(n) for n in names], str(path))
    if pose.ndim != 2 or pose.shape != (expr.shape[0], N_POSE):
        raise FormatError(f"{path}: `pose` must have shape ({expr.shape[0]}, 6), got {pose.shape}")
    file_fps = arrays["fps"]
    if file_fps.shape != () or not np.issubdtype(file_fps.dtype, np.number):
        raise FormatError(f"{path}: `fps` must be a number, got {file_fps!r}")
    file_fps = float(file_fps)
    if not (file_fps > 0 and file_fps == round(file_fps)):
        raise FormatError(f"{path}: `fps` must be a positive integer, got {file_fps}")
    if expr.shape[0] == 0:
        raise FormatError(f"{path}: the motion has no frames")
    if not (np.isfinite(expr).all() and np.isfinite(pose).all()):
        raise FormatError(f"{path}: `expr` or `pose` holds NaN or infinity")
    motion = Motion(clip_expr(expr, str(path)), pose, fps=int(file_fps))
    return motion.resampled(fps)


def reorder_columns(expr: np.ndarray, names: list[str], source: str) -> np.ndarray:
    """(T, 52) columns in ARKIT_NAMES order, given the file's column `names`."""
    if tuple(names) == ARKIT_NAMES:
        return expr
    missing = sorted(set(ARKIT_NAMES) - set(names))
    unknown = sorted(set(names) - set(ARKIT_NAMES))
    if missing or unknown or len(names) != N_EXPR:
        raise FormatError(
            f"{source}: the expression names must be the 52 ARKit blendshapes "
            f"(eyeBlinkLeft ... tongueOut), each once; missing {missing}, unknown {unknown}, "
            f"{len(names)} names in all"
        )
    log.debug("%s: blendshape columns reordered to Apple's order", source)
    order = [names.index(n) for n in ARKIT_NAMES]
    return expr[:, order]


# --- dispatch ---------------------------------------------------------------------------


def save_motion(path: str | Path, motion: Motion) -> None:
    """Write `motion` as .npz or Live Link Face .csv, chosen by the suffix of `path`."""
    from stylecast.engine import livelink

    path = Path(path)
    suffix = path.suffix.lower()
    if suffix == ".npz":
        save_npz(path, motion)
    elif suffix == ".csv":
        livelink.save_csv(path, motion)
    else:
        raise InputError(f"{path}: unknown motion format {suffix!r}; accepted: {SUFFIXES}")


def load_motion(path: str | Path, fps: int = FPS) -> Motion:
    """Read a .npz or Live Link Face .csv motion file, resampled to `fps` (30)."""
    from stylecast.engine import livelink

    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in SUFFIXES:
        raise InputError(f"{path}: unknown motion format {suffix!r}; accepted: {SUFFIXES}")
    if not path.is_file():
        raise InputError(f"{path}: no such motion file")
    if suffix == ".npz":
        return load_npz(path, fps)
    return livelink.load_csv(path, fps)


# --- a scripted motion of known coefficients ----------------------------------------------

# (channel, start, end, peak): raised-cosine bumps on a timeline normalised to [0, 1], so the
# script keeps its shape at any length. Blinks, winks and one-sided smiles make the left and
# right channels differ; the jaw moves while the head turns, as in speech.
SCRIPT: tuple[tuple[str, float, float, float], ...] = (
    ("jawOpen", 0.04, 0.18, 0.7),
    ("jawOpen", 0.30, 0.40, 0.4),
    ("jawOpen", 0.54, 0.66, 0.9),
    ("jawOpen", 0.80, 0.90, 0.5),
    ("eyeBlinkLeft", 0.20, 0.26, 1.0),
    ("eyeBlinkRight", 0.20, 0.26, 1.0),
    ("eyeBlinkLeft", 0.46, 0.52, 1.0),
    ("eyeBlinkRight", 0.68, 0.74, 1.0),
    ("eyeBlinkLeft", 0.92, 0.97, 1.0),
    ("eyeBlinkRight", 0.92, 0.97, 1.0),
    ("mouthSmileLeft", 0.24, 0.48, 0.8),
    ("mouthSmileRight", 0.24, 0.48, 0.8),
    ("mouthSmileLeft", 0.62, 0.78, 0.7),
    ("mouthSmileRight", 0.80, 0.96, 0.7),
    ("yaw", 0.08, 0.38, np.deg2rad(20.0)),
    ("yaw", 0.42, 0.72, np.deg2rad(-20.0)),
    ("pitch", 0.22, 0.50, np.deg2rad(10.0)),
    ("pitch", 0.68, 0.96, np.deg2rad(-10.0)),
)


def scripted_motion(seconds: float = 6.0, fps: int = FPS) -> Motion:
    """A motion of known coefficients (SCRIPT): jaw opening and closing, blinks and winks,
    smiles on both and on each side, head turns to yaw +-20 deg and pitch +-10 deg. All
    other channels stay at rest. Ground truth for the render -> fit round trip and the demo."""
    frames = max(2, round(seconds * fps))
    u = np.arange(frames) / (frames - 1)  # (T,) normalised time in [0, 1]
    expr = np.zeros((frames, N_EXPR), np.float32)
    pose = np.zeros((frames, N_POSE), np.float32)
    for channel, start, end, peak in SCRIPT:
        phase = np.clip((u - start) / (end - start), 0.0, 1.0)
        bump = peak * 0.5 * (1.0 - np.cos(2.0 * np.pi * phase))
        if channel in INDEX:
            expr[:, INDEX[channel]] += bump
        else:
            pose[:, ("pitch", "yaw", "roll").index(channel)] += bump
    return Motion(np.clip(expr, 0.0, 1.0), pose, fps=fps)
