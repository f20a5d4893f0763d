"""`stylecast style ...`: the style library of the learned motion models (needs torch).

stylecast style add talk.npz -o calm           # a motion file (.npz / Live Link .csv)
stylecast style add talk.mp4 -o calm           # a video, fitted through MediaPipe + the rig
stylecast style presets --corpus data/corpus6h # the 8 emotions -> assets/styles/
stylecast style mix happy:0.7,sad:0.3 -o wistful
stylecast style list
"""

from __future__ import annotations

import argparse
from pathlib import Path

from stylecast.engine.errors import BackendError


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "style", help="style codes for the learned motion models", description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )  # fmt: skip
    sub = parser.add_subparsers(dest="style_command", metavar="COMMAND", required=True)

    def common(p: argparse.ArgumentParser) -> None:
        p.add_argument("--library", type=Path, default=None,
                       help="style folder (default: assets/styles)")  # fmt: skip
        p.add_argument("--models", type=Path, default=None,
                       help="folder with saas/ and styletalk/ checkpoints (default: "
                       "assets/models)")  # fmt: skip

    add = sub.add_parser("add", help="store a clip's style codes under a name")
    add.add_argument("clip", type=Path, metavar="CLIP", help=".npz / .csv motion, or a video")
    add.add_argument("-o", "--name", required=True, help="style name")
    add.add_argument("--rig", default="default", help="avatar whose rig fits a video")
    add.add_argument("--force", action="store_true", help="replace a style of that name")
    common(add)
    add.set_defaults(func=_add)

    presets = sub.add_parser("presets", help="make the 8 emotion presets from a corpus")
    presets.add_argument("--corpus", required=True, type=Path, metavar="DIR")
    presets.add_argument("--split", default="train", choices=("train", "val", "test"))
    presets.add_argument("--per-emotion", type=int, default=48, help="clips averaged per emotion")
    presets.add_argument("--min-intensity", type=int, default=1, choices=(0, 1, 2))
    common(presets)
    presets.set_defaults(func=_presets)

    mix = sub.add_parser("mix", help="interpolate styles: the weighted mean of their codes")
    mix.add_argument("spec", metavar="A:W,B:W", help="e.g. happy:0.7,sad:0.3")
    mix.add_argument("-o", "--name", required=True)
    mix.add_argument("--force", action="store_true")
    common(mix)
    mix.set_defaults(func=_mix)

    ls = sub.add_parser("list", help="the styles in the library")
    common(ls)
    ls.set_defaults(func=_list)


def _lib():
    try:
        import torch

        torch.set_num_threads(1)
    except ImportError as e:
        raise BackendError(f"style codes need torch ({e}); pip install 'stylecast[train]'") from e
    from stylecast.training import style_library

    return style_library


def _add(args: argparse.Namespace) -> int:
    lib = _lib()
    lib.check_name(args.name)
    motion, source = lib.load_clip(args.clip, args.rig)
    meta = lib.add_style(args.name, motion, source, lib.StyleEncoders(args.models),
                         args.library, args.force)  # fmt: skip
    print(f"style {meta['name']}: {meta['frames']} frames from {source}, codes for "
          f"{', '.join(meta['codes'])}")  # fmt: skip
    return 0


def _presets(args: argparse.Namespace) -> int:
    lib = _lib()
    metas = lib.make_presets(args.corpus, lib.StyleEncoders(args.models), args.split,
                             args.per_emotion, args.min_intensity, args.library)  # fmt: skip
    for m in metas:
        print(f"{m['name']}: mean of {m['detail']['clips']} clips")
    return 0


def _mix(args: argparse.Namespace) -> int:
    lib = _lib()
    meta = lib.mix_codes(args.spec, args.name, args.library, args.force)
    print(f"style {meta['name']}: {args.spec} ({', '.join(meta['codes'])})")
    return 0


def _list(args: argparse.Namespace) -> int:
    lib = _lib()
    for m in lib.list_styles(args.library):
        print(f"{m['name']:16s} {m['source']:7s} {', '.join(m.get('codes', {}))}")
    return 0
