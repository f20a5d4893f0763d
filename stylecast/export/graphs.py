"""The `nn.Module` wrappers that are traced into ONNX graphs (one per exported graph).

- `StepGraph`: the model's streaming step with flat inputs and outputs,
  `(features, style[, uniform], *state) -> (expr, pose, *state)`. The style code and the
  sampling uniform are inputs on every frame (the engine blends style codes and draws the
  uniforms from each session's RNG), so neither is an output.
- `StyleGraph`: a style clip padded to a fixed length + its validity mask -> style code.
- `PoseTokenGraph` (SAAS): pose-code history + audio before the token + style + uniform ->
  next-code logits and the sampled code.
- `PoseDecodeGraph` (SAAS): pose codes -> the 8 frames of 6-DoF pose each decodes to.

Model files hold only the models; these hold only the flattening the exporter needs.
"""

from __future__ import annotations

from torch import Tensor, nn

from stylecast.models.saas import SAAS
from stylecast.models.styletalk import StyleTalk

STEP_INPUTS = ("style", "uniform")  # state fields that are per-frame graph inputs instead


def carried_fields(model: nn.Module) -> tuple[str, ...]:
    """State fields the step graph carries from frame to frame (inputs and outputs)."""
    return tuple(f for f in model.init_state(1)._fields if f not in STEP_INPUTS)


def has_uniform(model: nn.Module) -> bool:
    return "uniform" in model.init_state(1)._fields


class StepGraph(nn.Module):
    """model.step with flat tensors: (features, style[, uniform], *carried) -> (expr, pose,
    *carried), carried in `carried_fields` order."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model
        self.state_type = type(model.init_state(1))
        self.fields = carried_fields(model)
        self.uniform = has_uniform(model)

    def forward(self, features: Tensor, style: Tensor, *rest: Tensor) -> tuple[Tensor, ...]:
        values = dict(zip(self.fields, rest[1:] if self.uniform else rest, strict=True))
        values["style"] = style
        if self.uniform:
            values["uniform"] = rest[0]
        out = self.model.step(features, self.state_type(**values))
        return (out.expr, out.pose, *(getattr(out.state, f) for f in self.fields))


class StyleGraph(nn.Module):
    """clip (B, S, n_motion) expr then pose, valid (B, S) bool -> style code (B, D)."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, clip: Tensor, valid: Tensor) -> Tensor:
        if isinstance(self.model, SAAS):
            return self.model.extract_style(clip, valid).code
        assert isinstance(self.model, StyleTalk)
        return self.model.encode_style(clip, valid)


class PoseTokenGraph(nn.Module):
    """tokens (B, C) int64, audio (B, A, d_audio), style (B, D), uniform (B,) ->
    logits (B, n_codes), code (B,) int64 drawn by inverse CDF of uniform."""

    def __init__(self, model: SAAS) -> None:
        super().__init__()
        self.model = model

    def forward(
        self, tokens: Tensor, audio: Tensor, style: Tensor, uniform: Tensor
    ) -> tuple[Tensor, Tensor]:
        logits = self.model.pose_predictor(tokens, audio, style)
        code = self.model.next_pose_token(tokens, audio, style, uniform)
        return logits, code


class PoseDecodeGraph(nn.Module):
    """codes (B,) int64 -> pose (B, frames_per_token, n_pose), before smoothing."""

    def __init__(self, model: SAAS) -> None:
        super().__init__()
        self.model = model

    def forward(self, codes: Tensor) -> Tensor:
        return self.model.pose_vq.decode_indices(codes[:, None])
