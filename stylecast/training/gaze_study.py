"""Branch a StyleTalk generator run from one of its checkpoints with other loss weights:
the short, paired experiments of docs/training.md's gaze section.

    python -m stylecast.training.gaze_study --source runs/styletalk-20h-snap/step1000 \\
        --discriminators runs/styletalk-20h --corpus data/corpus20h --out runs/gaze/style01 \\
        --steps 2400 --keep 1500 2000 --style-weight 0.1

Every arm starts from the same weights, optimiser and temporal-discriminator state, and the
loop draws batch t from (seed, t), so two arms differ only in what the flags change. The
branch's checkpoints record where they came from (meta "branched_from").
"""

from __future__ import annotations

import argparse
import dataclasses
import json
from pathlib import Path

from stylecast.engine.errors import InputError


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--source", required=True, help="generator checkpoint with training state")
    p.add_argument("--discriminators", required=True, help="run folder with sync/ and style_d/")
    p.add_argument("--style-d", help="style_d run folder to use instead (e.g. one without gaze)")
    p.add_argument("--corpus", required=True)
    p.add_argument("--out", required=True, help="branch run folder (resumed if it exists)")
    p.add_argument("--steps", type=int, required=True, help="generator step to train to")
    p.add_argument("--keep", type=int, nargs="*", default=(), help="steps kept as step<N>")
    p.add_argument("--style-weight", type=float)
    p.add_argument("--triplet-weight", type=float)
    p.add_argument("--triplet-margin", type=float)
    p.add_argument("--eye-weight", type=float, default=0.0)
    p.add_argument("--style-d-no-gaze", action="store_true")
    p.add_argument("--pose-smoothing", type=float, help="StyleTalkConfig.pose_smoothing")
    p.add_argument("--threads", type=int, default=1)
    args = p.parse_args(argv)

    import torch

    from stylecast.models.checkpoint import (
        WEIGHTS,
        load_state_strict,
        load_training_state,
        read_header,
        read_weights,
    )
    from stylecast.models.config import DiscriminatorConfig, LossConfig, config_from_dict
    from stylecast.models.losses import LipSyncDiscriminator, StyleDiscriminator
    from stylecast.training.corpus_dataset import CorpusDataset
    from stylecast.training.loop import LAST, TrainConfig, _checkpoint, run_training
    from stylecast.training.train_styletalk import (
        GazeLossConfig,
        RigLossConfig,
        StyleTalkTrainer,
    )

    torch.set_num_threads(args.threads)
    source = Path(args.source)
    header = read_header(source)
    cfg = config_from_dict(header["config"])
    if args.pose_smoothing is not None:  # a filter on the output: no weights change
        cfg = dataclasses.replace(cfg, pose_smoothing=args.pose_smoothing)
    meta = header["meta"]
    changes = {
        k: v
        for k, v in (
            ("style_weight", args.style_weight),
            ("triplet_weight", args.triplet_weight),
            ("triplet_margin", args.triplet_margin),
        )
        if v is not None
    }
    losses = dataclasses.replace(LossConfig(**meta["loss"]), **changes)
    rig = RigLossConfig(**meta["rig_loss"])
    gaze = GazeLossConfig(eye_weight=args.eye_weight, style_d_gaze=not args.style_d_no_gaze)
    data = CorpusDataset(args.corpus, "train")
    disc = DiscriminatorConfig(n_styles=data.n_styles)
    train = TrainConfig(
        steps=args.steps, batch=8, frames=32, style_frames=32, seed=0, keep_steps=tuple(args.keep)
    )

    runs = Path(args.discriminators)
    sync_d = LipSyncDiscriminator(disc, cfg.content, len(cfg.motion.lower_index))
    load_state_strict(sync_d, read_weights(runs / "sync" / LAST / WEIGHTS), "sync")
    style_dir = Path(args.style_d) if args.style_d else runs / "style_d"
    style_meta = read_header(style_dir / LAST).get("meta", {})
    if style_meta.get("style_d_gaze", True) != gaze.style_d_gaze:
        raise InputError(f"{style_dir} was trained with style_d_gaze != {gaze.style_d_gaze}")
    style_d = StyleDiscriminator(disc, cfg.motion.n_expr)
    load_state_strict(style_d, read_weights(style_dir / LAST / WEIGHTS), "style_d")

    trainer = StyleTalkTrainer(cfg, train, losses, disc, sync_d, style_d, rig, gaze)
    trainer.checkpoint_meta["branched_from"] = {
        "source": str(source),
        "step": meta["step"],
        "loss": meta["loss"],
        "style_d": str(style_dir),
        "config": header["config"],
    }
    out = Path(args.out) / "generator"
    if not (out / LAST).exists():
        load_state_strict(trainer.model, read_weights(source / WEIGHTS), str(source))
        step = int(load_training_state(source, trainer.aux, trainer.optimizers)["step"])
        out.mkdir(parents=True, exist_ok=True)
        _checkpoint(out / LAST, trainer, step, meta.get("losses", {}))
    result = run_training(out, trainer, data, train, progress=False)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
