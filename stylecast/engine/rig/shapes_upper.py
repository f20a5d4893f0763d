"""Upper-face blendshapes: eyes (blink, squint, wide, gaze), brows, cheeks, nose."""

from __future__ import annotations

import numpy as np

from stylecast.engine.rig.measure import (
    SIDES,
    FaceMeasures,
    cheek_mask,
    off_lips,
    region,
    spread_shape,
    values_by_x,
    vec,
)


def eye_shapes(f: FaceMeasures) -> dict[str, np.ndarray]:
    out = {}
    for arkit, side, sx in SIDES:
        up, lo, gap, lower_at_up = f.lid(side)
        brow, _ = f.brow(side)
        iris = f.g[f"iris_{side}"]
        meet = lower_at_up - 0.1 * gap
        blink_up = np.zeros((len(up), 3))
        blink_up[:, 1] = meet - f.v[up, 1]
        g_lo = np.full(len(lo), gap.max())
        lo_up = np.zeros((len(lo), 3))
        lo_up[:, 1] = -0.1 * g_lo
        anchors = [*brow, *iris]
        # The skin just above the lid margin (the lashes) moves almost with it, so the lash
        # line stays thin and the stretch goes to the lid's skin higher up.
        lash = f.ring_beside(f.g[f"eyelid_{side}_upper"], above=True)
        lash_d = np.zeros((len(lash), 3))
        lash_d[:, 1] = 0.3 * np.interp(f.v[lash, 0], *values_by_x(f.v, up, blink_up[:, 1]))
        out[f"eyeBlink{arkit}"] = spread_shape(
            f, [(up, blink_up), (lo, lo_up), (lash, lash_d)], 0.18, anchors
        )
        sq_up, sq_lo = blink_up * 0.15, np.zeros((len(lo), 3))
        sq_lo[:, 1] = -0.4 * g_lo
        cheek_below = vec(0, -0.04)
        out[f"eyeSquint{arkit}"] = spread_shape(
            f, [(up, sq_up), (lo, sq_lo)], 0.3, [*anchors, *f.anchors("nose")]
        ) + region(f, f.v[lo].mean(0) + vec(0, 0.18), 0.22, cheek_below)
        wide_up = np.zeros((len(up), 3))
        wide_up[:, 1] = -0.45 * gap
        out[f"eyeWide{arkit}"] = spread_shape(f, [(up, wide_up), (lo, -0.2 * lo_up)], 0.2, anchors)
        # Gaze: the iris slides over the eyeball; the lids follow a vertical look a little.
        look_h, look_v = 0.13, 0.08
        for name, d, lid_follow in (
            ("Out", vec(sx * look_h), 0.0),
            ("In", vec(-sx * look_h), 0.0),
            ("Up", vec(0, -look_v), -0.25),
            ("Down", vec(0, look_v), 0.35),
        ):
            field = np.zeros((478, 3))
            field[iris] = d
            if lid_follow:
                field += lid_follow * spread_shape(f, [(up, blink_up)], 0.15, anchors)
                field[iris] = d
            out[f"eyeLook{name}{arkit}"] = field
    return out


def brow_shapes(f: FaceMeasures) -> dict[str, np.ndarray]:
    out = {}
    lids = f.anchors("eyes")
    inner_up = []
    for arkit, side, sx in SIDES:
        b, u = f.brow(side)
        # Down and drawn together (the inner ends most), as in a scowl.
        down = np.stack([-sx * 0.045 * (1 - u), 0.1 + 0.03 * (1 - u), np.zeros_like(u)], 1)
        out[f"browDown{arkit}"] = spread_shape(f, [(b, down)], 0.3, [*lids, *f.anchors("nose")])
        outer = np.stack([np.zeros_like(u), -0.11 * u**1.5, np.zeros_like(u)], 1)
        out[f"browOuterUp{arkit}"] = spread_shape(f, [(b, outer)], 0.35, lids)
        inner_up.append((b, np.stack([sx * 0.015 * (1 - u), -0.14 * (1 - u) ** 1.5, 0 * u], 1)))
    out["browInnerUp"] = spread_shape(f, inner_up, 0.4, lids)
    return out


def cheek_nose_shapes(f: FaceMeasures) -> dict[str, np.ndarray]:
    out = {}
    v = f.v
    fixed = [*f.anchors("eyes", "nose"), f.chin]
    puff = []
    for arkit, side, sx in SIDES:
        # Cheek centre: beside the mouth corner, a bit above it.
        c = v[f.corner[side]] + vec(sx * 0.32, -0.12)
        puff.append((c, vec(sx * 0.1, 0.0, -0.07)))
        # cheekSquint: the cheek under the eye rises, the lower lid with it.
        _, lo, gap, _ = f.lid(side)
        eye_c = v[f.eye_points(side)].mean(0)
        lo_d = np.zeros((len(lo), 3))
        lo_d[:, 1] = -0.25 * gap.max()
        out[f"cheekSquint{arkit}"] = spread_shape(
            f, [(lo, lo_d)], 0.25, [*f.g[f"eyelid_{side}_upper"], *f.nose]
        ) + region(f, eye_c + vec(sx * 0.1, 0.3), 0.3, vec(0, -0.05))
        # noseSneer: the nostril wing and the skin beside the nose rise.
        nose = f.nose
        lateral = nose[np.argsort(-sx * v[nose, 0])[:4]]  # the nostril wing's points
        out[f"noseSneer{arkit}"] = (
            spread_shape(
                f,
                [(lateral, vec(sx * 0.015, -0.085))],
                0.3,
                [
                    *f.anchors("eyes", "upper_lip", "lower_lip"),
                    *f.corners,
                    *np.setdiff1d(nose, lateral),
                ],
            )
            + region(f, v[lateral].mean(0) + vec(sx * 0.05, -0.15), 0.22, vec(0, -0.045))
            * off_lips(f)[:, None]
        )
    out["cheekPuff"] = sum(
        region(f, c, 0.48, d) * cheek_mask(f)[:, None] for c, d in puff
    ) + spread_shape(
        f,
        [(f.corner["left"], vec(-0.03)), (f.corner["right"], vec(0.03))],
        0.2,
        fixed,
    )
    return out
