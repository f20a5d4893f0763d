"""`stylecast data`: the synthetic training corpus.

stylecast data synth --hours 20 --out data/corpus [--seed 0] [--workers 2]
stylecast data info data/corpus
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path


def register(subparsers: argparse._SubParsersAction) -> None:
    data = subparsers.add_parser("data", help="make and inspect the synthetic training corpus")
    sub = data.add_subparsers(dest="data_command", metavar="ACTION", required=True)

    synth = sub.add_parser(
        "synth",
        help="synthesize the corpus (deterministic by seed, resumable: complete shards are kept)",
    )
    synth.add_argument("--hours", type=float, required=True, help="hours of audio, all splits")
    synth.add_argument("--out", type=Path, required=True, help="corpus folder")
    synth.add_argument("--seed", type=int, default=0, help="decides everything (default 0)")
    synth.add_argument(
        "--workers", type=int, default=os.cpu_count() or 1, help="processes (default: all cores)"
    )
    synth.add_argument("--shard-size", type=int, default=200, help="utterances per shard file")
    synth.add_argument("--sentences", type=int, default=3000, help="distinct sentences drawn")
    synth.add_argument("--no-progress", action="store_true", help="no progress bar")
    synth.set_defaults(func=_synth)

    info = sub.add_parser("info", help="summarize a corpus folder")
    info.add_argument("root", type=Path)
    info.set_defaults(func=_info)


def _synth(args: argparse.Namespace) -> int:
    from stylecast.training.corpus import CorpusConfig, synthesize

    config = CorpusConfig(args.hours, args.seed, args.shard_size, args.sentences)
    manifest = synthesize(config, args.out, args.workers, progress=not args.no_progress)
    n = sum(s["utterances"] for s in manifest["shards"])
    print(f"{args.out}: {len(manifest['shards'])} shards, {n} utterances")
    return 0


def _info(args: argparse.Namespace) -> int:
    from stylecast.training.corpus import SPLITS, audio_seconds, read_manifest

    manifest = read_manifest(args.root)
    print(f"{args.root}: {manifest['format']} v{manifest['version']}, {manifest['config']}")
    for split in SPLITS:
        shards = [s for s in manifest["shards"] if s["split"] == split]
        made = [args.root / f"{s['name']}.npz" for s in shards]
        made = [p for p in made if p.exists()]
        hours = sum(audio_seconds(p) for p in made) / 3600
        n = sum(s["utterances"] for s in shards)
        d = manifest["splits"][split]
        print(
            f"  {split:5s}: {n} utterances in {len(shards)} shards ({len(made)} made, "
            f"{hours:.2f} h of audio), {len(d['voices'])} voices, "
            f"{len(d['performers'])} performers"
        )
    return 0
