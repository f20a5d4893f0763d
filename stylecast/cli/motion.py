"""`stylecast motion ...`: make and convert motion files (docs/formats.md)."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

log = logging.getLogger(__name__)


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "motion",
        help="make and convert motion files (.npz, Live Link Face .csv)",
        description="Motion files hold 52 ARKit blendshape weights and a 6-DoF head pose "
        "per frame at 30 FPS; see docs/formats.md.",
    )
    sub = parser.add_subparsers(dest="motion_command", metavar="COMMAND", required=True)

    video = sub.add_parser(
        "from-video",
        help="fit a motion to the face in a video (or a folder of images)",
        description="Track the face in VIDEO with MediaPipe, fit the head pose and the 52 "
        "ARKit weights per frame against the rig's blendshapes, and write a 30 FPS motion. "
        "The person's resting face is estimated from the video itself, unless --avatar says "
        "the video is a rendering of that stylecast avatar.",
        epilog="example: stylecast motion from-video talk.mp4 -o talk.npz",
    )
    video.add_argument("video", type=Path, metavar="VIDEO", help="video file or image folder")
    video.add_argument("-o", "--output", type=Path, required=True, help=".npz or .csv to write")
    video.add_argument(
        "--avatar",
        metavar="NAME|FILE",
        help="the video shows this avatar rendered by stylecast: fit against its own rest "
        "face (exact neutral) instead of estimating one",
    )
    video.add_argument(
        "--rig",
        default="default",
        metavar="NAME|FILE",
        help="avatar whose blendshapes are fitted when --avatar is not given (default: default)",
    )
    video.add_argument(
        "--fps",
        type=float,
        default=30.0,
        help="frame rate of an image folder (videos carry their own; default: 30)",
    )
    video.set_defaults(func=run_from_video)

    convert = sub.add_parser(
        "convert",
        help="convert between .npz and Live Link Face .csv",
        epilog="example: stylecast motion convert take.csv -o take.npz",
    )
    convert.add_argument("input", type=Path, metavar="INPUT", help=".npz or .csv motion")
    convert.add_argument("-o", "--output", type=Path, required=True, help=".npz or .csv")
    convert.set_defaults(func=run_convert)

    script = sub.add_parser(
        "script",
        help="write the scripted test motion (jaw, blinks, smiles, head turns)",
        description="A motion of known coefficients: jaw opening and closing, blinks and "
        "winks, smiles, head turns to +-20 deg yaw and +-10 deg pitch.",
    )
    script.add_argument("-o", "--output", type=Path, required=True, help=".npz or .csv")
    script.add_argument("--seconds", type=float, default=6.0, help="length (default: 6)")
    script.set_defaults(func=run_script)


def run_from_video(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from stylecast.engine.avatar import load_avatar
    from stylecast.engine.capture import (
        fit_track,
        footage_length,
        neutral_of_avatar,
        seen_at_of,
        track_video,
    )
    from stylecast.engine.errors import InputError
    from stylecast.engine.motion import SUFFIXES, save_motion

    if args.output.suffix.lower() not in SUFFIXES:
        raise InputError(f"{args.output}: the output must be one of {SUFFIXES}")
    total = footage_length(args.video) or None
    with tqdm(total=total, unit="frame", desc="landmarks", leave=False) as bar:
        track = track_video(args.video, args.fps, lambda _: bar.update())
    if args.avatar:
        from stylecast.engine.render import Renderer

        avatar = load_avatar(args.avatar)
        size = _frame_size(args.video)
        # Footage of our own avatar: fit against its rest frame as MediaPipe reads it, and
        # take off what MediaPipe misreads on this face by re-rendering the fit (fit.SeenAt).
        with Renderer(avatar, size) as renderer:
            motion = fit_track(
                track, avatar.rig, neutral_of_avatar(renderer), seen_at=seen_at_of(renderer)
            )
    else:
        motion = fit_track(track, load_avatar(args.rig).rig)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    save_motion(args.output, motion)
    print(f"wrote {args.output}: {motion.frames} frames, {motion.duration:.2f} s at 30 FPS")
    return 0


def _frame_size(path: Path) -> int:
    """Width of the footage's frames (renderings of an avatar are square)."""
    from stylecast.engine.capture import image_folder_frames, read_image
    from stylecast.engine.video import probe

    if path.is_dir():
        return read_image(image_folder_frames(path)[0]).shape[1]
    return probe(path).width


def run_convert(args: argparse.Namespace) -> int:
    from stylecast.engine.motion import load_motion, save_motion

    motion = load_motion(args.input)
    save_motion(args.output, motion)
    print(f"wrote {args.output}: {motion.frames} frames, {motion.duration:.2f} s at 30 FPS")
    return 0


def run_script(args: argparse.Namespace) -> int:
    from stylecast.engine.motion import save_motion, scripted_motion

    motion = scripted_motion(args.seconds)
    save_motion(args.output, motion)
    print(f"wrote {args.output}: {motion.frames} frames, {motion.duration:.2f} s at 30 FPS")
    return 0
