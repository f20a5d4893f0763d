"""Losses of the two papers and the discriminators some of them need.

- reconstruction: mu * L1 + (1 - mu) * (1 - SSIM), SSIM taken along time per coefficient
  (StyleTalk eq. 8); `vertex_loss` for vertex sets.
- RigMouthLoss: the same reconstruction seen on the default avatar's rig mouth: L1 of the
  40 lip-contour vertices and of the inner-lip gap, the gap weighted up on frames where the
  truth's lips are closed (so short p/b/m closures are not averaged away).
- triplet on style codes (margin 5).
- VQ losses come out of `layers.VectorQuantizer`.
- LipSyncDiscriminator: a mouth encoder (lower-face blendshapes, or rig mouth vertices
  through a PointNet) vs an audio-window encoder (phoneme ids or log-mel); the cosine of
  their embeddings is the sync score. Trained first (contrastively: each mouth window must
  pick its own audio window among the batch's, with a learned logit scale), then frozen.
- StyleDiscriminator: a 1-D PatchGAN classifier of the style of a motion sequence.
- TemporalDiscriminator: a 1-D PatchGAN real/fake critic over motion, hinge loss.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from stylecast.models.config import ContentConfig, DiscriminatorConfig
from stylecast.models.layers import FrameEncoder

SSIM_C1 = 0.01**2  # SSIM stabilisers for data in a unit range (ARKit weights)
SSIM_C2 = 0.03**2


def ssim_1d(pred: Tensor, target: Tensor, window: int = 11) -> Tensor:
    """Mean structural similarity along time: pred, target (B, T, C) -> () in [-1, 1].

    Local statistics come from a uniform window of `window` frames (fewer when T is
    shorter), per coefficient channel."""
    x, y = pred.transpose(1, 2), target.transpose(1, 2)  # (B, C, T)
    k = min(window, x.shape[-1])

    def mean(v: Tensor) -> Tensor:
        return F.avg_pool1d(v, k, stride=1)

    mx, my = mean(x), mean(y)
    vx = mean(x * x) - mx * mx
    vy = mean(y * y) - my * my
    cov = mean(x * y) - mx * my
    ssim = ((2 * mx * my + SSIM_C1) * (2 * cov + SSIM_C2)) / (
        (mx * mx + my * my + SSIM_C1) * (vx + vy + SSIM_C2)
    )
    return ssim.mean()


def reconstruction_loss(pred: Tensor, target: Tensor, l1_share: float, window: int) -> Tensor:
    """StyleTalk's L_rec = mu * L1 + (1 - mu) * (1 - SSIM) on (B, T, C) sequences."""
    l1 = (pred - target).abs().mean()
    return l1_share * l1 + (1.0 - l1_share) * (1.0 - ssim_1d(pred, target, window))


def vertex_loss(pred: Tensor, target: Tensor) -> Tensor:
    """Mean L2 distance between vertices: (B, T, V, 3) -> ()."""
    return (pred - target).norm(dim=-1).mean()


class RigMouthTerms(NamedTuple):
    """The two terms of RigMouthLoss, scalars in millimetres (a 14 cm wide face)."""

    vertex: Tensor  # mean over frames and the 40 lip-contour points of the xyz L1 distance
    gap: Tensor  # mean over frames of |gap_pred - gap_true| x (1 + closed_boost on closed)


