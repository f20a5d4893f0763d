"""The avatar bundle: everything the renderer needs about one portrait, in one file.

    avatar = load_avatar("default")            # assets/avatars/default.avatar
    avatar = load_avatar("me.avatar")
    save_avatar(avatar, "copy.avatar")

The file is an `.npz` (zip of .npy arrays, read with allow_pickle=False) with a JSON header
in the array `meta` (format name and version, sizes, rest pose, jaw). Images are stored
encoded (JPEG portrait, PNG eye atlas) to keep bundles small. docs/avatar.md describes each
array. `stylecast.engine.avatar_build` makes bundles from portraits.
"""

from __future__ import annotations

import json
import zipfile
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from stylecast.engine.errors import FormatError, InputError
from stylecast.engine.rig import FaceRig, JawModel, RestPose
from stylecast.engine.rig.refine import LidRefinement
from stylecast.paths import assets_dir

FORMAT_NAME = "stylecast-avatar"
FORMAT_VERSION = 1
SUFFIX = ".avatar"
JPEG_QUALITY = 92


@dataclass(frozen=True)
class MeshPart:
    """A small mesh in the canonical head frame (inter-ocular units).

    vertices: (V, 3) float32 canonical rest positions.
    triangles: (F, 3) int32.
    attrib: (V, 4) float32, per-vertex data whose meaning depends on the part: texture
        coordinates (u, v, _, _) for textured parts; (r, g, b, tooth coordinate) for the
        mouth interior (colour in 0..1; a tooth coordinate < 0 means no tooth gaps).
    """

    vertices: np.ndarray
    triangles: np.ndarray
    attrib: np.ndarray


@dataclass(frozen=True)
class Avatar:
    """One portrait, aligned and rigged.

    image: (S, S, 3) uint8 RGB, the aligned square portrait (the texture of the frame).
    landmarks: (478, 3) float32, MediaPipe landmarks in `image` pixels (x, y, depth).
    rest: the fitted rest pose (canonical head frame -> image pixels).
    rig: identity neutral + 52 blendshapes + jaw, in the canonical head frame.
    portrait_expr: (52,) float32, roughly the portrait's own expression (for reference).
    ring_vertices: (R, 3) float32 canonical positions of the frame mesh outside the face
        (hair, ears, neck, background) out to the image border.
    ring_uv: (R, 2) float32 texture coordinates in [0, 1] (image x / S, y / S).
    ring_triangles: (G, 3) int32 over [478 face points, then the R ring vertices].
    ring_weight: (R,) float32 in [0, 1]: how much each ring vertex follows head pose
        (1 at the face's outline, falling smoothly to 0 well before the border).
    ring_parent: (R,) int32 face-oval point each ring vertex hangs from.
    ring_follow: (R,) float32 in [0, 1]: how much it follows that point's expression motion.
    eye_atlas: (A, 2A, 3) uint8 RGB: the subject's right eyeball patch, then the left one.
    eyes: (right, left) eyeball meshes; attrib = atlas (u, v, gaze, 0): gaze = 1 for the
        iris vertices that follow the gaze.
    teeth_upper, teeth_lower, tongue: mouth-interior meshes (attrib = colour + tooth coord);
        upper teeth ride on the skull, lower teeth and tongue on the jaw.
    cavity_color: (2, 3) float32 in 0..1: mouth cavity colour at the lips, at the back.
    lids: the face mesh as drawn: the rig's triangles with the upper lids' edges split
        (extra vertices with their own rest positions, blendshapes and texture coordinates;
        see engine/rig/refine.py).
    """

    image: np.ndarray
    landmarks: np.ndarray
    rest: RestPose
    rig: FaceRig
    portrait_expr: np.ndarray
    ring_vertices: np.ndarray
    ring_uv: np.ndarray
    ring_triangles: np.ndarray
    ring_weight: np.ndarray
    ring_parent: np.ndarray
    ring_follow: np.ndarray
    eye_atlas: np.ndarray
    eyes: tuple[MeshPart, MeshPart]
    teeth_upper: MeshPart
    teeth_lower: MeshPart
    tongue: MeshPart
    cavity_color: np.ndarray
    lids: LidRefinement

    @property
    def size(self) -> int:
        """Side of the square image, pixels."""
        return int(self.image.shape[0])

    @property
    def face_uv(self) -> np.ndarray:
        """(478, 2) texture coordinates of the face points (their portrait positions)."""
        return (self.landmarks[:, :2] / self.size).astype(np.float32)


