"""engine/avatar + avatar_build: bundle round trip, shipped default, and every error a
portrait can cause (with real malformed files made here)."""

from __future__ import annotations

import json
import logging

import cv2
import numpy as np
import pytest

from stylecast.cli import main as cli_main
from stylecast.engine.avatar import (
    FORMAT_VERSION,
    load_avatar,
    resolve_avatar_path,
    save_avatar,
)
from stylecast.engine.errors import FormatError, InputError, NoFaceError
from stylecast.paths import assets_dir


@pytest.fixture(scope="module")
def default():
    return load_avatar("default")


def test_default_resolves_to_assets(default):
    assert resolve_avatar_path("default") == assets_dir() / "avatars" / "default.avatar"
    assert resolve_avatar_path("default").stat().st_size < 2_000_000
    assert default.image.shape == (512, 512, 3)
    assert default.landmarks.shape == (478, 3)
    n_ring = len(default.ring_vertices)
    assert default.ring_triangles.max() < 478 + n_ring
    assert default.ring_weight.min() == 0.0 and default.ring_weight.max() <= 1.0
    # The rest pose maps the neutral's eyes onto the portrait's irises.
    eyes = default.rest.to_image(default.rig.neutral[[468, 473]].astype(np.float64))
    np.testing.assert_allclose(eyes[:, :2], default.landmarks[[468, 473], :2], atol=1.0)


def test_frame_mesh_covers_the_image(default):
    # Rasterise the rest frame mesh (face + ring) and check it covers every pixel but the
    # mouth and eye openings.
    uv = np.concatenate([default.face_uv, default.ring_uv]) * 512
    mask = np.zeros((512, 512), np.uint8)
    for tris in (default.ring_triangles, default.rig.triangles):
        for t in tris:
            cv2.fillConvexPoly(mask, np.round(uv[t] * 16).astype(np.int32), 1, shift=4)
    assert mask.mean() > 0.985


def test_save_load_round_trip(default, tmp_path):
    path = save_avatar(default, tmp_path / "copy.avatar")
    back = load_avatar(path)
    np.testing.assert_array_equal(back.rig.basis, default.rig.basis)
    np.testing.assert_array_equal(back.rig.triangles, default.rig.triangles)
    np.testing.assert_array_equal(back.ring_triangles, default.ring_triangles)
    np.testing.assert_allclose(back.rest.rotation, default.rest.rotation)
    assert back.rig.jaw.open_deg == default.rig.jaw.open_deg
    for name in default.rig.groups:
        np.testing.assert_array_equal(back.rig.groups[name], default.rig.groups[name])
    # The portrait is stored as JPEG: close, not equal.
    assert np.abs(back.image.astype(int) - default.image.astype(int)).mean() < 3
    np.testing.assert_array_equal(back.eye_atlas, default.eye_atlas)  # PNG: lossless


def test_load_errors(default, tmp_path):
    with pytest.raises(InputError, match="no such file"):
        load_avatar(tmp_path / "missing.avatar")
    junk = tmp_path / "junk.avatar"
    junk.write_bytes(b"this is not a zip file at all")
    with pytest.raises(FormatError):
        load_avatar(junk)
    # A real npz, but from a future version.
    good = save_avatar(default, tmp_path / "good.avatar")
    with np.load(good, allow_pickle=False) as z:
        arrays = {k: z[k] for k in z.files}
    meta = json.loads(str(arrays["meta"]))
    meta["version"] = FORMAT_VERSION + 1
    arrays["meta"] = np.array(json.dumps(meta))
    future = tmp_path / "future.avatar"
    with future.open("wb") as fh:
        np.savez(fh, **arrays)
    with pytest.raises(FormatError, match="version"):
        load_avatar(future)
    del arrays["basis"]
    arrays["meta"] = np.array(json.dumps({**meta, "version": FORMAT_VERSION}))
    with (tmp_path / "partial.avatar").open("wb") as fh:
        np.savez(fh, **arrays)
    with pytest.raises(FormatError, match="basis"):
        load_avatar(tmp_path / "partial.avatar")


# ---------------------------------------------------------------- building from portraits

mediapipe = pytest.importorskip("mediapipe", reason="avatar building needs the [avatar] extra")
skimage_data = pytest.importorskip("skimage.data")

