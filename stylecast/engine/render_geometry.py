"""What the renderer draws, as numbers: one avatar's vertex layout, the attributes and
triangles of every part, made once, and each frame's clip-space positions (the CPU's share
of a frame, engine/render.py).

    geometry = Geometry(avatar, size=512)
    pos = geometry.vertices(expr, pose)   # (V, 3) float32 clip space, reused next call

The vertices, in order: the frame [478 rig points | R ring vertices | E extra lid
vertices], the two eyeballs, the upper teeth, the lower teeth, the tongue (the mouth
interior's meshes unshared, engine/render_mesh.py `outlined`), and the cavity (2K + 1 for a
lip opening of K points).
"""

from __future__ import annotations

import numpy as np

from stylecast.engine.avatar import Avatar, MeshPart
from stylecast.engine.errors import InputError
from stylecast.engine.face import INDEX, N_EXPR, N_POSE, rotation_matrix
from stylecast.engine.render_mesh import outline_relief, outlined

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
# the eye closes, the lid's skin fades to a blurred sample of the skin a little above it
# (engine/render.py draws it).
LID_SKIN_UP = 0.08  # where that sample is taken: this far above the lid, inter-ocular units
LID_RING_SHARE = 0.5  # how much of it the ring above the lid shows (the fade upwards)


