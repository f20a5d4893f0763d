"""The renderer's OpenGL objects for one avatar: its meshes, textures and shader programs
uploaded to one context, and the offscreen target frames are drawn into and read back
from (engine/render.py draws them; engine/gl.py holds the shaders).

    scene = Scene(ctx, geometry, fringe)   # with ctx current
    scene.vaos["face"].render()            # one vertex array per part drawn
"""

from __future__ import annotations

import cv2
import numpy as np

from stylecast.engine import gl
from stylecast.engine.face import INDEX, N_EXPR, N_POSE
from stylecast.engine.gl import gl_finish, texture
from stylecast.engine.render_fringe import Fringe
from stylecast.engine.render_geometry import Geometry
from stylecast.engine.render_mesh import triangle_stretch

# A closing lid fades to a blurred sample of the skin above it (render_geometry,
# LID_SKIN_UP), drawn over the lid.
LID_SKIN_BLUR = 0.035  # its blur (Gaussian sigma), inter-ocular units
LID_SKIN_SHADE = 0.93  # and its brightness: the skin above is lit, a closed lid less so
# mouthClose with jawOpen holds the lips shut while the jaw drops: the skin from the lower
# lip to the chin is stretched up to 3.5x downwards, and its pores and freckles became
# vertical streaks. Where it is stretched, a copy of the portrait blurred across only (the
# lips' edges and the folds, which run across, stay sharp) fades in with the stretch.
STRETCH_BLUR = 0.03  # sigma of the across blur, inter-ocular units
STRETCH_FROM = 1.15  # stretch where the blurred copy starts (engine/render.py fades it in)
# The mouth interior is antialiased along each piece's outline in its fragment shader
# (gl.INTERIOR): coverage = distance to the outline in pixels + this, clamped to [0, 1].
EDGE_BIAS = 0.5
MOUTH_PARTS = ("interior", "tongue_tip")  # drawn that way
LID_UNIT, STRETCH_UNIT = 1, 2  # the texture units of the lid's and the stretch's skin


