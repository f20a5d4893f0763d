"""Retrained SAAS ablations for the evaluation, from a SAAS run (`stylecast train saas`).

    python -m stylecast.training.ablation no-hyperstyle --run runs/saas-20h \\
        --corpus data/corpus20h --out runs/saas-20h-no-hyperstyle
    python -m stylecast.training.ablation no-codebook --run runs/saas-20h \\
        --corpus data/corpus20h --out runs/saas-20h-no-codebook
    python -m stylecast.training.ablation no-codebook-no-hyperstyle --run runs/saas-20h \\
        --corpus data/corpus20h --out runs/saas-20h-no-both \\
        --style-from runs/saas-20h-no-codebook

Every ablation repeats the run's own model config (but the part removed), seed, batches,
steps and loss weights, read from the run's `run.json`; `--steps` overrides the steps.

- no-hyperstyle: the expression stage trained again from the run's style stage, with the
  HyperStyle head frozen at its initial zero output (Delta = 0 throughout: the style branch
  is a plain LSTM started from the style code, which the decoder also reads).
- no-codebook: the style stage trained again with `StyleVQConfig.codebook = False` (the
  code pooled from the extractor's tokens before quantisation, no VQ loss), or reused
  from another no-codebook folder with `--style-from`, then the expression stage on top.
- no-codebook-no-hyperstyle: both removed: the no-codebook style stage (trained here, or
  reused with `--style-from`), then the expression stage with HyperStyle frozen at zero.

A reused style stage is adopted (train_saas.adopt_style_stage): the extractor and its
optimiser state are the source's, so the source may be a run made with other expression
or pose switches (an older run's no-codebook style stage for a newer run's ablation).

The pose stage is repeated only with `--pose` (the pose predictor reads the style code);
without it the pose modules of the result are untrained: evaluate its expression only.
Each stage writes OUT/<stage>/last like a run, and resumes when interrupted.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
from pathlib import Path

import torch

from stylecast.engine.errors import InputError
from stylecast.models.checkpoint import load_model, read_header
from stylecast.models.config import LossConfig, SAASConfig
from stylecast.training.corpus_dataset import CorpusDataset
from stylecast.training.loop import LAST, TrainConfig, run_training
from stylecast.training.synthetic import MotionDataset
from stylecast.training.train_saas import (
    SAASTrainer,
    adopt_style_stage,
    read_run_record,
    write_run_record,
)

ABLATIONS = ("no-hyperstyle", "no-codebook", "no-codebook-no-hyperstyle")


def freeze_hyperstyle(trainer: SAASTrainer) -> None:
    """Delta = 0 for good: zero HyperStyle's B head and keep it out of the optimiser."""
    hyper = trainer.model.expression.hyper
    with torch.no_grad():
        hyper.head_b.weight.zero_()
        hyper.head_b.bias.zero_()
    hyper.requires_grad_(False)
    frozen = {id(p) for p in hyper.parameters()}
    trainer.params = [p for p in trainer.params if id(p) not in frozen]
    trainer.optimizers = {trainer.stage: torch.optim.Adam(trainer.params, lr=trainer.train_cfg.lr)}


def finished_stage(run: Path, stage: str, steps: int) -> Path:
    """run/<stage>/last, checked to have reached `steps`; InputError otherwise."""
    folder = Path(run) / stage / LAST
    if not (folder / "config.json").is_file():
        raise InputError(f"{folder} not found: the {stage} stage of {run} has not saved yet")
    step = int(read_header(folder).get("meta", {}).get("step", -1))
    if step != steps:
        raise InputError(f"{folder} is at step {step}, not {steps}: wait for the stage to end")
    return folder


def train_stage(
    out: Path,
    stage: str,
    cfg: SAASConfig,
    train: TrainConfig,
    losses: LossConfig,
    dataset: MotionDataset,
    start: Path | None = None,
    hyperstyle: bool = True,
    progress: bool = False,
) -> dict[str, float]:
    """One stage into out/<stage>, from the checkpoint `start` (None: a fresh model)."""
    model = None
    if start is not None:
        model, start_cfg, _ = load_model(start)
        if start_cfg != cfg:
            raise InputError(f"{start} was trained with another config than this ablation's")
    trainer = SAASTrainer(cfg, train, stage, losses, model)
    if not hyperstyle:
        freeze_hyperstyle(trainer)
    return run_training(out / stage, trainer, dataset, train, progress=progress)


def run_ablation(
    name: str,
    run: Path,
    out: Path,
    dataset: MotionDataset,
    steps: int | None = None,
    style_from: Path | None = None,
    pose: bool = False,
    progress: bool = False,
) -> dict[str, dict[str, float]]:
    """Train ablation `name` of SAAS run `run` into `out`; returns each stage's last losses."""
    if name not in ABLATIONS:
        raise InputError(f"ablation must be one of {ABLATIONS}, got {name!r}")
    cfg, trains, losses = read_run_record(run)
    if steps is not None:
        trains = {s: dataclasses.replace(t, steps=steps) for s, t in trains.items()}
    codebook = name == "no-hyperstyle"
    if not codebook:
        cfg = dataclasses.replace(cfg, style=dataclasses.replace(cfg.style, codebook=False))
    write_run_record(out, cfg, trains, losses)
    results: dict[str, dict[str, float]] = {}
    source = run if codebook else style_from  # whose finished style stage is reused
    if source is not None:
        finished_stage(source, "style", trains["style"].steps)
        if not (out / "style" / LAST).exists():  # the same extractor, this config's modules
            adopt_style_stage(source, out, cfg, trains["style"], losses)
        style = out / "style" / LAST
    else:
        results["style"] = train_stage(
            out, "style", cfg, trains["style"], losses, dataset, progress=progress
        )
        style = out / "style" / LAST
    hyperstyle = name == "no-codebook"
    results["expression"] = train_stage(
        out, "expression", cfg, trains["expression"], losses, dataset, style, hyperstyle,
        progress,
    )  # fmt: skip
    if pose:
        results["pose"] = train_stage(
            out, "pose", cfg, trains["pose"], losses, dataset, out / "expression" / LAST,
            progress=progress,
        )  # fmt: skip
    return results


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("ablation", choices=ABLATIONS)
    p.add_argument("--run", type=Path, required=True, help="the SAAS run folder (run.json)")
    p.add_argument("--corpus", type=Path, required=True)
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--steps", type=int, default=None, help="default: the run's own")
    p.add_argument(
        "--style-from",
        type=Path,
        default=None,
        help="no-codebook ablations: reuse this no-codebook folder's style stage",
    )
    p.add_argument("--pose", action="store_true", help="also repeat the pose stage")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--progress", action="store_true")
    args = p.parse_args(argv)
    if args.style_from is not None and args.ablation == "no-hyperstyle":
        raise InputError("--style-from is for the no-codebook ablations, not no-hyperstyle")
    torch.set_num_threads(args.threads)
    results = run_ablation(
        args.ablation, args.run, args.out, CorpusDataset(args.corpus, "train"), args.steps,
        args.style_from, args.pose, args.progress,
    )  # fmt: skip
    print(json.dumps(results, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
