"""`stylecast audio ...`: the audio front end on a file (docs/audio.md)."""

from __future__ import annotations

import argparse
import logging
import time
from pathlib import Path

import numpy as np

log = logging.getLogger(__name__)


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "audio",
        help="the audio front end: per-frame log-mel, phonemes and prosody",
        description="What the motion models read from speech, one set per 30 FPS video frame; "
        "see docs/audio.md.",
    )
    sub = parser.add_subparsers(dest="audio_command", metavar="COMMAND", required=True)
    features = sub.add_parser(
        "features",
        help="compute a file's per-frame features into an .npz",
        description="Decode AUDIO (any file PyAV reads, video included), resample to 16 kHz "
        "and compute, per 30 FPS frame, the 16x80 log-mel window, the recognized CMU phoneme "
        "id and loudness/voicing/pitch, exactly as a live stream of it would give them.",
        epilog="example: stylecast audio features speech.wav -o speech_features.npz",
    )
    features.add_argument("audio", type=Path, metavar="AUDIO", help="audio or video file")
    features.add_argument("-o", "--output", type=Path, required=True, help=".npz to write")
    features.add_argument(
        "--phoneme-lookahead",
        type=int,
        default=None,
        metavar="FRAMES",
        help="frames of audio the recognizer waits for past each frame (default: 3)",
    )
    features.set_defaults(func=run_features)


def run_features(args: argparse.Namespace) -> int:
    from stylecast.engine.audio import PHONEME_LOOKAHEAD, features_for_audio
    from stylecast.engine.errors import InputError
    from stylecast.engine.face import FPS
    from stylecast.engine.phonemes import PHONEMES
    from stylecast.engine.video import load_audio

    if args.output.suffix != ".npz":
        raise InputError(f"output must be an .npz file; got {str(args.output)!r}")
    lookahead = PHONEME_LOOKAHEAD if args.phoneme_lookahead is None else args.phoneme_lookahead
    if not args.audio.is_file():
        raise InputError(f"{args.audio}: no such file")
    audio = load_audio(args.audio)
    t = time.perf_counter()
    feats = features_for_audio(audio, phoneme_lookahead=lookahead)
    elapsed = time.perf_counter() - t
    args.output.parent.mkdir(parents=True, exist_ok=True)
    np.savez(
        args.output,
        fps=np.int64(FPS),
        mel=feats.mel,  # (T, 16, 80) float32
        phonemes=feats.phonemes,  # (T,) int64 ids into phoneme_names
        prosody=feats.prosody,  # (T, 3) float32
        phoneme_names=np.array(PHONEMES),
        prosody_names=np.array(["loudness_db", "voicing", "pitch_hz"]),
        phoneme_lookahead=np.int64(lookahead),
    )
    seconds = len(audio) / 16_000
    print(
        f"{args.output}: {len(feats.phonemes)} frames ({seconds:.2f} s of audio) in "
        f"{elapsed:.2f} s; phonemes: " + " ".join(PHONEMES[i] for i in _runs(feats.phonemes)[:40])
    )
    return 0


def _runs(ids: np.ndarray) -> list[int]:
    """Ids with repeats collapsed: [0, 0, 5, 5, 0] -> [0, 5, 0]."""
    return [int(i) for k, i in enumerate(ids) if k == 0 or ids[k - 1] != i]
