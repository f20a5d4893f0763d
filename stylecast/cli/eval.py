"""`stylecast eval --corpus DIR [--saas RUN_OR_CKPT] [--styletalk ...]`: the motion systems
side by side on a corpus split (training/evaluate.py). Needs the [train] extra (torch)."""

from __future__ import annotations

import argparse
import json
import logging
import time
from pathlib import Path

from stylecast.engine.errors import BackendError, InputError

log = logging.getLogger(__name__)
ARRAYS = "style_arrays.npz"  # per system: generated clip features and style codes


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "eval",
        help="evaluate the baseline, StyleTalk and SAAS on the corpus's test split",
        description=__doc__,
        epilog="example: stylecast eval --corpus data/corpus6h --saas assets/models/saas "
        "--styletalk assets/models/styletalk --sync runs/styletalk --out runs/eval "
        "--card docs/model-card.md",
    )
    p.add_argument("--corpus", required=True, metavar="DIR", help="corpus folder")
    p.add_argument(
        "--split",
        default="test",
        choices=("test", "val"),
        help="split to evaluate (test: unseen performers and voices; never train)",
    )
    p.add_argument("--saas", metavar="DIR", help="SAAS checkpoint folder (model.safetensors)")
    p.add_argument("--styletalk", metavar="DIR", help="StyleTalk checkpoint folder")
    p.add_argument("--saas-name", default=None, help="row name of --saas (default: SAAS)")
    p.add_argument(
        "--saas-no-hyperstyle",
        metavar="DIR",
        help="expression-only SAAS retrained without HyperStyle (training/ablation.py)",
    )
    p.add_argument(
        "--ablation",
        action="append",
        metavar="LABEL=DIR",
        help="an expression-only retrained ablation checkpoint shown as row LABEL (repeatable)",
    )
    p.add_argument(
        "--system",
        action="append",
        metavar="LABEL=DIR",
        help="a further full StyleTalk or SAAS checkpoint shown as row LABEL, e.g. the other "
        "front end (repeatable)",
    )
    p.add_argument(
        "--sync", metavar="RUN", help="StyleTalk run folder whose sync/last scores lip sync"
    )
    p.add_argument("--limit", type=int, default=None, help="evaluate at most N utterances")
    p.add_argument(
        "--every",
        type=int,
        default=1,
        metavar="K",
        help="evaluate every K-th utterance of the split (an even subsample; default: all)",
    )
    p.add_argument("--samples", type=int, default=3, help="pose samples per utterance")
    p.add_argument(
        "--diversity-utts",
        type=int,
        default=None,
        metavar="N",
        help="draw the pose samples for diversity on the first N utterances only (default: all)",
    )
    p.add_argument(
        "--no-mean-face", action="store_true", help="skip the static mean-face reference row"
    )
    p.add_argument(
        "--no-baseline",
        action="store_true",
        help="skip the viseme baseline row (a run whose rows another run will --merge)",
    )
    p.add_argument(
        "--table-from",
        type=Path,
        metavar="RESULTS_JSON",
        help="evaluate nothing: remake the table (and --card) from this results.json and the "
        "--merge files",
    )
    p.add_argument(
        "--merge",
        action="append",
        type=Path,
        metavar="RESULTS_JSON",
        help="also show the system rows of an earlier run's results.json, made with the same "
        "corpus, split, subsample, seed, samples, sync judge and rig (checked); repeatable",
    )
    p.add_argument(
        "--rename",
        action="append",
        metavar="OLD=NEW",
        help="show the --merge files' row OLD as NEW (e.g. an earlier 'StyleTalk' beside a "
        "new one; OLD=>NEW when a name holds '='); repeatable",
    )
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--no-knockouts", action="store_true", help="skip the SAAS knock-out rows")
    p.add_argument("--out", required=True, type=Path, help="folder for results.json + figure")
    p.add_argument("--card", type=Path, help="write the table into this markdown file's "
                   "<!-- eval:begin/end --> section")  # fmt: skip
    p.add_argument("--threads", type=int, default=1, help="torch CPU threads")
    p.set_defaults(func=_eval)


def protocol(args: argparse.Namespace) -> dict:
    """What makes two runs' rows comparable: the same utterances, seeds, judge and rig."""
    import hashlib

    import numpy as np

    from stylecast.engine.avatar import load_avatar

    rig = load_avatar("default").rig  # the metrics read its neutral mesh and blendshapes
    digest = hashlib.sha256()
    for a in (rig.neutral, rig.basis):
        digest.update(np.ascontiguousarray(a, np.float32).tobytes())
    return {
        "corpus": str(Path(args.corpus).resolve()),
        "split": args.split,
        "every": args.every,
        "limit": args.limit,
        "seed": args.seed,
        "samples": args.samples,
        "diversity_utts": args.diversity_utts,
        "sync": None if args.sync is None else str(Path(args.sync).resolve()),
        "sync_weights": None if args.sync is None else sync_weights_id(args.sync),
        "rig": digest.hexdigest()[:12],
    }


