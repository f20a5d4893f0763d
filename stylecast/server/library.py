"""The server's avatars and styles: the shipped ones plus what users upload.

Avatars: the bundles in assets/avatars (builtin) and `<data_dir>/avatars/NAME.avatar`
(uploaded portraits, built with the engine's avatar builder). Loaded once, then cached.

Styles: the motion model's presets (`Session.model.styles`: today the baseline's neutral,
happy, sad, angry, surprised) and uploaded clips. An upload (a video, or a .npz / Live Link
.csv motion file) is kept as its 30 FPS motion clip, `<data_dir>/styles/NAME.npz` (52 ARKit
weights + pose per frame, docs/formats.md), with `NAME.json` beside it (source, frames,
seconds, and `code`: null until a style encoder has turned the clip into a style code).
The learned style encoder reads these clips to make codes; until a motion model offers one,
an uploaded style is listed with `"usable": false` and refused by `start`/`set_style`.

Every method here may block (file I/O, MediaPipe): the app calls them in an executor.
"""

from __future__ import annotations

import json
import logging
import re
import tempfile
import threading
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from stylecast.engine.avatar import SUFFIX, Avatar, load_avatar, save_avatar
from stylecast.engine.errors import FormatError, InputError
from stylecast.engine.motion import Motion, load_motion, save_motion
from stylecast.paths import assets_dir

log = logging.getLogger(__name__)

NAME_RE = re.compile(r"^[a-z0-9][a-z0-9_-]{0,39}$")  # names of uploads (file-safe)
MIN_STYLE_S = 1.0  # shortest style clip accepted, seconds
AVATAR_SIZE = 512  # uploaded portraits are built at this size (pixels)
VIDEO_TYPES = {  # Content-Type of a style video -> the suffix it is stored under for decoding
    "video/mp4": ".mp4",
    "video/webm": ".webm",
    "video/quicktime": ".mov",
    "video/x-matroska": ".mkv",
}
MOTION_TYPES = {"application/x-npz": ".npz", "text/csv": ".csv"}
IMAGE_TYPES = ("image/jpeg", "image/png", "image/webp", "image/bmp")


class ConflictError(InputError):
    """The name is taken."""


def check_name(name: str) -> str:
    if not NAME_RE.match(name):
        raise InputError(
            f"name {name!r} is not accepted; use 1-40 characters of a-z, 0-9, '_' or '-', "
            "starting with a letter or digit"
        )
    return name


