"""engine/render_worker.py: a session's renderer on its own thread."""

from __future__ import annotations

import threading

import numpy as np
import pytest

from stylecast.engine.errors import InputError
from stylecast.engine.face import INDEX, neutral_expr, rest_pose
from stylecast.engine.render import Renderer
from stylecast.engine.render_worker import RenderWorker


@pytest.fixture
def make_worker(avatar):
    """RenderWorker(avatar, size) factory; the test's workers are closed after it."""
    workers = []

    def make(size: int) -> RenderWorker:
        workers.append(RenderWorker(avatar, size, threading.Semaphore(1)))
        return workers[-1]

    yield make
    for worker in workers:
        worker.close()


def test_render_worker_draws_what_the_renderer_draws(make_worker, avatar):
    worker = make_worker(48)
    assert worker.start().result(timeout=30) > 0  # calibration ms
    expr, pose = neutral_expr(), rest_pose()
    expr[0] = 1.0
    rgb, ms = worker.submit(expr, pose).result(timeout=30)
    with Renderer(avatar, 48) as direct:
        np.testing.assert_array_equal(rgb, direct.render(expr, pose))
    assert ms > 0
    worker.close()
    worker.close()


def test_a_renderer_that_cannot_be_made_fails_start(make_worker):
    worker = make_worker(8)  # < 16 px
    with pytest.raises(InputError, match="out of range"):
        worker.start().result(timeout=30)


def test_a_failed_frame_fails_its_future_and_the_worker_goes_on(make_worker):
    worker = make_worker(32)
    worker.start().result(timeout=30)
    with pytest.raises(InputError, match="expected expr"):
        worker.submit(np.zeros(3, np.float32), rest_pose()).result(timeout=30)
    rgb, _ = worker.submit(neutral_expr(), rest_pose()).result(timeout=30)
    assert rgb.shape == (32, 32, 3)


def test_the_read_back_finishes_the_draws_first_and_pixels_are_unchanged(avatar):
    from stylecast.engine.gl import gl_finish

    calls = []
    finish = gl_finish()
    assert finish is not None  # EGL gives glFinish here

    def spy():
        calls.append("finish")
        finish()

    expr, pose = neutral_expr(), rest_pose()
    expr[INDEX["jawOpen"]] = 0.6
    with Renderer(avatar, 64) as plain, Renderer(avatar, 64) as finished:
        plain._scene.finish = None  # no glFinish: moderngl's read waits for the draws itself
        finished._scene.finish = spy
        finished._scene.fbo = _Recorder(finished._scene.fbo, calls)
        np.testing.assert_array_equal(finished.render(expr, pose), plain.render(expr, pose))
    assert calls == ["finish", "read"]  # glFinish (GIL released) before the read


class _Recorder:
    """A framebuffer stand-in that notes when it is read."""

    def __init__(self, fbo, calls: list) -> None:
        self._fbo, self._calls = fbo, calls

    def __getattr__(self, name: str):
        if name == "_fbo":
            raise AttributeError(name)
        return getattr(self._fbo, name)

    def read_into(self, *args, **kwargs):
        self._calls.append("read")
        return self._fbo.read_into(*args, **kwargs)
