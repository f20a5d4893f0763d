"""`stylecast generate SPEECH.wav --style NAME -o motion.npz|.csv`: motion only (52 ARKit
weights + 6-DoF pose at 30 FPS) from speech, with a learned motion model.

The audio goes through the engine's own front end (`features_for_audio`: the streaming
phone recognizer and log-mel windows, exactly as a live session computes them), and the
model runs through its streaming `step` with explicit state, one frame at a time, in
PyTorch (`models/sampling.stream`). This is the training side's command (it needs torch);
the engine's ONNX Runtime path is the export work's. `motion from-video` and friends live
in `stylecast motion`.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from stylecast.engine.errors import BackendError, InputError


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "generate",
        help="speech -> a motion file (ARKit-52 + pose, 30 FPS) with a learned model",
        description=__doc__,
        epilog="example: stylecast generate hello.wav --style happy -o hello.csv",
    )
    p.add_argument("audio", type=Path, metavar="SPEECH", help="audio file (any ffmpeg format)")
    p.add_argument(
        "--style",
        default="neutral",
        help="style name or mix, e.g. happy or happy:0.7,sad:0.3 (default: neutral)",
    )
    p.add_argument("-o", "--output", type=Path, required=True, help=".npz or .csv to write")
    p.add_argument("--model", default="saas", choices=("saas", "styletalk"))
    p.add_argument(
        "--models",
        type=Path,
        default=None,
        help="folder with saas/ and styletalk/ checkpoints (default: assets/models)",
    )
    p.add_argument("--library", type=Path, default=None, help="style folder (assets/styles)")
    p.add_argument("--seed", type=int, default=0, help="seeds SAAS's pose sampling")
    p.set_defaults(func=_generate)


def generate_motion(audio, model, code, seed: int = 0):
    """(S,) float32 16 kHz speech -> Motion, through the model's streaming step."""
    import numpy as np
    import torch

    from stylecast.engine.audio import features_for_audio
    from stylecast.engine.motion import Motion
    from stylecast.models.sampling import stream

    feats = features_for_audio(audio)
    if model.cfg.content.frontend == "phoneme":
        features = torch.from_numpy(feats.phonemes.astype(np.int64))[None]
    else:
        features = torch.from_numpy(feats.mel.astype(np.float32))[None]
    g = torch.Generator().manual_seed(seed)
    uniform = torch.rand(1, features.shape[1], generator=g)
    out = stream(model.eval(), features, torch.from_numpy(code)[None], uniform)
    return Motion(out.expr[0].numpy().clip(0.0, 1.0), out.pose[0].numpy())


def _generate(args: argparse.Namespace) -> int:
    try:
        import torch
    except ImportError as e:
        raise BackendError(f"generate needs torch ({e}); pip install 'stylecast[train]'") from e
    from stylecast.engine.motion import SUFFIXES, save_motion
    from stylecast.engine.video import load_audio
    from stylecast.models.checkpoint import WEIGHTS, load_model
    from stylecast.training import style_library as lib

    torch.set_num_threads(1)
    if args.output.suffix.lower() not in SUFFIXES:
        raise InputError(f"{args.output}: the output must be one of {SUFFIXES}")
    if not args.audio.is_file():
        raise InputError(f"{args.audio}: no such audio file")
    folder = (args.models or lib.models_dir()) / args.model
    if not (folder / WEIGHTS).exists():
        raise InputError(f"no {args.model} checkpoint in {folder}")
    model, _, _ = load_model(folder)
    code = lib.load_code(args.style, args.model, lib.weights_id(folder), args.library)
    motion = generate_motion(load_audio(args.audio), model, code, args.seed)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    save_motion(args.output, motion)
    print(f"wrote {args.output}: {motion.frames} frames ({args.model}, style {args.style})")
    return 0