class RigMouthLoss(nn.Module):
    """Reconstruction of expression measured on the default avatar's rig mouth.

    The rig is linear (verts = neutral + e @ basis), so only the basis rows of the points
    the loss reads are kept, as fixed buffers: the 40 lip-contour points M-LVD compares and
    the 5 upper/lower inner-lip pairs whose distance is the eval's lip gap
    (training/metrics.py). Why: on the coefficients a jawOpen error of 0.05 is 1/52 of a
    small L1, on the rig it opens the lips by 1.4 mm, which is the difference between a
    closed and an open p/b/m.

        loss = RigMouthLoss(cfg.motion.expr_names)       # loads the "default" avatar's rig
        terms = loss(pred_expr, true_expr)               # (B, T, n_expr) each
        total = w_vertex * terms.vertex + w_gap * terms.gap
    """

    def __init__(self, expr_names: Sequence[str], closed_boost: float = 8.0, rig=None) -> None:
        """expr_names: the model's expression dimensions in data order; each must be an
        ARKit name (the rig's blendshapes). closed_boost: extra weight of the gap error on
        frames whose true lips are closed (weight 1 + closed_boost there, 1 elsewhere).
        rig: a FaceRig; the default avatar's when None."""
        super().__init__()
        # Imported here, not at module import: the rig and the eval's lip definitions are
        # numpy-side and only needed by trainers that use this loss.
        from stylecast.engine.errors import InputError
        from stylecast.engine.face import ARKIT_NAMES
        from stylecast.training import metrics

        if closed_boost < 0:
            raise InputError(f"closed_boost must be >= 0, got {closed_boost}")
        unknown = [n for n in expr_names if n not in ARKIT_NAMES]
        if unknown:
            raise InputError(
                f"the rig mouth loss needs ARKit blendshape names, got {unknown[:5]} "
                f"(expected names from {ARKIT_NAMES[0]} ... {ARKIT_NAMES[-1]})"
            )
        if rig is None:
            from stylecast.engine.avatar import load_avatar

            rig = load_avatar("default").rig
        order = [ARKIT_NAMES.index(n) for n in expr_names]
        basis = torch.from_numpy(rig.basis[order]).float()  # (n_expr, 478, 3)
        neutral = torch.from_numpy(rig.neutral).float()  # (478, 3)
        mouth = torch.from_numpy(metrics.mouth_vertices(rig))  # (40,)
        upper = torch.tensor(metrics.INNER_UPPER_MID)  # (5,)
        lower = torch.tensor(metrics.INNER_LOWER_MID)
        scale = metrics.MM_PER_UNIT  # 65.1 mm per rig unit
        self.closed_boost = float(closed_boost)
        self.register_buffer("mouth_basis", basis[:, mouth] * scale, persistent=False)
        # The gap vector upper - lower is linear in the weights too.
        self.register_buffer("gap_basis", (basis[:, upper] - basis[:, lower]) * scale,
                             persistent=False)  # fmt: skip  # (n_expr, 5, 3)
        self.register_buffer("gap_rest", (neutral[upper] - neutral[lower]) * scale,
                             persistent=False)  # fmt: skip  # (5, 3)
        # Closed: the eval's rule, gap within CLOSED_MARGIN of the rest gap (~2.6 mm).
        self.closed_below_mm = metrics.closed_threshold(rig) * scale

    def lip_gap(self, expr: Tensor) -> Tensor:
        """(B, T, n_expr) -> (B, T) inner-lip gap in mm (mean over the 5 middle pairs)."""
        v = self.gap_rest + torch.einsum("bte,epc->btpc", expr, self.gap_basis)  # (B,T,5,3)
        return (v.square().sum(-1) + 1e-12).sqrt().mean(-1)

    def closure_weights(self, true_expr: Tensor) -> Tensor:
        """(B, T, n_expr) -> (B, T): 1 + closed_boost where the true lips are closed."""
        closed = (self.lip_gap(true_expr) < self.closed_below_mm).float()
        return 1.0 + self.closed_boost * closed

    def forward(self, pred: Tensor, true: Tensor) -> RigMouthTerms:
        """pred, true (B, T, n_expr) expression -> RigMouthTerms of scalars (mm)."""
        assert pred.shape == true.shape and pred.shape[-1] == self.mouth_basis.shape[0], (
            pred.shape,
            true.shape,
        )
        diff = torch.einsum("bte,evc->btvc", pred - true, self.mouth_basis)  # (B, T, 40, 3)
        vertex = diff.abs().sum(-1).mean()
        with torch.no_grad():
            weight = self.closure_weights(true)  # (B, T)
        gap = (weight * (self.lip_gap(pred) - self.lip_gap(true).detach()).abs()).mean()
        return RigMouthTerms(vertex, gap)


def triplet_loss(anchor: Tensor, positive: Tensor, negative: Tensor, margin: float) -> Tensor:
    """max(0, |a - p| - |a - n| + margin), averaged: codes (B, D) -> ()."""
    d_pos = (anchor - positive).norm(dim=-1)
    d_neg = (anchor - negative).norm(dim=-1)
    return torch.relu(d_pos - d_neg + margin).mean()


def hinge_d_loss(real: Tensor, fake: Tensor) -> Tensor:
    """Discriminator hinge loss on patch scores."""
    return torch.relu(1.0 - real).mean() + torch.relu(1.0 + fake).mean()


