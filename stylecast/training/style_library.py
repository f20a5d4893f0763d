"""The style library: named style codes for the learned motion models (needs torch).

A style is `<folder>/NAME.json` (+ `NAME.npz`, its 30 FPS motion clip, when it came from
one) in the layout the server's library uses (server/library.py):

    {"name": "happy", "source": "motion" | "video" | "corpus" | "mix", "frames": 212,
     "seconds": 7.07, "created": "...", "clip": "happy.npz" | null,
     "code": [...],                       # the default model's (SAAS) code
     "codes": {"saas": [...], "styletalk": [...]},
     "models": {"saas": "<sha256 of its weights, 12 hex>", ...},
     "detail": {...}}                     # how it was made (corpus clips, mix weights)

Each model key's code is its style encoder's output for the clip (SAAS: the multi-task VQ
extractor; StyleTalk: the style encoder), averaged over 256-frame chunks of longer clips.
A code is tied to the weights it was made with (`models`); `load_code` refuses a code made
for other weights. Codes interpolate linearly (`mix_codes`).
"""

from __future__ import annotations

import hashlib
import json
import re
import time
from collections.abc import Mapping
from pathlib import Path

import numpy as np
import torch

from stylecast.engine.errors import InputError
from stylecast.engine.motion import Motion, load_motion, save_motion
from stylecast.engine.motion_backend import parse_style_mix
from stylecast.models.checkpoint import WEIGHTS, load_model
from stylecast.paths import assets_dir

NAME_RE = re.compile(r"^[a-z0-9][a-z0-9_-]{0,39}$")
MODEL_KEYS = ("saas", "styletalk")  # the default model first: its code is "code"
MIN_CHUNK = 32  # frames: a clip's last chunk shorter than this is dropped (unless alone)


def styles_dir() -> Path:
    return assets_dir() / "styles"


def models_dir() -> Path:
    return assets_dir() / "models"


def check_name(name: str) -> str:
    if not NAME_RE.match(name):
        raise InputError(
            f"style name {name!r}: use 1-40 lowercase letters, digits, '-' or '_', "
            "starting with a letter or digit"
        )
    return name


def weights_id(checkpoint: str | Path) -> str:
    """12 hex digits of the sha256 of a checkpoint's weights file."""
    return sha256_prefix(Path(checkpoint) / WEIGHTS)


