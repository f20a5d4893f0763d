"""The performer's upper face: blinks, brow emphasis, gaze. Each function returns a layer
that `performer.py` adds to (or writes into) the (T, 52) expression."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from stylecast.engine.face import INDEX, N_EXPR
from stylecast.training.motion_signals import frame_times, pulse
from stylecast.training.styles import Style

BLINK_MIN_S, BLINK_MAX_S = 0.1, 0.3  # a blink, close + open, lasts 100 .. 300 ms
BLINK_GAP_S = 0.25  # at least this much open eye between two blinks
BLINK_SNAP_S = 0.35  # a blink this close to the start of a pause moves onto it
GAZE_UNIT_RAD = 0.52  # eyeLook* = 1 is about 30 degrees of eye rotation
VOR_GAIN = 0.6  # share of a head turn the eyes counter-rotate to keep looking ahead


def blink_events(
    rng: np.random.Generator,
    duration: float,
    rate_per_min: float,
    blink_s: float,
    pause_starts: Sequence[float] = (),
) -> np.ndarray:
    """(K, 2) float64 (start, end) seconds of blinks over [0, duration].

    A renewal process: the open-eye gap between blinks is BLINK_GAP_S plus a gamma variable
    (shape 2.5), so the mean rate is `rate_per_min` and blinks never overlap. A blink that
    falls close to the start of a pause is moved onto it (people blink at phrase breaks).
    """
    mean_period = 60.0 / rate_per_min
    free = max(mean_period - blink_s - BLINK_GAP_S, 0.05)  # mean of the random part
    starts, ends = [], []
    t = rng.uniform(0.0, mean_period) - 0.5 * mean_period
    while True:
        length = float(np.clip(blink_s * rng.uniform(0.85, 1.15), BLINK_MIN_S, BLINK_MAX_S))
        if t > duration:
            break
        if t + length > 0:
            starts.append(t)
            ends.append(t + length)
        t = t + length + BLINK_GAP_S + rng.gamma(2.5, free / 2.5)
    ev = np.array([starts, ends], np.float64).T.reshape(-1, 2)
    pauses = np.asarray(pause_starts, np.float64)
    for k in range(len(ev)):
        if not len(pauses):
            break
        target = pauses[np.argmin(np.abs(pauses - ev[k, 0]))]
        shift = target - ev[k, 0]
        if abs(shift) > BLINK_SNAP_S:
            continue
        lo = ev[k - 1, 1] + BLINK_GAP_S if k > 0 else -np.inf
        hi = ev[k + 1, 0] - BLINK_GAP_S if k + 1 < len(ev) else np.inf
        if ev[k, 0] + shift >= lo and ev[k, 1] + shift <= hi:
            ev[k] += shift
    return ev


def blink_curve(n_frames: int, events: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """(T,) eyelid closure in [0, 1]: each blink closes fast (30% of it), stays shut at
    least 40 ms, and reopens more slowly; closure depth 0.9 .. 1."""
    t = frame_times(n_frames)
    out = np.zeros(n_frames)
    for start, end in events:
        length = end - start
        hold = max(0.15 * length, 0.04)
        close = 0.3 * length
        depth = rng.uniform(0.9, 1.0)
        out = np.maximum(out, depth * pulse(t, start, close, hold, length - close - hold))
    return out


def brow_layer(
    rng: np.random.Generator,
    n_frames: int,
    stressed: Sequence[tuple[float, float]],
    loud_z: np.ndarray,
    pitch_z: np.ndarray,
    style: Style,
) -> np.ndarray:
    """(T, 52) brow movement on emphasised syllables. `stressed` are (start, end) seconds of
    primary-stressed vowels; louder and higher-pitched ones are likelier and bigger. The
    emotion decides the movement (raise, inner raise for sad, lower for angry)."""
    out = np.zeros((n_frames, N_EXPR))
    if not stressed:
        return out
    activity = style.performer.brow_activity * style.mix(style.profile.brow)
    speed = style.mix(style.profile.speed)
    t = frame_times(n_frames)
    last = -np.inf
    env = np.zeros(n_frames)
    for start, end in stressed:
        f = min(int((start + end) * 15.0), n_frames - 1)  # frame of the vowel's middle
        emphasis = 0.8 * loud_z[f] + 0.6 * pitch_z[f]
        p = np.clip(0.25 + 0.2 * emphasis, 0.05, 0.8) * min(activity, 1.0) + 0.1
        if start - last < 0.6 or rng.random() > p:
            continue
        last = start
        amp = np.clip(activity * (0.16 + 0.08 * emphasis) * rng.uniform(0.7, 1.3), 0.0, 0.45)
        onset = start - 0.08
        env = np.maximum(env, amp * pulse(t, onset, 0.12 / speed, end - start, 0.35 / speed))
    asym = 0.2 * style.performer.asymmetry
    for name, w in style.profile.brow_emphasis.items():
        side = 1 + asym if name.endswith("Left") else 1 - asym if name.endswith("Right") else 1
        out[:, INDEX[name]] += w * side * env
    return out


def emphasis_layer(
    n_frames: int,
    stressed: Sequence[tuple[float, float]],
    loud_z: np.ndarray,
    style: Style,
) -> np.ndarray:
    """(T, 52) the emotion's pulse on every stressed syllable (`Style.emphasis`): the
    happy smile widens, the disgusted nose sneers, the fearful mouth stretches, more on
    louder syllables. Empty for neutral."""
    shape = style.emphasis().astype(np.float64)
    if not stressed or not shape.any():
        return np.zeros((n_frames, N_EXPR))
    speed = style.mix(style.profile.speed)
    t = frame_times(n_frames)
    env = np.zeros(n_frames)
    for start, end in stressed:
        f = min(int((start + end) * 15.0), n_frames - 1)
        gain = float(np.clip(0.7 + 0.3 * loud_z[f], 0.3, 1.3))
        env = np.maximum(env, gain * pulse(t, start - 0.05, 0.1 / speed, end - start, 0.3 / speed))
    return env[:, None] * shape[None, :]


def gaze(
    rng: np.random.Generator,
    n_frames: int,
    pose: np.ndarray,
    pause_mask: np.ndarray,
    style: Style,
) -> tuple[np.ndarray, np.ndarray]:
    """Eye direction over time: fixations (mostly at the camera, sometimes away, more often
    in pauses) joined by 2-frame saccades, plus counter-rotation against the head (pose
    (T, 6)). Returns (h, v) each (T,): h > 0 looks to the avatar's left, v > 0 up, in
    eyeLook units (1 ≈ 30 degrees)."""
    rate = style.mix(style.profile.gaze_shift_rate)
    aversion = style.performer.gaze_aversion
    down = style.profile.gaze_down * style.level
    h = np.zeros(n_frames)
    v = np.zeros(n_frames)
    away = np.zeros(n_frames)  # 1 while the fixation is off the camera
    f = 0
    while f < n_frames:
        length = max(int(rng.gamma(2.0, 0.7 / rate) * 30), 6)  # frames (mean ≈ 1.4 s / rate)
        p_away = aversion * (1.8 if pause_mask[f] else 1.0)
        if rng.random() < p_away:
            gh = rng.normal(0.0, 0.25)
            gv = rng.normal(0.05, 0.18) - down
            away[f : f + length] = 1.0
        else:
            gh, gv = rng.normal(0.0, 0.03), rng.normal(0.0, 0.03) - 0.3 * down
        h[f : f + length] = gh
        v[f : f + length] = gv
        f += length
    kernel = np.array([0.25, 0.5, 0.25])  # a saccade takes about two frames
    h = np.convolve(np.pad(h, 1, mode="edge"), kernel, "valid")
    v = np.convolve(np.pad(v, 1, mode="edge"), kernel, "valid")
    at_camera = 1.0 - 0.5 * np.convolve(np.pad(away, 1, mode="edge"), kernel, "valid")
    h += VOR_GAIN * at_camera * pose[:, 1] / GAZE_UNIT_RAD  # head turns right -> eyes left
    v += VOR_GAIN * at_camera * pose[:, 0] / GAZE_UNIT_RAD  # head nods down -> eyes up
    return np.clip(h, -1.0, 1.0), np.clip(v, -1.0, 1.0)


def gaze_layer(h: np.ndarray, v: np.ndarray) -> np.ndarray:
    """(T, 52) eyeLook* weights of a gaze direction (see `gaze`); the lids follow a
    downward look a little."""
    out = np.zeros((len(h), N_EXPR))
    right, left = np.clip(-h, 0, None), np.clip(h, 0, None)
    out[:, INDEX["eyeLookOutLeft"]] = left
    out[:, INDEX["eyeLookInRight"]] = left
    out[:, INDEX["eyeLookInLeft"]] = right
    out[:, INDEX["eyeLookOutRight"]] = right
    up, down = np.clip(v, 0, None), np.clip(-v, 0, None)
    for side in ("Left", "Right"):
        out[:, INDEX["eyeLookUp" + side]] = up
        out[:, INDEX["eyeLookDown" + side]] = down
        out[:, INDEX["eyeBlink" + side]] = 0.25 * down
    return out
