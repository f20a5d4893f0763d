"""The real-time renderer: an avatar bundle + (expr[52], pose[6]) -> an RGB frame.

    renderer = Renderer(load_avatar("default"), size=512)
    frame = renderer.render(expr, pose)                 # (512, 512, 3) uint8
    frames = renderer.render_batch(exprs, poses)        # (B, 512, 512, 3) uint8
    renderer.close()

A 2D warp of the portrait, drawn by OpenGL (moderngl, headless EGL: Mesa llvmpipe on a
CPU, the GPU's EGL where there is one; engine/gl.py). Per frame the CPU deforms the 478 rig
points (one 52 x 1434 matmul), poses and projects them with the avatar's rest pose straight
into clip space (their drawn depth relieved where the mesh turns edge-on, for motion only:
engine/render_mesh.py), moves the frame-mesh ring by its motion weights, and uploads ~2,500
vertices; the GPU draws:

1. the frame mesh outside the face (hair, neck, background), no depth test;
2. the mouth interior (cavity, tongue, lower teeth on the jaw, upper teeth on the skull;
   inside the lips' box, its outlines antialiased in the shader, shaded as in the lips'
   shadow when barely open) and the eyeballs (the iris slides with the gaze), painter's
   order;
3. the face mesh over them with a depth test (it has holes at the mouth and eyes, so the
   interior shows through exactly where the lips part and the lids open);
4. while a lid closes, a blurred sample of the lid's skin over it (no streaks);
5. while mouthClose holds the lips on an open jaw, a copy of the skin blurred across over
   the stretched chin (no streaks);
6. a fringe just inside the lips' and lids' edges, fading out (antialiasing);
7. the tongue's front half again, on top, when it is out (so it lies over the lower lip).

This module draws those passes in that order. The parts it draws with: the vertex layout
and each frame's positions (engine/render_geometry.py), the edge fringe of pass 6
(engine/render_fringe.py), the OpenGL objects: textures, programs, vertex arrays and the
offscreen target (engine/render_scene.py), the context and the shaders (engine/gl.py).
"""

from __future__ import annotations

import numpy as np

from stylecast.engine.avatar import Avatar
from stylecast.engine.errors import InputError
from stylecast.engine.face import INDEX
from stylecast.engine.gl import create_context
from stylecast.engine.render_fringe import Fringe
from stylecast.engine.render_geometry import Geometry
from stylecast.engine.render_scene import LID_UNIT, STRETCH_FROM, STRETCH_UNIT, Scene

LID_MIN = 0.01  # below this much lid skin (eyes open) the lid pass is skipped
# The chin's across-blurred skin (render_scene) is full from this stretch on, fading in
# from STRETCH_FROM.
STRETCH_FULL = 1.9
STRETCH_MIN = 0.03  # below this much min(jawOpen, mouthClose) the pass is skipped
# Barely open, the lips shade the interior and a sliver of busy tooth shading would
# flicker: below this mean lip opening (inter-ocular units; jaw 0.3 opens ~0.12) the
# interior is darkened down to INTERIOR_SHADOW and its shading flattened down to
# INTERIOR_DETAIL of itself, towards each part's mean colour.
INTERIOR_OPEN, INTERIOR_SHADOW, INTERIOR_DETAIL = 0.12, 0.8, 0.15
TONGUE_SHOWN = 0.05  # tongueOut above which its front half is drawn again over the lips