class Geometry:
    """One avatar's meshes as the renderer draws them at `size` px (module doc). Not
    thread-safe: vertices() writes into arrays it keeps."""

    def __init__(self, avatar: Avatar, size: int) -> None:
        self.avatar = avatar
        self.size = size
        rig = avatar.rig
        self._neutral = rig.neutral.astype(np.float32)
        self._basis = rig.basis.reshape(N_EXPR, -1).astype(np.float32)  # (52, 1434)
        self._lid_neutral = avatar.lids.neutral.astype(np.float32)
        self._lid_basis = avatar.lids.basis.reshape(N_EXPR, -1).astype(np.float32)  # (52, 3E)
        self.px = size / avatar.size  # output pixels per avatar pixel
        self._build()

    def _build(self) -> None:
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
        n_vertices = o + 2 * k + 1
        self._pos = np.zeros((n_vertices, 3), np.float32)
        rest = a.rest
        # Image pixels -> clip space, x' = clip_m * x + clip_c (y down in the image = row 0
        # first in the read-back; depth over DEPTH_RANGE canonical units).
        scale = 2.0 * self.px / self.size
        depth = 1.0 / (rest.scale * DEPTH_RANGE)
        clip_m = np.array([scale, scale, depth])
        clip_c = np.array([-1.0, -1.0, -rest.translation[2] * depth])
        # Canonical -> clip space is m0 (R v + t) + c0 for a pose (R, t): at the rest pose
        # (float64 for composing, float32 for the vertices: mixed products cost twice).
        self._rest_m = clip_m[:, None] * rest.scale * rest.rotation  # (3, 3)
        self._rest_c = clip_m * rest.translation + clip_c  # (3,)
        self.still_transform = (
            self._rest_m.astype(np.float32),
            self._rest_c.astype(np.float32),
        )
        self._weight = np.concatenate(
            [np.ones(n_face, np.float32), a.ring_weight, np.ones(n_lid, np.float32)]
        )
        self.slices = {
            "frame": slice(0, n_frame),
            "ring": slice(n_face, n_face + n_ring),
            "eye_right": slice(offsets[0], offsets[1]),
            "eye_left": slice(offsets[1], offsets[2]),
            "teeth_upper": slice(offsets[2], offsets[3]),
            "teeth_lower": slice(offsets[3], offsets[4]),
            "tongue": slice(offsets[4], o),
            "cavity": slice(o, n_vertices),
        }
        attr = np.zeros((n_vertices, 4), np.float32)
        attr[:n_face, :2] = a.face_uv
        attr[n_face : n_face + n_ring, :2] = a.ring_uv
        attr[n_face + n_ring : n_frame, :2] = a.lids.uv
        for p, off in zip(parts, offsets, strict=True):
            attr[off : off + len(p.vertices)] = p.attrib
        # Per vertex of the interior: its outline coordinates, and the colour it flattens
        # towards when the lips are barely open (its part's front, lit colour).
        self.edge = np.ones((n_vertices, 6), np.float32)
        self.edge[offsets[2] : o, :3] = np.concatenate(edges)
        for p, off in zip(mouth, offsets[2:], strict=True):
            self.edge[off : off + len(p.vertices), 3:] = np.percentile(p.attrib[:, :3], 80, axis=0)
        rim, back = a.cavity_color
        attr[o : o + k, :3] = rim
        attr[o + k : o + 2 * k, :3] = 0.5 * (rim + back)
        attr[o + 2 * k, :3] = back
        attr[o:, 3] = -1.0
        self.edge[o:, 3:] = attr[o:, :3]  # the cavity flattens towards its own colours
        self.lid_sides = self._lid_skin(attr, n_ring)
        lid_vertices = np.concatenate([idx for _, idx, _ in self.lid_sides])
        self.attr = attr
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
        self._dz_rest[:, :2] = self._dz[:, None] * self.still_transform[0][:2, 2]
        self._gaze = [a.eyes[0].attrib[:, 2:3], a.eyes[1].attrib[:, 2:3]]
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
        self.indices = {
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
        self._still_clip = self.attr[self.slices["frame"], :2] * 2.0 - 1.0  # uv -> clip
        # (n_frame,) bool: which frame vertices the last vertices() moved off the still copy
        self.moved = np.zeros(len(self._still_clip), bool)
        self._ring_points = np.unique(self.indices["ring"])  # (the oval's and the ring's)

    @property
    def vertices_nbytes(self) -> int:
        """Bytes of one frame's positions (their vertex buffer's size)."""
        return self._pos.nbytes

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

    def vertices(self, expr: np.ndarray, pose: np.ndarray) -> np.ndarray:
        """(V, 3) float32 clip-space positions of every vertex for one frame (Renderer.
        vertices); also notes which frame vertices moved off the still copy (`moved`)."""
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
        m0, c0 = self.still_transform

        out = self._pos
        sl = self.slices["frame"]
        out[sl] = frame @ m.T + c
        out[sl] -= self._dz_rest
        # The ring between where the still copy has it and where the head takes it.
        ring_sl, w = self.slices["ring"], self._weight[self.slices["ring"], None]
        still = frame[ring_sl] @ m0[:2].T + (c0[:2] - self._dz_rest[ring_sl, :2])
        out[ring_sl, :2] = still + w * (out[ring_sl, :2] - still)
        # Which vertices of the ring triangles are away from where the still copy has them.
        near = self._ring_points
        shift = np.abs(out[near, :2] - self._still_clip[near]).max(axis=1)
        self.moved[near] = shift > STILL_PX * 2.0 / self.size
        # Eyeballs: rigid with the skull, iris vertices slide with the gaze.
        for k, name in enumerate(("eye_right", "eye_left")):
            iris = self._iris[k]
            v = a.eyes[k].vertices + self._gaze[k] * moved[iris]
            out[self.slices[name]] = v @ m.T + c
        out[self.slices["teeth_upper"]] = self._teeth_upper.vertices @ m.T + c
        jr, jt = a.rig.jaw.transform(e)
        piv = a.rig.jaw.pivot
        mj = (m @ jr).astype(np.float32)
        cj = (m @ (piv + jt - jr @ piv) + c).astype(np.float32)
        out[self.slices["teeth_lower"]] = self._teeth_lower.vertices @ mj.T + cj
        tongue = self._tongue.vertices + e[INDEX["tongueOut"]] * self._tongue_out
        out[self.slices["tongue"]] = tongue @ mj.T + cj
        # Cavity: the lip opening itself, then an inner ring and a centre pushed back.
        cavity = self._cavity_map @ face[self._inner] + self._cavity_push  # (2K + 1, 3)
        out[self.slices["cavity"]] = cavity @ m.T + c
        return out
