"""The server's avatars: the shipped ones plus what users upload.

Avatars: the bundles in assets/avatars (builtin) and `<data_dir>/avatars/NAME.avatar`
(uploaded portraits, built with the engine's avatar builder). Loaded once, then cached.
Styles live in server/styles.py.

Every method here may block (file I/O, MediaPipe): the app calls them in an executor.
"""

from __future__ import annotations

import logging
import re
import threading
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from stylecast.engine.avatar import SUFFIX, Avatar, load_avatar, save_avatar
from stylecast.engine.errors import FormatError, InputError
from stylecast.paths import assets_dir

log = logging.getLogger(__name__)

NAME_RE = re.compile(r"^[a-z0-9][a-z0-9_-]{0,39}$")  # names of uploads (file-safe)
AVATAR_SIZE = 512  # uploaded portraits are built at this size (pixels)
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
    def __init__(self, data_dir: Path) -> None:
        self.data_dir = Path(data_dir)
        self._avatars: dict[str, Avatar] = {}
        self._lock = threading.Lock()  # guards the cache and name checks of uploads
        (self.data_dir / "avatars").mkdir(parents=True, exist_ok=True)

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
