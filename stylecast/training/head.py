"""The performer's head: a style-dependent stochastic pose process coupled to speech.

pose(t) = style's mean pose (emotion, performer habit)
        + slow drift (smoothed noise, seconds) and phrase re-orientation at pauses
        + sway at the performer's rhythm, stronger while speaking
        + quick speech jitter, only while speaking
        + nods on emphasised stressed syllables (a smooth down-and-back pulse)
        + head up with higher pitch, breathing
then translations from rotation about a neck pivot, and a soft limit so that
|pitch| < 12°, |yaw| < 20°, |roll| < 10°, |t| < 0.3 inter-ocular units.
Every term is smooth, so frame-to-frame steps stay small (tested).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from scipy.ndimage import gaussian_filter1d

from stylecast.engine.face import FPS, N_POSE
from stylecast.training.motion_signals import frame_times, pulse, smooth_noise, soft_limit
from stylecast.training.styles import Style

DEG = np.pi / 180.0
POSE_LIMITS = np.array([12 * DEG, 20 * DEG, 10 * DEG, 0.3, 0.3, 0.3])  # pitch yaw roll tx ty tz
NECK_PIVOT = 1.2  # inter-ocular units from the face centre down to the neck pivot
NOD_MAX = 3.5 * DEG  # the largest nod
BREATH_HZ = (0.2, 0.3)  # breaths per second (12 .. 18 per minute)


def head_pose(
    rng: np.random.Generator,
    n_frames: int,
    style: Style,
    speaking: np.ndarray,
    loud_z: np.ndarray,
    pitch_z: np.ndarray,
    stressed: Sequence[tuple[float, float]],
    pause_starts: Sequence[float],
) -> np.ndarray:
    """(T, 6) float64 pose (pitch, yaw, roll rad; tx, ty, tz inter-ocular units).

    speaking: (T,) in [0, 1], how much the frame is inside speech (smoothed); loud_z,
    pitch_z: (T,) loudness and pitch relative to the utterance (about -2 .. 2);
    stressed: (start, end) seconds of primary-stressed vowels; pause_starts: seconds.
    """
    p = style.performer
    amp = p.head_amplitude * style.mix(style.profile.head_amplitude)
    speed = style.mix(style.profile.head_speed)
    t = frame_times(n_frames)
    rot = np.zeros((n_frames, 3))

    # slow drift and phrase re-orientation
    rot += smooth_noise(rng, n_frames, 1.2 / speed, 3) * np.array([1.8, 3.0, 1.3]) * DEG * amp
    steps = np.zeros((n_frames, 3))
    for s in pause_starts:
        steps[int(s * FPS) :] += rng.normal(0.0, 1.0, 3) * np.array([1.2, 2.5, 1.0]) * DEG * amp
    steps -= steps.mean(axis=0)
    rot += gaussian_filter1d(steps, 0.25 * FPS / speed, axis=0, mode="nearest")

    # sway at the performer's rhythm: a few partials with random phases
    sway = np.zeros((n_frames, 3))
    for axis, deg in enumerate((0.6, 1.4, 1.0)):
        for _ in range(3):
            f = p.head_rhythm_hz * speed * rng.uniform(0.8, 1.2)
            sway[:, axis] += np.sin(2 * np.pi * f * t + rng.uniform(0, 2 * np.pi)) * deg / 3
    rot += sway * DEG * amp * (0.5 + 0.8 * speaking)[:, None]

    # speech jitter (quick, small) only while speaking
    jitter = smooth_noise(rng, n_frames, 0.12 / speed, 3) * np.array([0.6, 0.8, 0.4]) * DEG
    rot += jitter * np.sqrt(amp) * speaking[:, None]

    # nods on emphasised stressed syllables
    nod_gain = p.nod_gain * style.mix(style.profile.nod) * np.sqrt(amp)
    width = max(0.16 / style.mix(style.profile.speed), 0.13)  # s: sharper for angry, not jerky
    for start, end in stressed:
        f = min(int((start + end) * 15.0), n_frames - 1)
        emphasis = float(np.clip(1.0 + 0.6 * loud_z[f] + 0.4 * pitch_z[f], 0.2, 2.0))
        if rng.random() > min(0.25 + 0.3 * emphasis, 0.9):
            continue
        size = NOD_MAX * np.tanh(nod_gain * emphasis * rng.uniform(1.0, 2.5) * DEG / NOD_MAX)
        nod = pulse(t, start - 0.05, width, 0.02, 1.6 * width)
        rot[:, 0] += size * nod  # pitch > 0 nods down
        rot[:, 1] += 0.25 * size * rng.normal() * nod

    # higher pitch lifts the head; breathing
    rot[:, 0] -= 0.7 * DEG * np.clip(pitch_z, -2, 2) * speaking * amp
    breath_hz = rng.uniform(*BREATH_HZ)
    breath = np.sin(2 * np.pi * breath_hz * t + rng.uniform(0, 2 * np.pi))
    rot[:, 0] += 0.3 * DEG * breath * (1.0 - 0.5 * speaking)

    pose = np.zeros((n_frames, N_POSE))
    pose[:, :3] = rot
    # the head turns about the neck, below the face: roll slides the face sideways, a nod
    # brings it forward and down a little; plus a small drift of the body
    pose[:, 3] = NECK_PIVOT * np.sin(rot[:, 2])
    pose[:, 4] = NECK_PIVOT * (1 - np.cos(rot[:, 0])) + 0.006 * breath
    pose[:, 5] = -0.5 * NECK_PIVOT * np.sin(rot[:, 0])
    pose[:, 3:] += smooth_noise(rng, n_frames, 1.5 / speed, 3) * 0.02 * amp
    pose += style.pose_offset()
    pose = soft_limit(pose, POSE_LIMITS)
    return gaussian_filter1d(pose, 1.0, axis=0, mode="nearest")
