"""engine/render: the frames look like what the coefficients say (needs EGL: Mesa llvmpipe
here and in CI)."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from stylecast.engine.errors import BackendError, InputError
from stylecast.engine.face import INDEX
from stylecast.engine.gl import EGL_PACKAGES, create_context
from stylecast.engine.render import Renderer


def expr(**weights: float) -> np.ndarray:
    e = np.zeros(52, np.float32)
    for k, v in weights.items():
        e[INDEX[k]] = v
    return e


def pose(pitch=0.0, yaw=0.0, roll=0.0, tx=0.0, ty=0.0, tz=0.0) -> np.ndarray:
    return np.array([np.radians(pitch), np.radians(yaw), np.radians(roll), tx, ty, tz], np.float32)


def box(avatar, idx, pad: float) -> tuple[slice, slice]:
    """Rows/columns around some landmarks, padded by `pad` inter-ocular distances."""
    xy = avatar.landmarks[idx, :2]
    p = pad * avatar.rest.scale
    x0, y0 = np.floor(xy.min(0) - p).astype(int)
    x1, y1 = np.ceil(xy.max(0) + p).astype(int)
    return slice(max(y0, 0), y1), slice(max(x0, 0), x1)


def luma(img: np.ndarray) -> np.ndarray:
    return img.astype(np.float32) @ np.array([0.299, 0.587, 0.114], np.float32)


def test_neutral_frame_is_the_portrait_but_the_mouth(renderer, avatar):
    frame = renderer.render(expr(), pose())
    assert frame.shape == (512, 512, 3) and frame.dtype == np.uint8
    diff = np.abs(frame.astype(int) - avatar.image.astype(int)).mean(2)
    mouth = box(avatar, avatar.rig.groups["lips_outer"], 0.25)
    diff[mouth] = 0  # the portrait smiles with parted lips; the neutral closes them
    assert diff.mean() < 2.5
    assert np.percentile(diff, 99) < 20


def test_open_mouth_is_dark_inside_and_mouth_close_closes_it(renderer, avatar):
    inner = avatar.rig.groups["lips_inner"]
    rows, cols = box(avatar, inner, 0.0)
    opened = renderer.render(expr(jawOpen=0.7), pose())
    closed = renderer.render(expr(jawOpen=0.7, mouthClose=1.0), pose())
    neutral = renderer.render(expr(), pose())
    # Just below the lips' meeting line: the open mouth shows interior, the closed one lip.
    c = avatar.landmarks[[13, 14], :2].mean(0).round().astype(int)
    s = int(0.1 * avatar.rest.scale)
    below = (slice(c[1] + s, c[1] + 3 * s), slice(c[0] - 2 * s, c[0] + 2 * s))
    assert np.abs(luma(opened[below]) - luma(closed[below])).mean() > 20
    assert np.abs(luma(closed[below]) - luma(neutral[below])).mean() < 15
    # The open mouth has a dark cavity and bright teeth; lip skin is never that dark.
    region = luma(opened[rows.start : rows.stop + 3 * s, cols])
    assert np.percentile(region, 5) < 50
    assert np.percentile(region, 99) > 170


def test_blink_changes_the_eye_not_the_mouth(renderer, avatar):
    neutral = renderer.render(expr(), pose())
    blink = renderer.render(expr(eyeBlinkLeft=1.0), pose())
    eye = box(avatar, avatar.rig.groups["eye_left"], 0.05)
    other = box(avatar, avatar.rig.groups["eye_right"], 0.05)
    mouth = box(avatar, avatar.rig.groups["lips_outer"], 0.1)
    d = np.abs(luma(blink) - luma(neutral))
    assert d[eye].mean() > 8
    assert d[other].mean() < 0.5 and d[mouth].mean() < 0.5
    # The closed eye shows no iris: the darkest pixels of the eye are gone.
    iris = box(avatar, avatar.rig.groups["iris_left"], 0.0)
    assert luma(blink[iris]).mean() > luma(neutral[iris]).mean() + 15


@pytest.mark.parametrize("side", ["left", "right"])
def test_closed_lid_is_smooth_skin_not_streaks(renderer, avatar, side):
    # The upper half of the closed eye is the stretched lid: drawn from the portrait's thin
    # band above the lashes alone, it showed vertical streaks (mean |d luma / dx| 3.4-3.7;
    # the open eye there: ~12); with the lid skin faded in it is ~1.8.
    xy = avatar.landmarks[avatar.rig.groups[f"eye_{side}"], :2]
    x0, y0 = np.floor(xy.min(0)).astype(int)
    x1, y1 = np.ceil(xy.max(0)).astype(int)
    closed = renderer.render(expr(**{f"eyeBlink{side.title()}": 1.0}), pose())
    lid = luma(closed)[y0 : (y0 + y1) // 2, x0 + 2 : x1 - 2]
    assert np.abs(np.diff(lid, axis=1)).mean() < 2.5


def test_head_turn_moves_the_face_not_the_background(renderer, avatar):
    neutral = renderer.render(expr(), pose())
    for p in (pose(yaw=25), pose(yaw=-25), pose(pitch=15), pose(pitch=-15), pose(roll=10)):
        turned = renderer.render(expr(), p)
        d = np.abs(luma(turned) - luma(neutral))
        face = box(avatar, np.arange(468), 0.0)
        assert d[face].mean() > 8
        # The background far from the head stays where it was: the bottom and side edges
        # and the corners (the top edge is hair in this portrait, which turns with the head).
        for edge in (d[-12:], d[:, :12], d[:, -12:], d[-40:, :40], d[-40:, -40:]):
            assert edge.mean() < 1.0
        assert d[:40, :40].mean() < 3 and d[:40, -40:].mean() < 3


def test_small_changes_make_small_differences(renderer):
    # No flicker: the same input renders the same frame, and a tiny step changes little.
    a = renderer.render(expr(jawOpen=0.3), pose(yaw=10))
    b = renderer.render(expr(jawOpen=0.3), pose(yaw=10))
    assert np.array_equal(a, b)
    c = renderer.render(expr(jawOpen=0.31), pose(yaw=10.2))
    assert np.abs(luma(a) - luma(c)).mean() < 1.0


def test_batch_matches_single_frames(renderer):
    rng = np.random.default_rng(0)
    e = rng.uniform(0, 0.6, (3, 52)).astype(np.float32)
    p = np.zeros((3, 6), np.float32)
    p[:, 1] = np.radians([-10, 0, 10])
    batch = renderer.render_batch(e, p)
    assert batch.shape == (3, 512, 512, 3)
    for i in range(3):
        assert np.array_equal(batch[i], renderer.render(e[i], p[i]))
    buf = np.zeros((512, 512, 3), np.uint8)
    assert renderer.render(e[0], p[0], out=buf) is buf
    assert np.array_equal(buf, batch[0])
    with pytest.raises(InputError):
        renderer.render(e[0], p[0], out=np.zeros((10, 10, 3), np.uint8))


def test_tongue_out_shows_the_tongue(renderer, avatar):
    neutral = renderer.render(expr(), pose())
    out = renderer.render(expr(tongueOut=1.0), pose())
    lower = box(avatar, avatar.rig.groups["lips_outer_lower"], 0.05)
    # The tongue covers the lower lip: that region changes a lot, and gets darker.
    assert np.abs(luma(out[lower]) - luma(neutral[lower])).mean() > 20
    assert luma(out[lower]).mean() < luma(neutral[lower]).mean() - 8


def test_size_256(avatar):
    with Renderer(avatar, size=256) as r:
        frame = r.render(expr(), pose())
    assert frame.shape == (256, 256, 3)
    small = avatar.image[::2, ::2].astype(int)
    assert np.abs(frame[:40].astype(int) - small[:40]).mean() < 6


def test_bad_input_and_lifecycle(avatar):
    r = Renderer(avatar, size=64)
    assert r.device  # e.g. "llvmpipe (LLVM 15.0.6, 256 bits)"
    with pytest.raises(InputError):
        r.render(np.zeros(51), pose())
    with pytest.raises(InputError):
        r.render_batch(np.zeros((2, 52)), np.zeros((3, 6)))
    with pytest.raises(InputError, match="finite"):
        r.render(expr(), np.array([np.nan, 0, 0, 0, 0, 0]))
    r.close()
    r.close()
    with pytest.raises(RuntimeError):
        r.render(expr(), pose())


def test_missing_egl_names_the_packages(monkeypatch):
    import moderngl

    def fail(*args, **kwargs):
        raise Exception("eglGetDisplay failed")

    monkeypatch.setattr(moderngl, "create_standalone_context", fail)
    with pytest.raises(BackendError) as info:
        create_context()
    assert EGL_PACKAGES in str(info.value)


def test_two_renderers_in_one_thread(renderer, avatar):
    # Each renderer has its own OpenGL context; interleaved calls must not mix them up.
    alone = renderer.render(expr(jawOpen=0.4), pose(yaw=8))
    with Renderer(avatar, size=128) as small:
        a = small.render(expr(eyeBlinkLeft=1.0), pose())
        b = renderer.render(expr(jawOpen=0.4), pose(yaw=8))
        c = small.render(expr(eyeBlinkLeft=1.0), pose())
    assert np.array_equal(alone, b)
    assert np.array_equal(a, c) and a.shape == (128, 128, 3)
    assert np.array_equal(alone, renderer.render(expr(jawOpen=0.4), pose(yaw=8)))


def test_a_renderer_moves_between_threads(avatar):
    import concurrent.futures as cf

    e = expr(jawOpen=0.6)
    with Renderer(avatar, size=96) as here:
        want = here.render(e, pose())
    with cf.ThreadPoolExecutor(1) as pool:  # made in a worker that then ends...
        r = pool.submit(Renderer, avatar, 96).result()
    try:
        assert np.array_equal(r.render(e, pose()), want)  # ...used here
        with cf.ThreadPoolExecutor(1) as pool:  # and in another worker
            assert np.array_equal(pool.submit(r.render, e, pose()).result(), want)
    finally:
        r.close()


def _inside(renderer, group, e, p) -> np.ndarray:
    """(size, size) bool: inside a landmark loop as drawn this frame."""
    xy = renderer.landmarks_px(e, p)[renderer.avatar.rig.groups[group]]
    mask = np.zeros((renderer.size, renderer.size), np.uint8)
    cv2.fillPoly(mask, [np.round(xy * 16).astype(np.int32)], 1, shift=4)
    return mask.astype(bool)


def test_barely_open_teeth_are_calm(renderer):
    # A sliver of teeth showed stripes of tooth shading and scattered black pixels (gaps
    # under a pixel wide over the dark cavity): mean |d luma / dx| inside the lips 7.5-12
    # at jaw 0.1-0.15, and a 95th percentile of 68-128 at jaw 0.25.
    def steps(e, p):  # |d luma / dx| between neighbours inside the lips
        inside = _inside(renderer, "lips_inner", e, p)
        both = inside[:, 1:] & inside[:, :-1]
        return np.abs(np.diff(luma(renderer.render(e, p)), axis=1))[both]

    calm = [steps(expr(jawOpen=j), pose(yaw=y)).mean() for j in (0.1, 0.15) for y in (0, 10)]
    assert np.mean(calm) < 7.0 and max(calm) < 7.5, calm  # now 5-6.2
    gaps = [np.percentile(steps(expr(jawOpen=0.25), pose(yaw=y)), 95) for y in (0, 10)]
    assert max(gaps) < 40, gaps  # now 22-27


def test_mouth_interior_edges_are_antialiased(renderer, avatar):
    # Against the same frame rendered at 4x and averaged down (what ideal antialiasing
    # gives), the mouth's pixels were off by 5-6 levels on average with hard-edged teeth
    # and tongue; their edges now fade over a pixel.
    with Renderer(avatar, size=4 * renderer.size) as big:
        for e, p in ((expr(jawOpen=0.6), pose(yaw=10)), (expr(jawOpen=0.3), pose())):
            frame = renderer.render(e, p).astype(np.float32)
            ideal = cv2.resize(big.render(e, p), frame.shape[:2], interpolation=cv2.INTER_AREA)
            mouth = cv2.dilate(
                _inside(renderer, "lips_inner", e, p).astype(np.uint8), np.ones((5, 5))
            ).astype(bool)
            error = np.abs(frame - ideal.astype(np.float32)).mean(2)[mouth].mean()
            assert error < 4.0, error


def test_mouth_closed_on_an_open_jaw_stretches_the_chin_without_streaks(renderer, avatar):
    # mouthClose with jawOpen stretches the skin from the lower lip to the chin up to 3.5x
    # downwards: its pores and freckles became vertical streaks (luma steps across 1.9x
    # those along it, where the portrait's own skin has 1.0).
    for w in (1.0, 0.6):
        e = expr(jawOpen=w, mouthClose=w)
        frame = luma(renderer.render(e, pose()))
        lm = renderer.landmarks_px(e, pose())
        lip = lm[avatar.rig.groups["lips_outer_lower"], 1].max()
        chin, x = lm[152, 1], lm[[13, 14], 0].mean()
        half = 0.35 * avatar.rest.scale
        band = frame[
            int(lip + 0.15 * (chin - lip)) : int(chin - 0.2 * (chin - lip)),
            int(x - half) : int(x + half),
        ]
        across = np.abs(np.diff(band, axis=1)).mean()
        along = np.abs(np.diff(band, axis=0)).mean()
        assert across < 1.45 * along, (w, across / along)  # now 1.2-1.3
