"""`stylecast motion ...`: make and convert motion files (docs/formats.md)."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

import numpy as np

from stylecast.cli.serve import add_motion_argument

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

    audio = sub.add_parser(
        "from-audio",
        help="speech -> a motion file through the engine's motion model (no torch)",
        description="Run SPEECH through the live front end and a motion backend's streaming "
        "step, frame by frame as a session does, and write the motion aligned with the "
        "audio (frame t shows [t/30, (t+1)/30) s): ARKit-52 + pose at 30 FPS, for 3D "
        "avatars (.csv opens in Live Link Face tools).",
        epilog="examples: stylecast motion from-audio hello.wav --style happy -o hello.csv; "
        "stylecast motion from-audio hello.wav --motion onnx-cpu --style me.npz -o m.npz",
    )
    audio.add_argument("audio", type=Path, metavar="SPEECH", help="audio file (any ffmpeg format)")
    audio.add_argument("-o", "--output", type=Path, required=True, help=".npz or .csv to write")
    audio.add_argument(
        "--style",
        default="neutral",
        metavar="STYLE",
        help="a preset of the motion model (happy), a mix (happy:0.7,sad:0.3), or a style "
        "clip (.npz / .csv motion file) read by the model's style encoder (default: neutral)",
    )
    add_motion_argument(audio)
    audio.add_argument("--seed", type=int, default=0, help="the session's seed (idle, pose)")
    audio.set_defaults(func=run_from_audio)

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


def style_code(model, style: str) -> np.ndarray:
    """--style: a preset, a mix "a:0.7,b:0.3", or a motion file -> the model's code."""
    from stylecast.engine.motion import SUFFIXES, load_motion
    from stylecast.engine.motion_backend import parse_style_mix

    if Path(style).suffix.lower() in SUFFIXES:
        clip = load_motion(Path(style))
        return model.extract_style(clip.expr, clip.pose)
    weights = parse_style_mix(style)
    total = sum(weights.values())
    return sum(model.style_code(n) * np.float32(w / total) for n, w in weights.items())


def run_from_audio(args: argparse.Namespace) -> int:
    from stylecast.engine.audio import features_for_audio
    from stylecast.engine.backends import check_spec, load_backend
    from stylecast.engine.errors import InputError
    from stylecast.engine.motion import SUFFIXES, Motion, save_motion
    from stylecast.engine.motion_backend import motion_for_features
    from stylecast.engine.video import load_audio

    if args.output.suffix.lower() not in SUFFIXES:
        raise InputError(f"{args.output}: the output must be one of {SUFFIXES}")
    if not args.audio.is_file():
        raise InputError(f"{args.audio}: no such audio file")
    check_spec(args.motion_spec)
    model = load_backend(args.motion_spec)
    code = style_code(model, args.style)
    features = features_for_audio(load_audio(args.audio))
    expr, pose = motion_for_features(model, features, code, args.seed)
    motion = Motion(expr, pose)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    save_motion(args.output, motion)
    print(f"wrote {args.output}: {motion.frames} frames, {motion.duration:.2f} s at 30 FPS "
          f"({model.name}, style {args.style})")  # fmt: skip
    return 0


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
