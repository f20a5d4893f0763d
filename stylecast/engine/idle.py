"""Idle behaviour in numpy: blinks, breathing and small head motion, batched over sessions.

What a face does when it is not shaping sounds, and keeps doing while it speaks: it blinks
every 2-6 s (a 200 ms lid closure, faster down than up), breathes (a slow 0.25 Hz nod of
the head and chest, a few milliradians), and drifts its head towards a new random
orientation every 1-3 s through a critically damped filter, a little more while speaking.
All randomness comes from the caller's uniform numbers (each session's own seeded RNG), so
`IdleState` is the whole state and the output depends on nothing else.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from stylecast.engine.face import FPS, INDEX, N_EXPR, N_POSE

NOISE_DIM = 5  # uniforms per frame: blink interval, head-target timer, 3 head angles
BLINK_EVERY_S = (2.0, 6.0)  # seconds between blinks, uniform
BLINK_FRAMES = 6  # one blink: 200 ms
# eyeBlink weight over the blink's frames: 2 frames down, held, 3 frames up
BLINK_PROFILE = np.array([0.55, 1.0, 1.0, 0.6, 0.3, 0.1], np.float32)
HEAD_EVERY_S = (1.0, 3.0)  # seconds between new head targets, uniform
HEAD_RANGE = np.array([0.04, 0.06, 0.025], np.float32)  # idle target +- (pitch, yaw, roll) rad
SPEECH_HEAD_GAIN = 1.6  # head targets are this much wider while speaking
HEAD_OMEGA = 4.0  # rad/s of the head's critically damped filter (settles in ~1.2 s)
BREATH_HZ = 0.25  # breaths per second
BREATH_PITCH = 0.006  # rad of nod per breath
BREATH_TY = 0.01  # inter-ocular units of vertical head motion per breath


class IdleState(NamedTuple):
    """Per-session idle state, batch first."""

    frame: np.ndarray  # (B,) int64 frames stepped
    blink_in: np.ndarray  # (B,) int64 frames until the next blink starts
    blink_at: np.ndarray  # (B,) int64 frame of the current blink, -1 when the eyes are open
    head: np.ndarray  # (B, 3) float32 pitch, yaw, roll
    head_vel: np.ndarray  # (B, 3) float32 rad/s
    head_target: np.ndarray  # (B, 3) float32
    head_in: np.ndarray  # (B,) int64 frames until the next head target


def init_idle(batch: int) -> IdleState:
    """Eyes open, head at rest; first blink after 1 s, first head target after 0.5 s."""
    return IdleState(
        frame=np.zeros(batch, np.int64),
        blink_in=np.full(batch, FPS, np.int64),
        blink_at=np.full(batch, -1, np.int64),
        head=np.zeros((batch, 3), np.float32),
        head_vel=np.zeros((batch, 3), np.float32),
        head_target=np.zeros((batch, 3), np.float32),
        head_in=np.full(batch, FPS // 2, np.int64),
    )


def damp(x: np.ndarray, v: np.ndarray, target: np.ndarray, omega, dt: float):
    """Exact step of the critically damped filter x'' = ω²(target - x) - 2ω x' over dt.

    x, v, target broadcast together; omega scalar or broadcastable. Returns (x, v) float32.
    Exact for any dt (no overshoot, no instability): with y = x - target,
    y(dt) = (y + (v + ωy) dt) e^{-ω dt}, v(dt) = (v - ω (v + ωy) dt) e^{-ω dt}.
    """
    y = x - target
    k = v + omega * y
    decay = np.exp(-omega * dt)
    return (
        (target + (y + k * dt) * decay).astype(np.float32),
        ((v - omega * k * dt) * decay).astype(np.float32),
    )


def idle_step(
    state: IdleState, noise: np.ndarray, speaking: np.ndarray, head_gain: np.ndarray
) -> tuple[np.ndarray, np.ndarray, IdleState]:
    """One frame: noise (B, NOISE_DIM) uniforms, speaking (B,) float 0..1 (how much the
    session is speaking now), head_gain (B,) style gain on head motion ->
    (expr (B, 52) with the blink channels, pose (B, 6), new state)."""
    b = len(state.frame)
    u = np.asarray(noise, np.float32)[:, :NOISE_DIM]
    assert u.shape == (b, NOISE_DIM), u.shape
    expr = np.zeros((b, N_EXPR), np.float32)

    # Blinks
    lo, hi = BLINK_EVERY_S
    starting = (state.blink_at < 0) & (state.blink_in <= 0)
    blink_at = np.where(starting, 0, state.blink_at)
    blinking = blink_at >= 0
    level = np.where(blinking, BLINK_PROFILE[np.clip(blink_at, 0, BLINK_FRAMES - 1)], 0.0)
    expr[:, INDEX["eyeBlinkLeft"]] = level
    expr[:, INDEX["eyeBlinkRight"]] = level
    next_interval = np.round((lo + (hi - lo) * u[:, 0]) * FPS).astype(np.int64)
    blink_in = np.where(starting, next_interval, state.blink_in - 1)
    blink_at = np.where(blinking, blink_at + 1, -1)
    blink_at = np.where(blink_at >= BLINK_FRAMES, -1, blink_at)

    # Head: a new random target now and then, approached through a damped filter.
    lo, hi = HEAD_EVERY_S
    renew = state.head_in <= 0
    gain = (head_gain * (1.0 + (SPEECH_HEAD_GAIN - 1.0) * speaking))[:, None]
    fresh = (2.0 * u[:, 2:5] - 1.0) * HEAD_RANGE * gain
    target = np.where(renew[:, None], fresh, state.head_target).astype(np.float32)
    head_in = np.where(
        renew, np.round((lo + (hi - lo) * u[:, 1]) * FPS).astype(np.int64), state.head_in - 1
    )
    head, head_vel = damp(state.head, state.head_vel, target, HEAD_OMEGA, 1.0 / FPS)

    # Breathing
    phase = 2.0 * np.pi * BREATH_HZ * state.frame / FPS
    breath = np.sin(phase).astype(np.float32)
    pose = np.zeros((b, N_POSE), np.float32)
    pose[:, :3] = head
    pose[:, 0] += BREATH_PITCH * breath
    pose[:, 4] = BREATH_TY * breath

    new = IdleState(state.frame + 1, blink_in, blink_at, head, head_vel, target, head_in)
    return expr, pose, new
