"""The mouth interior of an avatar, made at build time from the rig's neutral: upper teeth
with their gum (fixed to the skull), lower teeth with theirs and the tongue (on the jaw),
and the cavity colours. All procedural, in the canonical head frame (inter-ocular units:
one unit is about 63 mm), coloured per vertex and scaled by the portrait's brightness.

Each tooth is its own small grid shaped like a tooth seen from the front: incisors with a
flat, slightly rounded cutting edge, pointed canines, a rounded neck at the gum; the gaps
between neighbours are real, the gum behind comes down between the necks, and a shadowed
backing behind the teeth shows through the gaps (the dark cavity only at the cutting
edges' corners). Shading is baked into the vertex colours: each tooth is lit in its
middle and darker at its sides (it is convex), darker towards the gum under the lip's
shadow, greyer and translucent along the cutting edge, and the arch darkens towards the
back. The tongue is a dome with a rounded tip and a median groove.
"""

from __future__ import annotations

import numpy as np

from stylecast.engine.avatar import MeshPart
from stylecast.engine.rig import FaceRig

TOOTH_COLOR = np.array([0.93, 0.9, 0.83])  # enamel, well lit
EDGE_COLOR = np.array([0.66, 0.69, 0.74])  # the translucent cutting edge
NECK_COLOR = np.array([0.86, 0.78, 0.64])  # dentine showing at the neck, by the gum
GUM_COLOR = np.array([0.72, 0.36, 0.38])
# Behind the teeth, from the gum down to near the cutting edges: what the gaps between
# neighbours show (a shadowed, warm version of the enamel). Over the dark cavity a gap
# under a pixel wide came out as scattered black pixels between the teeth.
BACKING_COLOR = np.array([0.66, 0.6, 0.53])
BACKING_REACH = 0.92  # how far down the teeth it reaches, from the gum to the cutting edge
TONGUE_COLOR = np.array([0.8, 0.42, 0.44])
CAVITY_COLOR = np.array([[0.24, 0.075, 0.075], [0.04, 0.015, 0.015]])  # at the lips, back

# One side of each arch, from the middle outwards: (width, height) of each tooth in
# inter-ocular units (central incisor ~8.5 x 10.5 mm; lower incisors narrow). The widths
# are relative: the teeth share out the arch's span in these proportions.
UPPER_TEETH = ((0.135, 0.17), (0.105, 0.145), (0.12, 0.16), (0.105, 0.13), (0.1, 0.12))
LOWER_TEETH = ((0.085, 0.14), (0.095, 0.14), (0.11, 0.15), (0.11, 0.13), (0.11, 0.12))
CANINE = 2  # index of the canine in those lists: its cutting edge is a point
GAP = 0.025  # space between neighbours, as a fraction of the tooth's width
NS, NT = 3, 4  # grid of one tooth: across, gum to edge (llvmpipe pays per triangle)


class _Arch:
    """Where a point of an arch lies: u in [-1, 1] along it (0 = the middle), seen from the
    front (the sides turn away: foreshortened, deeper, and lifted along the smile line)."""

    def __init__(self, mid_x: float, half: float, z0: float, lift: float) -> None:
        self.mid_x, self.half, self.z0, self.lift = mid_x, half, z0, lift

    def x(self, u: np.ndarray) -> np.ndarray:
        return self.mid_x + self.half * np.sin(u * np.pi / 2.2) / np.sin(np.pi / 2.2)

    def z(self, u: np.ndarray) -> np.ndarray:
        return self.z0 + 0.3 * u**2

    def dy(self, u: np.ndarray) -> np.ndarray:
        return -self.lift * u**2