class Library:
    def __init__(
        self,
        data_dir: Path,
        presets: Mapping[str, np.ndarray],
        max_style_seconds: float = 60.0,
        model_name: str = "baseline",
    ) -> None:
        self.data_dir = Path(data_dir)
        self.model_name = model_name  # whose codes a stored style must have to be usable
        self.max_style_seconds = max_style_seconds  # longest style clip accepted
        self.presets = dict(presets)  # style name -> (style_dim,) code of the motion model
        self.style_dim = len(next(iter(self.presets.values()))) if self.presets else 0
        self._avatars: dict[str, Avatar] = {}
        self._lock = threading.Lock()  # guards the cache and name checks of uploads
        (self.data_dir / "avatars").mkdir(parents=True, exist_ok=True)
        (self.data_dir / "styles").mkdir(parents=True, exist_ok=True)

    # ------------------------------------------------------------------ avatars

    def _avatar_paths(self) -> dict[str, tuple[Path, str]]:
        found: dict[str, tuple[Path, str]] = {}
        for p in sorted((self.data_dir / "avatars").glob(f"*{SUFFIX}")):
            found[p.stem] = (p, "uploaded")
        for p in sorted((assets_dir() / "avatars").glob(f"*{SUFFIX}")):
            found[p.stem] = (p, "builtin")  # a builtin name always wins
        return found

    def avatars(self) -> list[dict[str, Any]]:
        return [
            {"name": name, "source": source, "preview": f"/v1/avatars/{name}/preview.jpg"}
            for name, (_, source) in sorted(self._avatar_paths().items())
        ]

    def avatar(self, name: str) -> Avatar:
        """The avatar called `name` (loaded once); InputError if there is none."""
        with self._lock:
            if name in self._avatars:
                return self._avatars[name]
        paths = self._avatar_paths()
        if name not in paths:
            raise InputError(f"no avatar named {name!r}; available: {sorted(paths)}")
        avatar = load_avatar(paths[name][0])
        with self._lock:
            self._avatars[name] = avatar
        return avatar

    def preview(self, name: str, quality: int = 85) -> bytes:
        """The avatar's aligned portrait as a JPEG."""
        bgr = cv2.cvtColor(self.avatar(name).image, cv2.COLOR_RGB2BGR)
        ok, buf = cv2.imencode(".jpg", bgr, [cv2.IMWRITE_JPEG_QUALITY, quality])
        assert ok
        return buf.tobytes()

    def add_avatar(self, name: str, data: bytes) -> dict[str, Any]:
        """Build an avatar from portrait image bytes and keep it. InputError (NoFaceError)
        for an unreadable image or one without a usable face; ConflictError for a taken
        name. Runs MediaPipe: call it off the event loop."""
        from stylecast.engine.avatar_build import build_avatar

        check_name(name)
        self._check_free(name, self._avatar_paths(), "avatar")
        image = decode_image(data)
        avatar = build_avatar(image, size=AVATAR_SIZE)
        with self._lock:
            self._check_free(name, self._avatar_paths(), "avatar")
            save_avatar(avatar, self.data_dir / "avatars" / f"{name}{SUFFIX}")
            self._avatars[name] = avatar
        return {"name": name, "source": "uploaded", "preview": f"/v1/avatars/{name}/preview.jpg"}

    @staticmethod
    def _check_free(name: str, taken: Mapping[str, object], what: str) -> None:
        if name in taken:
            raise ConflictError(f"an {what} named {name!r} exists; choose another name")

    # ------------------------------------------------------------------ styles

    def styles(self) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = [
            {"name": n, "source": "preset", "usable": True} for n in self.presets
        ]
        for name, meta in self._uploaded_styles().items():
            if name in self.presets:
                continue  # a preset of the running model wins
            out.append(
                {
                    "name": name,
                    "source": meta.get("source", "stored"),
                    "usable": self._code_of(meta) is not None,
                    "frames": meta.get("frames"),
                    "seconds": meta.get("seconds"),
                }
            )
        return out

    def _uploaded_styles(self) -> dict[str, dict[str, Any]]:
        """Stored styles by name: the shipped style library (assets/styles, written by
        `stylecast style add`, training/style_library.py) and then the uploads, which
        cannot shadow a shipped name."""
        found: dict[str, dict[str, Any]] = {}
        for folder in (self.data_dir / "styles", assets_dir() / "styles"):
            for p in sorted(folder.glob("*.json")):
                try:
                    meta = json.loads(p.read_text())
                    meta["name"] = str(meta.get("name", p.stem))
                except (OSError, json.JSONDecodeError, AttributeError) as e:
                    log.warning("skipping unreadable style %s: %s", p, e)
                    continue
                found[p.stem] = meta  # the later folder (shipped) wins
        return found

    def _code_of(self, meta: dict[str, Any]) -> np.ndarray | None:
        """The style's code for the running motion model: `codes[model name]` if the style
        has per-model codes, else `code`; None without one of the model's length."""
        codes = meta.get("codes")
        code = codes.get(self.model_name) if isinstance(codes, dict) else meta.get("code")
        try:
            vec = np.asarray(code, np.float32)
        except (TypeError, ValueError):
            return None
        if code is None or vec.shape != (self.style_dim,) or not np.all(np.isfinite(vec)):
            return None  # no code yet, or one made for another motion model
        return vec

    def style_code(self, style: str | Mapping[str, float]) -> np.ndarray:
        """A style name or a {name: weight} mix -> the motion model's (style_dim,) code
        (a mix is the weighted mean of codes). InputError naming what is available."""
        weights = {style: 1.0} if isinstance(style, str) else dict(style)
        total = sum(weights.values())
        assert total > 0, weights
        code = np.zeros(self.style_dim, np.float32)
        uploaded = None
        for name, w in weights.items():
            if name in self.presets:
                c = self.presets[name]
            else:
                uploaded = uploaded if uploaded is not None else self._uploaded_styles()
                if name not in uploaded:
                    raise InputError(
                        f"no style named {name!r}; available: "
                        f"{sorted(self.presets) + sorted(uploaded)}"
                    )
                c = self._code_of(uploaded[name])
                if c is None:
                    raise InputError(
                        f"style {name!r} is stored but has no style code for the running "
                        f"motion model ({self.model_name!r}) yet: its clip waits for that "
                        f"model's style encoder; use a preset: {sorted(self.presets)}"
                    )
            code += np.float32(w / total) * c
        return code

    def add_style(self, name: str, data: bytes, content_type: str, rig_avatar: str) -> dict:
        """Keep an uploaded style clip: a video (fitted to the 52 weights + pose through
        MediaPipe and the fitter) or a motion file. Call it off the event loop."""
        check_name(name)
        self._check_free(name, {**self.presets, **self._uploaded_styles()}, "style")
        if content_type in VIDEO_TYPES:
            source, suffix = "video", VIDEO_TYPES[content_type]
        elif content_type in MOTION_TYPES:
            source, suffix = "motion", MOTION_TYPES[content_type]
        else:
            raise InputError(
                f"Content-Type {content_type!r} is not a style clip; send one of "
                f"{sorted(VIDEO_TYPES) + sorted(MOTION_TYPES)}"
            )
        with tempfile.TemporaryDirectory(prefix="stylecast-upload-") as tmp:
            path = Path(tmp) / f"upload{suffix}"
            path.write_bytes(data)
            fit = source == "video"
            motion = self._fit_video(path, rig_avatar) if fit else load_motion(path)
        return self._keep_style(name, motion, source)

    def _fit_video(self, path: Path, rig_avatar: str) -> Motion:
        from stylecast.engine.capture import fit_track, track_video
        from stylecast.engine.video import probe

        info = probe(path)
        if info.duration > self.max_style_seconds:
            raise InputError(
                f"the video lasts {info.duration:.1f} s; style clips may last up to "
                f"{self.max_style_seconds:.0f} s"
            )
        return fit_track(track_video(path), self.avatar(rig_avatar).rig)

    def _keep_style(self, name: str, motion: Motion, source: str) -> dict[str, Any]:
        seconds = motion.duration
        if not MIN_STYLE_S <= seconds <= self.max_style_seconds:
            raise InputError(
                f"a style clip of {seconds:.2f} s; accepted: {MIN_STYLE_S:.0f} to "
                f"{self.max_style_seconds:.0f} s"
            )
        meta = {
            "name": name,
            "source": source,
            "frames": motion.frames,
            "seconds": round(seconds, 3),
            "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "clip": f"{name}.npz",
            "code": None,  # filled in by a style encoder (see the module doc)
        }
        folder = self.data_dir / "styles"
        with self._lock:
            self._check_free(name, self._uploaded_styles(), "style")
            save_motion(folder / f"{name}.npz", motion)
            (folder / f"{name}.json").write_text(json.dumps(meta, indent=1))
        return {k: meta[k] for k in ("name", "source", "frames", "seconds")} | {"usable": False}


def decode_image(data: bytes) -> np.ndarray:
    """Image bytes -> (H, W, 3) uint8 RGB, or FormatError for what is not a readable image."""
    if not data:
        raise FormatError("the upload is empty; send a JPEG, PNG, WebP or BMP portrait")
    bgr = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
    if bgr is None:
        raise FormatError(
            f"the upload ({len(data)} bytes) is not a readable image (corrupt, or not an "
            "image); send a JPEG, PNG, WebP or BMP portrait"
        )
    return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