_PARTS = ("eye_right", "eye_left", "teeth_upper", "teeth_lower", "tongue")


def _encode_image(image: np.ndarray, ext: str) -> np.ndarray:
    params = [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY] if ext == ".jpg" else []
    ok, buf = cv2.imencode(ext, cv2.cvtColor(image, cv2.COLOR_RGB2BGR), params)
    assert ok
    return buf.reshape(-1)


def _decode_image(buf: np.ndarray, what: str) -> np.ndarray:
    bgr = cv2.imdecode(np.asarray(buf, np.uint8), cv2.IMREAD_COLOR)
    if bgr is None:
        raise FormatError(f"avatar bundle: the {what} image cannot be decoded")
    return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)


def save_avatar(avatar: Avatar, path: str | Path) -> Path:
    """Write one `.avatar` file (npz, no pickle). Returns the path written."""
    path = Path(path)
    rig, rest = avatar.rig, avatar.rest
    meta = {
        "format": FORMAT_NAME,
        "version": FORMAT_VERSION,
        "size": avatar.size,
        "rest": {
            "rotation": rest.rotation.tolist(),
            "scale": rest.scale,
            "translation": rest.translation.tolist(),
        },
        "jaw": {
            "pivot": rig.jaw.pivot.tolist(),
            "open_deg": rig.jaw.open_deg,
            "side": rig.jaw.side,
            "forward": rig.jaw.forward,
        },
        "groups": sorted(rig.groups),
    }
    arrays = {
        "meta": np.array(json.dumps(meta)),
        "image_jpg": _encode_image(avatar.image, ".jpg"),
        "eye_atlas_png": _encode_image(avatar.eye_atlas, ".png"),
        "landmarks": avatar.landmarks.astype(np.float32),
        "neutral": rig.neutral.astype(np.float32),
        "basis": rig.basis.astype(np.float32),
        "triangles": rig.triangles.astype(np.int32),
        "portrait_expr": avatar.portrait_expr.astype(np.float32),
        "ring_vertices": avatar.ring_vertices.astype(np.float32),
        "ring_uv": avatar.ring_uv.astype(np.float32),
        "ring_triangles": avatar.ring_triangles.astype(np.int32),
        "ring_weight": avatar.ring_weight.astype(np.float32),
        "ring_parent": avatar.ring_parent.astype(np.int32),
        "ring_follow": avatar.ring_follow.astype(np.float32),
        "cavity_color": avatar.cavity_color.astype(np.float32),
        "lids_triangles": avatar.lids.triangles.astype(np.int32),
        "lids_neutral": avatar.lids.neutral.astype(np.float32),
        "lids_basis": avatar.lids.basis.astype(np.float32),
        "lids_uv": avatar.lids.uv.astype(np.float32),
        "lids_edges": avatar.lids.edges.astype(np.int32),
    }
    for name, idx in rig.groups.items():
        arrays[f"group_{name}"] = idx.astype(np.int32)
    parts = dict(
        zip(
            _PARTS,
            (*avatar.eyes, avatar.teeth_upper, avatar.teeth_lower, avatar.tongue),
            strict=True,
        )
    )
    for name, part in parts.items():
        arrays[f"{name}_vertices"] = part.vertices.astype(np.float32)
        arrays[f"{name}_triangles"] = part.triangles.astype(np.int32)
        arrays[f"{name}_attrib"] = part.attrib.astype(np.float32)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("wb") as fh:
        np.savez_compressed(fh, **arrays)
    return path