class Renderer:
    """Renders one avatar. Any thread may call it, one at a time (it is not thread-safe:
    guard it or give each worker its own); several Renderers may share a thread."""

    def __init__(self, avatar: Avatar, size: int | None = None) -> None:
        self.avatar = avatar
        self.size = int(size or avatar.size)
        if not 16 <= self.size <= 4096:
            raise InputError(f"render size {self.size} px is out of range; use 16..4096")
        self._geometry = Geometry(avatar, self.size)  # the vertices, made on the CPU
        self._slices = self._geometry.slices  # which vertices are which part (tests read it)
        self._fringe = Fringe(avatar, self.size)
        self._ctx = None
        self._ctx = create_context()
        self._scene = Scene(self._ctx, self._geometry, self._fringe)
        # Making the context left it current on this thread, where EGL would keep it bound
        # (and unusable from any other thread, even after this one ends). Unbind it: each
        # frame binds it on the calling thread and unbinds it again (`with ctx` in _draw).
        self._ctx.__exit__(None, None, None)

    # ------------------------------------------------------------------ per frame

    def vertices(self, expr: np.ndarray, pose: np.ndarray) -> np.ndarray:
        """(V, 3) float32 clip-space positions of every vertex for one frame (what render
        draws): the first 478 rows are the rig's points. The array is reused by the next
        call: copy it to keep it (or use landmarks_px)."""
        return self._geometry.vertices(expr, pose)

    @property
    def device(self) -> str:
        """The OpenGL renderer string, e.g. 'llvmpipe (LLVM 15.0.6, 256 bits)'."""
        if self._ctx is None:
            raise RuntimeError("Renderer is closed")
        with self._ctx:
            return str(self._ctx.info["GL_RENDERER"])

    def landmarks_px(self, expr: np.ndarray, pose: np.ndarray) -> np.ndarray:
        """(478, 2) float32: where the rig's points land in the rendered frame, in output
        pixels (x right, y down): the ground truth for fitting rendered frames."""
        v = self.vertices(expr, pose)[:478, :2]
        return ((v + 1.0) * (0.5 * self.size)).astype(np.float32)

    def render(
        self, expr: np.ndarray, pose: np.ndarray, out: np.ndarray | None = None
    ) -> np.ndarray:
        """One frame: expr (52,) ARKit weights in [0, 1] (others are clipped), pose (6,)
        (pitch, yaw, roll in radians; tx, ty, tz in inter-ocular units, relative to the rest
        pose). out: an optional (size, size, 3) uint8 array to write into (no allocation).
        Returns (size, size, 3) uint8 RGB (`out` when given)."""
        shape = (self.size, self.size, 3)
        if out is None:
            out = np.empty(shape, np.uint8)
        elif out.shape != shape or out.dtype != np.uint8:
            raise InputError(f"out must be a {shape} uint8 array, got {out.shape} {out.dtype}")
        self._draw(expr, pose, out)
        return out

    def render_batch(self, expr: np.ndarray, pose: np.ndarray) -> np.ndarray:
        """expr (B, 52), pose (B, 6) -> (B, size, size, 3) uint8."""
        expr = np.asarray(expr)
        pose = np.asarray(pose)
        if expr.ndim != 2 or pose.ndim != 2 or len(expr) != len(pose):
            raise InputError(
                f"expected expr (B, 52) and pose (B, 6), got {expr.shape}, {pose.shape}"
            )
        out = np.empty((len(expr), self.size, self.size, 3), np.uint8)
        for i in range(len(expr)):
            self._draw(expr[i], pose[i], out[i])
        return out

    def _draw(self, expr: np.ndarray, pose: np.ndarray, out: np.ndarray) -> None:
        if self._ctx is None:
            raise RuntimeError("Renderer is closed")
        geometry, fringe, scene = self._geometry, self._fringe, self._scene
        pos = geometry.vertices(expr, pose)
        tongue_out = float(np.asarray(expr)[INDEX["tongueOut"]]) > TONGUE_SHOWN
        ring = geometry.indices["ring"]
        ring = ring[geometry.moved[ring].any(axis=1)]
        e = np.asarray(expr, np.float32)
        for k, idx, share in geometry.lid_sides:
            scene.lid[idx] = min(max(float(e[k]), 0.0), 1.0) * share
        lids_closing = scene.lid.max() > LID_MIN
        held = min(float(e[INDEX["jawOpen"]]), float(e[INDEX["mouthClose"]]))
        stretched = held > STRETCH_MIN
        if stretched:
            full = STRETCH_FULL - STRETCH_FROM
            np.multiply(scene.stretch_excess, held / full, out=scene.stretch)
            scene.stretch += (1.0 - STRETCH_FROM) / full
            np.clip(scene.stretch, 0.0, 1.0, out=scene.stretch)
        ctx, vaos = self._ctx, scene.vaos
        # Several renderers may live in one thread: make this one's context current.
        with ctx:
            scene.vbo_pos.write(pos)
            if lids_closing:
                scene.vbo_lid.write(scene.lid)
            if stretched:
                scene.vbo_stretch.write(scene.stretch)
            scene.vbo_fringe.write(fringe.vertices(pos))
            scene.fbo.use()
            scene.fbo.clear(0.0, 0.0, 0.0, 1.0, depth=1.0)
            ctx.copy_framebuffer(scene.fbo, scene.fbo_still)
            ctx.disable(ctx.DEPTH_TEST)
            scene.tex_face.use(0)
            if len(ring):
                scene.ring_ibo.write(ring.tobytes())
                vaos["ring"].render(vertices=ring.size)
            # The interior shows only through the lips' opening: drawn inside its box (the
            # lips' loop can cross itself with parts of it open, so always drawn).
            ctx.scissor = fringe.mouth_box  # (of the bound framebuffer)
            opening = float(fringe.hole_area[0]) * fringe.area_to_opening  # inter-ocular units
            open_ = min(max(opening / INTERIOR_OPEN, 0.0), 1.0)
            open_ = open_ * open_ * (3.0 - 2.0 * open_)  # smoothstep
            mouth = scene.prog_mouth
            mouth["lit"].value = INTERIOR_SHADOW + (1.0 - INTERIOR_SHADOW) * open_
            mouth["detail"].value = INTERIOR_DETAIL + (1.0 - INTERIOR_DETAIL) * open_
            ctx.enable(ctx.BLEND)  # their antialiased outlines
            vaos["interior"].render()
            ctx.disable(ctx.BLEND)
            ctx.scissor = None
            scene.tex_eyes.use(0)
            vaos["eyes"].render()
            ctx.enable(ctx.DEPTH_TEST)
            scene.tex_face.use(0)
            vaos["face"].render()
            ctx.enable(ctx.BLEND)
            if lids_closing:  # the lid skin over the lids, where the face is in front
                scene.tex_lid.use(LID_UNIT)
                vaos["lid"].render()
            if stretched:  # the across-blurred skin where mouthClose stretches it
                scene.tex_stretch.use(STRETCH_UNIT)
                vaos["stretch"].render()
            ctx.disable(ctx.DEPTH_TEST)
            vaos["fringe"].render()
            if tongue_out:
                vaos["tongue_tip"].render()
            ctx.disable(ctx.BLEND)
            if scene.finish is not None:  # the draws complete here, off the GIL
                scene.finish()
            scene.fbo.read_into(scene.readback, components=3, alignment=1)
        out[...] = np.frombuffer(scene.readback, np.uint8).reshape(self.size, self.size, 3)

    def close(self) -> None:
        """Release the OpenGL context. Safe to call twice."""
        if self._ctx is not None:
            self._ctx.release()
            self._ctx = None

    def __enter__(self) -> Renderer:
        return self

    def __exit__(self, *exc) -> None:
        self.close()
