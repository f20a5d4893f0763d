"""StyleTalk training in three resumable stages (`train_styletalk`):

1. "sync": the lip-sync discriminator on true vs shifted (mouth, audio) windows;
2. "style_d": the style discriminator, a classifier of ground-truth motion;
3. "generator": StyleTalk with reconstruction (on coefficients and on the rig's mouth),
   pose, triplet and temporal-GAN losses plus the two frozen discriminators' losses.

Each stage writes run_dir/<stage>/last (weights + the StyleTalk config they serve); the
generator's checkpoint also records its loss weights (meta "loss", "rig_loss").
"""

from __future__ import annotations

import dataclasses
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from stylecast.engine.errors import InputError
from stylecast.models.checkpoint import WEIGHTS, load_state_strict, read_weights
from stylecast.models.config import (
    ADDED_FIELDS,
    DiscriminatorConfig,
    LossConfig,
    StyleTalkConfig,
)
from stylecast.models.losses import (
    LipSyncDiscriminator,
    RigMouthLoss,
    StyleDiscriminator,
    SyncScale,
    TemporalDiscriminator,
    hinge_d_loss,
    hinge_g_loss,
    reconstruction_loss,
    sync_contrastive_loss,
    sync_d_loss,
    sync_g_loss,
    triplet_loss,
)
from stylecast.models.styletalk import StyleTalk
from stylecast.training.loop import LAST, TrainConfig, run_training, step_optimizer
from stylecast.training.synthetic import Batch, MotionDataset

STAGES = ("sync", "style_d", "generator")
# What a config saved before pose smoothing existed reads as (0: off).
ADDED_POSE_SMOOTHING = ADDED_FIELDS[("StyleTalkConfig", "pose_smoothing")]

# StyleTalk's loss weights when none are given: the paper's, without the style
# discriminator's term (lambda_style = 0, so the style_d stage is skipped). On the 20-hour
# corpus's val split (300 clips, docs/training.md) the paper's lambda_style = 1 held the
# eyes aside on 56% of clips (truth 1%) and scored lower on every other measure than 0:
# emotion accuracy 60% vs 68%, p/b/m closed 75% vs 81%, M-LVD 2.92 vs 2.88 mm.
STYLETALK_LOSSES = LossConfig(style_weight=0.0)


def discriminator_config(cfg: StyleTalkConfig) -> StyleTalkConfig:
    """The config a discriminator stage is saved (and resumed) with: the generator-only
    fields at the value older configs read as, so one pair of discriminators serves
    generators that differ only there (a run with another pose smoothing reuses the same
    sync D)."""
    return dataclasses.replace(
        cfg,
        pose_smoothing=ADDED_POSE_SMOOTHING,
        expert_anneal_steps=ADDED_FIELDS[("StyleTalkConfig", "expert_anneal_steps")],
        expert_temperature_start=ADDED_FIELDS[("StyleTalkConfig", "expert_temperature_start")],
        expert_temperature=ADDED_FIELDS[("StyleTalkConfig", "expert_temperature_start")],
    )


def expert_temperature(cfg: StyleTalkConfig, step: int) -> float:
    """T of the dynamic FFNs' expert mix at a 0-based generator step: linear from
    expert_temperature_start to expert_temperature over expert_anneal_steps, then held
    (the model's own T, what inference uses)."""
    if step >= cfg.expert_anneal_steps:
        return cfg.expert_temperature
    share = step / cfg.expert_anneal_steps
    start = cfg.expert_temperature_start
    return start + (cfg.expert_temperature - start) * share


@dataclass(frozen=True)
class RigLossConfig:
    """Weights of the rig mouth loss (models/losses.RigMouthLoss) in the generator loss.

    Its terms are in mm, next to the coefficient reconstruction's 88 x (0.1 L1 + 0.9
    (1 - SSIM)). Without them the shipped models closed the lips on 0-1% of p/b/m: a
    jawOpen error of 0.05 costs little on the coefficients and opens the lips 1.4 mm."""

    vertex_weight: float = 2.0  # x mean xyz L1 of the 40 lip-contour points, mm
    gap_weight: float = 2.0  # x mean |inner-lip gap error|, mm, boosted on closed frames
    # Gap error weight 1 + this on frames the truth is closed. Paired 700-step mel runs on
    # the val split (docs/training.md): 8 closed 77% of p/b/m but shut the lips on 13.6% of
    # frames (truth 7.6%), M-LVD 3.54 mm; 4 closed 53%, on 9.4% of frames, 3.47 mm; off: 0%,
    # 3.40 mm.
    closed_boost: float = 4.0

    def __post_init__(self) -> None:
        for name, value in asdict(self).items():
            if value < 0:
                raise InputError(f"RigLossConfig.{name} must be >= 0, got {value}")

    @property
    def active(self) -> bool:
        return self.vertex_weight > 0 or self.gap_weight > 0