def sha256_prefix(path: str | Path) -> str:
    """12 hex digits of the sha256 of a file."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()[:12]


class StyleEncoders:
    """The style encoders of the models found in a folder of checkpoints (models/saas,
    models/styletalk), loaded once."""

    def __init__(self, folder: str | Path | None = None, keys=MODEL_KEYS) -> None:
        folder = Path(folder) if folder is not None else models_dir()
        self.models: dict[str, torch.nn.Module] = {}
        self.ids: dict[str, str] = {}
        for key in keys:
            path = folder / key
            if (path / WEIGHTS).exists():
                self.models[key], _, _ = load_model(path)
                self.ids[key] = weights_id(path)
        if not self.models:
            raise InputError(
                f"no motion model checkpoints in {folder} (looked for {', '.join(keys)}/"
                f"{WEIGHTS}); train them (docs/models.md) or pass --models"
            )

    @torch.no_grad()
    def encode(self, motion: np.ndarray) -> dict[str, np.ndarray]:
        """(T, 58) expr + pose at 30 FPS -> {model key: (style_dim,) float32 code}."""
        out = {}
        for key, model in self.models.items():
            limit = model.cfg.style.max_frames if key == "saas" else model.cfg.max_style_frames
            chunks = [motion[i : i + limit] for i in range(0, len(motion), limit)]
            if len(chunks) > 1 and len(chunks[-1]) < MIN_CHUNK:
                chunks = chunks[:-1]
            codes = []
            for c in chunks:
                clip = torch.from_numpy(np.ascontiguousarray(c, np.float32))[None]
                valid = torch.ones(clip.shape[:2], dtype=torch.bool)
                if key == "saas":
                    codes.append(model.extract_style(clip, valid).code[0])
                else:
                    codes.append(model.encode_style(clip, valid)[0])
            out[key] = torch.stack(codes).mean(0).numpy().astype(np.float32)
        return out


def motion_array(motion: Motion) -> np.ndarray:
    return np.concatenate([motion.expr, motion.pose], axis=1).astype(np.float32)


def _write(folder: Path, meta: dict, clip: Motion | None, overwrite: bool) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{meta['name']}.json"
    if path.exists() and not overwrite:
        raise InputError(f"style {meta['name']!r} exists in {folder}; pick another name")
    if clip is not None:
        save_motion(folder / f"{meta['name']}.npz", clip)
    path.write_text(json.dumps(meta, indent=1) + "\n")
    return path


def _meta(name: str, source: str, codes: Mapping[str, np.ndarray], ids: Mapping[str, str],
          frames: int | None, clip: bool, detail: dict | None = None) -> dict:  # fmt: skip
    default = next((k for k in MODEL_KEYS if k in codes), None)
    return {
        "name": name,
        "source": source,
        "frames": frames,
        "seconds": None if frames is None else round(frames / 30.0, 3),
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "clip": f"{name}.npz" if clip else None,
        "code": None if default is None else [round(float(v), 6) for v in codes[default]],
        "codes": {k: [round(float(v), 6) for v in c] for k, c in codes.items()},
        "models": dict(ids),
        "detail": detail or {},
    }


def add_style(
    name: str,
    motion: Motion,
    source: str,
    encoders: StyleEncoders,
    folder: str | Path | None = None,
    overwrite: bool = False,
) -> dict:
    """Store a clip and its codes as style NAME; returns the metadata written."""
    check_name(name)
    if motion.frames < MIN_CHUNK:
        raise InputError(f"a style clip needs >= {MIN_CHUNK} frames, got {motion.frames}")
    codes = encoders.encode(motion_array(motion))
    meta = _meta(name, source, codes, encoders.ids, motion.frames, True)
    _write(Path(folder) if folder else styles_dir(), meta, motion, overwrite)
    return meta


def read_style(name: str, folder: str | Path | None = None) -> dict:
    folder = Path(folder) if folder else styles_dir()
    path = folder / f"{name}.json"
    if not path.is_file():
        known = sorted(p.stem for p in folder.glob("*.json"))
        raise InputError(f"no style {name!r} in {folder}; available: {known}")
    return json.loads(path.read_text())


def list_styles(folder: str | Path | None = None) -> list[dict]:
    folder = Path(folder) if folder else styles_dir()
    return [json.loads(p.read_text()) for p in sorted(folder.glob("*.json"))]


def parse_mix(spec: str) -> dict[str, float]:
    """ "happy" or "happy:0.7,sad:0.3" -> {name: weight} (weights > 0, normalised later),
    every name a valid style name."""
    return {check_name(name): w for name, w in parse_style_mix(spec).items()}


def load_code(spec: str, key: str, weights: str | None = None, folder=None) -> np.ndarray:
    """The code of a style or of a mix of styles ("a:0.7,b:0.3": weighted mean) for model
    `key`; `weights` (a weights_id) refuses codes made for other weights."""
    mix = parse_mix(spec)
    total = sum(mix.values())
    code = None
    for name, w in mix.items():
        meta = read_style(name, folder)
        if key not in meta.get("codes", {}):
            raise InputError(f"style {name!r} has no {key} code (has {sorted(meta['codes'])})")
        made_for = meta.get("models", {}).get(key)
        if weights is not None and made_for != weights:
            raise InputError(
                f"style {name!r} was encoded with other {key} weights ({made_for}, now "
                f"{weights}); re-add it (stylecast style add) or remake the presets"
            )
        c = np.asarray(meta["codes"][key], np.float32) * np.float32(w / total)
        code = c if code is None else code + c
    return code


def mix_codes(spec: str, name: str, folder=None, overwrite: bool = False) -> dict:
    """Store the weighted mean of styles' codes (every model key they share) as NAME."""
    check_name(name)
    mix = parse_mix(spec)
    metas = [read_style(n, folder) for n in mix]
    keys = [k for k in MODEL_KEYS if all(k in m.get("codes", {}) for m in metas)]
    ids = {k: metas[0]["models"].get(k) for k in keys}
    for k in keys:
        if any(m["models"].get(k) != ids[k] for m in metas):
            raise InputError(f"styles {sorted(mix)} hold {k} codes of different weights")
    codes = {k: load_code(spec, k, None, folder) for k in keys}
    meta = _meta(name, "mix", codes, ids, None, False, {"mix": mix})
    _write(Path(folder) if folder else styles_dir(), meta, None, overwrite)
    return meta


def make_presets(
    corpus: str | Path,
    encoders: StyleEncoders,
    split: str = "train",
    per_emotion: int = 48,
    min_intensity: int = 1,
    folder: str | Path | None = None,
) -> list[dict]:
    """One style per emotion: the mean code of up to `per_emotion` corpus clips of that
    emotion (intensity >= min_intensity), taken in corpus order, one performer after
    another."""
    from stylecast.training.corpus import CorpusReader

    reader = CorpusReader(corpus, split)
    emotions = list(reader.manifest["emotions"])
    codes: dict[str, list[dict[str, np.ndarray]]] = {e: [] for e in emotions}
    performers: dict[str, set] = {e: set() for e in emotions}
    for u in reader:
        if u.intensity < min_intensity or len(codes[u.emotion]) >= per_emotion:
            continue
        codes[u.emotion].append(encoders.encode(np.concatenate([u.expr, u.pose], 1)))
        performers[u.emotion].add(int(u.performer))
        if all(len(v) >= per_emotion for v in codes.values()):
            break
    out = []
    for e in emotions:
        if not codes[e]:
            raise InputError(f"{corpus} {split}: no clip of emotion {e!r}")
        mean = {k: np.mean([c[k] for c in codes[e]], axis=0) for k in encoders.models}
        detail = {"corpus": str(corpus), "split": split, "clips": len(codes[e]),
                  "performers": sorted(performers[e]), "min_intensity": min_intensity}  # fmt: skip
        meta = _meta(e, "corpus", mean, encoders.ids, None, False, detail)
        _write(Path(folder) if folder else styles_dir(), meta, None, True)
        out.append(meta)
    return out


def load_clip(path: str | Path, rig_avatar: str = "default") -> tuple[Motion, str]:
    """A motion file (.npz / Live Link .csv) as is, or a video fitted through the capture
    pipeline (MediaPipe landmarks + the rig fitter) -> (motion, source)."""
    path = Path(path)
    if not path.exists():
        raise InputError(f"{path}: no such file or folder")
    if path.suffix.lower() in (".npz", ".csv"):
        return load_motion(path), "motion"
    from stylecast.engine.avatar import load_avatar
    from stylecast.engine.capture import fit_track, track_video

    return fit_track(track_video(path), load_avatar(rig_avatar).rig), "video"
