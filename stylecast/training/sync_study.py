"""Does a lip-sync discriminator tell in-sync pairs from shifted ones? Scored on val clips.

For windows of `sync_frames` frames every `stride` frames of each clip (far enough from
both ends for every shift), the discriminator's cosine of (true mouth, true audio) is
compared, window by window, with the same mouth against the audio shifted by k frames
(k = 2..15, both directions) and with a still mouth (the window's first frame held)
against the true audio. A paired accuracy of 50% is chance.

    python -m stylecast.training.sync_study --corpus data/corpus20h --limit 200 RUN [RUN ...]
    python -m stylecast.training.sync_study --corpus data/corpus20h --train runs/sync/x \\
        --steps 300 --sync-loss contrastive          # train a sync stage alone, then score it

Each RUN is a StyleTalk run folder (its sync/last) or a sync stage folder (with last/).
"""

from __future__ import annotations

import argparse
import dataclasses
import time
from pathlib import Path

import numpy as np
import torch

from stylecast.engine.errors import InputError
from stylecast.models.checkpoint import WEIGHTS, load_state_strict, read_header, read_weights
from stylecast.models.config import DiscriminatorConfig, config_from_dict, styletalk_config
from stylecast.models.losses import LipSyncDiscriminator, sync_probability

SHIFTS = tuple(range(2, 16))  # frames of audio shift scored
MARGIN = max(SHIFTS)


@torch.no_grad()
def score_sync(disc: LipSyncDiscriminator, cfg, utterances, n: int, stride: int = 3) -> dict:
    """Paired accuracies and mean P_sync = (cos + 1) / 2 of a discriminator on utterances
    (MotionUtterance); n: frames per sync window. Returns a dict:
      "sync": mean P_sync of the true pairs; "late15" / "still": of the mouth 15 frames
      late / a still mouth; "acc": {k: share of windows whose true pair beats the shift by k
      (half early, half late)}; "acc_still"; "windows": how many windows were scored."""
    disc = disc.eval()
    lower = list(cfg.motion.lower_index)
    cos_true, cos_still, cos_late15 = [], [], []
    wins = {k: [] for k in SHIFTS}
    for u in utterances:
        starts = np.arange(MARGIN, u.frames - n - MARGIN + 1, stride)
        if len(starts) == 0:
            continue
        feats = u.phonemes if cfg.content.frontend == "phoneme" else u.mel
        # Every window's audio embedding from one pass of the per-frame encoder.
        frames = disc.audio_frame(torch.from_numpy(np.ascontiguousarray(feats))[None])
        audio = disc.embed_audio_frames(frames.unfold(1, n, 1).movedim(-1, 2)[0])  # (T-n+1, D)
        idx = torch.from_numpy(starts[:, None] + np.arange(n))
        mouth = torch.from_numpy(np.ascontiguousarray(u.expr[:, lower]))[idx]  # (W, n, n_lower)
        m = disc.embed_mouth(mouth)
        held = disc.embed_mouth(mouth[:, :1].expand_as(mouth).contiguous())
        at = torch.from_numpy(starts)

        def cos(a, b):
            return torch.nn.functional.cosine_similarity(a, b, dim=-1)

        true = cos(m, audio[at])
        cos_true.append(true)
        cos_still.append(cos(held, audio[at]))
        for k in SHIFTS:
            early = cos(m, audio[at + k])  # audio from later: the mouth early
            late = cos(m, audio[at - k])  # the mouth k frames late
            if k == 15:
                cos_late15.append(late)
            wins[k].append(torch.cat([(true > early).float(), (true > late).float()]))
    if not cos_true:
        raise InputError(f"no utterance is long enough for windows of {n} +- {MARGIN} frames")
    true, still = torch.cat(cos_true), torch.cat(cos_still)

    def conf(c):
        return float(sync_probability(c).mean())

    return {
        "sync": conf(true),
        "late15": conf(torch.cat(cos_late15)),
        "still": conf(still),
        "acc": {k: float(torch.cat(v).mean()) for k, v in wins.items()},
        "acc_still": float((true > still).float().mean()),
        "windows": len(true),
    }


