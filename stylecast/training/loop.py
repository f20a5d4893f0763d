"""The training loop both model families share: seeded batches, progress bar, JSON-lines
loss log, periodic safetensors checkpoints, exact resume.

Batch t is drawn from numpy's Generator seeded with (seed, t), and torch's RNG state is
checkpointed, so a run stopped and resumed produces the same weights as one run straight
through (tests/test_training.py).
"""

from __future__ import annotations

import json
import logging
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import numpy as np
import torch
from torch import nn
from tqdm import tqdm

from stylecast.engine.errors import InputError
from stylecast.models.checkpoint import (
    WEIGHTS,
    load_state_strict,
    load_training_state,
    read_header,
    read_weights,
    save_model,
    save_training_state,
)
from stylecast.models.config import config_from_dict
from stylecast.training.synthetic import Batch, MotionDataset, sample_batch

log = logging.getLogger(__name__)

LAST = "last"  # checkpoint folder inside a run folder
LOG = "log.jsonl"  # one JSON object of losses per logged step


@dataclass(frozen=True)
class TrainConfig:
    """How long and how a model is trained (not saved with the model, logged with the run)."""

    steps: int = 20_000  # optimisation steps in all (a resumed run continues to this)
    batch: int = 16  # windows per batch
    frames: int = 64  # L: frames per training window (StyleTalk trains on 64 = 2.1 s)
    style_frames: int = 64  # S: frames per style clip
    lr: float = 1e-4  # Adam learning rate
    grad_clip: float = 1.0  # max gradient norm
    seed: int = 0  # seeds initialisation, batches and dropout
    log_every: int = 10  # steps between log lines
    checkpoint_every: int = 500  # steps between checkpoints (and one at the end)
    # Steps whose checkpoint is also kept as run_dir/step<N> (to follow a run's models).
    keep_steps: tuple[int, ...] = ()

    def __post_init__(self) -> None:
        for name in ("steps", "batch", "frames", "style_frames", "log_every", "checkpoint_every"):
            if getattr(self, name) < 1:
                raise InputError(f"{name} must be >= 1, got {getattr(self, name)}")
        if any(k < 1 for k in self.keep_steps):
            raise InputError(f"keep_steps must be >= 1, got {self.keep_steps}")
        if self.lr <= 0 or self.grad_clip <= 0:
            raise InputError(f"lr and grad_clip must be > 0, got {self.lr}, {self.grad_clip}")


class Trainer(Protocol):
    """One model family's training step; the loop owns everything else."""

    model: nn.Module  # the model that ships (checkpointed with its config)
    model_config: object  # its config dataclass
    frontend: str  # "phoneme" or "mel": which features batches carry
    aux: dict[str, nn.Module]  # discriminators and other modules saved in the training state
    optimizers: dict[str, torch.optim.Optimizer]
    # Optional: `checkpoint_meta`, a JSON-able dict (e.g. loss weights) written into every
    # checkpoint's meta beside the step and losses; `sample_batch(dataset, rng, cfg)`, the
    # stage's own batch sampler (default: synthetic.sample_batch with the style clips);
    # `begin_step(step)`, told the 0-based step before each train_step (schedules).

    def train_step(self, batch: Batch) -> dict[str, float]: ...


def step_optimizer(
    optimizer: torch.optim.Optimizer, loss: torch.Tensor, params, grad_clip: float
) -> None:
    """zero_grad, backward, clip, step."""
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    torch.nn.utils.clip_grad_norm_(params, grad_clip)
    optimizer.step()


def run_training(
    run_dir: str | Path,
    trainer: Trainer,
    dataset: MotionDataset,
    cfg: TrainConfig,
    resume: bool = True,
    progress: bool = True,
) -> dict[str, float]:
    """Train to cfg.steps, resuming from run_dir/last when it exists (and resume is set);
    returns the last step's losses."""
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    start = 0
    if resume and (run_dir / LAST).exists():
        start = _restore(run_dir / LAST, trainer)
        log.info("resuming %s at step %d", run_dir, start)
    losses: dict[str, float] = {}
    sampler = getattr(trainer, "sample_batch", None)
    begin_step = getattr(trainer, "begin_step", None)
    bar = tqdm(range(start, cfg.steps), initial=start, total=cfg.steps, disable=not progress)
    t0 = time.perf_counter()
    with (run_dir / LOG).open("a") as log_file:
        for step in bar:
            rng = np.random.default_rng([cfg.seed, step])
            if sampler is not None:
                batch = sampler(dataset, rng, cfg)
            else:
                batch = sample_batch(
                    dataset, rng, cfg.batch, cfg.frames, cfg.style_frames, trainer.frontend
                )
            if begin_step is not None:
                begin_step(step)
            losses = trainer.train_step(batch)
            done = step + 1
            if done % cfg.log_every == 0 or done == cfg.steps:
                record = {"step": done, "seconds": round(time.perf_counter() - t0, 2), **losses}
                log_file.write(json.dumps(record) + "\n")
                log_file.flush()
                bar.set_postfix({k: f"{v:.4g}" for k, v in losses.items() if k == "loss"})
            if done % cfg.checkpoint_every == 0 or done == cfg.steps or done in cfg.keep_steps:
                _checkpoint(run_dir / LAST, trainer, done, losses)
            if done in cfg.keep_steps:
                kept = run_dir / f"step{done}"
                shutil.rmtree(kept, ignore_errors=True)
                shutil.copytree(run_dir / LAST, kept)
    return losses


def _checkpoint(target: Path, trainer: Trainer, step: int, losses: dict[str, float]) -> None:
    """Write to a temporary folder, then swap it in, so a crash leaves a whole checkpoint."""
    tmp = target.with_name(target.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    meta = {**getattr(trainer, "checkpoint_meta", {}), "step": step, "losses": losses}
    save_model(tmp, trainer.model, trainer.model_config, meta=meta)
    save_training_state(tmp, step, trainer.aux, trainer.optimizers, info={"losses": losses})
    old = target.with_name(target.name + ".old")
    shutil.rmtree(old, ignore_errors=True)
    if target.exists():
        target.rename(old)
    tmp.rename(target)
    shutil.rmtree(old, ignore_errors=True)


def _restore(source: Path, trainer: Trainer) -> int:
    header = read_header(source)
    config = config_from_dict(header["config"])
    if config != trainer.model_config:
        raise InputError(
            f"{source} was trained with a different model config; start a new run folder "
            f"or resume with the same settings"
        )
    saved = header.get("meta", {})
    for key, value in getattr(trainer, "checkpoint_meta", {}).items():
        if key in saved and saved[key] != value:
            raise InputError(
                f"{source} was trained with {key} = {saved[key]}, this run asks for {value}; "
                f"start a new run folder or resume with the same settings"
            )
    load_state_strict(trainer.model, read_weights(source / WEIGHTS), str(source))
    record = load_training_state(source, trainer.aux, trainer.optimizers)
    return int(record["step"])
