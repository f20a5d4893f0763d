"""Retrained SAAS ablations for the evaluation, from a finished SAAS run.

    python -m stylecast.training.ablation no-hyperstyle --run runs/saas-small \\
        --corpus data/corpus6h --out runs/saas-no-hyperstyle --steps 1600

no-hyperstyle: the expression stage trained again from the run's style stage, with the
HyperStyle head frozen at its initial zero output (Δ = 0 throughout: the style branch is a
plain LSTM started from the style code, which the decoder also reads). Same seed, data,
batches, steps and losses as the run's own expression stage. The pose modules of the result
are untrained (they belong to the pose stage, which is not repeated): evaluate its
expression only.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
from pathlib import Path

import torch

from stylecast.models.checkpoint import load_model
from stylecast.training.corpus_dataset import CorpusDataset
from stylecast.training.loop import LAST, TrainConfig, run_training
from stylecast.training.train_saas import SAASTrainer


def train_without_hyperstyle(run: Path, out: Path, corpus: Path, train: TrainConfig) -> dict:
    model, cfg, _ = load_model(run / "style" / LAST)
    trainer = SAASTrainer(cfg, train, "expression", model=model)
    hyper = trainer.model.expression.hyper
    with torch.no_grad():
        hyper.head_b.weight.zero_()
        hyper.head_b.bias.zero_()
    hyper.requires_grad_(False)
    frozen = {id(p) for p in hyper.parameters()}
    trainer.params = [p for p in trainer.params if id(p) not in frozen]
    trainer.optimizers = {"expression": torch.optim.Adam(trainer.params, lr=train.lr)}
    return run_training(out / "expression", trainer, CorpusDataset(corpus, "train"), train)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("ablation", choices=("no-hyperstyle",))
    p.add_argument("--run", type=Path, required=True, help="finished SAAS run folder")
    p.add_argument("--corpus", type=Path, required=True)
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--steps", type=int, default=2000)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=1)
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    # The trainer's defaults of `stylecast train saas`: batch 16, 64-frame windows.
    train = TrainConfig(steps=args.steps, batch=16, frames=64, style_frames=64, seed=args.seed)
    losses = train_without_hyperstyle(args.run, args.out, args.corpus, train)
    print(json.dumps({"train": dataclasses.asdict(train), "losses": losses}, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
