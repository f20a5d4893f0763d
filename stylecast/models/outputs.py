"""Return types shared by the motion models (fixed signatures: a flag never changes how
many values come back)."""

from __future__ import annotations

from typing import NamedTuple

from torch import Tensor


class MotionOutput(NamedTuple):
    """A whole sequence of motion."""

    expr: Tensor  # (B, T, n_expr) expression weights
    pose: Tensor  # (B, T, n_pose) head pose


class StepOutput(NamedTuple):
    """One streaming step: the motion of one frame and the state for the next step."""

    expr: Tensor  # (B, n_expr)
    pose: Tensor  # (B, n_pose)
    state: NamedTuple  # the model's State NamedTuple, to pass to the next step
