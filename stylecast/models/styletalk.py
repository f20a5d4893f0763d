"""StyleTalk (Ma et al., AAAI 2023) on ARKit-52: content encoder over a +-w window, style
encoder with self-attention pooling, and lower-/upper-face decoders whose first FFN linear
is a style-weighted mix of K expert kernels.

Look-ahead: frame t is decoded from input frames t-w..t+w, so a live step emits frame t
only after it has been given frame t+w: w = 5 frames = 167 ms at 30 FPS (plus whatever the
audio front end needs to produce frame t+w's features).

Pose: the paper has no pose model. So that every live model has the same step signature,
StyleTalk gets a small regression head that reads both decoders' centre features; it
predicts the conditional mean pose and so moves the head little. Each frame's pose comes
from its own window, so the raw head jitters (jerk 5x the truth's); `cfg.pose_smoothing`
runs it through a causal one-pole low-pass, in `forward` and, with the filter's output and
a frame counter as carried state, in `step`. For lively heads, pair StyleTalk's expression
with SAAS's sampled pose branch (docs/models.md).
"""

from __future__ import annotations

from typing import NamedTuple

import torch
from torch import Tensor, nn

from stylecast.models.config import StyleTalkConfig
from stylecast.models.layers import (
    AttentionPooling,
    DynamicLinear,
    FrameEncoder,
    MultiHeadAttention,
    PositionalEncoding,
    TransformerEncoder,
    feature_shape,
    pad_sequence_ends,
    padding_frames,
    sliding_windows,
)
from stylecast.models.outputs import MotionOutput, StepOutput


class StyleTalkState(NamedTuple):
    """Everything a StyleTalk step carries from one frame to the next."""

    window: Tensor  # (B, 2w, *feature) the last 2w input frames (ids int64 or log-mel)
    style: Tensor  # (B, d_model) the style code (constant within a session)
    pose_smooth: Tensor  # (B, n_pose) the pose filter's last output
    # (B, 1) float: w + 1 before the first step, counting down to 0; > 1 while the step
    # emits the padding frames before frame 0, 1 on frame 0 (the filter starts there).
    pose_lead: Tensor


class ContentEncoder(nn.Module):
    """Per-frame features of a window -> (N, 2w+1, D) content memory."""

    def __init__(self, cfg: StyleTalkConfig) -> None:
        super().__init__()
        self.frame = FrameEncoder(cfg.content, cfg.d_model)
        self.position = PositionalEncoding(cfg.d_model, cfg.content.window_frames)
        self.encoder = TransformerEncoder(
            cfg.d_model, cfg.n_heads, cfg.d_ffn, cfg.content_layers, cfg.dropout
        )

    def forward(self, frames: Tensor) -> Tensor:
        """frames (N, 2w+1, D): already frame-encoded windows -> (N, 2w+1, D)."""
        return self.encoder(self.position(frames))


class StyleEncoder(nn.Module):
    """Style clip (B, S, n_motion) with a validity mask -> style code (B, D)."""

    def __init__(self, cfg: StyleTalkConfig) -> None:
        super().__init__()
        self.inp = nn.Linear(cfg.motion.n_motion, cfg.d_model)
        self.position = PositionalEncoding(cfg.d_model, cfg.max_style_frames)
        self.encoder = TransformerEncoder(
            cfg.d_model, cfg.n_heads, cfg.d_ffn, cfg.style_layers, cfg.dropout
        )
        self.pool = AttentionPooling(cfg.d_model)

    def forward(self, clip: Tensor, valid: Tensor) -> Tensor:
        """clip (B, S <= max_style_frames, n_motion) = expr then pose; valid (B, S) bool."""
        limit = self.position.table.shape[0]
        assert clip.shape[1] <= limit, f"style clip of {clip.shape[1]} frames > {limit}"
        h = self.encoder(self.position(self.inp(clip)), key_pad=~valid)  # (B, S, D)
        return self.pool(h, valid)


class DynamicDecoderLayer(nn.Module):
    """Self-attention over the style queries, cross-attention to the content window, and an
    FFN whose first linear is dynamic (K experts mixed by the style code). Post-norm."""

    def __init__(self, cfg: StyleTalkConfig) -> None:
        super().__init__()
        d = cfg.d_model
        self.self_attn = MultiHeadAttention(d, cfg.n_heads, cfg.dropout)
        self.cross_attn = MultiHeadAttention(d, cfg.n_heads, cfg.dropout)
        self.ffn_in = DynamicLinear(
            d, cfg.d_ffn, d, cfg.n_experts, cfg.expert_temperature, cfg.expert_hidden
        )
        self.ffn_out = nn.Linear(cfg.d_ffn, d)
        self.norms = nn.ModuleList(nn.LayerNorm(d) for _ in range(3))
        self.dropout = nn.Dropout(cfg.dropout)

    def forward(self, x: Tensor, memory: Tensor, style: Tensor) -> Tensor:
        """x, memory (B, T, W, D); style (B, D) -> (B, T, W, D)."""
        b, t, w, d = x.shape
        q = x.reshape(b * t, w, d)
        mem = memory.reshape(b * t, w, d)
        q = self.norms[0](q + self.dropout(self.self_attn(q, q)))
        q = self.norms[1](q + self.dropout(self.cross_attn(q, mem)))
        hidden = torch.relu(self.ffn_in(q.reshape(b, t * w, d), style))  # (B, T*W, F)
        ffn = self.ffn_out(self.dropout(hidden)).reshape(b * t, w, d)
        return self.norms[2](q + self.dropout(ffn)).reshape(b, t, w, d)


