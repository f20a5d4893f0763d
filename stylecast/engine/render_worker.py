"""A live session's renderer on its own thread, so that no session's set-up holds up a tick.

    gate = threading.Semaphore(2)                  # at most 2 frames drawn at once
    worker = RenderWorker(avatar, 512, gate)
    ms = worker.start().result()                   # renderer made + calibrated there
    rgb, ms = worker.submit(expr, pose).result()   # (512, 512, 3) uint8, render ms
    worker.close()                                 # frees the renderer on its thread

An OpenGL context belongs to the thread that made it, so each session's `Renderer` is
made, used and freed by one thread. Making a renderer (EGL context, shaders) and its first
draws (llvmpipe compiles the shaders on first use) cost 20-150 ms; on the scheduler's
thread they stalled every live session for that long, here they only take CPU. The shared
`gate` bounds how many frames are drawn at the same time (the machine's cores: llvmpipe
also rasterizes on threads of its own), so N sessions do not thrash N threads.

The renders are kept off Python's GIL by the renderer itself (engine/gl.py `gl_finish`,
docs/engine.md "Stalls"). llvmpipe's rasterizer belongs to the process's screen, so
contexts take turns on it whatever the number of render threads: its own threads
(LP_NUM_THREADS, default the cores) are what draws in parallel.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future
from typing import NamedTuple

import numpy as np

from stylecast.engine.avatar import Avatar
from stylecast.engine.face import neutral_expr, rest_pose

log = logging.getLogger(__name__)

CALIBRATION_FRAMES = 5  # renders timed at start (their median is the admission estimate)


class _Live(NamedTuple):
    """A live frame's job: who takes the result, and whether to draw it at all."""

    deliver: Callable[[np.ndarray | None, float], None]
    draw: bool


class RenderWorker:
    """One session's renderer and the thread that owns it (module doc)."""

    def __init__(
        self,
        avatar: Avatar,
        size: int,
        gate: threading.Semaphore,
        rt_priority: int | None = None,
    ) -> None:
        self.avatar = avatar
        self.size = size
        self._gate = gate
        self._rt_priority = rt_priority  # SCHED_RR priority of the thread (None: as is)
        self._jobs: queue.SimpleQueue = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._ready: Future = Future()  # median calibration ms, or the set-up's exception

    def start(self) -> Future:
        """Make the renderer on the worker's thread and time a few renders; the future
        holds their median in ms (or the error, e.g. BackendError without EGL)."""
        if self._thread is None:
            self._thread = threading.Thread(
                target=self._run, name=f"stylecast-render-{self.size}", daemon=True
            )
            self._thread.start()
        return self._ready

    def submit(self, expr: np.ndarray, pose: np.ndarray) -> Future:
        """Render one frame: a future of (rgb (size, size, 3) uint8, render ms)."""
        fut: Future = Future()
        self._jobs.put((expr, pose, fut))
        return fut

    def submit_frame(
        self,
        expr: np.ndarray,
        pose: np.ndarray,
        deliver: Callable[[np.ndarray | None, float], None],
        draw: bool = True,
    ) -> None:
        """Queue a live frame and return at once: the render thread draws it (unless
        `draw` is False) and calls `deliver(rgb or None, render ms)` on its own thread, in
        submission order. A frame still waiting when the next one is queued is not drawn
        (`deliver(None, 0.0)`): the thread is a frame behind, and drawing it would only
        make every later frame later too (it catches up instead)."""
        self._jobs.put((expr, pose, _Live(deliver, draw)))

    def close(self) -> None:
        """Free the renderer (on its thread) and end the thread; idempotent, never blocks."""
        if self._thread is not None:
            self._jobs.put(None)
            self._thread = None

    def _run(self) -> None:
        from stylecast.engine.render import Renderer
        from stylecast.engine.scheduler import use_rt_priority

        use_rt_priority(self._rt_priority)
        try:
            renderer = Renderer(self.avatar, self.size)
        except BaseException as e:
            self._ready.set_exception(e)
            return
        try:
            expr, pose = neutral_expr(), rest_pose()
            times = [self._draw(renderer, expr, pose)[1] for _ in range(CALIBRATION_FRAMES)]
            self._ready.set_result(float(np.median(times)))
            while (job := self._jobs.get()) is not None:
                expr, pose, fut = job
                if isinstance(fut, _Live):
                    self._live(renderer, expr, pose, fut)
                    continue
                try:
                    fut.set_result(self._draw(renderer, expr, pose))
                except BaseException as e:
                    fut.set_exception(e)
        except BaseException as e:  # calibration failed: tell start()
            if not self._ready.done():
                self._ready.set_exception(e)
        finally:
            renderer.close()
            while True:  # jobs queued behind close(): nobody waits for them, but be clean
                try:
                    job = self._jobs.get_nowait()
                except queue.Empty:
                    break
                if job is not None and isinstance(job[2], Future):
                    job[2].cancel()

    def _live(self, renderer, expr: np.ndarray, pose: np.ndarray, job: _Live) -> None:
        rgb, ms = None, 0.0
        if job.draw and self._jobs.empty():  # not drawn when the next frame is waiting
            try:
                rgb, ms = self._draw(renderer, expr, pose)
            except Exception:
                log.exception("rendering a live frame failed; it goes out without video")
        job.deliver(rgb, ms)

    def _draw(self, renderer, expr: np.ndarray, pose: np.ndarray) -> tuple[np.ndarray, float]:
        with self._gate:
            t0 = time.perf_counter()
            rgb = renderer.render(expr, pose)
            return rgb, 1000.0 * (time.perf_counter() - t0)