@dataclass(frozen=True)
class GazeLossConfig:
    """What holds the generated gaze to the speech rather than to the style code.

    Without the eye term the 20-hour model held the eyes aside (an eyeLook* weight above
    0.5 on average over the clip) on 26% of val clips at step 2400 (truth 1%; 56% with the
    style discriminator on): the gaze is a constant offset set by the style code, which
    the coefficient reconstruction (88 x (0.1 L1 + 0.9 (1 - SSIM)) over all 52 weights)
    pulls back too weakly. Weight 10 from step 1000 on: 0% at steps 1500 and 2000
    (eyeLook error 0.073 vs 0.089-0.121), but 18% again at step 2400, so it delays the
    fault rather than removing it; lips and emotion accuracy were as good or better at
    every step (docs/training.md). Checkpoints made before this field had eye_weight 0."""

    eye_weight: float = 10.0  # x mean L1 of the 8 eyeLook* weights, beside the reconstruction
    style_d_gaze: bool = True  # False: the style discriminator sees eyeLook* zeroed

    def __post_init__(self) -> None:
        if self.eye_weight < 0:
            raise InputError(f"GazeLossConfig.eye_weight must be >= 0, got {self.eye_weight}")


def eye_look_index(expr_names: tuple[str, ...]) -> list[int]:
    """Positions of the eyeLook* weights (by name) in a model's expression."""
    return [i for i, n in enumerate(expr_names) if n.startswith("eyeLook")]


def style_d_input(expr: Tensor, expr_names: tuple[str, ...], gaze: GazeLossConfig) -> Tensor:
    """(B, T, n_expr) -> what the style discriminator reads: eyeLook* zeroed unless it
    sees gaze."""
    if gaze.style_d_gaze:
        return expr
    keep = torch.ones(expr.shape[-1], dtype=expr.dtype, device=expr.device)
    keep[eye_look_index(expr_names)] = 0
    return expr * keep


def sync_windows(
    batch: Batch, lower_index: tuple[int, ...], frames: int, generator: torch.Generator
) -> tuple[Tensor, Tensor, Tensor]:
    """Lip-sync discriminator examples from a batch: mouth (B, frames, n_lower), audio
    features (B, frames, ...), label (B,) float; odd rows take audio shifted by at least
    `frames` frames (out of sync), even rows the matching audio."""
    b, length = batch.expr.shape[:2]
    assert length >= 3 * frames, f"windows of {length} frames are too short for sync pairs"
    start = torch.randint(frames, length - 2 * frames + 1, (b,), generator=generator)
    shift = torch.randint(frames, 2 * frames, (b,), generator=generator)
    sign = torch.where(torch.rand(b, generator=generator) < 0.5, -1, 1)
    in_sync = (torch.arange(b) % 2 == 0).float()
    audio_start = torch.where(
        in_sync.bool(), start, (start + sign * shift).clamp(0, length - frames)
    )
    offsets = torch.arange(frames)
    mouth_idx = start[:, None] + offsets  # (B, frames)
    audio_idx = audio_start[:, None] + offsets
    rows = torch.arange(b)[:, None]
    mouth = batch.expr[rows, mouth_idx][..., list(lower_index)]
    audio = batch.features[rows, audio_idx]
    return mouth, audio, in_sync


def window_grid(x: Tensor, frames: int) -> Tensor:
    """(B, L, ...) -> (B, S, frames, ...): every window of `frames` frames of every row,
    S = L - frames + 1."""
    if x.shape[1] < frames:
        raise InputError(f"training windows of {x.shape[1]} frames are shorter than a sync window")
    return x.unfold(1, frames, 1).movedim(-1, 2)


