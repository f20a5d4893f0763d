"""`stylecast export CHECKPOINT -o DIR`: ONNX step graphs + manifest (docs/export.md)."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from stylecast.engine.errors import BackendError, InputError

log = logging.getLogger(__name__)


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "export",
        help="export a trained motion model to ONNX step graphs for the engine",
        description="Turn a StyleTalk or SAAS checkpoint folder (model.safetensors + "
        "config.json) into ONNX graphs (streaming step, style extractor; SAAS also its pose "
        "predictor and pose decoder) with dynamic batch and a manifest.json, checked "
        "against PyTorch in ONNX Runtime. Needs the [train] extra (torch).",
        epilog="example: stylecast export runs/saas/pose/last -o assets/onnx/saas",
    )
    parser.add_argument("checkpoint", type=Path, metavar="CHECKPOINT_DIR")
    parser.add_argument("-o", "--output", type=Path, required=True, help="folder to write")
    parser.add_argument("--opset", type=int, default=17, help="ONNX opset (default: 17)")
    parser.add_argument(
        "--style",
        action="append",
        default=[],
        metavar="NAME=MOTION",
        help="also list the code of this style clip (.npz or Live Link .csv) under NAME "
        "(repeatable; 'neutral', the rest face held still, is always listed)",
    )
    parser.set_defaults(func=run_export)


def parse_styles(items: list[str]) -> dict[str, Path]:
    styles = {}
    for item in items:
        name, sep, path = item.partition("=")
        if not sep or not name or not path:
            raise InputError(f"--style takes NAME=MOTION_FILE; got {item!r}")
        styles[name] = Path(path)
    return styles


def run_export(args: argparse.Namespace) -> int:
    styles = parse_styles(args.style)
    try:
        from stylecast.export.onnx_export import export_checkpoint
    except ImportError as e:
        raise BackendError(
            f"stylecast export needs torch and onnx (pip install 'stylecast[train]'): {e}"
        ) from e
    manifest = export_checkpoint(args.checkpoint, args.output, args.opset, styles)
    sizes = {
        k: (args.output / g["file"]).stat().st_size / 1e6 for k, g in manifest["graphs"].items()
    }
    print(
        f"{manifest['model']} -> {args.output}: "
        + ", ".join(f"{k} {mb:.1f} MB" for k, mb in sizes.items())
        + f"; look-ahead {manifest['lookahead_frames']} frames; styles "
        + ", ".join(manifest["styles"])
    )
    return 0