from stylecast.engine.avatar_build import build_avatar, read_image  # noqa: E402


@pytest.fixture(scope="module")
def portrait() -> np.ndarray:
    return skimage_data.astronaut()


def _write(path, rgb: np.ndarray):
    cv2.imwrite(str(path), cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
    return path


def test_build_256(portrait):
    avatar = build_avatar(portrait, size=256)
    assert avatar.image.shape == (256, 256, 3)
    assert avatar.rest.scale == pytest.approx(256 / 4.2, rel=0.05)  # crop = 4.2 eye distances


def test_not_an_image(tmp_path):
    text = tmp_path / "notes.png"
    text.write_text("hello, I am text pretending to be a PNG\n")
    with pytest.raises(InputError, match="not a readable image"):
        read_image(text)
    empty = tmp_path / "empty.jpg"
    empty.write_bytes(b"")
    with pytest.raises(InputError, match="empty"):
        read_image(empty)
    with pytest.raises(InputError, match="no such file"):
        read_image(tmp_path / "nope.jpg")


def test_corrupt_jpeg(tmp_path, portrait):
    _, buf = cv2.imencode(".jpg", portrait)
    data = buf.tobytes()
    for name, cut in (("header_only.jpg", 200), ("half.jpg", len(data) // 2)):
        corrupt = tmp_path / name
        corrupt.write_bytes(data[:cut])
        with pytest.raises(InputError, match="not a readable image"):
            read_image(corrupt)


def test_no_face(tmp_path):
    rng = np.random.default_rng(0)
    noise = rng.integers(0, 255, (300, 300, 3), dtype=np.uint8)
    with pytest.raises(NoFaceError):
        build_avatar(read_image(_write(tmp_path / "noise.png", noise)))


def test_face_too_small(portrait):
    small = cv2.resize(portrait, (240, 240), interpolation=cv2.INTER_AREA)  # face ~ 50 px
    with pytest.raises(InputError, match="px across"):
        build_avatar(small)


def test_several_faces(portrait, caplog):
    face = portrait[0:300, 80:380]
    small = cv2.resize(face, None, fx=0.7, fy=0.7, interpolation=cv2.INTER_AREA)
    canvas = np.full((320, 560, 3), 230, np.uint8)
    canvas[10:310, 0:300] = face
    canvas[40 : 40 + small.shape[0], 320 : 320 + small.shape[1]] = small
    with caplog.at_level(logging.WARNING):
        largest = build_avatar(canvas, size=256)
    assert "2 faces found" in caplog.text
    other = build_avatar(canvas, size=256, face=1)
    assert not np.array_equal(largest.image, other.image)
    with pytest.raises(InputError, match="--face 2"):
        build_avatar(canvas, size=256, face=2)


def test_strongly_turned_head(default):
    from stylecast.engine.render import Renderer

    pose = np.zeros(6, np.float32)
    # MediaPipe reads ~35 degrees (the renderer flattens the face's sides; from ~65 degrees
    # on it finds no face at all).
    pose[1] = np.radians(60)
    with Renderer(default) as r:
        turned = r.render(np.zeros(52, np.float32), pose)
    with pytest.raises(InputError, match="turned too far"):
        build_avatar(turned)


def test_huge_image_is_downscaled(portrait, caplog):
    huge = cv2.resize(portrait, (2600, 2600), interpolation=cv2.INTER_CUBIC)
    with caplog.at_level(logging.WARNING):
        avatar = build_avatar(huge, size=256)
    assert "downscaling" in caplog.text
    assert avatar.image.shape == (256, 256, 3)


def test_bad_size(portrait):
    with pytest.raises(InputError, match="size"):
        build_avatar(portrait, size=300)


def test_cli(tmp_path, portrait):
    src = _write(tmp_path / "me.png", portrait)
    out = tmp_path / "me.avatar"
    assert cli_main(["avatar", "build", str(src), "-o", str(out), "--size", "256"]) == 0
    assert load_avatar(out).size == 256
    text = tmp_path / "x.png"
    text.write_text("nope")
    assert cli_main(["avatar", "build", str(text), "-o", str(tmp_path / "x.avatar")]) == 2
