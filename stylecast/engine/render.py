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
"""

from __future__ import annotations

import cv2
import numpy as np

from stylecast.engine import gl
from stylecast.engine.avatar import Avatar, MeshPart
from stylecast.engine.errors import InputError
from stylecast.engine.face import INDEX, N_EXPR, N_POSE, rotation_matrix
from stylecast.engine.gl import create_context, gl_finish, texture
from stylecast.engine.render_mesh import Loops, outline_relief, outlined, triangle_stretch

DEPTH_RANGE = 6.0  # canonical depth units mapped onto the depth buffer's [-1, 1]
# tongueOut = 1 moves a tongue vertex by
#   (0, TONGUE_RISE w + TONGUE_HANG max(0, 2 w - 1)^2, -TONGUE_REACH min(1, 1.8 w)),
# w = 1 at the tip, 0 at the back: it rises over the lower teeth, comes out between the
# lips and its front half curls down over the lower lip, facing the camera.
TONGUE_REACH, TONGUE_RISE, TONGUE_HANG = 0.6, -0.3, 0.32
# A ring triangle whose corners all lie within this many output pixels of where the still
# copy has them is not drawn: the copy already shows it (typical small head motions leave
# most of the frame still).
STILL_PX = 0.2
CAVITY_INNER = 0.55  # the cavity's inner ring, as a fraction of the lip opening
# Drawn depth never falls away faster than this (canonical dz per unit of x, y distance,
# about 50 deg): the mesh's sides wrap round towards the ears, where the portrait shows
# them edge-on (a pixel or two of cheek, ear and hair); turned towards the camera, that
# sliver would be stretched into streaks. Limiting the slope spreads the stretch over the
# cheek and lets the far side compress instead of folding over.
MAX_DEPTH_SLOPE = 1.2
# The relief lowers some points of the face's outline and not their neighbours: a point
# left deeper than both stays behind as the head turns (a bump on the far jaw at yaw 25).
# These rounds of bringing such points forward even the outline's depth out.
OUTLINE_PASSES = 8
# A closing upper lid is drawn with the portrait's thin band of lid above the lashes
# stretched over the whole eye: the lashes and the crease in it make vertical streaks. As
# the eye closes, the lid's skin fades to a blurred sample of the skin a little above it.
LID_SKIN_UP = 0.08  # where that sample is taken: this far above the lid, inter-ocular units
LID_SKIN_BLUR = 0.035  # its blur (Gaussian sigma), inter-ocular units
LID_SKIN_SHADE = 0.93  # and its brightness: the skin above is lit, a closed lid less so
LID_RING_SHARE = 0.5  # how much of it the ring above the lid shows (the fade upwards)
LID_MIN = 0.01  # below this much lid skin (eyes open) the lid pass is skipped
# mouthClose with jawOpen holds the lips shut while the jaw drops: the skin from the lower
# lip to the chin is stretched up to 3.5x downwards, and its pores and freckles became
# vertical streaks. Where it is stretched, a copy of the portrait blurred across only (the
# lips' edges and the folds, which run across, stay sharp) fades in with the stretch.
STRETCH_BLUR = 0.03  # sigma of the across blur, inter-ocular units
STRETCH_FROM, STRETCH_FULL = 1.15, 1.9  # stretch where the blurred copy starts / is full
STRETCH_MIN = 0.03  # below this much min(jawOpen, mouthClose) the pass is skipped
# The face's holes (the lips' and the lids' edges) are antialiased by a fringe: a strip
# this many output pixels wide just inside each hole, fading from the edge's colour to
# transparent, sampled this many portrait pixels back from the edge (on the lip or lid).
FRINGE_PX, FRINGE_SAMPLE_PX = 1.2, 1.5
# The mouth interior is antialiased along each piece's outline in its fragment shader
# (gl.INTERIOR): coverage = distance to the outline in pixels + this, clamped to [0, 1].
EDGE_BIAS = 0.5
MOUTH_PARTS = ("interior", "tongue_tip")  # drawn that way
# Barely open, the lips shade the interior and a sliver of busy tooth shading would
# flicker: below this mean lip opening (inter-ocular units; jaw 0.3 opens ~0.12) the
# interior is darkened down to INTERIOR_SHADOW and its shading flattened down to
# INTERIOR_DETAIL of itself, towards each part's mean colour.
INTERIOR_OPEN, INTERIOR_SHADOW, INTERIOR_DETAIL = 0.12, 0.8, 0.15
FRINGE_OPEN = 0.03  # the fringe narrows to nothing as a hole closes below this much of its
# area in the portrait (closed lips and lids have no inside to fade into)


class Renderer:
    """Renders one avatar. Any thread may call it, one at a time (it is not thread-safe:
    guard it or give each worker its own); several Renderers may share a thread."""

    def __init__(self, avatar: Avatar, size: int | None = None) -> None:
        self.avatar = avatar
        self.size = int(size or avatar.size)
        if not 16 <= self.size <= 4096:
            raise InputError(f"render size {self.size} px is out of range; use 16..4096")
        rig = avatar.rig
        self._neutral = rig.neutral.astype(np.float32)
        self._basis = rig.basis.reshape(N_EXPR, -1).astype(np.float32)  # (52, 1434)
        self._lid_neutral = avatar.lids.neutral.astype(np.float32)
        self._lid_basis = avatar.lids.basis.reshape(N_EXPR, -1).astype(np.float32)  # (52, 3E)
        self._px = self.size / avatar.size  # output pixels per avatar pixel
        self._build_geometry()
        self._ctx = None
        self._ctx = create_context()
        self._build_gl()
        # Making the context left it current on this thread, where EGL would keep it bound
        # (and unusable from any other thread, even after this one ends). Unbind it: each
        # frame binds it on the calling thread and unbinds it again (`with ctx` in _draw).
        self._ctx.__exit__(None, None, None)

    # ------------------------------------------------------------------ set-up

    def _build_geometry(self) -> None:
        a = self.avatar
        g = a.rig.groups
        self._inner = g["lips_inner"]
        self._iris = (int(g["iris_right"][0]), int(g["iris_left"][0]))
        # The frame: [478 rig points | R ring vertices | E extra lid vertices].
        n_face, n_ring, n_lid = 478, len(a.ring_vertices), len(a.lids.neutral)
        n_frame = n_face + n_ring + n_lid
        # The mouth interior unshared, its outlines marked for antialiasing (render_mesh).
        mouth, edges = [], []
        for p in (a.teeth_upper, a.teeth_lower, a.tongue):
            corners, edge = outlined(p.triangles)
            flat = np.arange(len(corners), dtype=np.int32).reshape(-1, 3)
            mouth.append(MeshPart(p.vertices[corners], flat, p.attrib[corners]))
            edges.append(edge)
        self._teeth_upper, self._teeth_lower, self._tongue = mouth
        parts = [*a.eyes, *mouth]
        offsets, o = [], n_frame
        for p in parts:
            offsets.append(o)
            o += len(p.vertices)
        k = len(self._inner)
        self._cavity_offset = o
        self._n_vertices = o + 2 * k + 1
        self._pos = np.zeros((self._n_vertices, 3), np.float32)
        rest = a.rest
        # Image pixels -> clip space, x' = clip_m * x + clip_c (y down in the image = row 0
        # first in the read-back; depth over DEPTH_RANGE canonical units).
        scale = 2.0 * self._px / self.size
        depth = 1.0 / (rest.scale * DEPTH_RANGE)
        self._to_clip = (
            np.array([scale, scale, depth]),
            np.array([-1.0, -1.0, -rest.translation[2] * depth]),
        )
        clip_m, clip_c = self._to_clip
        # Canonical -> clip space is m0 (R v + t) + c0 for a pose (R, t): at the rest pose
        # (float64 for composing, float32 for the vertices: mixed products cost twice).
        self._rest_m = clip_m[:, None] * rest.scale * rest.rotation  # (3, 3)
        self._rest_c = clip_m * rest.translation + clip_c  # (3,)
        self._still_transform = (
            self._rest_m.astype(np.float32),
            self._rest_c.astype(np.float32),
        )
        self._weight = np.concatenate(
            [np.ones(n_face, np.float32), a.ring_weight, np.ones(n_lid, np.float32)]
        )
        self._slices = {
            "frame": slice(0, n_frame),
            "ring": slice(n_face, n_face + n_ring),
            "eye_right": slice(offsets[0], offsets[1]),
            "eye_left": slice(offsets[1], offsets[2]),
            "teeth_upper": slice(offsets[2], offsets[3]),
            "teeth_lower": slice(offsets[3], offsets[4]),
            "tongue": slice(offsets[4], o),
            "cavity": slice(o, self._n_vertices),
        }
        attr = np.zeros((self._n_vertices, 4), np.float32)
        attr[:n_face, :2] = a.face_uv
        attr[n_face : n_face + n_ring, :2] = a.ring_uv
        attr[n_face + n_ring : n_frame, :2] = a.lids.uv
        for p, off in zip(parts, offsets, strict=True):
            attr[off : off + len(p.vertices)] = p.attrib
        # Per vertex of the interior: its outline coordinates, and the colour it flattens
        # towards when the lips are barely open (its part's front, lit colour).
        self._edge = np.ones((self._n_vertices, 6), np.float32)
        self._edge[offsets[2] : o, :3] = np.concatenate(edges)
        for p, off in zip(mouth, offsets[2:], strict=True):
            self._edge[off : off + len(p.vertices), 3:] = np.percentile(p.attrib[:, :3], 80, axis=0)
        rim, back = a.cavity_color
        attr[o : o + k, :3] = rim
        attr[o + k : o + 2 * k, :3] = 0.5 * (rim + back)
        attr[o + 2 * k, :3] = back
        attr[o:, 3] = -1.0
        self._edge[o:, 3:] = attr[o:, :3]  # the cavity flattens towards its own colours
        self._lid_sides = self._lid_skin(attr, n_ring)
        lid_vertices = np.concatenate([idx for _, idx, _ in self._lid_sides])
        self._lid = np.zeros(n_frame, np.float32)
        self._attr = attr
        self._dz = outline_relief(
            np.concatenate([self._neutral, a.ring_vertices, self._lid_neutral]),
            np.concatenate([a.ring_triangles, self._lid_triangles(n_ring)]),
            MAX_DEPTH_SLOPE,
            g["face_oval"],
            OUTLINE_PASSES,
        )
        # The relief is for motion only: at the rest pose every point is drawn where the
        # portrait has it (the rest rotation would otherwise carry the lowered depth into
        # x, y: up to 7 px on the default avatar). This is what the relief moves in x, y
        # there, taken off again each frame.
        self._dz_rest = np.zeros((n_frame, 3), np.float32)
        self._dz_rest[:, :2] = self._dz[:, None] * self._still_transform[0][:2, 2]
        self._gaze = [a.eyes[0].attrib[:, 2:3], a.eyes[1].attrib[:, 2:3]]
        self._build_fringe()
        tongue = self._tongue
        tz = tongue.vertices[:, 2]
        w = ((tz.max() - tz) / max(tz.max() - tz.min(), 1e-6))[:, None]  # 1 at the tip
        self._tongue_out = np.concatenate(
            [
                np.zeros_like(w),
                TONGUE_RISE * w + TONGUE_HANG * np.maximum(0.0, 2 * w - 1) ** 2,
                -TONGUE_REACH * np.minimum(1.0, 1.8 * w),
            ],
            axis=1,
        ).astype(np.float32)
        # The cavity: the lip opening itself (rim), an inner ring CAVITY_INNER of the way to
        # the rim's centre and the centre, pushed back: cavity = map @ rim + push.
        mean = np.full((1, k), 1.0 / k)
        self._cavity_map = np.concatenate(
            [np.eye(k), CAVITY_INNER * np.eye(k) + (1 - CAVITY_INNER) * mean, mean]
        ).astype(np.float32)  # (2K + 1, K)
        push = np.zeros((2 * k + 1, 3), np.float32)
        push[:k, 2], push[k : 2 * k, 2], push[2 * k, 2] = (
            0.02,
            0.35 * (1 - CAVITY_INNER) + 0.15,
            0.35,
        )
        self._cavity_push = push
        cav = []
        for i in range(k):
            j = (i + 1) % k
            cav += [(i, j, k + j), (i, k + j, k + i), (k + i, k + j, 2 * k)]
        self._indices = {
            # Only the ring triangles that move; the others are in the still copy.
            "ring": a.ring_triangles[(self._weight[a.ring_triangles] > 1e-4).any(1)],
            # Lid vertices are numbered 478.. in the refinement; here they follow the ring.
            "face": self._lid_triangles(n_ring),
            # The face triangles a closing lid's skin is drawn over.
            "lid": (face := self._lid_triangles(n_ring))[np.isin(face, lid_vertices).any(1)],
            # The mouth interior in painter's order, one draw: cavity, tongue, lower teeth,
            # upper teeth.
            "interior": np.concatenate(
                [
                    np.array(cav, np.int32) + o,
                    tongue.triangles + offsets[4],
                    self._teeth_lower.triangles + offsets[3],
                    self._teeth_upper.triangles + offsets[2],
                ]
            ),
            "eyes": np.concatenate(
                [a.eyes[0].triangles + offsets[0], a.eyes[1].triangles + offsets[1]]
            ),
            # The tongue's front half, drawn over the lips when it is out.
            "tongue_tip": tongue.triangles[(w[tongue.triangles, 0] > 0.45).all(1)] + offsets[4],
        }

    def _build_fringe(self) -> None:
        """The fringe strips along the lips' and lids' edges: static triangles and texture
        coordinates (the positions are made per frame by _fringe_vertices)."""
        a, g = self.avatar, self.avatar.rig.groups
        loops = [g["lips_inner"], g["eye_right"], g["eye_left"]]
        self._loops = Loops(loops)
        n = len(self._loops.points)
        self._fringe = np.zeros((2 * n, 7), np.float32)  # (x, y, z, u, v, alpha, 0)
        # Sample the portrait a little back from the edge, away from the hole.
        uv = a.face_uv[self._loops.points].astype(np.float64)
        self._loops.orient(uv)
        uv -= self._loops.inward(uv) * (FRINGE_SAMPLE_PX / a.size)
        self._fringe[:n, 3:5] = self._fringe[n:, 3:5] = uv
        self._fringe[:n, 5] = 1.0  # opaque on the edge, clear inside
        # The lips' area (uv units) -> their mean opening (inter-ocular units): over their
        # width in the portrait, in output pixels per inter-ocular distance.
        lips_px = np.ptp(a.landmarks[self._inner, 0]) * self._px
        self._area_to_opening = self.size**2 / (lips_px * a.rest.scale * self._px)
        i = np.arange(n)
        j = self._loops.next
        self._fringe_tris = np.concatenate(
            [np.stack([i, j, n + j], 1), np.stack([i, n + j, n + i], 1)]
        ).astype(np.int32)

    def _fringe_vertices(self, pos: np.ndarray) -> np.ndarray:
        """(2N, 7) fringe vertices for this frame's clip-space positions `pos`. On the way
        it notes each hole's (lips, right eye, left eye) area (uv units), and the lips'
        box in pixels (x, y, width, height), 2 px wider each side, for this frame's draw."""
        f, n = self._fringe, len(self._loops.points)
        edge = pos[self._loops.points]  # (N, 3)
        f[:n, :3] = edge
        f[n:, :3] = edge
        # Narrower as a hole closes, none when closed (its sides meet or cross: no inside).
        loops = self._loops
        area = loops.area(edge[:, :2]) * loops.sign[loops.starts] / 4.0  # uv units
        self._hole_area = area
        lips = edge[: loops.starts[1], :2]
        lo = np.floor((lips.min(0) + 1.0) * (0.5 * self.size)) - 2.0
        hi = np.ceil((lips.max(0) + 1.0) * (0.5 * self.size)) + 2.0
        x0, y0 = np.maximum(lo, 0.0).astype(int).tolist()
        x1, y1 = np.minimum(hi, self.size).astype(int).tolist()
        self._mouth_box = (x0, y0, max(x1 - x0, 0), max(y1 - y0, 0))
        opened = np.clip(area / (FRINGE_OPEN * loops.open_area), 0.0, 1.0)[loops.loop]
        width = (FRINGE_PX * 2.0 / self.size) * opened[:, None]  # clip units
        f[n:, :2] += width * loops.inward(edge[:, :2])
        return f

    def _lid_skin(self, attr: np.ndarray, n_ring: int) -> list[tuple[int, np.ndarray, np.ndarray]]:
        """Sets the lid-skin texture coordinates (attr[:, 2:4]) of the frame vertices:
        LID_SKIN_UP above their own, except for the extra lid vertices, which sample above
        the ring point they split to (the skin a closed lid shows). Returns, for each eye,
        (eyeBlink index, vertices, how much each shows the lid skin when closed): the extra
        vertices fully, the ring above them partly (the fade into the portrait)."""
        a = self.avatar
        edges = a.lids.edges  # (E, 2): (margin point, ring point) of each extra vertex
        up = np.array([0.0, -LID_SKIN_UP * a.rest.scale / a.size], np.float32)
        n_frame = 478 + n_ring + len(edges)
        attr[:n_frame, 2:4] = attr[:n_frame, :2] + up  # (the other parts' attributes differ)
        sides = []
        for side, name in (("left", "eyeBlinkLeft"), ("right", "eyeBlinkRight")):
            mine = np.isin(edges[:, 0], a.rig.groups[f"eyelid_{side}_upper"])
            extra = 478 + n_ring + np.flatnonzero(mine)
            ring = np.unique(edges[mine, 1])
            attr[extra, 2:4] = a.face_uv[edges[mine, 1]] + up
            share = np.r_[np.ones(len(extra)), np.full(len(ring), LID_RING_SHARE)]
            sides.append((INDEX[name], np.concatenate([extra, ring]), share.astype(np.float32)))
        return sides

    def _lid_triangles(self, n_ring: int) -> np.ndarray:
        """The face triangles as drawn, indexing the frame vertices: the lid vertices are
        numbered 478.. in the refinement; here they follow the ring."""
        t = self.avatar.lids.triangles
        return np.where(t >= 478, t + n_ring, t)

    def _build_gl(self) -> None:
        ctx = self._ctx
        s = self.size
        self._finish = gl_finish()  # completes the draws with the GIL released (gl.py)
        self._fbo = ctx.framebuffer(
            color_attachments=[ctx.renderbuffer((s, s), components=4)],
            depth_attachment=ctx.depth_renderbuffer((s, s)),
        )
        # Rendering smaller than the portrait: sample a portrait resized to the output
        # (area-averaged), so fine hair does not alias and shimmer as the head moves.
        image = self.avatar.image
        if s < image.shape[0]:
            image = cv2.resize(image, (s, s), interpolation=cv2.INTER_AREA)
        # RGBA textures: llvmpipe samples 4-byte texels much faster than 3-byte ones.
        self._tex_face = texture(ctx, image)
        self._tex_eyes = texture(ctx, self.avatar.eye_atlas)
        sigma = LID_SKIN_BLUR * self.avatar.rest.scale * image.shape[0] / self.avatar.size  # texels
        self._tex_lid = texture(ctx, cv2.GaussianBlur(image, (0, 0), sigma))
        # What never moves (the background far from the head) is copied, not drawn.
        still = cv2.resize(self.avatar.image, (s, s), interpolation=cv2.INTER_AREA)
        self._fbo_still = ctx.framebuffer(color_attachments=[texture(ctx, still)])
        for t in (self._tex_face, self._tex_eyes, self._tex_lid):
            t.filter = (ctx.LINEAR, ctx.LINEAR)
            t.repeat_x = t.repeat_y = False
        self._prog_tex = ctx.program(vertex_shader=gl.VERTEX, fragment_shader=gl.TEXTURED)
        self._prog_lid = ctx.program(vertex_shader=gl.LID_VERTEX, fragment_shader=gl.LID)
        self._prog_lid["lid_skin"].value = 1
        self._prog_lid["shade"].value = LID_SKIN_SHADE
        self._prog_mouth = ctx.program(
            vertex_shader=gl.INTERIOR_VERTEX, fragment_shader=gl.INTERIOR
        )
        self._prog_mouth["edge_bias"].value = EDGE_BIAS
        self._vbo_pos = ctx.buffer(reserve=self._pos.nbytes, dynamic=True)
        self._vbo_attr = ctx.buffer(self._attr.tobytes())
        self._vbo_edge = ctx.buffer(self._edge.tobytes())
        self._vbo_lid = ctx.buffer(reserve=self._lid.nbytes, dynamic=True)
        self._vaos = {}
        for name, idx in self._indices.items():
            if name == "ring":
                continue  # drawn from a per-frame index buffer, below
            if name == "lid":
                self._vaos[name] = ctx.vertex_array(
                    self._prog_lid,
                    [
                        (self._vbo_pos, "3f", "in_pos"),
                        (self._vbo_attr, "4f", "in_attr"),
                        (self._vbo_lid, "1f", "in_lid"),
                    ],
                    index_buffer=ctx.buffer(np.ascontiguousarray(idx, np.int32).tobytes()),
                    index_element_size=4,
                )
                continue
            prog = self._prog_tex  # the face and the eyeballs; the interior below
            buffers = [(self._vbo_pos, "3f", "in_pos"), (self._vbo_attr, "4f", "in_attr")]
            if name in MOUTH_PARTS:
                prog = self._prog_mouth
                buffers.append((self._vbo_edge, "3f 3f", "in_edge", "in_flat"))
            ibo = ctx.buffer(np.ascontiguousarray(idx, np.int32).tobytes())
            self._vaos[name] = ctx.vertex_array(
                prog, buffers, index_buffer=ibo, index_element_size=4
            )
        self._readback = bytearray(s * s * 3)
        self._vbo_fringe = ctx.buffer(reserve=self._fringe.nbytes, dynamic=True)
        self._prog_fringe = ctx.program(vertex_shader=gl.VERTEX, fragment_shader=gl.FRINGE)
        ctx.blend_func = ctx.SRC_ALPHA, ctx.ONE_MINUS_SRC_ALPHA
        ctx.depth_func = "<="  # the lid skin is drawn again over the face, at its depth
        self._vaos["fringe"] = ctx.vertex_array(
            self._prog_fringe,
            [(self._vbo_fringe, "3f 4f", "in_pos", "in_attr")],
            index_buffer=ctx.buffer(self._fringe_tris.tobytes()),
            index_element_size=4,
        )
        # The ring is drawn from a per-frame index buffer: only the triangles that moved.
        ring = self._indices["ring"]
        self._ring_ibo = ctx.buffer(reserve=max(ring.nbytes, 12), dynamic=True)
        self._vaos["ring"] = ctx.vertex_array(
            self._prog_tex,
            [(self._vbo_pos, "3f", "in_pos"), (self._vbo_attr, "4f", "in_attr")],
            index_buffer=self._ring_ibo,
            index_element_size=4,
        )
        self._still_clip = self._attr[self._slices["frame"], :2] * 2.0 - 1.0  # uv -> clip
        self._moved = np.zeros(len(self._still_clip), bool)
        self._ring_points = np.unique(self._indices["ring"])  # (the oval's and the ring's)
        self._build_stretch(image)

    def _build_stretch(self, image: np.ndarray) -> None:
        """The stretched-skin pass: how much each frame vertex is stretched at full
        jawOpen + mouthClose (the mean over its triangles, measured from full jawOpen), the
        triangles that can be, and the across-blurred portrait they fade to."""
        ctx, a = self._ctx, self.avatar
        n_frame = self._slices["frame"].stop
        tri = np.concatenate([self._indices["face"], a.ring_triangles])
        opened = np.zeros(N_EXPR, np.float32)
        opened[INDEX["jawOpen"]] = 1.0
        closed = opened.copy()
        closed[INDEX["mouthClose"]] = 1.0
        rest = np.zeros(N_POSE, np.float32)
        before = self.vertices(opened, rest)[:n_frame, :2].copy()
        after = self.vertices(closed, rest)[:n_frame, :2]
        total = np.zeros(n_frame)
        np.add.at(total, tri.reshape(-1), np.repeat(triangle_stretch(before, after, tri), 3))
        count = np.bincount(tri.reshape(-1), minlength=n_frame)
        self._stretch_excess = (total / np.maximum(count, 1) - 1.0).astype(np.float32)
        self._stretch_excess[count == 0] = 0.0
        reach = 1.0 + self._stretch_excess > STRETCH_FROM
        self._stretch = np.zeros(n_frame, np.float32)
        sigma = STRETCH_BLUR * a.rest.scale * image.shape[0] / a.size  # texels
        k = 2 * int(np.ceil(3 * sigma)) + 1
        self._tex_stretch = texture(ctx, cv2.GaussianBlur(image, (k, 1), sigma, sigmaY=0.1))
        self._tex_stretch.filter = (ctx.LINEAR, ctx.LINEAR)
        self._tex_stretch.repeat_x = self._tex_stretch.repeat_y = False
        prog = ctx.program(vertex_shader=gl.STRETCH_VERTEX, fragment_shader=gl.LID)
        prog["lid_skin"].value = 2
        prog["shade"].value = 1.0
        self._vbo_stretch = ctx.buffer(reserve=self._stretch.nbytes, dynamic=True)
        self._vaos["stretch"] = ctx.vertex_array(
            prog,
            [
                (self._vbo_pos, "3f", "in_pos"),
                (self._vbo_attr, "4f", "in_attr"),
                (self._vbo_stretch, "1f", "in_lid"),
            ],
            index_buffer=ctx.buffer(np.ascontiguousarray(tri[reach[tri].any(1)]).tobytes()),
            index_element_size=4,
        )

    # ------------------------------------------------------------------ per frame

    def vertices(self, expr: np.ndarray, pose: np.ndarray) -> np.ndarray:
        """(V, 3) float32 clip-space positions of every vertex for one frame (what render
        draws): the first 478 rows are the rig's points. The array is reused by the next
        call: copy it to keep it (or use landmarks_px)."""
        e = np.clip(np.asarray(expr, np.float32), 0.0, 1.0)
        p = np.asarray(pose, np.float64)
        if e.shape != (N_EXPR,) or p.shape != (N_POSE,):
            raise InputError(f"expected expr (52,) and pose (6,), got {e.shape} and {p.shape}")
        if not (np.isfinite(e).all() and np.isfinite(p).all()):
            raise InputError("expr and pose must be finite numbers (got NaN or infinity)")
        a = self.avatar
        face = self._neutral + (e @ self._basis).reshape(478, 3)  # (478, 3) canonical
        moved = face - self._neutral
        ring = a.ring_vertices + a.ring_follow[:, None] * moved[a.ring_parent]
        lids = self._lid_neutral + (e @ self._lid_basis).reshape(-1, 3)
        frame = np.concatenate([face, ring, lids])  # (478 + R + E, 3)
        frame[:, 2] += self._dz
        rot = rotation_matrix(*p[:3])
        t = p[3:6]
        # One rigid transform, canonical -> image pixels, scale * R0 (R v + t) + t0, then
        # -> clip space (float32 like the vertices: mixed-precision products cost twice).
        m = (self._rest_m @ rot).astype(np.float32)  # (3, 3)
        c = (self._rest_m @ t + self._rest_c).astype(np.float32)
        m0, c0 = self._still_transform

        out = self._pos
        sl = self._slices["frame"]
        out[sl] = frame @ m.T + c
        out[sl] -= self._dz_rest
        # The ring between where the still copy has it and where the head takes it.
        ring_sl, w = self._slices["ring"], self._weight[self._slices["ring"], None]
        still = frame[ring_sl] @ m0[:2].T + (c0[:2] - self._dz_rest[ring_sl, :2])
        out[ring_sl, :2] = still + w * (out[ring_sl, :2] - still)
        # Which vertices of the ring triangles are away from where the still copy has them.
        near = self._ring_points
        shift = np.abs(out[near, :2] - self._still_clip[near]).max(axis=1)
        self._moved[near] = shift > STILL_PX * 2.0 / self.size
        # Eyeballs: rigid with the skull, iris vertices slide with the gaze.
        for k, name in enumerate(("eye_right", "eye_left")):
            iris = self._iris[k]
            v = a.eyes[k].vertices + self._gaze[k] * moved[iris]
            out[self._slices[name]] = v @ m.T + c
        out[self._slices["teeth_upper"]] = self._teeth_upper.vertices @ m.T + c
        jr, jt = a.rig.jaw.transform(e)
        piv = a.rig.jaw.pivot
        mj = (m @ jr).astype(np.float32)
        cj = (m @ (piv + jt - jr @ piv) + c).astype(np.float32)
        out[self._slices["teeth_lower"]] = self._teeth_lower.vertices @ mj.T + cj
        tongue = self._tongue.vertices + e[INDEX["tongueOut"]] * self._tongue_out
        out[self._slices["tongue"]] = tongue @ mj.T + cj
        # Cavity: the lip opening itself, then an inner ring and a centre pushed back.
        cavity = self._cavity_map @ face[self._inner] + self._cavity_push  # (2K + 1, 3)
        out[self._slices["cavity"]] = cavity @ m.T + c
        return out

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
        pos = self.vertices(expr, pose)
        tongue_out = float(np.asarray(expr)[INDEX["tongueOut"]]) > 0.05
        ring = self._indices["ring"]
        ring = ring[self._moved[ring].any(axis=1)]
        e = np.asarray(expr, np.float32)
        for k, idx, share in self._lid_sides:
            self._lid[idx] = min(max(float(e[k]), 0.0), 1.0) * share
        lids_closing = self._lid.max() > LID_MIN
        held = min(float(e[INDEX["jawOpen"]]), float(e[INDEX["mouthClose"]]))
        stretched = held > STRETCH_MIN
        if stretched:
            full = STRETCH_FULL - STRETCH_FROM
            np.multiply(self._stretch_excess, held / full, out=self._stretch)
            self._stretch += (1.0 - STRETCH_FROM) / full
            np.clip(self._stretch, 0.0, 1.0, out=self._stretch)
        ctx = self._ctx
        # Several renderers may live in one thread: make this one's context current.
        with ctx:
            self._vbo_pos.write(pos)
            if lids_closing:
                self._vbo_lid.write(self._lid)
            if stretched:
                self._vbo_stretch.write(self._stretch)
            self._vbo_fringe.write(self._fringe_vertices(pos))
            self._fbo.use()
            self._fbo.clear(0.0, 0.0, 0.0, 1.0, depth=1.0)
            ctx.copy_framebuffer(self._fbo, self._fbo_still)
            ctx.disable(ctx.DEPTH_TEST)
            self._tex_face.use(0)
            if len(ring):
                self._ring_ibo.write(ring.tobytes())
                self._vaos["ring"].render(vertices=ring.size)
            # The interior shows only through the lips' opening: drawn inside its box (the
            # lips' loop can cross itself with parts of it open, so always drawn).
            ctx.scissor = self._mouth_box  # (of the bound framebuffer)
            opening = float(self._hole_area[0]) * self._area_to_opening  # inter-ocular units
            open_ = min(max(opening / INTERIOR_OPEN, 0.0), 1.0)
            open_ = open_ * open_ * (3.0 - 2.0 * open_)  # smoothstep
            mouth = self._prog_mouth
            mouth["lit"].value = INTERIOR_SHADOW + (1.0 - INTERIOR_SHADOW) * open_
            mouth["detail"].value = INTERIOR_DETAIL + (1.0 - INTERIOR_DETAIL) * open_
            ctx.enable(ctx.BLEND)  # their antialiased outlines
            self._vaos["interior"].render()
            ctx.disable(ctx.BLEND)
            ctx.scissor = None
            self._tex_eyes.use(0)
            self._vaos["eyes"].render()
            ctx.enable(ctx.DEPTH_TEST)
            self._tex_face.use(0)
            self._vaos["face"].render()
            ctx.enable(ctx.BLEND)
            if lids_closing:  # the lid skin over the lids, where the face is in front
                self._tex_lid.use(1)
                self._vaos["lid"].render()
            if stretched:  # the across-blurred skin where mouthClose stretches it
                self._tex_stretch.use(2)
                self._vaos["stretch"].render()
            ctx.disable(ctx.DEPTH_TEST)
            self._vaos["fringe"].render()
            if tongue_out:
                self._vaos["tongue_tip"].render()
            ctx.disable(ctx.BLEND)
            if self._finish is not None:  # the draws complete here, off the GIL
                self._finish()
            self._fbo.read_into(self._readback, components=3, alignment=1)
        out[...] = np.frombuffer(self._readback, np.uint8).reshape(self.size, self.size, 3)

    def close(self) -> None:
        """Release the OpenGL context. Safe to call twice."""
        if self._ctx is not None:
            self._ctx.release()
            self._ctx = None

    def __enter__(self) -> Renderer:
        return self

    def __exit__(self, *exc) -> None:
        self.close()
