"""Choose a motion backend by a config string.

    model = load_backend("baseline")                          # the rule-based visemes
    model = load_backend("onnx-cpu:assets/onnx/saas")         # ONNX Runtime on the CPU
    model = load_backend("onnx-cuda:assets/onnx/styletalk")   # CUDA EP, CPU fallback
    model = load_backend("onnx-tensorrt:assets/onnx/saas")    # TensorRT EP (fp16), fallbacks
    model = load_backend("tensorrt:assets/onnx/saas")         # TensorRT engines (never run here)

The part after the colon is an exported folder (`stylecast export`); without it the ONNX
kinds use assets/onnx/saas. Unknown kinds and missing folders raise InputError naming what
is accepted; a folder that is not an export raises FormatError (engine/onnx_manifest.py).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from stylecast.engine.errors import InputError
from stylecast.engine.motion_backend import MotionModel
from stylecast.paths import assets_dir

DEFAULT_MODEL = "saas"  # assets/onnx/<DEFAULT_MODEL> when no folder is given


def default_folder() -> Path:
    return assets_dir() / "onnx" / DEFAULT_MODEL


def _baseline(folder: Path | None, threads: int) -> MotionModel:
    from stylecast.engine.baseline import BaselineMotion

    return BaselineMotion()


def _onnx(providers: str) -> Callable[[Path | None, int], MotionModel]:
    def make(folder: Path | None, threads: int) -> MotionModel:
        from stylecast.engine.onnx_backend import OnnxMotion

        return OnnxMotion(folder or default_folder(), providers=providers, threads=threads)

    return make


def _tensorrt(folder: Path | None, threads: int) -> MotionModel:
    from stylecast.engine.tensorrt_backend import TensorRTMotion

    return TensorRTMotion(folder or default_folder())


BACKENDS: dict[str, Callable[[Path | None, int], MotionModel]] = {
    "baseline": _baseline,
    "onnx-cpu": _onnx("cpu"),
    "onnx-cuda": _onnx("cuda"),
    "onnx-tensorrt": _onnx("tensorrt"),
    "tensorrt": _tensorrt,
}


def check_spec(spec: str) -> tuple[str, Path | None]:
    """Check a spec without loading anything: a known kind, and a folder that exists
    where one is given. Returns (kind, folder or None); InputError naming what is accepted."""
    kind, _, folder = spec.partition(":")
    if kind not in BACKENDS:
        raise InputError(
            f"unknown motion backend {spec!r}; use one of {', '.join(BACKENDS)}, with "
            "':FOLDER' naming an exported model for the onnx and tensorrt kinds"
        )
    if kind == "baseline" and folder:
        raise InputError(f"the baseline backend takes no folder; got {spec!r}")
    path = Path(folder) if folder else None
    if path is not None and not path.is_dir():
        raise InputError(
            f"motion backend {spec!r}: {path} is not a folder; give an exported model "
            f"(a folder with manifest.json, made by 'stylecast export'), e.g. {default_folder()}"
        )
    return kind, path


def load_backend(spec: str, threads: int = 1) -> MotionModel:
    """'KIND' or 'KIND:FOLDER' (module docstring) -> a MotionModel."""
    kind, path = check_spec(spec)
    return BACKENDS[kind](path, threads)
