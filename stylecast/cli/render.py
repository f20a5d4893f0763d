"""`stylecast render`: a motion file + an avatar (+ speech) -> an MP4 video."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from stylecast.cli.serve import add_motion_argument
from stylecast.engine.errors import InputError

log = logging.getLogger(__name__)

MIN_SIZE, MAX_SIZE = 64, 2048  # square output sizes accepted, pixels (even: yuv420p)


def frame_size(text: str) -> int:
    """argparse type for --size: an even number of pixels in [MIN_SIZE, MAX_SIZE]."""
    try:
        size = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected pixels, got {text!r}") from None
    if not MIN_SIZE <= size <= MAX_SIZE or size % 2:
        raise argparse.ArgumentTypeError(
            f"expected an even size from {MIN_SIZE} to {MAX_SIZE} pixels, got {size}"
        )
    return size


def add_avatar_arguments(parser: argparse.ArgumentParser) -> None:
    """--avatar and --size, shared by the commands that render."""
    parser.add_argument(
        "--avatar",
        default="default",
        metavar="NAME|FILE",
        help="avatar to render: a name in assets/avatars or an .avatar file (default: default)",
    )
    parser.add_argument(
        "--size",
        type=frame_size,
        default=512,
        metavar="PIXELS",
        help="output width and height, e.g. 256 or 512 (default: 512)",
    )


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "render",
        help="render a motion file to an MP4 video",
        description="Render a motion file (.npz, or a Live Link Face .csv) with an avatar to "
        "an MP4 (H.264, 30 FPS). With --audio, the sound is muxed in, trimmed or padded with "
        "silence to the motion's length. Without MOTION, --audio is spoken by the avatar "
        "through a live session run offline (the same code path as streaming), in --style.",
        epilog="examples: stylecast render clip.npz --avatar default --audio speech.wav -o "
        "out.mp4; stylecast render --audio speech.wav --style happy -o out.mp4",
    )
    # MOTION is optional in the grammar so that live rendering (--audio with a --style,
    # driven by a session) can be added without breaking this form.
    parser.add_argument("motion", nargs="?", type=Path, metavar="MOTION", help="motion file")
    parser.add_argument("-o", "--output", type=Path, required=True, help="MP4 file to write")
    parser.add_argument("--audio", type=Path, help="speech or any sound file to mux in")
    parser.add_argument(
        "--style",
        metavar="NAME",
        help="without MOTION: speak --audio through a session in this style, a preset of "
        "the --motion model (default neutral; an unknown name lists the known ones)",
    )
    add_motion_argument(parser)
    parser.add_argument(
        "--seed", type=int, default=0, help="without MOTION: the session's seed (idle motion)"
    )
    add_avatar_arguments(parser)
    parser.set_defaults(func=run)


def make_renderer(avatar: str, size: int):
    """Load an avatar by name or path and make a renderer for it (imports OpenGL lazily)."""
    from stylecast.engine.avatar import load_avatar
    from stylecast.engine.render import Renderer

    return Renderer(load_avatar(avatar), size)


def write_movie(
    motion, args: argparse.Namespace, audio_path: Path | None, announce_fit: bool = True
) -> None:
    """Render `motion` to args.output with a progress bar, muxing audio_path if given
    (trimmed or padded to the motion; said unless announce_fit is False)."""
    from tqdm import tqdm

    from stylecast.engine.movie import audio_for_motion, render_movie

    audio = None
    if audio_path is not None:
        track = audio_for_motion(audio_path, motion)
        if track.note and announce_fit:
            log.info(track.note)
        audio = track.samples
    output = args.output
    if output.suffix.lower() != ".mp4":
        raise InputError(f"{output}: the output must be an .mp4 file")
    output.parent.mkdir(parents=True, exist_ok=True)
    renderer = make_renderer(args.avatar, args.size)
    try:
        with tqdm(total=motion.frames, unit="frame", desc="render", leave=False) as bar:
            frames = render_movie(motion, renderer, output, audio, lambda _: bar.update())
    finally:
        close = getattr(renderer, "close", None)
        if close:
            close()
    sound = "with audio" if audio is not None else "no audio"
    print(
        f"wrote {output}: {frames} frames, {frames / motion.fps:.2f} s at {motion.fps} FPS, {sound}"
    )


def run(args: argparse.Namespace) -> int:
    from stylecast.engine.motion import load_motion

    if args.motion is None:
        if args.audio is None:
            raise InputError(
                "give a MOTION file (.npz or Live Link Face .csv) to render, or --audio "
                "speech to speak through a session (with --style)"
            )
        return speak(args)
    if args.style is not None or args.motion_spec != "baseline":
        raise InputError(
            "--style and --motion apply to speech-driven rendering (--audio without MOTION); "
            f"a MOTION file ({args.motion}) already holds the motion"
        )
    motion = load_motion(args.motion)
    write_movie(motion, args, args.audio)
    return 0


def speak(args: argparse.Namespace) -> int:
    """--audio without MOTION: a real Session, run offline, writes the MP4."""
    from tqdm import tqdm

    from stylecast.engine.backends import check_spec
    from stylecast.engine.recording import record_speech

    check_spec(args.motion_spec)  # before the audio is read
    with tqdm(unit="frame", desc="session", leave=False) as bar:
        rec = record_speech(
            args.audio,
            args.output,
            avatar=args.avatar,
            style=args.style or "neutral",
            size=args.size,
            seed=args.seed,
            motion=args.motion_spec,
            on_frame=lambda _: bar.update(),
        )
    print(
        f"wrote {args.output}: {rec.frames} frames, {rec.frames / 30:.2f} s at 30 FPS, "
        f"speech {rec.speech_s:.2f} s from frame {rec.speech_start}, with audio"
    )
    return 0