def resolve_avatar_path(name_or_path: str | Path) -> Path:
    """ "default" (or any bare name without a suffix) -> assets/avatars/NAME.avatar; a path
    is returned as is."""
    p = Path(name_or_path)
    if p.suffix == "" and len(p.parts) == 1 and not p.exists():
        return assets_dir() / "avatars" / f"{p.name}{SUFFIX}"
    return p


def load_avatar(name_or_path: str | Path) -> Avatar:
    """Read an `.avatar` bundle by path, or a shipped one by name ("default")."""
    path = resolve_avatar_path(name_or_path)
    if not path.is_file():
        raise InputError(
            f"avatar {str(name_or_path)!r}: no such file ({path}); give a .avatar file "
            "made by `stylecast avatar build`, or a shipped name such as 'default'"
        )
    try:
        with np.load(path, allow_pickle=False) as z:
            data = {k: z[k] for k in z.files}
    except (zipfile.BadZipFile, ValueError, OSError, EOFError) as e:
        raise FormatError(f"{path} is not an avatar bundle (an .npz file): {e}") from e
    try:
        meta = json.loads(str(data["meta"]))
    except (KeyError, json.JSONDecodeError) as e:
        raise FormatError(f"{path}: no readable 'meta' header; not an avatar bundle") from e
    if meta.get("format") != FORMAT_NAME:
        raise FormatError(f"{path}: format {meta.get('format')!r}, expected {FORMAT_NAME!r}")
    if meta.get("version") != FORMAT_VERSION:
        raise FormatError(
            f"{path}: avatar format version {meta.get('version')!r}; this stylecast reads "
            f"version {FORMAT_VERSION}; rebuild it with `stylecast avatar build`"
        )
    try:
        return _from_arrays(meta, data)
    except KeyError as e:
        raise FormatError(f"{path}: avatar bundle lacks the array {e}") from e


def _from_arrays(meta: dict, d: dict[str, np.ndarray]) -> Avatar:
    r, j = meta["rest"], meta["jaw"]
    rest = RestPose(
        rotation=np.array(r["rotation"], np.float64),
        scale=float(r["scale"]),
        translation=np.array(r["translation"], np.float64),
    )
    jaw = JawModel(
        pivot=np.array(j["pivot"], np.float64),
        open_deg=float(j["open_deg"]),
        side=float(j["side"]),
        forward=float(j["forward"]),
    )
    groups = {name: d[f"group_{name}"] for name in meta["groups"]}
    rig = FaceRig(
        neutral=d["neutral"], basis=d["basis"], jaw=jaw, triangles=d["triangles"], groups=groups
    )
    parts = [MeshPart(d[f"{n}_vertices"], d[f"{n}_triangles"], d[f"{n}_attrib"]) for n in _PARTS]
    image = _decode_image(d["image_jpg"], "portrait")
    if image.shape[:2] != (meta["size"], meta["size"]):
        raise FormatError(f"avatar image is {image.shape[:2]}, header says {meta['size']}")
    return Avatar(
        image=image,
        landmarks=d["landmarks"],
        rest=rest,
        rig=rig,
        portrait_expr=d["portrait_expr"],
        ring_vertices=d["ring_vertices"],
        ring_uv=d["ring_uv"],
        ring_triangles=d["ring_triangles"],
        ring_weight=d["ring_weight"],
        ring_parent=d["ring_parent"],
        ring_follow=d["ring_follow"],
        eye_atlas=_decode_image(d["eye_atlas_png"], "eye atlas"),
        eyes=(parts[0], parts[1]),
        teeth_upper=parts[2],
        teeth_lower=parts[3],
        tongue=parts[4],
        cavity_color=d["cavity_color"],
        lids=LidRefinement(
            triangles=d["lids_triangles"],
            neutral=d["lids_neutral"],
            basis=d["lids_basis"],
            uv=d["lids_uv"],
            edges=d["lids_edges"],
        ),
    )
