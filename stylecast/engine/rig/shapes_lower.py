"""Lower-face blendshapes: the jaw, the mouth and the tongue's face part."""

from __future__ import annotations

import numpy as np

from stylecast.engine.face import ARKIT_NAMES, N_EXPR
from stylecast.engine.rig.measure import (
    SIDES,
    FaceMeasures,
    region,
    sorted_by_x,
    spread_shape,
    vec,
)


def jaw_mouth_shapes(f: FaceMeasures) -> dict[str, np.ndarray]:
    out = {}
    v = f.v
    zero = np.zeros(N_EXPR)

    def jaw(name: str) -> np.ndarray:
        e = zero.copy()
        e[ARKIT_NAMES.index(name)] = 1.0
        return f.jaw_displacement(*f.jaw.transform(e))

    for n in ("jawOpen", "jawForward", "jawLeft", "jawRight"):
        out[n] = jaw(n)
    # mouthClose: with the jaw open, the lips close: the lips (the corners included) come
    # back to where they rest, exactly undoing jawOpen there (jawOpen already carries each
    # point's jaw weight), and the skin between them and the chin stretches.
    d_open = out["jawOpen"]
    ol_all = f.g["lips_outer_lower"]
    below = v[:478, 1] - np.interp(v[:478, 0], *sorted_by_x(v, ol_all))
    t = np.clip((below - 0.02) / 0.5, 0.0, 1.0)
    lateral = np.abs(v[:478, 0] - f.mouth_x) / (0.5 * f.mouth_w)
    side = np.clip((1.6 - lateral) / 0.6, 0.0, 1.0)
    mask = (1 - t * t * (3 - 2 * t)) * side
    out["mouthClose"] = -d_open * mask[:, None]

    upper, lower_l = f.upper_lip, f.lower_lip
    lips_fixed = [*f.anchors("nose", "eyes", "brows"), f.chin]
    ou, ol = f.g["lips_outer_upper"][1:-1], f.g["lips_outer_lower"][1:-1]
    iu, il = f.g["lips_inner_upper"][1:-1], f.g["lips_inner_lower"][1:-1]
    cr, cl = f.corner["right"], f.corner["left"]
    icr, icl = f.inner_corner["right"], f.inner_corner["left"]

    def corners_and_lips(dc_left: np.ndarray, radius: float, falloff: float = 2.0):
        """Both corners moved (right corner mirrored in x), lips following by closeness."""
        dc_right = dc_left * np.array([-1.0, 1.0, 1.0])
        ctrl = [([cl, icl], dc_left), ([cr, icr], dc_right)]
        for idx in (upper, lower_l):
            a = f.along_lip(idx) ** falloff
            s = np.sign(v[idx, 0] - f.mouth_x)[:, None]
            ctrl.append((idx, a[:, None] * np.where(s > 0, dc_left, dc_right)))
        return ctrl

    # Rounded, pushed lips.
    funnel = corners_and_lips(vec(-0.14 * f.mouth_w, 0.0, -0.04), 0.4, 1.0)
    funnel += [
        (iu, vec(0, -0.035, -0.08)),
        (il, vec(0, 0.06, -0.08)),
        (ou, vec(0, -0.04, -0.1)),
        (ol, vec(0, 0.05, -0.1)),
    ]
    out["mouthFunnel"] = spread_shape(f, funnel, 0.55, lips_fixed)
    pucker = corners_and_lips(vec(-0.2 * f.mouth_w, 0.0, -0.05), 0.4, 1.0)
    pucker += [
        (iu, vec(0, 0.0, -0.12)),
        (il, vec(0, 0.0, -0.12)),
        (ou, vec(0, -0.02, -0.14)),
        (ol, vec(0, 0.02, -0.14)),
    ]
    out["mouthPucker"] = spread_shape(f, pucker, 0.55, lips_fixed)

    for arkit, side, sx in SIDES:
        # mouthLeft/Right: the whole mouth slides towards that side.
        out[f"mouth{arkit}"] = spread_shape(
            f, [(f.lips, vec(sx * 0.1))], 0.45, [*f.anchors("nose", "eyes", "brows")]
        )
        c, ic = f.corner[side], f.inner_corner[side]
        near_u = upper[(v[upper, 0] - f.mouth_x) * sx > 0]
        near_l = lower_l[(v[lower_l, 0] - f.mouth_x) * sx > 0]
        wu, wl = f.along_lip(near_u)[:, None], f.along_lip(near_l)[:, None]
        other = [f.corner[o] for _, o, _ in SIDES if o != side]
        other += [f.inner_corner[o] for _, o, _ in SIDES if o != side]

        def cornerspread_shape(
            d,
            radius,
            extra=(),
            lip_pow=2.0,
            c=c,
            ic=ic,
            wu=wu,
            wl=wl,
            nu=near_u,
            nl=near_l,
            o=other,
        ):
            ctrl = [([c, ic], d), (nu, wu**lip_pow * d), (nl, wl**lip_pow * d)]
            return spread_shape(f, ctrl + list(extra), radius, [*lips_fixed, *o])

        out[f"mouthSmile{arkit}"] = cornerspread_shape(vec(sx * 0.09, -0.11, 0.02), 0.5) + region(
            f, v[c] + vec(sx * 0.2, -0.3), 0.3, vec(sx * 0.01, -0.04)
        )
        # A frown pulls the corners well down (the default portrait smiles at rest, and a
        # weak frown did not undo its smile), the skin beside them following.
        out[f"mouthFrown{arkit}"] = cornerspread_shape(vec(sx * 0.01, 0.13), 0.5)
        out[f"mouthDimple{arkit}"] = cornerspread_shape(vec(sx * 0.05, -0.01, 0.05), 0.35)
        out[f"mouthStretch{arkit}"] = cornerspread_shape(
            vec(sx * 0.1, 0.035), 0.4, [(near_l, vec(0, 0.03))], lip_pow=1.0
        )
        # mouthPress: lips thin on that side (outer contours move towards the inner ones).
        su, sl = ou[(v[ou, 0] - f.mouth_x) * sx > 0], ol[(v[ol, 0] - f.mouth_x) * sx > 0]
        press_u = np.zeros((len(su), 3))
        press_u[:, 1] = 0.35 * (np.interp(v[su, 0], *sorted_by_x(v, iu)) - v[su, 1])
        press_l = np.zeros((len(sl), 3))
        press_l[:, 1] = 0.35 * (np.interp(v[sl, 0], *sorted_by_x(v, il)) - v[sl, 1])
        out[f"mouthPress{arkit}"] = spread_shape(
            f, [(su, press_u), (sl, press_l), ([c, ic], vec(sx * 0.02))], 0.25, lips_fixed
        )
        # mouthLowerDown / mouthUpperUp: one side of a lip moves off the teeth.
        ws_l = f.side_weight(sx, lower_l)[:, None] * (1 - 0.6 * f.along_lip(lower_l)[:, None])
        out[f"mouthLowerDown{arkit}"] = spread_shape(
            f, [(lower_l, ws_l * vec(0, 0.11, -0.01))], 0.35, [*upper, *f.corners, *f.nose]
        )
        ws_u = f.side_weight(sx, upper)[:, None] * (1 - 0.6 * f.along_lip(upper)[:, None])
        out[f"mouthUpperUp{arkit}"] = spread_shape(
            f, [(upper, ws_u * vec(0, -0.075, -0.01))], 0.25, [*lower_l, *f.corners, f.nose_tip]
        )

    # Rolls: the lip's red part turns inwards (outer contour to the inner one, and back).
    roll_l = np.zeros((len(ol), 3))
    roll_l[:, 1] = 0.75 * (np.interp(v[ol, 0], *sorted_by_x(v, il)) - v[ol, 1])
    roll_l[:, 2] = 0.04
    out["mouthRollLower"] = spread_shape(
        f, [(ol, roll_l), (il, vec(0, -0.01, 0.04))], 0.3, lips_fixed
    )
    roll_u = np.zeros((len(ou), 3))
    roll_u[:, 1] = 0.75 * (np.interp(v[ou, 0], *sorted_by_x(v, iu)) - v[ou, 1])
    roll_u[:, 2] = 0.04
    out["mouthRollUpper"] = spread_shape(
        f, [(ou, roll_u), (iu, vec(0, 0.01, 0.04))], 0.3, lips_fixed
    )
    # Shrugs: the lower lip and chin push up; the upper lip rises.
    out["mouthShrugLower"] = spread_shape(
        f,
        [
            (lower_l, vec(0, -0.04, -0.03)),
            (upper, vec(0, -0.02, -0.01)),
            (f.chin, vec(0, -0.03)),
        ],
        0.4,
        f.anchors("nose", "eyes"),
    )
    out["mouthShrugUpper"] = spread_shape(
        f, [(upper, vec(0, -0.04, -0.02)), (lower_l, vec(0, -0.01))], 0.3, [*f.nose, f.chin]
    )
    # tongueOut: the jaw drops a little (JawModel adds 0.3 of jawOpen) and the lower lip
    # rolls down so the tongue shows; the tongue itself is drawn by the renderer.
    out["tongueOut"] = 0.3 * d_open + spread_shape(
        f, [(lower_l, vec(0, 0.05, -0.02))], 0.3, [*upper, *f.corners]
    )
    return out
