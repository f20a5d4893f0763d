"""`stylecast client ...`: talk to a running server (`stylecast serve`) over its WebSocket."""

from __future__ import annotations

import argparse
import asyncio
import json
from pathlib import Path

from stylecast.engine.errors import InputError

DEFAULT_URL = "ws://127.0.0.1:8080"


def style_arg(text: str) -> str | dict[str, float]:
    """A style name, or a JSON mix like '{"happy": 0.7, "sad": 0.3}'."""
    if text.lstrip().startswith("{"):
        try:
            mix = json.loads(text)
        except json.JSONDecodeError as e:
            raise argparse.ArgumentTypeError(f"not a JSON style mix: {text!r}") from e
        return mix
    return text


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "client",
        help="use a running server over its WebSocket (say a file, stream a microphone)",
        description="Clients of `stylecast serve` (docs/protocol.md).",
    )
    sub = parser.add_subparsers(dest="client_command", metavar="COMMAND", required=True)

    def common(p: argparse.ArgumentParser) -> None:
        p.add_argument("--url", default=DEFAULT_URL, help="server (default: %(default)s)")
        p.add_argument("--token", help="bearer token, if the server has one")
        p.add_argument("--avatar", default="default", help="avatar name (default: default)")
        p.add_argument(
            "--style",
            type=style_arg,
            default="neutral",
            help='a style name or a JSON mix such as \'{"happy": 0.7, "sad": 0.3}\'',
        )
        p.add_argument("--size", type=int, default=512, help="frame size in pixels (default: 512)")

    say = sub.add_parser(
        "say",
        help="speak an audio file through the server into an MP4",
        description="Send AUDIO over the WebSocket like a remote user, and write the frames "
        "and audio the server sends back to an MP4.",
        epilog="example: stylecast client say speech.wav -o out.mp4 --style happy",
    )
    say.add_argument("audio", type=Path, metavar="AUDIO", help="any audio file (WAV, MP3...)")
    say.add_argument("-o", "--output", type=Path, required=True, help="MP4 to write")
    common(say)
    say.set_defaults(func=run_say)

    mic = sub.add_parser(
        "mic",
        help="microphone -> server -> virtual camera and speakers",
        description="Stream the microphone to the server and send the avatar to a virtual "
        "camera (pyvirtualcam: v4l2loopback on Linux, OBS on Windows/macOS) and its voice "
        "to the speakers.",
    )
    common(mic)
    mic.add_argument("--no-speakers", action="store_true", help="do not play the avatar's voice")
    mic.set_defaults(func=run_mic)


def run_say(args: argparse.Namespace) -> int:
    from stylecast.clients.say import say

    if not args.audio.is_file():
        raise InputError(f"{args.audio}: no such audio file")
    result = say(args.url, args.audio, args.output, args.avatar, args.style, args.size, args.token)
    print(
        f"wrote {args.output}: {result.frames} frames ({result.frames / 30:.2f} s), speech "
        f"from frame {result.speech_start}, {result.position:.2f} s played, "
        f"{result.dropped_video} frames without a new picture"
    )
    return 0


def run_mic(args: argparse.Namespace) -> int:
    from stylecast.clients.mic import run_mic

    asyncio.run(
        run_mic(args.url, args.avatar, args.style, args.size, args.token, not args.no_speakers)
    )
    return 0