def sample_windows(
    dataset: MotionDataset, rng: np.random.Generator, batch: int, frames: int, frontend: str
) -> Batch:
    """Training windows only, as `sample_batch` cuts them but without the three style clips
    (a quarter of the utterances to read): what the lip-sync stage needs. The clip fields
    are one zero frame each."""
    long_enough = np.flatnonzero(dataset.lengths() >= frames)
    if len(long_enough) == 0:
        raise InputError(f"no utterance has the {frames} frames a training window needs")
    rows = []
    for _ in range(batch):
        u = dataset[int(rng.choice(long_enough))]
        start = int(rng.integers(0, u.frames - frames + 1))
        cut = (np.asarray(x[start : start + frames]) for x in (u.phonemes, u.mel, u.expr, u.pose))
        rows.append((*cut, u.style))

    def stack(i: int) -> Tensor:
        return torch.from_numpy(np.stack([r[i] for r in rows]))

    phonemes, expr, pose = stack(0), stack(2), stack(3)
    empty = torch.zeros(batch, 1, expr.shape[-1] + pose.shape[-1])
    no_frames = torch.zeros(batch, 1, dtype=torch.bool)
    return Batch(
        features=phonemes if frontend == "phoneme" else stack(1),
        phonemes=phonemes, expr=expr, pose=pose, style=torch.tensor([r[4] for r in rows]),
        clip=empty, clip_valid=no_frames, positive=empty, positive_valid=no_frames,
        negative=empty, negative_valid=no_frames,
    )  # fmt: skip


# A mouth window whose weights move less than this (largest max - min of any lower-face
# weight) is already still: holding its first frame makes no negative.
STILL_BELOW = 0.05


def still_windows(mouth: Tensor) -> tuple[Tensor, Tensor]:
    """(N, frames, n_lower) -> (each window's first frame held over the window, (N,) bool:
    the window moves enough for that to be a negative)."""
    spread = (mouth.amax(dim=1) - mouth.amin(dim=1)).amax(dim=-1)
    return mouth[:, :1].expand_as(mouth), spread >= STILL_BELOW


class LipSyncTrainer:
    """Trains the lip-sync discriminator: contrastively (every window of the batch against
    every other, DiscriminatorConfig.sync_loss "contrastive") or, the first recipe, with a
    BCE on true vs shifted windows ("bce")."""

    def __init__(self, cfg: StyleTalkConfig, disc: DiscriminatorConfig, train: TrainConfig):
        torch.manual_seed(train.seed)
        self.cfg = cfg
        self.disc_cfg = disc
        self.train_cfg = train
        self.frontend = cfg.content.frontend
        self.model = LipSyncDiscriminator(disc, cfg.content, len(cfg.motion.lower_index))
        # The discriminator is saved with the model it serves.
        self.model_config = discriminator_config(cfg)
        self.checkpoint_meta = {"sync_loss": disc.sync_loss}
        params = list(self.model.parameters())
        self.aux: dict = {}
        lr = train.lr
        if disc.sync_loss == "contrastive":
            self.scale = SyncScale(disc.sync_scale)
            self.aux = {"sync_scale": self.scale}
            params += list(self.scale.parameters())
            lr = disc.sync_lr
        self.optimizers = {"sync": torch.optim.Adam(params, lr=lr)}
        self.generator = torch.Generator().manual_seed(train.seed)

    def train_step(self, batch: Batch) -> dict[str, float]:
        self.model.train()
        if self.disc_cfg.sync_loss == "contrastive":
            return self._contrastive_step(batch)
        mouth, audio, label = sync_windows(
            batch, self.cfg.motion.lower_index, self.disc_cfg.sync_frames, self.generator
        )
        cosine = self.model(mouth, audio)
        loss = sync_d_loss(cosine, label)
        step_optimizer(
            self.optimizers["sync"], loss, self.model.parameters(), self.train_cfg.grad_clip
        )
        accuracy = ((cosine > 0).float() == label).float().mean()  # P_sync > 0.5
        return {"loss": loss.item(), "accuracy": accuracy.item()}

    def sample_batch(self, dataset: MotionDataset, rng: np.random.Generator, train: TrainConfig):
        """The loop's batch for this stage: windows without style clips."""
        return sample_windows(dataset, rng, train.batch, train.frames, self.frontend)

    def _contrastive_step(self, batch: Batch) -> dict[str, float]:
        n = self.disc_cfg.sync_frames
        mouth = window_grid(batch.expr[..., list(self.cfg.motion.lower_index)], n)
        b, s = mouth.shape[:2]
        mouth = mouth.flatten(0, 1)  # (B S, n, n_lower)
        m = self.model.embed_mouth(mouth).reshape(b, s, -1)
        # The per-frame audio encoder once per frame, then every window of its output.
        frames = window_grid(self.model.audio_frame(batch.features), n).flatten(0, 1)
        a = self.model.embed_audio_frames(frames).reshape(b, s, -1)
        still = None
        if self.disc_cfg.sync_still:
            held, used = still_windows(mouth)
            still = self.model.embed_mouth(held) * used[:, None]
            still = still.reshape(b, s, -1)
        scale = self.scale()
        loss, accuracy = sync_contrastive_loss(m, a, scale, self.disc_cfg.sync_min_shift, still)
        params = [p for g in self.optimizers["sync"].param_groups for p in g["params"]]
        step_optimizer(self.optimizers["sync"], loss, params, self.train_cfg.grad_clip)
        return {"loss": loss.item(), "accuracy": accuracy.item(), "scale": scale.item()}


