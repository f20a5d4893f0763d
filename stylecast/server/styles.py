"""The server's speaking styles: the running motion model's presets, the shipped style
library and what users upload, each resolved to a code of the model in use.

Presets are `model.styles`: the baseline's five (neutral, happy, sad, angry, surprised),
or for an exported model its own plus every assets/styles record made with its weights.
A stored style is a style library record (training/style_library.py's layout):
`NAME.json` with `codes` {model key: code} and `models` {model key: weights id}, and for
uploads `NAME.npz` beside it, the 30 FPS clip (52 ARKit weights + pose, docs/formats.md).
A record is usable when it holds a code for the running model (`MotionModel.library_code`:
same key, same weights, right length); the others are listed with `usable: false` and why.

An upload (a video fitted through MediaPipe + the rig fitter, or a .npz / Live Link .csv
motion file) is checked (format, 1-60 s, finite), encoded at once by the running model's
style encoder (`MotionModel.extract_style`) and stored. A model without one (the baseline)
still keeps the clip; `encode_stored`, run when the server starts, gives every kept clip a
code for the model of that run, so clips survive a change of model or of its weights.

Every method may block (files, MediaPipe, the style graph): the app calls them off the
event loop.
"""

from __future__ import annotations

import io
import json
import logging
import tempfile
import threading
import time
import zipfile
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import numpy as np

from stylecast.engine.avatar import Avatar
from stylecast.engine.errors import FormatError, InputError
from stylecast.engine.face import FPS
from stylecast.engine.livelink import parse_timecode
from stylecast.engine.motion import Motion, load_motion, save_motion
from stylecast.engine.motion_backend import MotionModel
from stylecast.paths import assets_dir
from stylecast.server.library import ConflictError, check_name

log = logging.getLogger(__name__)

MIN_STYLE_S = 1.0  # shortest style clip accepted, seconds (30 frames)
VIDEO_TYPES = {  # Content-Type of a style video -> the suffix it is stored under for decoding
    "video/mp4": ".mp4",
    "video/webm": ".webm",
    "video/quicktime": ".mov",
    "video/x-matroska": ".mkv",
}
MOTION_TYPES = {"application/x-npz": ".npz", "text/csv": ".csv"}
MAX_NPZ_EXPANDED = 32 * 1024 * 1024  # bytes a motion .npz may hold unpacked (60 s: ~0.4 MB)