def hinge_g_loss(fake: Tensor) -> Tensor:
    """Generator hinge loss on patch scores of generated motion."""
    return -fake.mean()


def sync_probability(cosine: Tensor) -> Tensor:
    """Sync score in (0, 1) from the embeddings' cosine: (cos + 1) / 2. SyncNet clamps the
    cosine at 0 instead, which works because its embeddings are non-negative (post-ReLU);
    ours are not, and a clamp gave no gradient to pairs with a negative cosine."""
    return ((cosine + 1.0) / 2.0).clamp(min=1e-6, max=1.0 - 1e-6)


def sync_d_loss(cosine: Tensor, in_sync: Tensor) -> Tensor:
    """Binary cross-entropy of the sync score against labels (B,) float 1 = in sync."""
    return F.binary_cross_entropy(sync_probability(cosine), in_sync)


def sync_g_loss(cosine: Tensor) -> Tensor:
    """-log P_sync of generated mouths against their audio."""
    return -torch.log(sync_probability(cosine)).mean()


class SyncScale(nn.Module):
    """The learned logit scale of the contrastive sync loss: logits = exp(log_scale) x cos.

    Cosines live in [-1, 1]; fed to a softmax or BCE unscaled, the best separation a
    discriminator can express is a probability of ~0.7 against ~0.3, so its gradient
    vanishes early and it learns next to nothing (as the BCE on (cos + 1) / 2 did). CLIP's
    remedy: a scale learned with the embeddings, clamped at `max_scale`."""

    def __init__(self, initial: float = 10.0, max_scale: float = 100.0) -> None:
        super().__init__()
        if not 0 < initial <= max_scale:
            raise ValueError(f"initial scale must be in (0, {max_scale}], got {initial}")
        self.max_log = float(torch.log(torch.tensor(max_scale)))
        self.log_scale = nn.Parameter(torch.log(torch.tensor(float(initial))))

    def forward(self) -> Tensor:
        return self.log_scale.clamp(max=self.max_log).exp()


def sync_contrastive_loss(
    mouth: Tensor, audio: Tensor, scale: Tensor, min_shift: int, still: Tensor | None = None
) -> tuple[Tensor, Tensor]:
    """InfoNCE between mouth and audio windows of every start of every batch row.

    mouth, audio: (B, S, D) embeddings of the windows starting at frames 0..S-1 of each row
    (window s of the mouth matches window s of the audio). Every mouth window is scored
    against every audio window of the batch (other rows: other utterances; the same row:
    the same utterance shifted), and the other way round; the in-sync pair is the class to
    pick. Pairs of the same row less than `min_shift` frames apart (but not 0) are left
    out: their audio windows overlap the true one almost entirely. still: (B, S, D)
    embeddings of each mouth window's first frame held still, an extra negative for its
    own audio window (rows of zeros: none for that window).
    Returns (loss, accuracy: share of windows whose best match is the in-sync one)."""
    b, s, _ = mouth.shape
    m = F.normalize(mouth.reshape(b * s, -1), dim=-1)
    a = F.normalize(audio.reshape(b * s, -1), dim=-1)
    logits = scale * (m @ a.T)  # (BS, BS)
    row = torch.arange(b, device=mouth.device).repeat_interleave(s)
    start = torch.arange(s, device=mouth.device).repeat(b)
    gap = (start[:, None] - start[None, :]).abs()
    ignored = (row[:, None] == row[None, :]) & (gap > 0) & (gap < min_shift)
    logits = logits.masked_fill(ignored, float("-inf"))
    target = torch.arange(b * s, device=mouth.device)
    by_audio = logits.T  # (BS audio, BS mouth)
    if still is not None:
        held = still.reshape(b * s, -1)
        used = held.abs().sum(-1) > 0
        extra = scale * (a * F.normalize(held, dim=-1)).sum(-1)
        by_audio = torch.cat([by_audio, extra.masked_fill(~used, float("-inf"))[:, None]], 1)
    loss = (F.cross_entropy(logits, target) + F.cross_entropy(by_audio, target)) / 2
    accuracy = (logits.argmax(dim=-1) == target).float().mean()
    return loss, accuracy


