"""`stylecast demo`: the offline demo. Renders the scripted motion with the default avatar
and a spoken sentence (espeak-ng) to out/demo.mp4.

docs/sample.mp4 and docs/sample_frames.jpg are made by:
    stylecast demo --size 256 -o docs/sample.mp4 --strip docs/sample_frames.jpg
"""

from __future__ import annotations

import argparse
import logging
import shutil
import subprocess
import tempfile
from pathlib import Path

import numpy as np

from stylecast.cli.render import add_avatar_arguments, write_movie

log = logging.getLogger(__name__)

SENTENCE = "Hello! I am a stylecast avatar. I blink, smile and turn my head as I speak."
JAW_MAX = 0.55  # jawOpen at the loudest speech: open, but not a yawn
LOUDNESS_PERCENTILE = 95  # the loudness that maps to JAW_MAX (robust to peaks)
TAIL_SECONDS = 0.6  # silence after the sentence, so the face settles before the end
STRIP_FRAMES = 5  # frames in the --strip picture, evenly spaced


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "demo",
        help="render a short demo video (scripted motion + spoken sentence)",
        description="Render the default avatar blinking, smiling, turning its head and "
        "speaking a sentence (espeak-ng; the jaw follows the loudness of the speech until "
        "the motion models are trained) to an MP4, and print where it is. Without "
        "espeak-ng the video is silent and the jaw follows a scripted pattern.",
    )
    parser.add_argument(
        "-o", "--output", type=Path, default=Path("out/demo.mp4"), help="MP4 to write"
    )
    parser.add_argument("--text", default=SENTENCE, help="the sentence to speak")
    parser.add_argument(
        "--no-audio", action="store_true", help="skip speech: a silent, scripted video"
    )
    parser.add_argument(
        "--strip",
        type=Path,
        metavar="IMAGE",
        help=f"also save {STRIP_FRAMES} frames of the video side by side, to look at",
    )
    add_avatar_arguments(parser)
    parser.set_defaults(func=run)


def speak(text: str, folder: Path) -> Path | None:
    """A WAV of `text` spoken by espeak-ng, or None (with a warning) if it is missing."""
    espeak = shutil.which("espeak-ng")
    if espeak is None:
        log.warning("espeak-ng is not installed: the demo will be silent (apt install espeak-ng)")
        return None
    wav = folder / "speech.wav"
    result = subprocess.run(
        [espeak, "-v", "en-us", "-s", "150", "-w", str(wav), text],
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode != 0 or not wav.exists():
        log.warning("espeak-ng failed (%s): the demo will be silent", result.stderr.strip())
        return None
    return wav


def jaw_from_loudness(audio: np.ndarray, rate: int, frames: int, fps: int) -> np.ndarray:
    """(frames,) jawOpen following the speech's loudness: RMS per video frame, scaled so
    the loud syllables reach JAW_MAX, with a light attack/release smoothing."""
    hop = rate // fps  # samples per video frame
    padded = np.zeros(frames * hop, np.float32)
    padded[: min(len(audio), len(padded))] = audio[: len(padded)]
    rms = np.sqrt((padded.reshape(frames, hop) ** 2).mean(axis=1))
    loud = np.percentile(rms[rms > 0], LOUDNESS_PERCENTILE) if np.any(rms > 0) else 1.0
    level = np.clip(rms / max(loud, 1e-6), 0.0, 1.0) ** 0.7  # open early on soft sounds
    jaw = np.zeros(frames)
    for t in range(frames):  # fast attack, slower release, as a jaw moves
        prev = jaw[t - 1] if t else 0.0
        rate_t = 0.6 if level[t] > prev else 0.35
        jaw[t] = prev + rate_t * (level[t] - prev)
    return (JAW_MAX * jaw).astype(np.float32)


def run(args: argparse.Namespace) -> int:
    from stylecast.engine.face import FPS, INDEX
    from stylecast.engine.motion import Motion, scripted_motion
    from stylecast.engine.video import load_audio

    with tempfile.TemporaryDirectory(prefix="stylecast-demo-") as tmp:
        wav = None if args.no_audio else speak(args.text, Path(tmp))
        if wav is None:
            motion = scripted_motion(6.0)
        else:
            rate = 16_000
            audio = load_audio(wav, rate)
            seconds = len(audio) / rate + TAIL_SECONDS
            scripted = scripted_motion(seconds)
            expr = np.array(scripted.expr)
            expr[:, INDEX["jawOpen"]] = jaw_from_loudness(audio, rate, scripted.frames, FPS)
            motion = Motion(expr, scripted.pose)
        write_movie(motion, args, wav, announce_fit=False)
    print(f"demo video: {args.output.resolve()}")
    if args.strip:
        save_strip(args.output, args.strip)
        print(f"frames: {args.strip.resolve()}")
    return 0


def save_strip(video: Path, png: Path) -> None:
    """STRIP_FRAMES evenly spaced frames of `video`, side by side, in an image file (its
    suffix picks the format: .png, .jpg)."""
    import cv2

    from stylecast.engine.video import VideoReader

    with VideoReader(video) as reader:
        frames = list(reader)
    picks = np.linspace(0, len(frames) - 1, STRIP_FRAMES).round().astype(int)
    strip = np.hstack([frames[i] for i in picks])
    png.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(png), cv2.cvtColor(strip, cv2.COLOR_RGB2BGR))