class StyleClassifierTrainer:
    """Trains the style discriminator to name the style of ground-truth expression."""

    def __init__(
        self,
        cfg: StyleTalkConfig,
        disc: DiscriminatorConfig,
        train: TrainConfig,
        gaze: GazeLossConfig | None = None,
    ):
        torch.manual_seed(train.seed)
        self.train_cfg = train
        self.frontend = cfg.content.frontend
        self.model = StyleDiscriminator(disc, cfg.motion.n_expr)
        self.model_config = discriminator_config(cfg)
        self.gaze = gaze or GazeLossConfig()
        self.checkpoint_meta = {"style_d_gaze": self.gaze.style_d_gaze}
        self.aux: dict = {}
        self.optimizers = {"style_d": torch.optim.Adam(self.model.parameters(), lr=train.lr)}

    def train_step(self, batch: Batch) -> dict[str, float]:
        expr = style_d_input(batch.expr, self.model_config.motion.expr_names, self.gaze)
        logits = self.model.train()(expr)
        loss = F.cross_entropy(logits, batch.style)
        step_optimizer(self.optimizers["style_d"], loss, self.model.parameters(),
                       self.train_cfg.grad_clip)  # fmt: skip
        accuracy = (logits.argmax(-1) == batch.style).float().mean()
        return {"loss": loss.item(), "accuracy": accuracy.item()}


class StyleTalkTrainer:
    """The generator step with a jointly trained temporal discriminator; the lip-sync and
    style discriminators, when given, are frozen and only supply losses."""

    def __init__(
        self,
        cfg: StyleTalkConfig,
        train: TrainConfig,
        losses: LossConfig | None = None,
        disc: DiscriminatorConfig | None = None,
        sync_d: LipSyncDiscriminator | None = None,
        style_d: StyleDiscriminator | None = None,
        rig: RigLossConfig | None = None,
        gaze: GazeLossConfig | None = None,
    ) -> None:
        torch.manual_seed(train.seed)
        self.model_config = cfg
        self.train_cfg = train
        self.losses = losses or STYLETALK_LOSSES
        self.rig = rig or RigLossConfig()
        self.disc_cfg = disc or DiscriminatorConfig()
        self.frontend = cfg.content.frontend
        # Built before the model so that turning it on or off leaves initialisation alone.
        self.rig_mouth = (
            RigMouthLoss(cfg.motion.expr_names, self.rig.closed_boost) if self.rig.active else None
        )
        self.gaze = gaze or GazeLossConfig()
        self.eye_index = eye_look_index(cfg.motion.expr_names)
        self.checkpoint_meta = {
            "loss": asdict(self.losses),
            "rig_loss": asdict(self.rig),
            "gaze_loss": asdict(self.gaze),  # absent in checkpoints made before it
        }
        self.model = StyleTalk(cfg)
        self.temporal = TemporalDiscriminator(self.disc_cfg, cfg.motion.n_expr)
        self.aux = {"temporal": self.temporal}
        self.optimizers = {
            "model": torch.optim.Adam(self.model.parameters(), lr=train.lr),
            "temporal": torch.optim.Adam(self.temporal.parameters(), lr=train.lr),
        }
        self.sync_d = sync_d
        self.style_d = style_d
        for frozen in (sync_d, style_d):
            if frozen is not None:
                frozen.eval().requires_grad_(False)
        self.generator = torch.Generator().manual_seed(train.seed)
        self.expert_t = cfg.expert_temperature

    def begin_step(self, step: int) -> None:
        """Sets the expert-mix temperature of this step (expert_temperature)."""
        t = self.expert_t = expert_temperature(self.model_config, step)
        for decoder in (self.model.lower, self.model.upper):
            for layer in decoder.layers:
                layer.ffn_in.temperature = t

    def train_step(self, batch: Batch) -> dict[str, float]:
        w = self.losses
        model = self.model.train()
        style = model.encode_style(batch.clip, batch.clip_valid)
        out = model(batch.features, style)
        rec = reconstruction_loss(out.expr, batch.expr, w.l1_share, w.ssim_window)
        pose = (out.pose - batch.pose).abs().mean()
        trip = triplet_loss(
            style,
            model.encode_style(batch.positive, batch.positive_valid),
            model.encode_style(batch.negative, batch.negative_valid),
            w.triplet_margin,
        )
        terms = {"rec": rec, "pose": pose, "triplet": trip}
        loss = w.rec_weight * rec + w.pose_weight * pose + w.triplet_weight * trip
        if self.rig_mouth is not None:
            mouth = self.rig_mouth(out.expr, batch.expr)
            terms["mouth_vertex"], terms["lip_gap"] = mouth.vertex, mouth.gap
            loss = loss + self.rig.vertex_weight * mouth.vertex + self.rig.gap_weight * mouth.gap
        if self.gaze.eye_weight > 0:
            eyes = self.eye_index
            terms["eye_l1"] = (out.expr[..., eyes] - batch.expr[..., eyes]).abs().mean()
            loss = loss + self.gaze.eye_weight * terms["eye_l1"]
        if w.temporal_weight > 0:
            terms["temporal_g"] = hinge_g_loss(self.temporal(out.expr))
            loss = loss + w.temporal_weight * terms["temporal_g"]
        if self.sync_d is not None and w.sync_weight > 0:
            generated = Batch(**{**batch.__dict__, "expr": out.expr})
            mouth, audio, label = sync_windows(
                generated, self.model_config.motion.lower_index, self.disc_cfg.sync_frames,
                self.generator,
            )  # fmt: skip
            keep = label.bool()  # only in-sync pairs: generated mouths should match audio
            terms["sync"] = sync_g_loss(self.sync_d(mouth[keep], audio[keep]))
            loss = loss + w.sync_weight * terms["sync"]
        if self.style_d is not None and w.style_weight > 0:
            seen = style_d_input(out.expr, self.model_config.motion.expr_names, self.gaze)
            terms["style"] = F.cross_entropy(self.style_d(seen), batch.style)
            loss = loss + w.style_weight * terms["style"]
        clip = self.train_cfg.grad_clip
        step_optimizer(self.optimizers["model"], loss, self.model.parameters(), clip)
        if w.temporal_weight > 0:
            d_loss = hinge_d_loss(self.temporal(batch.expr), self.temporal(out.expr.detach()))
            step_optimizer(self.optimizers["temporal"], d_loss, self.temporal.parameters(), clip)
            terms["temporal_d"] = d_loss
        logged = {"loss": loss.item(), **{k: v.item() for k, v in terms.items()}}
        if self.model_config.expert_anneal_steps > 0:
            logged["expert_t"] = self.expert_t
        return logged