def _temporal_stack(d_in: int, channels: int, layers: int) -> nn.Sequential:
    """1-D PatchGAN body: stride-2 convolutions with LeakyReLU; (B, C, T) -> (B, ch, T')."""
    mods: list[nn.Module] = []
    for i in range(layers):
        mods += [nn.Conv1d(d_in if i == 0 else channels, channels, 4, 2, 1), nn.LeakyReLU(0.2)]
    return nn.Sequential(*mods)


class LipSyncDiscriminator(nn.Module):
    """cosine(mouth embedding, audio embedding) over a window of sync_frames frames."""

    def __init__(self, cfg: DiscriminatorConfig, content: ContentConfig, n_mouth: int) -> None:
        """n_mouth: lower-face blendshapes read when cfg.mouth_input is "blendshapes"."""
        super().__init__()
        self.mouth_input = cfg.mouth_input
        ch = cfg.channels
        if cfg.mouth_input == "vertices":
            self.points = nn.Sequential(
                nn.Linear(3, cfg.point_channels), nn.ReLU(),
                nn.Linear(cfg.point_channels, ch), nn.ReLU(),
            )  # fmt: skip
            mouth_width = ch
        else:
            mouth_width = n_mouth
        self.mouth = nn.Sequential(
            nn.Conv1d(mouth_width, ch, 3, padding=1), nn.ReLU(),
            nn.Conv1d(ch, ch, 3, padding=1), nn.ReLU(),
        )  # fmt: skip
        self.mouth_out = nn.Linear(ch, cfg.sync_dim)
        self.audio_frame = FrameEncoder(content, ch)
        self.audio = nn.Sequential(
            nn.ReLU(), nn.Conv1d(ch, ch, 3, padding=1), nn.ReLU(),
            nn.Conv1d(ch, ch, 3, padding=1), nn.ReLU(),
        )  # fmt: skip
        self.audio_out = nn.Linear(ch, cfg.sync_dim)

    def embed_mouth(self, mouth: Tensor) -> Tensor:
        """(B, L, n_mouth) blendshapes or (B, L, V, 3) vertices -> (B, sync_dim)."""
        if self.mouth_input == "vertices":
            assert mouth.ndim == 4 and mouth.shape[-1] == 3, mouth.shape
            mouth = self.points(mouth).amax(dim=2)  # PointNet: max over vertices
        else:
            assert mouth.ndim == 3, mouth.shape
        h = self.mouth(mouth.transpose(1, 2)).mean(dim=-1)
        return self.mouth_out(h)

    def embed_audio(self, audio: Tensor) -> Tensor:
        """(B, L) phoneme ids or (B, L, 16, 80) log-mel -> (B, sync_dim)."""
        return self.embed_audio_frames(self.audio_frame(audio))

    def embed_audio_frames(self, frames: Tensor) -> Tensor:
        """(B, L, channels) per-frame audio features (`audio_frame`'s output) -> (B, sync_dim).
        Overlapping windows can share one pass of the per-frame encoder this way."""
        h = self.audio(frames.transpose(1, 2)).mean(dim=-1)
        return self.audio_out(h)

    def forward(self, mouth: Tensor, audio: Tensor) -> Tensor:
        """-> (B,) cosine similarity in [-1, 1]."""
        return F.cosine_similarity(self.embed_mouth(mouth), self.embed_audio(audio), dim=-1)


class StyleDiscriminator(nn.Module):
    """Style classifier over a motion sequence: (B, T, C) -> logits (B, n_styles)."""

    def __init__(self, cfg: DiscriminatorConfig, d_in: int) -> None:
        super().__init__()
        self.body = _temporal_stack(d_in, cfg.channels, cfg.temporal_layers)
        self.head = nn.Conv1d(cfg.channels, cfg.n_styles, 3, padding=1)

    def forward(self, motion: Tensor) -> Tensor:
        """Per-patch class logits, averaged over patches."""
        return self.head(self.body(motion.transpose(1, 2))).mean(dim=-1)


class TemporalDiscriminator(nn.Module):
    """1-D PatchGAN critic: motion (B, T, C) -> patch scores (B, T')."""

    def __init__(self, cfg: DiscriminatorConfig, d_in: int) -> None:
        super().__init__()
        self.body = _temporal_stack(d_in, cfg.channels, cfg.temporal_layers)
        self.head = nn.Conv1d(cfg.channels, 1, 3, padding=1)

    def forward(self, motion: Tensor) -> Tensor:
        return self.head(self.body(motion.transpose(1, 2)))[:, 0]
