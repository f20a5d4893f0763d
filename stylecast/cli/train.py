"""`stylecast train styletalk|saas --out RUN [--corpus DIR]`: train a motion model.

Runs resume where they stopped. With `--corpus DIR` the models train on the corpus's
train split (training/corpus_dataset.py); without it on the synthetic stand-in
(training/synthetic.py), which exercises the whole pipeline but makes no usable model.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging

from stylecast.engine.errors import BackendError, InputError

log = logging.getLogger(__name__)


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "train", help="train the motion models (needs the [train] extra)", description=__doc__
    )
    sub = parser.add_subparsers(dest="train_command", metavar="MODEL")
    for name, helptext in (
        ("styletalk", "StyleTalk: lip-sync D, style D, then the generator"),
        ("saas", "SAAS: style extractor, expression branches, then pose"),
    ):
        p = sub.add_parser(name, help=helptext, description=helptext)
        p.add_argument("--out", required=True, help="run folder (resumed if it exists)")
        p.add_argument(
            "--preset",
            default="small",
            choices=("default", "small", "tiny"),
            help="model size: the paper's, 2-core CPU (default), or test-sized",
        )
        p.add_argument(
            "--frontend",
            default=None,
            choices=("phoneme", "mel"),
            help="content input (default: mel: it beat phoneme ids on every lip measure at equal "
            "steps; docs/model-card.md)",
        )
        p.add_argument(
            "--corpus",
            default=None,
            metavar="DIR",
            help="corpus folder to train on (default: synthetic data)",
        )
        p.add_argument("--steps", type=int, default=2000, help="optimisation steps per stage")
        p.add_argument(
            "--batch",
            type=int,
            default=None,
            help="windows per batch (default: 8 for StyleTalk, 16 for SAAS)",
        )
        p.add_argument(
            "--frames",
            type=int,
            default=None,
            help="frames per training window (default: 32 StyleTalk, 64 SAAS)",
        )
        p.add_argument("--lr", type=float, default=1e-4, help="Adam learning rate")
        p.add_argument("--seed", type=int, default=0, help="seeds weights, batches, dropout")
        p.add_argument(
            "--threads",
            type=int,
            default=1,
            help="torch CPU threads, 0 = torch's default (on the shared 2-core machine one "
            "thread trained 7x faster than two)",
        )
        p.add_argument(
            "--keep",
            type=int,
            nargs="+",
            default=(),
            metavar="STEP",
            help="also keep each stage's checkpoint at these steps as STAGE/step<N> (to follow "
            "a run's models, e.g. the gaze along a StyleTalk run)",
        )
        if name == "styletalk":
            p.add_argument(
                "--expert-anneal",
                type=float,
                nargs=2,
                metavar=("STEPS", "T"),
                help="anneal the expert-mix temperature from 30 to T over the first STEPS "
                "generator steps (default: T = 30 throughout)",
            )
        if name == "saas":
            p.add_argument(
                "--style-norm",
                action="store_true",
                help="LayerNorm (no weights) on the style code where the expression branches "
                "read it (ExpressionConfig.style_norm; default: off)",
            )
        p.add_argument("--no-progress", action="store_true", help="no progress bars")
        p.set_defaults(func=_train, model=name)
    parser.set_defaults(func=lambda args: parser.print_help() or 2)


def _train(args: argparse.Namespace) -> int:
    try:
        import torch
    except ImportError as e:
        raise BackendError(f"training needs torch ({e}); pip install 'stylecast[train]'") from e
    from stylecast.models.config import saas_config, styletalk_config
    from stylecast.training.loop import TrainConfig

    if args.threads < 0:
        raise InputError(f"--threads must be >= 0, got {args.threads}")
    if args.threads:
        torch.set_num_threads(args.threads)
    styletalk = args.model == "styletalk"
    frontend = args.frontend or "mel"
    # StyleTalk decodes every frame from its own window (11x the work per frame): smaller
    # batches keep a CPU step near a second.
    args.batch = args.batch or (8 if styletalk else 16)
    args.frames = args.frames or (32 if styletalk else 64)
    train = TrainConfig(
        steps=args.steps,
        batch=args.batch,
        frames=args.frames,
        style_frames=args.frames,
        lr=args.lr,
        seed=args.seed,
        keep_steps=tuple(args.keep),
    )
    progress = not args.no_progress
    if args.model == "styletalk":
        from stylecast.models.config import DiscriminatorConfig
        from stylecast.training.train_styletalk import STAGES, train_styletalk

        cfg = styletalk_config(args.preset, frontend)
        if args.expert_anneal:
            steps, temperature = args.expert_anneal
            if steps < 1 or not steps.is_integer() or temperature <= 0:
                raise InputError(
                    f"--expert-anneal needs STEPS >= 1 and T > 0, got {steps} {temperature}"
                )
            cfg = dataclasses.replace(
                cfg, expert_anneal_steps=int(steps), expert_temperature=temperature
            )
        _check_frames(args.frames, cfg.max_style_frames)
        data = _dataset(args, cfg.motion, cfg.content)
        disc = DiscriminatorConfig(n_styles=data.n_styles)
        results = train_styletalk(
            args.out, cfg, data, {s: train for s in STAGES}, disc=disc, progress=progress
        )
    else:
        from stylecast.training.train_saas import STAGES, train_saas

        cfg = saas_config(args.preset, frontend)
        if args.style_norm:
            cfg = dataclasses.replace(
                cfg, expression=dataclasses.replace(cfg.expression, style_norm=True)
            )
        _check_frames(args.frames, cfg.style.max_frames)
        data = _dataset(args, cfg.motion, cfg.content)
        cfg = dataclasses.replace(cfg, style=dataclasses.replace(cfg.style, n_styles=data.n_styles))
        results = train_saas(args.out, cfg, data, {s: train for s in STAGES}, progress=progress)
    print(json.dumps(results, indent=2))
    return 0


def _check_frames(frames: int, style_limit: int) -> None:
    """Training windows double as style clips, so they must fit the style encoder."""
    if not 1 <= frames <= style_limit:
        raise InputError(f"--frames must be in [1, {style_limit}] for this preset, got {frames}")


def _dataset(args: argparse.Namespace, motion, content):
    """The corpus's train split, or synthetic utterances when no corpus is given."""
    if args.corpus is not None:
        from stylecast.training.corpus_dataset import CorpusDataset

        return CorpusDataset(args.corpus, "train")
    from stylecast.training.synthetic import SyntheticDataset

    log.warning("no --corpus: training on synthetic data (a pipeline check, not a model)")
    frames = (args.frames + 16, args.frames + 96)
    return SyntheticDataset(motion, content, 8, 64, frames, seed=args.seed)
