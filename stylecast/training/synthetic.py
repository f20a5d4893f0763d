"""What the training loops read, and a synthetic stand-in until the corpus is ready.

`MotionDataset` is the seam: per utterance, phoneme ids (T,), log-mel (T, 16, 80), ARKit
expression (T, 52), pose (T, 6) and an integer style id. The corpus loader implements it;
`SyntheticDataset` implements it from random but learnable rules (each phoneme has a
mouth shape, each style scales the mouth, holds its own upper-face expression and sways
the head at its own rate), so that a smoke run can show a loss going down.

`sample_batch` cuts training windows and style clips (anchor, positive, negative) out of
any MotionDataset, deterministically from a numpy Generator.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol, runtime_checkable

import numpy as np
import torch
from torch import Tensor

from stylecast.engine.errors import InputError
from stylecast.models.config import ContentConfig, MotionSpec


@dataclass(frozen=True)
class MotionUtterance:
    """One utterance of the training data, all arrays at the motion frame rate."""

    phonemes: np.ndarray  # (T,) int64 phoneme id per frame
    mel: np.ndarray  # (T, mel_frames, n_mels) float32 log-mel window per frame
    expr: np.ndarray  # (T, n_expr) float32 expression weights
    pose: np.ndarray  # (T, n_pose) float32 head pose
    style: int  # style id in [0, n_styles)

    @property
    def frames(self) -> int:
        return len(self.phonemes)


@runtime_checkable
class MotionDataset(Protocol):
    """A corpus split the trainers can read."""

    n_styles: int  # style ids are 0 .. n_styles - 1

    def __len__(self) -> int: ...

    def __getitem__(self, index: int) -> MotionUtterance: ...

    def styles(self) -> np.ndarray:
        """(N,) int64 style id of every utterance, without loading the arrays."""
        ...

    def lengths(self) -> np.ndarray:
        """(N,) int64 frames of every utterance, without loading the arrays."""
        ...


class SyntheticDataset:
    """Random utterances from fixed, learnable rules; deterministic in `seed`."""

    def __init__(
        self,
        motion: MotionSpec,
        content: ContentConfig,
        n_styles: int = 4,
        n_utterances: int = 32,
        frames: tuple[int, int] = (96, 160),
        seed: int = 0,
    ) -> None:
        rng = np.random.default_rng(seed)
        self.n_styles = n_styles
        self.motion = motion
        n_lower, n_upper = len(motion.lower_index), len(motion.upper_index)
        self._mouth = rng.uniform(0, 0.6, (content.n_phonemes, n_lower)).astype(np.float32)
        self._mouth[content.phoneme_pad_id] = 0.0  # silence closes the mouth
        self._mel = rng.normal(-4, 2, (content.n_phonemes, content.mel_frames, content.n_mels))
        self._gain = rng.uniform(0.5, 1.5, n_styles)
        self._upper = rng.uniform(0, 0.5, (n_styles, n_upper))
        self._sway = rng.uniform(0.02, 0.2, (n_styles, motion.n_pose))
        self._rate = rng.uniform(0.5, 2.0, n_styles)  # head sway, Hz
        self._utterances = [
            self._make(rng, i % n_styles, int(rng.integers(frames[0], frames[1] + 1)), content)
            for i in range(n_utterances)
        ]

    def _make(self, rng, style: int, frames: int, content: ContentConfig) -> MotionUtterance:
        ids = []
        while len(ids) < frames:
            ids += [int(rng.integers(0, content.n_phonemes))] * int(rng.integers(2, 7))
        phonemes = np.array(ids[:frames], np.int64)
        kernel = np.array([0.25, 0.5, 0.25], np.float32)  # co-articulation blur
        mouth = self._mouth[phonemes] * self._gain[style]
        mouth = np.stack([np.convolve(c, kernel, "same") for c in mouth.T], 1)
        expr = np.zeros((frames, self.motion.n_expr), np.float32)
        expr[:, list(self.motion.lower_index)] = mouth
        upper = self._upper[style] + 0.05 * rng.standard_normal((frames, len(self._upper[0])))
        expr[:, list(self.motion.upper_index)] = upper
        t = np.arange(frames) / self.motion.fps
        phase = rng.uniform(0, 2 * np.pi, self.motion.n_pose)
        pose = self._sway[style] * np.sin(2 * np.pi * self._rate[style] * t[:, None] + phase)
        mel = self._mel[phonemes] + 0.3 * rng.standard_normal(self._mel[phonemes].shape)
        return MotionUtterance(
            phonemes, mel.astype(np.float32), np.clip(expr, 0, 1), pose.astype(np.float32), style
        )

    def __len__(self) -> int:
        return len(self._utterances)

    def __getitem__(self, index: int) -> MotionUtterance:
        return self._utterances[index]

    def styles(self) -> np.ndarray:
        return np.array([u.style for u in self._utterances], np.int64)

    def lengths(self) -> np.ndarray:
        return np.array([u.frames for u in self._utterances], np.int64)


@dataclass(frozen=True)
class Batch:
    """A training batch: B windows of L frames and three style clips of S frames each."""

    features: Tensor  # (B, L) int64 phoneme ids or (B, L, 16, 80) log-mel
    phonemes: Tensor  # (B, L) int64 (for the lip-sync discriminator's audio side)
    expr: Tensor  # (B, L, n_expr)
    pose: Tensor  # (B, L, n_pose)
    style: Tensor  # (B,) int64 style id
    clip: Tensor  # (B, S, n_motion) a clip of the same style (the style reference)
    clip_valid: Tensor  # (B, S) bool
    positive: Tensor  # (B, S, n_motion) another clip of the same style
    positive_valid: Tensor  # (B, S) bool
    negative: Tensor  # (B, S, n_motion) a clip of another style
    negative_valid: Tensor  # (B, S) bool


def _crop(u: MotionUtterance, start: int, frames: int) -> MotionUtterance:
    end = start + frames
    return MotionUtterance(
        u.phonemes[start:end], u.mel[start:end], u.expr[start:end], u.pose[start:end], u.style
    )


def _clip(rng: np.random.Generator, u: MotionUtterance, frames: int) -> tuple[np.ndarray, int]:
    """(frames, n_motion) zero-padded clip of up to `frames` frames, and its valid length."""
    n = min(frames, u.frames)
    start = int(rng.integers(0, u.frames - n + 1))
    out = np.zeros((frames, u.expr.shape[1] + u.pose.shape[1]), np.float32)
    out[:n] = np.concatenate([u.expr[start : start + n], u.pose[start : start + n]], 1)
    return out, n


def sample_batch(
    dataset: MotionDataset,
    rng: np.random.Generator,
    batch: int,
    frames: int,
    style_frames: int,
    frontend: str,
) -> Batch:
    """Random windows of `frames` frames with style clips of up to `style_frames` frames:
    the reference and positive clips come from other utterances of the window's style
    where there are any, the negative from a different style."""
    styles = dataset.styles()
    long_enough = np.flatnonzero(dataset.lengths() >= frames)
    if len(long_enough) == 0:
        raise InputError(f"no utterance has the {frames} frames a training window needs")
    if len(np.unique(styles)) < 2:
        raise InputError("training needs utterances of at least 2 styles (triplet loss)")
    rows = []
    for _ in range(batch):
        index = int(rng.choice(long_enough))
        u = dataset[index]
        window = _crop(u, int(rng.integers(0, u.frames - frames + 1)), frames)
        same = np.flatnonzero(styles == u.style)
        others = same[same != index] if len(same) > 1 else same
        other_styles = np.flatnonzero(styles != u.style)
        ref, pos = (dataset[int(rng.choice(others))] for _ in range(2))
        neg = dataset[int(rng.choice(other_styles))]
        rows.append((window, *(_clip(rng, c, style_frames) for c in (ref, pos, neg))))

    def stack(values) -> Tensor:
        return torch.from_numpy(np.stack(values))

    def valid(lengths) -> Tensor:
        return torch.arange(style_frames)[None, :] < torch.tensor(lengths)[:, None]

    windows = [r[0] for r in rows]
    phonemes = stack([w.phonemes for w in windows])
    return Batch(
        features=phonemes if frontend == "phoneme" else stack([w.mel for w in windows]),
        phonemes=phonemes,
        expr=stack([w.expr for w in windows]),
        pose=stack([w.pose for w in windows]),
        style=torch.tensor([w.style for w in windows]),
        clip=stack([r[1][0] for r in rows]),
        clip_valid=valid([r[1][1] for r in rows]),
        positive=stack([r[2][0] for r in rows]),
        positive_valid=valid([r[2][1] for r in rows]),
        negative=stack([r[3][0] for r in rows]),
        negative_valid=valid([r[3][1] for r in rows]),
    )