class DynamicDecoder(nn.Module):
    """Queries = positional encoding + style code; returns the centre token (B, T, D)."""

    def __init__(self, cfg: StyleTalkConfig) -> None:
        super().__init__()
        self.centre = cfg.content.window
        self.position = PositionalEncoding(cfg.d_model, cfg.content.window_frames)
        self.layers = nn.ModuleList(DynamicDecoderLayer(cfg) for _ in range(cfg.decoder_layers))

    def forward(self, memory: Tensor, style: Tensor) -> Tensor:
        """memory (B, T, W, D), style (B, D) -> (B, T, D)."""
        b, t, w, d = memory.shape
        queries = self.position(torch.zeros(1, w, d, device=memory.device))[0]  # (W, D)
        x = (queries + style[:, None, None, :]).expand(b, t, w, d)
        for layer in self.layers:
            x = layer(x, memory, style)
        return x[:, :, self.centre]


class StyleTalk(nn.Module):
    """Phoneme ids or log-mel windows + a style code -> expression and pose per frame."""

    def __init__(self, cfg: StyleTalkConfig) -> None:
        super().__init__()
        self.cfg = cfg
        motion = cfg.motion
        self.content = ContentEncoder(cfg)
        self.style_encoder = StyleEncoder(cfg)
        self.lower = DynamicDecoder(cfg)
        self.upper = DynamicDecoder(cfg)
        self.lower_head = nn.Linear(cfg.d_model, len(motion.lower_index))
        self.upper_head = nn.Linear(cfg.d_model, len(motion.upper_index))
        self.pose_head = nn.Sequential(
            nn.Linear(2 * cfg.d_model, cfg.pose_hidden), nn.ReLU(),
            nn.Linear(cfg.pose_hidden, motion.n_pose),
        )  # fmt: skip
        # cat(lower, upper)[..., gather] puts every weight back at its name's position.
        order = list(motion.lower_index) + list(motion.upper_index)
        gather = [order.index(i) for i in range(motion.n_expr)]
        self.register_buffer("gather", torch.tensor(gather, dtype=torch.long), persistent=False)

    def encode_style(self, clip: Tensor, valid: Tensor) -> Tensor:
        """clip (B, S, n_motion), valid (B, S) bool -> style code (B, d_model)."""
        return self.style_encoder(clip, valid)

    def forward(self, features: Tensor, style: Tensor) -> MotionOutput:
        """features (B, T) phoneme ids or (B, T, 16, 80) log-mel; style (B, D).

        Frames past either end of the sequence read as padding (silence)."""
        w = self.cfg.content.window_frames
        frames = self.content.frame(pad_sequence_ends(features, self.cfg.content))
        windows = sliding_windows(frames, w)  # (B, T, W, D)
        out = self._decode(windows, style)
        return MotionOutput(out.expr, self.smooth_pose(out.pose))

    def _decode(self, windows: Tensor, style: Tensor) -> MotionOutput:
        b, t, w, d = windows.shape
        memory = self.content(windows.reshape(b * t, w, d)).reshape(b, t, w, d)
        lower = self.lower(memory, style)  # (B, T, D)
        upper = self.upper(memory, style)
        expr = torch.cat([self.lower_head(lower), self.upper_head(upper)], dim=-1)
        expr = expr[..., self.gather]
        if self.cfg.motion.expr_activation == "sigmoid":
            expr = torch.sigmoid(expr)
        pose = self.pose_head(torch.cat([lower, upper], dim=-1))
        return MotionOutput(expr, pose)

    def smooth_pose(self, raw: Tensor) -> Tensor:
        """(B, T, n_pose) raw pose of frames 0..T-1 -> the low-passed pose, y_0 = x_0."""
        a = self.cfg.pose_smoothing
        if a == 0.0:
            return raw
        out = [raw[:, 0]]
        for t in range(1, raw.shape[1]):
            out.append(a * out[-1] + (1.0 - a) * raw[:, t])
        return torch.stack(out, dim=1)

    # ------------------------------------------------------------ streaming

    def init_state(self, batch: int, style: Tensor | None = None) -> StyleTalkState:
        """State before the first frame: padding history; style code zeros unless given."""
        content = self.cfg.content
        device = self.gather.device
        window = padding_frames(content, batch, 2 * content.window, device)
        if style is None:
            style = torch.zeros(batch, self.cfg.d_model, device=device)
        assert style.shape == (batch, self.cfg.d_model), style.shape
        pose = torch.zeros(batch, self.cfg.motion.n_pose, device=device)
        lead = torch.full((batch, 1), float(content.window + 1), device=device)
        return StyleTalkState(window, style, pose, lead)

    def step(self, features_t: Tensor, state: StyleTalkState) -> StepOutput:
        """features_t (B,) ids or (B, 16, 80) log-mel of input frame t -> the motion of
        frame t - w. Feed w padding frames after the last one to flush the window."""
        assert features_t.shape[1:] == feature_shape(self.cfg.content), features_t.shape
        window = torch.cat([state.window, features_t[:, None]], dim=1)  # (B, W, ...)
        frames = self.content.frame(window)[:, None]  # (B, 1, W, D)
        out = self._decode(frames, state.style)
        raw = out.pose[:, 0]  # (B, n_pose)
        a = self.cfg.pose_smoothing
        lead = state.pose_lead  # (B, 1)
        smoothed = a * state.pose_smooth + (1.0 - a) * raw
        pose = torch.where(lead > 1, state.pose_smooth, torch.where(lead > 0, raw, smoothed))
        new_state = StyleTalkState(window[:, 1:], state.style, pose, (lead - 1.0).clamp(min=0.0))
        return StepOutput(out.expr[:, 0], pose, new_state)