def _arch(
    teeth, arch: _Arch, edge_y: float, down: float, light: float, dim: float, round_: float
) -> MeshPart:
    """Teeth of one arch and the gum behind them. edge_y: the cutting edges' line at the
    middle; down = +1 for upper teeth (they hang from the gum down to the edge), -1 for
    lower ones; dim: overall shade (lower teeth sit in the upper ones' shadow); round_: how
    much the corners of the cutting edge are rounded off (fraction of the width)."""
    widths = np.array([w for w, _ in teeth])
    span = widths.sum()  # one side, inter-ocular units along the arch
    verts, cols, tris = [], [], []

    def add(vs, cs, ts):
        base = len(verts)
        verts.extend(vs)
        cols.extend(cs)
        tris.extend((a + base, b + base, c + base) for a, b, c in ts)

    # Gum first (drawn under the teeth): a band whose edge dips between the teeth.
    starts = np.concatenate([[0.0], np.cumsum(widths)])
    knots = np.concatenate([-starts[::-1], starts[1:]]) / span  # tooth boundaries in u
    height = np.array([h for _, h in teeth])
    order = list(range(len(teeth)))[::-1] + list(range(len(teeth)))  # left end to right
    gum_u, gum_y = [], []  # the gum's edge: up at each tooth's neck, down between teeth
    for k, tooth in enumerate(order):
        a, b, h = knots[k], knots[k + 1], height[tooth]
        between = 0.5 * (h if k == 0 else 0.5 * (h + height[order[k - 1]]))
        gum_u += [a, 0.5 * (a + b)]
        gum_y += [edge_y - down * between, edge_y - down * h]
    gum_u.append(knots[-1])
    gum_y.append(edge_y - down * 0.5 * height[order[-1]])
    gum_u = np.array(gum_u)
    g_edge = np.array(gum_y) + arch.dy(gum_u)
    g_back = edge_y + arch.dy(gum_u) - down * (height.max() + 0.12)
    n = len(gum_u)
    shade = light * dim * (1 - 0.55 * np.abs(gum_u) ** 1.5)
    vs = [(x, y, z) for x, y, z in zip(arch.x(gum_u), g_back, arch.z(gum_u) + 0.02, strict=True)]
    vs += [(x, y, z) for x, y, z in zip(arch.x(gum_u), g_edge, arch.z(gum_u) + 0.02, strict=True)]
    cs = [GUM_COLOR * s * 0.6 for s in shade] + [GUM_COLOR * s for s in shade]
    ts = []
    for i in range(n - 1):
        ts += [(i, i + 1, n + i + 1), (i, n + i + 1, n + i)]
    add(vs, cs, ts)

    # The backing, between the gum and the teeth: a band from a little above the gum's
    # edge (so no seam shows between them) down to near the cutting edges.
    b_top = np.array(gum_y) + arch.dy(gum_u) - down * 0.03
    tall = np.interp(gum_u, 0.5 * (knots[:-1] + knots[1:]), height[order])
    b_bottom = edge_y + arch.dy(gum_u) - down * tall * (1 - BACKING_REACH)
    vs = [(x, y, z) for x, y, z in zip(arch.x(gum_u), b_top, arch.z(gum_u) + 0.01, strict=True)]
    vs += [(x, y, z) for x, y, z in zip(arch.x(gum_u), b_bottom, arch.z(gum_u) + 0.01, strict=True)]
    cs = [BACKING_COLOR * s for s in shade] * 2
    add(vs, cs, ts)

    # The teeth, from one end of the arch to the other.
    s = np.linspace(-1, 1, NS)
    t = np.linspace(0, 1, NT) ** 0.8  # rows closer together at the cutting edge
    for k, tooth in enumerate(order):
        h = teeth[tooth][1]
        u0, u1 = knots[k], knots[k + 1]
        uc, half_u = 0.5 * (u0 + u1), 0.5 * (u1 - u0) * (1 - GAP)
        ss, tt = np.meshgrid(s, t)  # (NT, NS)
        # Outline: a neck rounded towards the gum, corners rounded at the cutting edge
        # (a canine's edge rises to a point in the middle instead).
        narrow = 1 - 0.15 * (1 - tt) ** 3 - round_ * np.clip((tt - 0.75) / 0.25, 0, 1) ** 2.5
        uu = uc + half_u * ss * narrow
        if tooth == CANINE:
            edge = 1 - 0.15 * np.abs(ss)
        else:
            edge = 1 - 0.06 * ss**2 - (0.04 if tooth == 1 else 0.0)  # laterals a bit shorter
        neck = 0.12 * ss**2  # the neck's arch: higher in the middle
        along = neck + tt * (edge - neck)  # 0 at the gum, ~1 at the cutting edge
        y = edge_y + arch.dy(uu) - down * h * (1 - along)
        z = arch.z(uu) - 0.01 * (1 - ss**2)  # bulging in the middle
        vs = np.stack([arch.x(uu), y, z], -1).reshape(-1, 3)
        # Shading: convex across, darker under the gum, translucent edge, darker sides.
        lit = (0.8 + 0.2 * (1 - ss**2)) * (0.78 + 0.22 * np.clip(tt / 0.5, 0, 1))
        lit = lit * light * dim * (1 - 0.55 * np.abs(uu) ** 1.5)
        e = np.clip((tt - 0.8) / 0.2, 0, 1)[..., None] * 0.4
        nk = np.clip(1 - tt / 0.3, 0, 1)[..., None] * 0.6
        col = TOOTH_COLOR * (1 - e - nk) + EDGE_COLOR * e + NECK_COLOR * nk
        cs = (col * lit[..., None]).reshape(-1, 3)
        ts = []
        for j in range(NT - 1):
            for i in range(NS - 1):
                a0, a1 = j * NS + i, j * NS + i + 1
                ts += [(a0, a1, a1 + NS), (a0, a1 + NS, a0 + NS)]
        add(list(vs), list(cs), ts)
    attrib = np.concatenate([np.array(cols), -np.ones((len(cols), 1))], axis=1)
    return MeshPart(
        np.array(verts, np.float32), np.array(tris, np.int32), attrib.astype(np.float32)
    )