class StyleLibrary:
    def __init__(
        self,
        data_dir: Path,
        model: MotionModel,
        avatar: Callable[[str], Avatar],
        max_style_seconds: float = 60.0,
    ) -> None:
        self.folder = Path(data_dir) / "styles"  # uploads: NAME.json + NAME.npz
        self.model = model  # the running motion model: whose codes are usable
        self.presets = dict(model.styles)  # style name -> (style_dim,) code
        self.max_style_seconds = max_style_seconds  # longest style clip accepted
        self._avatar = avatar  # avatar name -> bundle (its rig fits videos)
        self._lock = threading.Lock()  # name checks and writes of uploads
        self.folder.mkdir(parents=True, exist_ok=True)

    # ------------------------------------------------------------------ reading

    def records(self) -> dict[str, dict[str, Any]]:
        """Stored styles by name: the uploads, then the shipped library (assets/styles),
        which wins a name clash."""
        found: dict[str, dict[str, Any]] = {}
        for folder, origin in ((self.folder, "uploaded"), (assets_dir() / "styles", "builtin")):
            for p in sorted(folder.glob("*.json")):
                try:
                    record = json.loads(p.read_text())
                    if not isinstance(record, dict):
                        raise ValueError(f"a JSON {type(record).__name__}, not an object")
                except (OSError, ValueError) as e:
                    log.warning("skipping unreadable style %s: %s", p, e)
                    continue
                found[p.stem] = record | {"name": p.stem, "_origin": origin, "_path": p}
        return found

    def list(self) -> list[dict[str, Any]]:
        """What GET /v1/styles shows: presets first, then stored styles."""
        out: list[dict[str, Any]] = [
            {"name": n, "source": "preset", "usable": True} for n in self.presets
        ]
        for name, record in self.records().items():
            if name in self.presets:
                continue  # a preset of the running model wins
            item = {
                "name": name,
                "source": record.get("source", "stored"),
                "usable": self.model.library_code(record) is not None,
                "frames": record.get("frames"),
                "seconds": record.get("seconds"),
            }
            if not item["usable"]:
                item["reason"] = self._why_unusable(record)
            out.append(item)
        return out

    def _why_unusable(self, record: Mapping[str, Any]) -> str:
        codes = record.get("codes") if isinstance(record.get("codes"), Mapping) else {}
        if not codes:
            return f"no style code yet; the {self.model.name} motion model has no style encoder"
        return (
            f"its codes were made for {sorted(codes)} ({record.get('models', {})}), not for the "
            f"running {self.model.name} model ({self.model.weights_id or 'any weights'})"
        )

    def code(self, style: str | Mapping[str, float]) -> np.ndarray:
        """A style name or a {name: weight} mix -> the running model's (style_dim,) code
        (a mix is the weighted mean of codes). InputError naming what is available."""
        weights = {style: 1.0} if isinstance(style, str) else dict(style)
        total = sum(weights.values())
        assert total > 0, weights
        code = np.zeros(self.model.style_dim, np.float32)
        records = None
        for name, w in weights.items():
            if name in self.presets:
                c = self.presets[name]
            else:
                records = records if records is not None else self.records()
                if name not in records:
                    raise InputError(
                        f"no style named {name!r}; available: "
                        f"{sorted(self.presets) + sorted(records)}"
                    )
                c = self.model.library_code(records[name])
                if c is None:
                    raise InputError(
                        f"style {name!r} is stored but has no style code for the running "
                        f"motion model ({self.model.name}): {self._why_unusable(records[name])}"
                        f"; use a preset: {sorted(self.presets)}"
                    )
            code += np.float32(w / total) * c
        return code

    # ------------------------------------------------------------------ uploads

    def add(self, name: str, data: bytes, content_type: str, rig_avatar: str) -> dict[str, Any]:
        """Keep an uploaded style clip (a video or a motion file) and encode it with the
        running model (module doc). InputError (FormatError, NoFaceError) for a bad clip,
        ConflictError for a taken name."""
        check_name(name)
        self._check_free(name)
        if content_type in VIDEO_TYPES:
            source, suffix = "video", VIDEO_TYPES[content_type]
        elif content_type in MOTION_TYPES:
            source, suffix = "motion", MOTION_TYPES[content_type]
        else:
            raise InputError(
                f"Content-Type {content_type!r} is not a style clip; send one of "
                f"{sorted(VIDEO_TYPES) + sorted(MOTION_TYPES)}"
            )
        if not data:
            raise InputError("the style upload is empty")
        if source == "motion":
            self._check_before_reading(data, suffix)
        with tempfile.TemporaryDirectory(prefix="stylecast-upload-") as tmp:
            path = Path(tmp) / f"upload{suffix}"
            path.write_bytes(data)
            try:
                fit = source == "video"
                motion = self._fit_video(path, rig_avatar) if fit else load_motion(path)
            except InputError as e:  # name the upload, not the temporary file
                raise type(e)(str(e).replace(str(path), f"the {source} upload")) from e
        self._check_length(motion)
        record = {
            "name": name,
            "source": source,
            "frames": motion.frames,
            "seconds": round(motion.duration, 3),
            "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "clip": f"{name}.npz",
            "code": None,
            "codes": {},
            "models": {},
        }
        self._encode(record, motion)
        with self._lock:
            self._check_free(name)
            save_motion(self.folder / f"{name}.npz", motion)
            self._write(record)
        out = {k: record[k] for k in ("name", "source", "frames", "seconds")}
        out["usable"] = self.model.library_code(record) is not None
        if not out["usable"]:
            out["reason"] = self._why_unusable(record)
        return out

    def _check_free(self, name: str) -> None:
        if name in self.presets or name in self.records():
            raise ConflictError(f"a style named {name!r} exists; choose another name")

    def _check_before_reading(self, data: bytes, suffix: str) -> None:
        """Refuse a motion file that would unpack or resample to far more than a clip may
        hold (a zip bomb, a tiny fps, timecodes hours apart) before it is read whole."""
        too_long = self.max_style_seconds + 1.0
        if suffix == ".csv":
            lines = [ln for ln in data.decode("utf-8-sig", "replace").splitlines() if ln.strip()]
            header = [c.strip() for c in lines[0].split(",")] if lines else []
            if len(lines) < 3 or "Timecode" not in header:
                return  # too short to be long; the reader names what is wrong
            col = header.index("Timecode")
            try:
                first, last = (parse_timecode(ln.split(",")[col]) for ln in (lines[1], lines[-1]))
            except (ValueError, IndexError):
                return
            seconds = last[0] - first[0]
        else:
            try:
                with zipfile.ZipFile(io.BytesIO(data)) as z:
                    unpacked = sum(i.file_size for i in z.infolist())
                    if unpacked > MAX_NPZ_EXPANDED:
                        raise FormatError(
                            f"the motion upload unpacks to {unpacked} bytes; a style clip "
                            f"needs far less (at most {MAX_NPZ_EXPANDED})"
                        )
                    with z.open("expr.npy") as f:
                        major, _ = np.lib.format.read_magic(f)
                        read = {1: np.lib.format.read_array_header_1_0}.get(
                            major, np.lib.format.read_array_header_2_0
                        )
                        frames = read(f)[0][0]
                    with z.open("fps.npy") as f:
                        fps = float(np.lib.format.read_array(f, allow_pickle=False))
            except FormatError:
                raise
            except (zipfile.BadZipFile, KeyError, ValueError, IndexError, TypeError, OSError):
                return  # not what it claims: the reader says how
            if not fps > 0:
                return
            seconds = frames / fps
        if seconds > too_long:
            raise InputError(
                f"a style clip of {seconds:.0f} s; accepted: {MIN_STYLE_S:.0f} to "
                f"{self.max_style_seconds:.0f} s"
            )

    def _check_length(self, motion: Motion) -> None:
        seconds = motion.duration
        if not MIN_STYLE_S <= seconds <= self.max_style_seconds:
            raise InputError(
                f"a style clip of {seconds:.2f} s ({motion.frames} frames at {FPS} FPS); "
                f"accepted: {MIN_STYLE_S:.0f} to {self.max_style_seconds:.0f} s"
            )

    def _fit_video(self, path: Path, rig_avatar: str) -> Motion:
        from stylecast.engine.capture import fit_track, track_video
        from stylecast.engine.video import probe

        info = probe(path)
        if info.duration > self.max_style_seconds:
            raise InputError(
                f"the video lasts {info.duration:.1f} s; style clips may last up to "
                f"{self.max_style_seconds:.0f} s"
            )
        return fit_track(track_video(path), self._avatar(rig_avatar).rig)

    def _encode(self, record: dict[str, Any], motion: Motion) -> bool:
        """Put the running model's code of `motion` into `record`; False without an
        encoder."""
        if not self.model.has_style_encoder:
            return False
        key = self.model.codes_key
        code = self.model.extract_style(motion.expr, motion.pose)
        record["codes"] = dict(record.get("codes") or {}) | {key: _rounded(code)}
        record["models"] = dict(record.get("models") or {}) | {key: self.model.weights_id}
        if key == "saas":  # the style library's "code" is the default model's code
            record["code"] = record["codes"][key]
        return True

    def _write(self, record: dict[str, Any]) -> None:
        clean = {k: v for k, v in record.items() if not k.startswith("_")}
        path = self.folder / f"{record['name']}.json"
        tmp = path.with_suffix(".json.tmp")
        tmp.write_text(json.dumps(clean, indent=1) + "\n")
        tmp.replace(path)

    def encode_stored(self) -> list[str]:
        """Give every uploaded clip without a code for the running model one (at start-up,
        off the event loop). Returns the names encoded; a clip that fails is logged."""
        if not self.model.has_style_encoder:
            return []
        done = []
        for name, record in self.records().items():
            clip = self.folder / f"{name}.npz"
            if record["_origin"] != "uploaded" or not clip.is_file():
                continue
            if self.model.library_code(record) is not None:
                continue
            try:
                motion = load_motion(clip)
                with self._lock:
                    self._encode(record, motion)
                    self._write(record)
            except (InputError, OSError) as e:
                log.warning("style %r: its clip could not be encoded: %s", name, e)
                continue
            done.append(name)
        if done:
            log.info("encoded %d stored style clips for %s: %s", len(done), self.model.name, done)
        return done


def _rounded(code: np.ndarray) -> list[float]:
    return [round(float(v), 6) for v in code]
