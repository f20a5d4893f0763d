"""SAAS training in three stages, each a resumable run of the shared loop:

1. "style": the multi-task VQ style extractor (clip reconstruction, style classification,
   triplet on style codes, VQ commitment).
2. "expression": audio encoder + canonical/style branches with the extractor frozen;
   reconstruction (L1 + SSIM) on the coefficients and on the rig's mouth (lip-contour
   vertices and the inner-lip gap, boosted where the true lips are closed: without it the
   models never closed the lips for p/b/m), plus the frozen extractor's classification of
   the generated motion (the paper's L_style1).
3. "pose": pose VQ (reconstruction + commitment) and the next-code predictor
   (cross-entropy, teacher forcing) on the frozen audio features and style codes.

Each stage starts from the previous stage's checkpoint (run_dir/<stage>/last). The run
folder's `run.json` records the model config, each stage's TrainConfig and the loss weights,
so the retrained ablations (training/ablation.py) can repeat them exactly.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import shutil
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from stylecast.engine.errors import InputError
from stylecast.models.checkpoint import (
    TRAIN_JSON,
    TRAIN_WEIGHTS,
    WEIGHTS,
    load_model,
    read_header,
    read_weights,
    save_model,
)
from stylecast.models.config import LossConfig, SAASConfig, config_from_dict, config_to_dict
from stylecast.models.losses import RigMouthLoss, reconstruction_loss, triplet_loss
from stylecast.models.saas import SAAS
from stylecast.training.loop import LAST, LOG, TrainConfig, run_training, step_optimizer
from stylecast.training.synthetic import Batch, MotionDataset

STAGES = ("style", "expression", "pose")
RUN_RECORD = "run.json"  # model config, TrainConfig per stage, loss weights


def _masked_l1(pred: torch.Tensor, target: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
    weight = valid[..., None].to(pred.dtype)
    return ((pred - target).abs() * weight).sum() / (weight.sum() * pred.shape[-1]).clamp(min=1)


class StepCounter(nn.Module):
    """The expression stage's step, kept in the training state so that a resumed run
    ramps the style branch in exactly as a straight one (ExpressionConfig.style_warmup)."""

    def __init__(self) -> None:
        super().__init__()
        self.register_buffer("step", torch.zeros((), dtype=torch.long))


class SAASTrainer:
    """One SAAS training stage; `model` carries the weights of the stages before it."""

    def __init__(
        self,
        cfg: SAASConfig,
        train: TrainConfig,
        stage: str,
        losses: LossConfig | None = None,
        model: SAAS | None = None,
    ) -> None:
        if stage not in STAGES:
            raise InputError(f"SAAS stage must be one of {STAGES}, got {stage!r}")
        torch.manual_seed(train.seed)
        self.model_config = cfg
        self.train_cfg = train
        self.stage = stage
        self.losses = losses or LossConfig()
        self.frontend = cfg.content.frontend
        self.model = model if model is not None else SAAS(cfg)
        m = self.model
        trained = {
            "style": [m.style_extractor],
            "expression": [m.audio_encoder, m.expression],
            "pose": [m.pose_vq, m.pose_predictor],
        }[stage]
        m.requires_grad_(False)  # only this stage's modules learn
        for module in trained:
            module.requires_grad_(True)
        self.params = [p for module in trained for p in module.parameters()]
        self.aux: dict = {}
        self.warmup = cfg.expression.style_warmup if stage == "expression" else 0
        self.fade = stage == "expression" and cfg.expression.skip_fade_end > 0
        if self.warmup > 0 or self.fade:
            self.aux["counter"] = StepCounter()
        self.optimizers = {stage: torch.optim.Adam(self.params, lr=train.lr)}
        w = self.losses
        rig_on = stage == "expression" and (w.rig_vertex_weight > 0 or w.rig_gap_weight > 0)
        self.rig_mouth = RigMouthLoss(cfg.motion.expr_names, w.rig_closed_boost) if rig_on else None
        self.checkpoint_meta = {"loss": dataclasses.asdict(w)}  # loss weights, in every checkpoint

    def _check(self, batch: Batch) -> None:
        n = self.model_config.style.n_styles
        if int(batch.style.max()) >= n:
            raise InputError(f"style id {int(batch.style.max())} >= the config's n_styles {n}")

    def train_step(self, batch: Batch) -> dict[str, float]:
        self._check(batch)
        self.model.eval()  # frozen parts: no dropout, no codebook updates
        e = self.model.expression
        if self.warmup > 0:  # the style branch's gain ramps 0 -> 1 over the warm-up
            e.style_gain = min(1.0, int(self.aux["counter"].step) / self.warmup)
        if self.fade:  # the skip's gain ramps 1 -> 0 over the fade
            e.skip_gain = self._skip_gain(int(self.aux["counter"].step))
        terms = getattr(self, f"_{self.stage}_terms")(batch)
        loss = terms.pop("loss")
        step_optimizer(self.optimizers[self.stage], loss, self.params, self.train_cfg.grad_clip)
        if "counter" in self.aux:
            counter = self.aux["counter"].step
            counter += 1
            if self.warmup > 0:
                terms["style_gain"] = torch.tensor(e.style_gain)
                e.style_gain = min(1.0, int(counter) / self.warmup)
            if self.fade:
                terms["skip_gain"] = torch.tensor(e.skip_gain)
                e.skip_gain = self._skip_gain(int(counter))
        return {"loss": loss.item(), **{k: v.item() for k, v in terms.items()}}

    def _skip_gain(self, step: int) -> float:
        e = self.model_config.expression
        return min(1.0, max(0.0, (e.skip_fade_end - step) / (e.skip_fade_end - e.skip_fade_start)))

    def _style_terms(self, batch: Batch) -> dict[str, torch.Tensor]:
        w = self.losses
        extractor = self.model.style_extractor.train()
        ex = extractor(batch.clip, batch.clip_valid)
        frames = batch.clip.shape[1]
        rec = _masked_l1(ex.recon[:, :frames], batch.clip, batch.clip_valid)
        cls = F.cross_entropy(ex.logits, batch.style)
        pos = extractor(batch.positive, batch.positive_valid).code
        neg = extractor(batch.negative, batch.negative_valid).code
        trip = triplet_loss(ex.code, pos, neg, w.triplet_margin)
        loss = rec + w.class_weight * cls + w.triplet_weight * trip + w.vq_weight * ex.vq_loss
        return {"loss": loss, "rec": rec, "class": cls, "triplet": trip, "vq": ex.vq_loss,
                "perplexity": ex.perplexity}  # fmt: skip

    def _style_code(self, batch: Batch) -> torch.Tensor:
        with torch.no_grad():
            return self.model.extract_style(batch.clip, batch.clip_valid).code

    def _expression_terms(self, batch: Batch) -> dict[str, torch.Tensor]:
        w = self.losses
        self.model.audio_encoder.train()
        self.model.expression.train()
        style = self._style_code(batch)
        expr = self.model(batch.features, style)
        rec = reconstruction_loss(expr, batch.expr, w.l1_share, w.ssim_window)
        loss = w.rec_weight * rec
        terms = {"rec": rec}
        if self.rig_mouth is not None:
            mouth = self.rig_mouth(expr, batch.expr)
            terms["mouth_vertex"], terms["lip_gap"] = mouth.vertex, mouth.gap
            loss = loss + w.rig_vertex_weight * mouth.vertex + w.rig_gap_weight * mouth.gap
        if w.style_weight > 0:  # the frozen extractor must recognise the generated style
            clip = torch.cat([expr, batch.pose], dim=-1)[:, : self.model_config.style.max_frames]
            valid = torch.ones(clip.shape[:2], dtype=torch.bool)
            logits = self.model.extract_style(clip, valid).logits
            terms["style"] = F.cross_entropy(logits, batch.style)
            loss = loss + w.style_weight * terms["style"]
        return {"loss": loss, **terms}

    def _pose_terms(self, batch: Batch) -> dict[str, torch.Tensor]:
        fpt = self.model_config.pose.frames_per_token
        frames = batch.pose.shape[1] // fpt * fpt
        if frames == 0:
            raise InputError(f"windows of {batch.pose.shape[1]} frames hold no pose token")
        self.model.pose_vq.train()
        self.model.pose_predictor.train()
        style = self._style_code(batch)
        with torch.no_grad():
            z = self.model.audio_encoder(batch.features)[:, :frames]
        vq = self.model.pose_vq(batch.pose[:, :frames])
        rec = (vq.recon - batch.pose[:, :frames]).abs().mean()
        p = self.model_config.pose
        history, audio = self.model.pose_contexts(z, vq.indices)  # teacher forcing
        if p.history_dropout > 0:  # past codes hidden at random: the audio must speak too
            hidden = torch.rand(history.shape) < p.history_dropout
            history = history.masked_fill(hidden, p.start_token)
        b, k = vq.indices.shape
        logits = self.model.pose_predictor(
            history.reshape(b * k, -1),
            audio.reshape(b * k, *audio.shape[2:]),
            style.repeat_interleave(k, dim=0),
        ).reshape(b, k, -1)  # (B, K, n_codes)
        ce = F.cross_entropy(logits.flatten(0, 1), vq.indices.flatten())
        loss = rec + self.losses.vq_weight * vq.loss + ce
        return {"loss": loss, "rec": rec, "vq": vq.loss, "ce": ce, "perplexity": vq.perplexity}


def train_saas(
    run_dir: str | Path,
    cfg: SAASConfig,
    dataset: MotionDataset,
    train: dict[str, TrainConfig],
    losses: LossConfig | None = None,
    progress: bool = True,
    style_from: str | Path | None = None,
) -> dict[str, dict[str, float]]:
    """All stages in order (each resumable); returns each stage's last losses.

    style_from: another run folder whose finished style stage this run adopts instead of
    training its own (adopt_style_stage: same style config, steps, seed and loss weights)."""
    run_dir = Path(run_dir)
    losses = losses or LossConfig()
    write_run_record(run_dir, cfg, train, losses)
    if style_from is not None and not (run_dir / "style" / LAST).exists():
        adopt_style_stage(Path(style_from), run_dir, cfg, train["style"], losses)
    model: SAAS | None = None
    results = {}
    for stage in STAGES:
        trainer = SAASTrainer(cfg, train[stage], stage, losses, model)
        results[stage] = run_training(run_dir / stage, trainer, dataset, train[stage],
                                      progress=progress)  # fmt: skip
        model, _, _ = load_model(run_dir / stage / LAST)
    return results


def adopt_style_stage(
    source: Path, run_dir: Path, cfg: SAASConfig, train: TrainConfig, losses: LossConfig
) -> Path:
    """Make run_dir/style/last from the finished style stage of run `source`, for a model
    config that differs from the source's only outside the style extractor (the expression
    or pose switches): the extractor's weights and optimiser state are the source's; every
    other module starts as a fresh SAAS(cfg) under the stage's seed, as the style stage
    would have left it. The style stage trains the extractor alone, so this equals
    training it again up to the RNG draws of modules added since (dropout masks).
    InputError when the source stage is unfinished or was trained differently."""
    src = Path(source) / "style" / LAST
    if not (src / "config.json").is_file():
        raise InputError(f"{src} not found: {source} has no finished style stage to adopt")
    header = read_header(src)
    src_cfg = config_from_dict(header["config"])
    meta = header.get("meta", {})
    if not isinstance(src_cfg, SAASConfig) or (src_cfg.style, src_cfg.motion, src_cfg.content) != (
        cfg.style,
        cfg.motion,
        cfg.content,
    ):
        raise InputError(f"{src}: its style extractor, motion or content config differs")
    if int(meta.get("step", -1)) != train.steps:
        raise InputError(
            f"{src} is at step {meta.get('step')}, this run's style stage at {train.steps}"
        )
    if meta.get("loss") != dataclasses.asdict(losses):
        raise InputError(f"{src} was trained with other loss weights than this run's")
    torch.manual_seed(train.seed)
    model = SAAS(cfg)
    prefix = "style_extractor."
    weights = {k: v for k, v in read_weights(src / WEIGHTS).items() if k.startswith(prefix)}
    model.style_extractor.load_state_dict({k[len(prefix) :]: v for k, v in weights.items()})
    target = run_dir / "style" / LAST
    target.parent.mkdir(parents=True, exist_ok=True)
    save_model(target, model, cfg, meta={**meta, "style_from": str(src)})
    for name in (TRAIN_JSON, TRAIN_WEIGHTS):  # optimiser moments of the extractor, the step
        shutil.copy2(src / name, target / name)
    if (src.parent / LOG).is_file():
        shutil.copy2(src.parent / LOG, target.parent / LOG)
    return target


def write_run_record(
    run_dir: Path, cfg: SAASConfig, train: dict[str, TrainConfig], losses: LossConfig
) -> None:
    """run_dir/run.json: what the stages are trained with (rewritten on every resume)."""
    run_dir.mkdir(parents=True, exist_ok=True)
    record = {
        "model": config_to_dict(cfg),
        "train": {stage: dataclasses.asdict(t) for stage, t in train.items()},
        "losses": config_to_dict(losses),
    }
    (run_dir / RUN_RECORD).write_text(json.dumps(record, indent=1) + "\n")


def read_run_record(run_dir: Path) -> tuple[SAASConfig, dict[str, TrainConfig], LossConfig]:
    """Inverse of write_run_record; InputError when the run has none."""
    path = Path(run_dir) / RUN_RECORD
    if not path.is_file():
        raise InputError(f"{path} not found: not a SAAS run folder made by train_saas")
    record = json.loads(path.read_text())
    cfg = config_from_dict(record["model"])
    losses = config_from_dict(record["losses"])
    if not isinstance(cfg, SAASConfig) or not isinstance(losses, LossConfig):
        raise InputError(f"{path}: expected a SAASConfig and a LossConfig")
    # JSON has no tuples: list-valued fields (TrainConfig.keep_steps) come back as tuples.
    train = {
        stage: TrainConfig(**{k: tuple(v) if isinstance(v, list) else v for k, v in t.items()})
        for stage, t in record["train"].items()
    }
    return cfg, train, losses


def main(argv: list[str] | None = None) -> int:
    """`stylecast train saas` with one more option, --style-from (adopt_style_stage)."""
    p = argparse.ArgumentParser(
        description="Train SAAS on a corpus; --style-from adopts another run's style stage."
    )
    p.add_argument("--out", type=Path, required=True, help="run folder (resumed if it exists)")
    p.add_argument("--corpus", type=Path, required=True)
    p.add_argument("--preset", default="small", choices=("default", "small", "tiny"))
    p.add_argument("--steps", type=int, default=2000, help="optimisation steps per stage")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--style-from", type=Path, default=None, help="a run with a finished style "
                   "stage of the same style config, steps, seed and loss weights")  # fmt: skip
    p.add_argument("--skip-fade", type=int, nargs=2, default=(0, 0), metavar=("START", "END"),
                   help="fade the audio skip out over these expression steps")  # fmt: skip
    p.add_argument("--style-norm", action="store_true",
                   help="LayerNorm on the style code the expression branches read")  # fmt: skip
    p.add_argument("--no-progress", action="store_true")
    args = p.parse_args(argv)
    from stylecast.models.config import saas_config
    from stylecast.training.corpus_dataset import CorpusDataset

    torch.set_num_threads(args.threads)
    data = CorpusDataset(args.corpus, "train")
    cfg = saas_config(args.preset, "mel")
    cfg = dataclasses.replace(cfg, style=dataclasses.replace(cfg.style, n_styles=data.n_styles))
    start, end = args.skip_fade
    expression = dataclasses.replace(
        cfg.expression, skip_fade_start=start, skip_fade_end=end, style_norm=args.style_norm
    )
    cfg = dataclasses.replace(cfg, expression=expression)
    train = TrainConfig(steps=args.steps, batch=16, frames=64, style_frames=64, seed=args.seed)
    results = train_saas(args.out, cfg, data, {s: train for s in STAGES}, LossConfig(),
                         not args.no_progress, args.style_from)  # fmt: skip
    print(json.dumps(results, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
