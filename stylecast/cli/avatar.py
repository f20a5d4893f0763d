"""`stylecast avatar build PORTRAIT -o NAME.avatar`: portrait -> avatar bundle."""

from __future__ import annotations

import argparse
import logging

from stylecast.engine.errors import BackendError, InputError

log = logging.getLogger(__name__)


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "avatar", help="build avatar bundles from portraits", description=__doc__
    )
    sub = parser.add_subparsers(dest="avatar_command", metavar="ACTION")
    build = sub.add_parser(
        "build",
        help="portrait image -> .avatar bundle (needs the [avatar] extra)",
        description="Find the face (MediaPipe), fit its rest pose and identity, crop and level "
        "a square around it, rig the 52 ARKit blendshapes and write one .avatar file.",
    )
    src = build.add_mutually_exclusive_group(required=True)
    src.add_argument("portrait", nargs="?", help="portrait image (JPEG, PNG, ...)")
    src.add_argument(
        "--astronaut",
        action="store_true",
        help="use scikit-image's public-domain astronaut portrait (makes the default avatar)",
    )
    build.add_argument("-o", "--output", required=True, help="output file, NAME.avatar")
    build.add_argument(
        "--size", type=int, default=512, choices=(256, 512), help="side of the square output"
    )
    build.add_argument(
        "--face",
        type=int,
        default=None,
        metavar="N",
        help="which face when there are several: 0 = the largest (default, with a warning)",
    )
    build.set_defaults(func=_build)
    parser.set_defaults(func=lambda args: parser.print_help() or 2)


def _build(args: argparse.Namespace) -> int:
    from stylecast.engine.avatar import save_avatar
    from stylecast.engine.avatar_build import build_avatar, build_avatar_from_file

    if not args.output.endswith(".avatar"):
        raise InputError(f"output {args.output!r} should end in .avatar")
    if args.astronaut:
        try:
            from skimage import data
        except ImportError as e:
            raise BackendError(
                f"scikit-image is needed for --astronaut ({e}); pip install 'stylecast[avatar]'"
            ) from e
        avatar = build_avatar(data.astronaut(), size=args.size, face=args.face)
    else:
        avatar = build_avatar_from_file(args.portrait, size=args.size, face=args.face)
    path = save_avatar(avatar, args.output)
    log.info(
        "wrote %s (%d x %d, %.0f KB)", path, avatar.size, avatar.size, path.stat().st_size / 1024
    )
    return 0