def load_sync(
    path: str | Path, disc_cfg: DiscriminatorConfig | None = None
) -> tuple[LipSyncDiscriminator, object]:
    """A trained sync stage: RUN (its sync/last), a stage folder (its last) or a checkpoint;
    disc_cfg: its sizes (DiscriminatorConfig() when None, as the eval assumes)."""
    path = Path(path)
    for folder in (path / "sync" / "last", path / "last", path):
        if (folder / WEIGHTS).exists():
            break
    else:
        raise InputError(f"{path} holds no sync checkpoint (RUN/sync/last, STAGE/last)")
    cfg = config_from_dict(read_header(folder)["config"])
    disc_cfg = disc_cfg or DiscriminatorConfig()
    disc = LipSyncDiscriminator(disc_cfg, cfg.content, len(cfg.motion.lower_index))
    load_state_strict(disc, read_weights(folder / WEIGHTS), str(folder))
    return disc.eval(), cfg


def format_row(name: str, r: dict) -> str:
    acc = r["acc"]
    near = np.mean([acc[k] for k in SHIFTS if k <= 5])
    far = np.mean([acc[k] for k in SHIFTS if k >= 10])
    return (
        f"| {name} | {r['sync']:.3f} | {r['late15']:.3f} | {r['still']:.3f} | "
        f"{acc[2]:.0%} | {near:.0%} | {far:.0%} | {acc[15]:.0%} | {r['acc_still']:.0%} | "
        f"{r['windows']} |"
    )


HEADER = (
    "| sync D | P_sync true | P_sync 15 late | P_sync still | acc k=2 | acc k=2-5 | "
    "acc k=10-15 | acc k=15 | acc still | windows |\n|---|---|---|---|---|---|---|---|---|---|"
)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--corpus", required=True)
    parser.add_argument("--split", default="val")
    parser.add_argument("--limit", type=int, default=200, help="first N utterances scored")
    parser.add_argument("--stride", type=int, default=3)
    parser.add_argument("--train", metavar="DIR", help="train a sync stage alone into DIR first")
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--frames", type=int, default=32)
    parser.add_argument("--lr", type=float, default=DiscriminatorConfig().sync_lr,
                        help="sync_lr (bce: the stage's lr)")  # fmt: skip
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--sync-loss", default=DiscriminatorConfig().sync_loss)
    parser.add_argument("--min-shift", type=int, default=DiscriminatorConfig().sync_min_shift)
    parser.add_argument("--no-still", action="store_true")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("runs", nargs="*", help="NAME=PATH or PATH of trained sync stages")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    from stylecast.training.corpus_dataset import CorpusDataset

    runs = [r.split("=", 1) if "=" in r else (r, r) for r in args.runs]
    if args.train:
        from stylecast.training.loop import TrainConfig, run_training
        from stylecast.training.train_styletalk import LipSyncTrainer

        cfg = styletalk_config("small", "mel")
        data = CorpusDataset(args.corpus, "train")
        disc = dataclasses.replace(
            DiscriminatorConfig(n_styles=data.n_styles), sync_loss=args.sync_loss,
            sync_min_shift=args.min_shift, sync_still=not args.no_still, sync_lr=args.lr,
        )  # fmt: skip
        train = TrainConfig(steps=args.steps, batch=args.batch, frames=args.frames,
                            style_frames=args.frames, lr=args.lr, seed=args.seed)  # fmt: skip
        t0 = time.perf_counter()
        last = run_training(args.train, LipSyncTrainer(cfg, disc, train), data, train,
                            progress=False)  # fmt: skip
        print(f"trained {args.train}: {args.steps} steps in {time.perf_counter() - t0:.0f} s, "
              f"last losses {last}")  # fmt: skip
        runs.append((args.train, args.train))
    data = CorpusDataset(args.corpus, args.split)
    utts = [data[i] for i in range(min(args.limit, len(data)))]
    print(HEADER)
    for name, path in runs:
        disc, cfg = load_sync(path)
        n = DiscriminatorConfig().sync_frames
        print(format_row(name, score_sync(disc, cfg, utts, n, args.stride)), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
