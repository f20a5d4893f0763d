"""Whole-sequence generation and the frame-by-frame streaming loop, next to the models.

`generate_saas` runs SAAS on a whole sequence (expression in one pass, pose codes drawn one
token at a time); `stream` drives any live model through its `step`, one frame at a time,
the way the engine does. Given the same uniform numbers the two agree (tests).
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from stylecast.models.layers import padding_frames
from stylecast.models.outputs import MotionOutput
from stylecast.models.saas import SAAS


def smooth_pose(raw: Tensor, alpha: float, poles: int = 1) -> Tensor:
    """`poles` one-pole filters in series, each y_t = alpha * y_{t-1} + (1 - alpha) * x_t
    from y_{-1} = 0 (rest): raw (B, T, P) -> (B, T, P). SAAS.step computes the same."""
    for _ in range(poles):
        out = []
        y = torch.zeros_like(raw[:, 0])
        for t in range(raw.shape[1]):
            y = alpha * y + (1.0 - alpha) * raw[:, t]
            out.append(y)
        raw = torch.stack(out, dim=1)
    return raw


def pose_token_count(frames: int, frames_per_token: int) -> int:
    """Pose codes needed to cover `frames` frames."""
    return -(-frames // frames_per_token)


@torch.no_grad()
def generate_saas(model: SAAS, features: Tensor, style: Tensor, uniform: Tensor) -> MotionOutput:
    """features (B, T[, 16, 80]), style (B, D), uniform (B, K) in [0, 1) with
    K = ceil(T / frames_per_token): one random number per pose code -> motion (B, T)."""
    p = model.cfg.pose
    b, frames = features.shape[:2]
    n_tokens = pose_token_count(frames, p.frames_per_token)
    assert uniform.shape == (b, n_tokens), f"uniform {tuple(uniform.shape)} != {(b, n_tokens)}"
    z = model.audio_encoder(features)
    expr = model.expression_from_audio(z, style)
    tokens = torch.empty(b, 0, dtype=torch.long, device=z.device)
    for k in range(n_tokens):
        # Teacher-forcing contexts built for the tokens so far + a placeholder for token k.
        placeholder = torch.cat([tokens, tokens.new_zeros(b, 1)], dim=1)
        history, audio = model.pose_contexts(z, placeholder)
        code = model.next_pose_token(history[:, k], audio[:, k], style, uniform[:, k])
        tokens = torch.cat([tokens, code[:, None]], dim=1)
    raw = model.pose_vq.decode_indices(tokens)[:, :frames]
    return MotionOutput(expr, smooth_pose(raw, p.smoothing, p.smoothing_poles))


@torch.no_grad()
def stream(
    model: nn.Module, features: Tensor, style: Tensor, uniform: Tensor | None = None
) -> MotionOutput:
    """Drive `model.step` frame by frame over features (B, T[, ...]) and collect the T
    output frames: after the last input, `lookahead` padding frames flush the window.

    uniform: (B, T) numbers for the steps' sampling (frame t's step gets uniform[:, t]);
    None gives 0.5 (the median draw)."""
    content = model.cfg.content
    w = content.window
    b, frames = features.shape[:2]
    tail = padding_frames(content, b, w, features.device).to(features.dtype)
    inputs = torch.cat([features, tail], dim=1)
    if uniform is None:
        uniform = torch.full((b, frames), 0.5, device=features.device)
    state = model.init_state(b, style)
    exprs, poses = [], []
    for t in range(frames + w):
        if hasattr(state, "uniform"):
            state = state._replace(uniform=uniform[:, max(t - w, 0)])
        out = model.step(inputs[:, t], state)
        state = out.state
        if t >= w:
            exprs.append(out.expr)
            poses.append(out.pose)
    return MotionOutput(torch.stack(exprs, dim=1), torch.stack(poses, dim=1))


def frame_uniforms(token_uniform: Tensor, frames: int, frames_per_token: int) -> Tensor:
    """Spread one number per pose code (B, K) over frames (B, T) so that `stream` draws the
    codes `generate_saas` draws from the same numbers."""
    return token_uniform.repeat_interleave(frames_per_token, dim=1)[:, :frames]