def sync_weights_id(run: str | Path) -> str | None:
    """First 12 hex of the sha256 of RUN's sync/last weights (the judge itself, not only its
    folder: a run retrained in place must not merge with rows its old judge scored)."""
    import hashlib

    from stylecast.models.checkpoint import WEIGHTS

    path = Path(run) / "sync" / "last" / WEIGHTS
    return hashlib.sha256(path.read_bytes()).hexdigest()[:12] if path.is_file() else None


def _eval(args: argparse.Namespace) -> int:
    try:
        import torch
    except ImportError as e:
        raise BackendError(f"eval needs torch ({e}); pip install 'stylecast[train]'") from e
    import numpy as np

    from stylecast.engine.avatar import load_avatar
    from stylecast.training import evaluate as ev

    if args.table_from is not None:
        try:
            results = json.loads(args.table_from.read_text())
        except (OSError, ValueError) as e:
            raise InputError(f"--table-from {args.table_from}: not a results.json ({e})") from e
        for path in args.merge or []:
            ev.merge_rows(results, path, _renames(args.rename))
        return _report(ev, results, args)
    if args.limit is not None and args.limit < 2:
        raise InputError(f"--limit must be >= 2, got {args.limit}")
    if args.samples < 1:
        raise InputError(f"--samples must be >= 1, got {args.samples}")
    if args.every < 1:
        raise InputError(f"--every must be >= 1, got {args.every}")
    if args.diversity_utts is not None and args.diversity_utts < 1:
        raise InputError(f"--diversity-utts must be >= 1, got {args.diversity_utts}")
    torch.set_num_threads(max(args.threads, 1))
    started = time.perf_counter()
    extra = ev.parse_labelled(args.system, "--system")
    ablations = ev.parse_labelled(args.ablation, "--ablation")
    args.out.mkdir(parents=True, exist_ok=True)
    utts, pool = ev.load_eval_set(args.corpus, args.split, args.limit, args.every)
    if len(utts) < 2:
        raise InputError(f"{args.corpus} {args.split}: {len(utts)} utterances, need >= 2")
    log.info("%d of the %d utterances of %s %s loaded in %.0f s", len(utts), len(pool),
             args.corpus, args.split, time.perf_counter() - started)  # fmt: skip
    systems = ev.load_systems(args.saas, args.styletalk, not args.no_knockouts,
                              args.saas_no_hyperstyle, extra, ablations,
                              args.saas_name, not args.no_baseline)  # fmt: skip
    if not args.no_mean_face:
        systems.insert(1, ev.MeanFace.from_corpus(args.corpus))
    sync = ev.load_sync_discriminator(args.sync) if args.sync else None
    rig = load_avatar("default").rig
    results = ev.evaluate(utts, systems, rig, sync, args.samples, args.seed, args.diversity_utts,
                          pool)  # fmt: skip
    np.savez_compressed(args.out / ARRAYS, **results.pop("arrays"))  # for style_study.py
    results["protocol"] = protocol(args)
    results["split"] = args.split
    results["every"] = args.every
    for path in args.merge or []:
        ev.merge_rows(results, path, _renames(args.rename))
    learned = [s for s in systems if isinstance(s, (ev.StyleTalkSystem, ev.SAASSystem))]
    if learned:
        study = ev.interpolation_study(utts, learned[:2] if len(learned) > 1 else learned)
        results["interpolation"] = study
        ev.plot_interpolation(study, args.out / "style-interpolation.png")
    results["wall_seconds"] = time.perf_counter() - started
    return _report(ev, results, args)


def _renames(items: list[str] | None) -> dict[str, str]:
    """["OLD=NEW", ...] -> {OLD: NEW}; "OLD=>NEW" when a name holds "=" itself."""
    out = {}
    for item in items or []:
        old, sep, new = item.partition("=>" if "=>" in item else "=")
        if not sep or not old.strip() or not new.strip():
            raise InputError(f"--rename takes OLD=NEW or OLD=>NEW, got {item!r}")
        out[old.strip()] = new.strip()
    return out


def _report(ev, results: dict, args: argparse.Namespace) -> int:
    args.out.mkdir(parents=True, exist_ok=True)
    ev.save_json(results, args.out / "results.json")
    table = ev.markdown_table(results)
    print(table)
    if args.card:
        ev.write_card_section(args.card, table)
        log.info("wrote the table into %s", args.card)
    return 0