class Scene:
    """The GL objects of one Renderer (module doc); made with its context current."""

    def __init__(self, ctx, geometry: Geometry, fringe: Fringe) -> None:
        self.ctx = ctx
        s = geometry.size
        avatar = geometry.avatar
        self.finish = gl_finish()  # completes the draws with the GIL released (gl.py)
        # The offscreen target, read back into `readback` (RGB rows, row 0 at the top).
        self.fbo = ctx.framebuffer(
            color_attachments=[ctx.renderbuffer((s, s), components=4)],
            depth_attachment=ctx.depth_renderbuffer((s, s)),
        )
        self.readback = bytearray(s * s * 3)
        # Rendering smaller than the portrait: sample a portrait resized to the output
        # (area-averaged), so fine hair does not alias and shimmer as the head moves.
        image = avatar.image
        if s < image.shape[0]:
            image = cv2.resize(image, (s, s), interpolation=cv2.INTER_AREA)
        # RGBA textures: llvmpipe samples 4-byte texels much faster than 3-byte ones.
        self.tex_face = self._smooth(texture(ctx, image))
        self.tex_eyes = self._smooth(texture(ctx, avatar.eye_atlas))
        sigma = LID_SKIN_BLUR * avatar.rest.scale * image.shape[0] / avatar.size  # texels
        self.tex_lid = self._smooth(texture(ctx, cv2.GaussianBlur(image, (0, 0), sigma)))
        # What never moves (the background far from the head) is copied, not drawn.
        still = cv2.resize(avatar.image, (s, s), interpolation=cv2.INTER_AREA)
        self.fbo_still = ctx.framebuffer(color_attachments=[texture(ctx, still)])

        self.prog_tex = ctx.program(vertex_shader=gl.VERTEX, fragment_shader=gl.TEXTURED)
        self.prog_mouth = ctx.program(vertex_shader=gl.INTERIOR_VERTEX, fragment_shader=gl.INTERIOR)
        self.prog_mouth["edge_bias"].value = EDGE_BIAS
        prog_fringe = ctx.program(vertex_shader=gl.VERTEX, fragment_shader=gl.FRINGE)
        n_frame = geometry.slices["frame"].stop
        self.vbo_pos = ctx.buffer(reserve=geometry.vertices_nbytes, dynamic=True)
        self._vbo_attr = ctx.buffer(geometry.attr.tobytes())
        vbo_edge = ctx.buffer(geometry.edge.tobytes())
        self.vbo_fringe = ctx.buffer(reserve=fringe.nbytes, dynamic=True)
        self.lid = np.zeros(n_frame, np.float32)  # how much lid skin shows, per frame vertex
        self.vbo_lid = ctx.buffer(reserve=self.lid.nbytes, dynamic=True)

        textured = [(self.vbo_pos, "3f", "in_pos"), (self._vbo_attr, "4f", "in_attr")]
        indices = geometry.indices
        self.vaos = {
            "face": self._vao(self.prog_tex, textured, indices["face"]),
            "eyes": self._vao(self.prog_tex, textured, indices["eyes"]),
            "lid": self._skin_layer(
                gl.LID_VERTEX, LID_UNIT, LID_SKIN_SHADE, self.vbo_lid, indices["lid"]
            ),
            "fringe": self._vao(
                prog_fringe, [(self.vbo_fringe, "3f 4f", "in_pos", "in_attr")], fringe.triangles
            ),
        }
        for name in MOUTH_PARTS:
            buffers = [*textured, (vbo_edge, "3f 3f", "in_edge", "in_flat")]
            self.vaos[name] = self._vao(self.prog_mouth, buffers, indices[name])
        # The ring is drawn from a per-frame index buffer: only the triangles that moved.
        ring = indices["ring"]
        self.ring_ibo = ctx.buffer(reserve=max(ring.nbytes, 12), dynamic=True)
        self.vaos["ring"] = ctx.vertex_array(
            self.prog_tex, textured, index_buffer=self.ring_ibo, index_element_size=4
        )
        ctx.blend_func = ctx.SRC_ALPHA, ctx.ONE_MINUS_SRC_ALPHA
        ctx.depth_func = "<="  # the lid skin is drawn again over the face, at its depth
        self._build_stretch(geometry, image)

    def _build_stretch(self, geometry: Geometry, image: np.ndarray) -> None:
        """The stretched-skin pass: how much each frame vertex is stretched at full
        jawOpen + mouthClose (the mean over its triangles, measured from full jawOpen), the
        triangles that can be, and the across-blurred portrait they fade to."""
        ctx, a = self.ctx, geometry.avatar
        n_frame = geometry.slices["frame"].stop
        tri = np.concatenate([geometry.indices["face"], a.ring_triangles])
        opened = np.zeros(N_EXPR, np.float32)
        opened[INDEX["jawOpen"]] = 1.0
        closed = opened.copy()
        closed[INDEX["mouthClose"]] = 1.0
        rest = np.zeros(N_POSE, np.float32)
        before = geometry.vertices(opened, rest)[:n_frame, :2].copy()
        after = geometry.vertices(closed, rest)[:n_frame, :2]
        total = np.zeros(n_frame)
        np.add.at(total, tri.reshape(-1), np.repeat(triangle_stretch(before, after, tri), 3))
        count = np.bincount(tri.reshape(-1), minlength=n_frame)
        # (n_frame,) stretch - 1 at full jawOpen + mouthClose (0 where no triangle moves)
        self.stretch_excess = (total / np.maximum(count, 1) - 1.0).astype(np.float32)
        self.stretch_excess[count == 0] = 0.0
        reach = 1.0 + self.stretch_excess > STRETCH_FROM
        self.stretch = np.zeros(n_frame, np.float32)  # how much of the blurred copy shows
        sigma = STRETCH_BLUR * a.rest.scale * image.shape[0] / a.size  # texels
        k = 2 * int(np.ceil(3 * sigma)) + 1
        self.tex_stretch = self._smooth(
            texture(ctx, cv2.GaussianBlur(image, (k, 1), sigma, sigmaY=0.1))
        )
        self.vbo_stretch = ctx.buffer(reserve=self.stretch.nbytes, dynamic=True)
        self.vaos["stretch"] = self._skin_layer(
            gl.STRETCH_VERTEX, STRETCH_UNIT, 1.0, self.vbo_stretch, tri[reach[tri].any(1)]
        )

    def _smooth(self, tex):
        """`tex`, sampled bilinearly and clamped at its edges."""
        tex.filter = (self.ctx.LINEAR, self.ctx.LINEAR)
        tex.repeat_x = tex.repeat_y = False
        return tex

    def _vao(self, program, buffers: list[tuple], triangles: np.ndarray):
        """A vertex array drawing `triangles` (F, 3) from `buffers` with `program`."""
        ibo = self.ctx.buffer(np.ascontiguousarray(triangles, np.int32).tobytes())
        return self.ctx.vertex_array(program, buffers, index_buffer=ibo, index_element_size=4)

    def _skin_layer(self, vertex_shader: str, unit: int, shade: float, weights, triangles):
        """A skin layer over the face (gl.LID): its texture on `unit`, drawn at `shade`
        brightness with a per-vertex opacity from the buffer `weights`."""
        prog = self.ctx.program(vertex_shader=vertex_shader, fragment_shader=gl.LID)
        prog["lid_skin"].value = unit
        prog["shade"].value = shade
        buffers = [
            (self.vbo_pos, "3f", "in_pos"),
            (self._vbo_attr, "4f", "in_attr"),
            (weights, "1f", "in_lid"),
        ]
        return self._vao(prog, buffers, triangles)