def train_styletalk(
    run_dir: str | Path,
    cfg: StyleTalkConfig,
    dataset: MotionDataset,
    train: dict[str, TrainConfig],
    losses: LossConfig | None = None,
    disc: DiscriminatorConfig | None = None,
    progress: bool = True,
    rig: RigLossConfig | None = None,
    gaze: GazeLossConfig | None = None,
) -> dict[str, dict[str, float]]:
    """The three stages in order (each resumable); returns each stage's last losses.
    A stage with weight 0 in `losses` (sync_weight, style_weight) is skipped; `losses`:
    STYLETALK_LOSSES when None. `rig`: the
    rig mouth loss weights (RigLossConfig() when None; all 0 turns it off)."""
    run_dir = Path(run_dir)
    losses = losses or STYLETALK_LOSSES
    disc = disc or DiscriminatorConfig(n_styles=dataset.n_styles)
    results: dict[str, dict[str, float]] = {}
    sync_d = style_d = None
    if losses.sync_weight > 0:
        trainer = LipSyncTrainer(cfg, disc, train["sync"])
        results["sync"] = run_training(run_dir / "sync", trainer, dataset, train["sync"],
                                       progress=progress)  # fmt: skip
        sync_d = trainer.model
        load_state_strict(sync_d, read_weights(run_dir / "sync" / LAST / WEIGHTS), "sync")
    if losses.style_weight > 0:
        trainer = StyleClassifierTrainer(cfg, disc, train["style_d"], gaze)
        results["style_d"] = run_training(run_dir / "style_d", trainer, dataset,
                                          train["style_d"], progress=progress)  # fmt: skip
        style_d = trainer.model
        load_state_strict(style_d, read_weights(run_dir / "style_d" / LAST / WEIGHTS), "style_d")
    generator = StyleTalkTrainer(cfg, train["generator"], losses, disc, sync_d, style_d, rig, gaze)
    results["generator"] = run_training(run_dir / "generator", generator, dataset,
                                        train["generator"], progress=progress)  # fmt: skip
    return results