def _tongue(mid_x: float, lip_y: float, z_front: float, light: float) -> MeshPart:
    """A dome lying behind the lower teeth, its rounded tip towards the lips; zt = 0 at the
    tip, 1 at the back."""
    nx, nz = 9, 8
    xs = np.linspace(-1, 1, nx)
    zs = np.linspace(0, 1, nz) ** 1.6  # rows closer together at the tip
    width, tip = 0.23, 0.3  # half width, and how far back the rounded tip reaches (zt)
    verts, attrib = [], []
    for zt in zs:
        # A half-disc seen from above: the tip's sides lie further back.
        half = width * np.sqrt(max(0.0, 1 - (max(0.0, tip - zt) / tip) ** 2)) + 0.02
        for xt in xs:
            # Higher in the middle, except at the very tip (a notch when it hangs out).
            dome = 0.07 * (1 - xt**2) * (0.4 + 0.6 * np.sqrt(zt)) * min(1.0, 2 * zt / tip)
            groove = 0.012 * np.exp(-((xt / 0.18) ** 2)) * min(1.0, zt / tip)  # median groove
            y = lip_y + 0.14 - dome + groove + 0.05 * zt
            verts.append((mid_x + xt * half, y, z_front + 0.09 + 0.55 * zt))
            # Darker towards the back, the sides and in the groove; a sheen near the tip.
            shade = (1 - 0.55 * zt) * (1 - 0.4 * xt**2) * (1 - 0.144 * groove / 0.012)
            shade *= 1 + 0.12 * np.exp(-((xt - 0.35) ** 2 + (zt - 0.15) ** 2) / 0.03)
            attrib.append((*(TONGUE_COLOR * 0.85 * light * shade), -1.0))
    tris = []
    for j in range(nz - 1):
        for i in range(nx - 1):
            a0, a1 = j * nx + i, j * nx + i + 1
            b0, b1 = a0 + nx, a1 + nx
            tris += [(a0, a1, b1), (a0, b1, b0)]
    return MeshPart(
        np.array(verts, np.float32), np.array(tris, np.int32), np.array(attrib, np.float32)
    )


def build_mouth(rig: FaceRig, light: float) -> tuple[MeshPart, MeshPart, MeshPart, np.ndarray]:
    """Upper teeth, lower teeth, tongue (canonical, neutral jaw) and the cavity colours
    (2, 3) at the lips and at the back. light: the portrait's brightness (1 = well lit)."""
    v = rig.neutral.astype(np.float64)
    iu, il = rig.groups["lips_inner_upper"], rig.groups["lips_inner_lower"]
    inner = rig.groups["lips_inner"]
    mid_x = 0.5 * (v[inner, 0].min() + v[inner, 0].max())
    # Where the lips meet at the middle of the mouth (a smile curves the line upwards).
    centre_u = iu[np.argmin(np.abs(v[iu, 0] - mid_x))]
    centre_l = il[np.argmin(np.abs(v[il, 0] - mid_x))]
    lip_y = float(0.5 * (v[centre_u, 1] + v[centre_l, 1]))
    z_front = float(max(v[centre_u, 2], v[centre_l, 2])) + 0.06  # just behind the lips
    # Upper edges just below the lips' meeting line, lower ones behind and above them (a
    # normal overbite); the arches span about 25 mm either side of the middle.
    upper = _arch(UPPER_TEETH, _Arch(mid_x, 0.4, z_front, 0.06), lip_y + 0.085, 1, light, 1.0, 0.12)
    lower = _arch(
        LOWER_TEETH, _Arch(mid_x, 0.4, z_front + 0.05, 0.04), lip_y - 0.05, -1, light, 0.9, 0.06
    )
    tongue = _tongue(mid_x, lip_y, z_front, light)
    return upper, lower, tongue, (CAVITY_COLOR * light).astype(np.float32)
