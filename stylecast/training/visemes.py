"""Visemes and coarticulation: timed CMU phones -> lower-face ARKit weights at 30 FPS.

Each phone has a mouth target over a few symmetric articulation channels (`CHANNELS`:
jaw, lip closure, rounding, spreading...) and a dominance per channel group. Neighbouring
phones blend by Cohen & Massaro's dominance model: every phone's dominance is flat over the
core of its segment and decays exponentially outside it, more slowly before (anticipation)
than after (carry-over); the mouth at time t is the dominance-weighted mean of the targets.
Lip rounding of rounded vowels has a long anticipatory reach, so "strew" rounds on the s.
A final pass makes the hard contacts hard: p/b/m close the lips at their centre whatever
the neighbours, and f/v bring the lower lip to the upper teeth.

The channels are expanded to the 52 ARKit names (left/right pairs) by `to_arkit`.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from stylecast.engine.face import FPS, INDEX, N_EXPR
from stylecast.engine.phonemes import CMU_PHONES, NSN, SIL
from stylecast.training.timeline import Phone

# Symmetric articulation channels; `to_arkit` maps each to one or two ARKit names.
CHANNELS: tuple[str, ...] = (
    "jaw",  # jawOpen
    "close",  # mouthClose: lips together independent of the jaw
    "funnel",  # mouthFunnel
    "pucker",  # mouthPucker
    "stretch",  # mouthStretchLeft/Right
    "roll_lower",  # mouthRollLower: lower lip tucked in (f, v)
    "roll_upper",  # mouthRollUpper
    "press",  # mouthPressLeft/Right
    "lower_down",  # mouthLowerDownLeft/Right: lower lip pulled down (teeth show)
    "upper_up",  # mouthUpperUpLeft/Right: upper lip raised
    "shrug_lower",  # mouthShrugLower
    "shrug_upper",  # mouthShrugUpper
    "spread",  # mouthSmileLeft/Right: lip spreading of i, s
    "tongue",  # tongueOut: th
    "jaw_forward",  # jawForward
)
N_CHANNELS = len(CHANNELS)  # 15
CH = {c: i for i, c in enumerate(CHANNELS)}
ARKIT_OF_CHANNEL: dict[str, tuple[str, ...]] = {
    "jaw": ("jawOpen",),
    "close": ("mouthClose",),
    "funnel": ("mouthFunnel",),
    "pucker": ("mouthPucker",),
    "stretch": ("mouthStretchLeft", "mouthStretchRight"),
    "roll_lower": ("mouthRollLower",),
    "roll_upper": ("mouthRollUpper",),
    "press": ("mouthPressLeft", "mouthPressRight"),
    "lower_down": ("mouthLowerDownLeft", "mouthLowerDownRight"),
    "upper_up": ("mouthUpperUpLeft", "mouthUpperUpRight"),
    "shrug_lower": ("mouthShrugLower",),
    "shrug_upper": ("mouthShrugUpper",),
    "spread": ("mouthSmileLeft", "mouthSmileRight"),
    "tongue": ("tongueOut",),
    "jaw_forward": ("jawForward",),
}
assert tuple(ARKIT_OF_CHANNEL) == CHANNELS

# Dominance groups: which channels move together when a phone claims the mouth.
GROUP_OF_CHANNEL = {
    "jaw": "jaw", "jaw_forward": "jaw",
    "close": "lips", "press": "lips", "roll_lower": "lips", "roll_upper": "lips",
    "lower_down": "lips", "upper_up": "lips",
    "funnel": "round", "pucker": "round",
    "stretch": "spread", "spread": "spread", "shrug_lower": "spread", "shrug_upper": "spread",
    "tongue": "tongue",
}  # fmt: skip
GROUPS = ("jaw", "lips", "round", "spread", "tongue")

BILABIALS = frozenset({"P", "B", "M"})
LABIODENTALS = frozenset({"F", "V"})
ROUNDED = frozenset({"UW", "UH", "OW", "AO", "OY", "W", "R", "ER", "SH", "ZH", "CH", "JH"})
VOWELS = frozenset(
    {"AA", "AE", "AH", "AO", "AW", "AY", "EH", "ER", "EY", "IH", "IY", "OW", "OY", "UH", "UW"}
)
OPEN_VOWELS = frozenset({"AA", "AE", "AO", "AH"})
CLOSE_VOWELS = frozenset({"IY", "UW", "IH", "UH"})


def _t(**w: float) -> dict[str, float]:
    return w


# Mouth targets at articulation 1.0. Diphthongs are two targets, over the two halves.
_TARGETS: dict[str, list[dict[str, float]]] = {
    "AA": [_t(jaw=0.55, lower_down=0.3, upper_up=0.1, stretch=0.05)],
    "AE": [_t(jaw=0.45, stretch=0.25, lower_down=0.35, upper_up=0.2, spread=0.1)],
    "AH": [_t(jaw=0.36, lower_down=0.2, upper_up=0.1)],
    "AO": [_t(jaw=0.45, funnel=0.35, pucker=0.1, lower_down=0.15)],
    "AW": [_t(jaw=0.5, lower_down=0.25, upper_up=0.1), _t(jaw=0.16, pucker=0.5, funnel=0.3)],
    "AY": [_t(jaw=0.5, lower_down=0.25, upper_up=0.1), _t(jaw=0.14, stretch=0.3, spread=0.2)],
    "EH": [_t(jaw=0.34, stretch=0.2, lower_down=0.3, upper_up=0.15, spread=0.05)],
    "ER": [_t(jaw=0.2, funnel=0.3, pucker=0.15, shrug_upper=0.1)],
    "EY": [_t(jaw=0.32, stretch=0.2, lower_down=0.25, upper_up=0.1),
           _t(jaw=0.14, stretch=0.3, spread=0.2)],
    "IH": [_t(jaw=0.2, stretch=0.25, spread=0.15, lower_down=0.15, upper_up=0.1)],
    "IY": [_t(jaw=0.12, stretch=0.35, spread=0.25, lower_down=0.1, upper_up=0.1)],
    "OW": [_t(jaw=0.36, funnel=0.4, pucker=0.15), _t(jaw=0.14, pucker=0.6, funnel=0.3)],
    "OY": [_t(jaw=0.4, funnel=0.35, pucker=0.15), _t(jaw=0.14, stretch=0.3, spread=0.2)],
    "UH": [_t(jaw=0.18, funnel=0.3, pucker=0.3)],
    "UW": [_t(jaw=0.1, pucker=0.75, funnel=0.35)],
    "P": [_t(jaw=0.03, close=0.03, press=0.45, roll_lower=0.1, roll_upper=0.06)],
    "B": [_t(jaw=0.03, close=0.03, press=0.4, roll_lower=0.1, roll_upper=0.05)],
    "M": [_t(jaw=0.03, close=0.03, press=0.3, roll_lower=0.08, roll_upper=0.04)],
    "F": [_t(jaw=0.07, roll_lower=0.5, upper_up=0.2, shrug_upper=0.05)],
    "V": [_t(jaw=0.07, roll_lower=0.45, upper_up=0.18, shrug_upper=0.05)],
    "TH": [_t(jaw=0.12, tongue=0.15, lower_down=0.1, upper_up=0.05)],
    "DH": [_t(jaw=0.12, tongue=0.12, lower_down=0.1, upper_up=0.05)],
    "T": [_t(jaw=0.14, lower_down=0.1, upper_up=0.05, stretch=0.08)],
    "D": [_t(jaw=0.14, lower_down=0.1, upper_up=0.05, stretch=0.08)],
    "N": [_t(jaw=0.13, lower_down=0.08, upper_up=0.04)],
    "L": [_t(jaw=0.2, lower_down=0.1, tongue=0.04)],
    "S": [_t(jaw=0.06, stretch=0.2, spread=0.1, upper_up=0.1, lower_down=0.15)],
    "Z": [_t(jaw=0.06, stretch=0.2, spread=0.1, upper_up=0.1, lower_down=0.15)],
    "SH": [_t(jaw=0.1, funnel=0.45, pucker=0.25, upper_up=0.12, lower_down=0.12)],
    "ZH": [_t(jaw=0.1, funnel=0.45, pucker=0.25, upper_up=0.12, lower_down=0.12)],
    "CH": [_t(jaw=0.1, funnel=0.4, pucker=0.25, upper_up=0.1, lower_down=0.1)],
    "JH": [_t(jaw=0.1, funnel=0.4, pucker=0.25, upper_up=0.1, lower_down=0.1)],
    "K": [_t(jaw=0.2, lower_down=0.1)],
    "G": [_t(jaw=0.2, lower_down=0.1)],
    "NG": [_t(jaw=0.18, lower_down=0.08)],
    "HH": [_t(jaw=0.25, lower_down=0.1)],
    "R": [_t(jaw=0.12, pucker=0.35, funnel=0.25)],
    "W": [_t(jaw=0.08, pucker=0.7, funnel=0.3)],
    "Y": [_t(jaw=0.12, stretch=0.2, spread=0.15)],
    SIL: [_t()],
    NSN: [_t(jaw=0.03)],
}  # fmt: skip
assert set(_TARGETS) == {*CMU_PHONES, SIL, NSN}


def _dominance(phone: str) -> dict[str, float]:
    """How strongly a phone claims each channel group (Cohen-Massaro's alpha)."""
    if phone in VOWELS:
        return {
            "jaw": 1.0,
            "lips": 0.6,
            "round": 1.2 if phone in ROUNDED else 0.5,
            "spread": 0.8,
            "tongue": 1.0,
        }
    if phone in BILABIALS:
        return {"jaw": 2.5, "lips": 6.0, "round": 0.5, "spread": 0.3, "tongue": 1.0}
    if phone in LABIODENTALS:
        return {"jaw": 2.0, "lips": 5.0, "round": 0.3, "spread": 0.3, "tongue": 1.0}
    if phone in ("S", "Z"):
        return {"jaw": 2.0, "lips": 0.8, "round": 0.2, "spread": 0.6, "tongue": 1.0}
    if phone in ("SH", "ZH", "CH", "JH"):
        return {"jaw": 1.5, "lips": 0.8, "round": 2.0, "spread": 0.4, "tongue": 1.0}
    if phone in ("W", "R"):
        return {
            "jaw": 0.8,
            "lips": 0.6,
            "round": 3.0 if phone == "W" else 1.5,
            "spread": 0.5,
            "tongue": 1.0,
        }
    if phone in ("TH", "DH"):
        return {"jaw": 1.2, "lips": 0.3, "round": 0.1, "spread": 0.2, "tongue": 2.0}
    if phone == "HH":
        return dict.fromkeys(GROUPS, 0.08)
    if phone in (SIL, NSN):
        return dict.fromkeys(GROUPS, 0.7)
    return {"jaw": 0.8, "lips": 0.2, "round": 0.3, "spread": 0.3, "tongue": 0.5}  # t d n l k g ng y


# Decay time constants (seconds) of dominance outside a phone's core, before and after.
TAU_ANTICIPATE = 0.055
TAU_CARRY = 0.045
TAU_ROUND_ANTICIPATE = 0.1  # rounded phones reach far ahead: anticipatory rounding


def _segments(phones: Sequence[Phone], duration: float) -> list[tuple[str, float, float, int]]:
    """(phone, start, end, stress) covering [0, duration], gaps filled with SIL; diphthongs
    split into halves (the second half named with a trailing '+')."""
    out: list[tuple[str, float, float, int]] = []
    t = 0.0
    for p in sorted(phones, key=lambda q: q.start):
        if p.start > t + 1e-4:
            out.append((SIL, t, p.start, 0))
        start = max(p.start, t)
        if p.end <= start:
            continue
        if len(_TARGETS[p.phone]) == 2:
            mid = 0.5 * (start + p.end)
            out += [(p.phone, start, mid, p.stress), (p.phone + "+", mid, p.end, p.stress)]
        else:
            out.append((p.phone, start, p.end, p.stress))
        t = p.end
    if duration > t + 1e-4:
        out.append((SIL, t, duration, 0))
    return out


def _target_vector(name: str, rest: np.ndarray) -> np.ndarray:
    base = name.rstrip("+")
    target = _TARGETS[base][1 if name.endswith("+") else 0]
    v = rest.copy() if base in (SIL, NSN) else np.zeros(N_CHANNELS)
    for c, w in target.items():
        v[CH[c]] += w
    return v


def coarticulate(
    phones: Sequence[Phone],
    n_frames: int,
    *,
    rest: np.ndarray,
    crispness: float = 1.0,
    lag_s: float = 0.0,
    rounding: float = 1.0,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Blend phone targets into mouth channels at each frame centre.

    phones: timed CMU phones (gaps are silence); rest: (N_CHANNELS,) the resting mouth.
    crispness > 1 shortens dominance reach (less coarticulation); lag_s shifts the motion
    after the sound (< 0: the mouth leads); rounding scales lip-rounding targets.
    Returns (channels (T, N_CHANNELS) float64, bilabial (T,) envelope of lip closure in
    [0, 1], labiodental (T,) envelope of lip-to-teeth contact in [0, 1]).
    """
    t = (np.arange(n_frames) + 0.5) / FPS - lag_s  # (T,) the sound time each frame shows
    segs = _segments(phones, n_frames / FPS + abs(lag_s) + 0.1)
    group_idx = np.array([GROUPS.index(GROUP_OF_CHANNEL[c]) for c in CHANNELS])
    num = np.zeros((n_frames, N_CHANNELS))
    den = np.full((n_frames, N_CHANNELS), 1e-6)
    bilabial = np.zeros(n_frames)
    labiodental = np.zeros(n_frames)
    reach = 6.0 * TAU_ROUND_ANTICIPATE / crispness
    for name, start, end, stress in segs:
        base = name.rstrip("+")
        target = _target_vector(name, rest)
        if base in VOWELS:  # stressed vowels open wider, unstressed ones reduce
            target *= {0: 0.85, 1: 1.12}.get(stress, 1.0)
        target[[CH["funnel"], CH["pucker"]]] *= rounding
        dom = _dominance(base)
        alpha = np.array([dom[g] for g in GROUPS])[group_idx]  # (C,)
        dur = end - start
        core_lo, core_hi = start + 0.25 * dur, end - 0.25 * dur
        lo = np.searchsorted(t, start - reach)
        hi = np.searchsorted(t, end + reach)
        if hi <= lo:
            continue
        tt = t[lo:hi]
        before = np.clip(core_lo - tt, 0.0, None)  # (W,) distance before the core
        after = np.clip(tt - core_hi, 0.0, None)
        tau_a = np.full(N_CHANNELS, TAU_ANTICIPATE)
        if base in ROUNDED:
            tau_a[[CH["funnel"], CH["pucker"]]] = TAU_ROUND_ANTICIPATE
        tau_a = tau_a / crispness
        d = alpha * np.exp(-before[:, None] / tau_a - after[:, None] * crispness / TAU_CARRY)
        num[lo:hi] += d * target
        den[lo:hi] += d
        if base in BILABIALS or base in LABIODENTALS:
            env = contact_envelope(tt, start, end)
            dest = bilabial if base in BILABIALS else labiodental
            dest[lo:hi] = np.maximum(dest[lo:hi], env)
    return num / den, bilabial, labiodental


def contact_envelope(t: np.ndarray, start: float, end: float) -> np.ndarray:
    """1 over the middle of [start, end] (at least ±20 ms around its centre), falling to 0
    with a raised cosine over 50 ms on either side: when a consonant's contact is made."""
    centre = 0.5 * (start + end)
    half = max(0.3 * (end - start), 0.02)
    dist = np.clip(np.abs(t - centre) - half, 0.0, None)
    ramp = 0.05
    return np.where(dist < ramp, 0.5 * (1.0 + np.cos(np.pi * dist / ramp)), 0.0)


def to_arkit(channels: np.ndarray, asymmetry: float = 0.0) -> np.ndarray:
    """(T, N_CHANNELS) -> (T, 52) float64; `asymmetry` in [-1, 1] makes the left (> 0) or
    right side of each left/right pair work harder by up to ±15%."""
    out = np.zeros((channels.shape[0], N_EXPR))
    side = {"Left": 1.0 + 0.15 * asymmetry, "Right": 1.0 - 0.15 * asymmetry}
    for c, names in ARKIT_OF_CHANNEL.items():
        for name in names:
            gain = side["Left"] if name.endswith("Left") else side.get(name[-5:], 1.0)
            out[:, INDEX[name]] += channels[:, CH[c]] * gain
    return out


def lip_opening(expr: np.ndarray) -> np.ndarray:
    """(T,) or scalar: an estimate of the gap between the lips from ARKit weights, in
    jawOpen units. ARKit lips meet when mouthClose matches jawOpen; lip raisers and funnel
    part them; press and roll keep them sealed. 0 = closed."""
    e = np.asarray(expr, np.float64)
    g = lambda n: e[..., INDEX[n]]  # noqa: E731
    gap = np.clip(g("jawOpen") - g("mouthClose"), 0.0, None)
    gap = gap + 0.5 * 0.5 * (g("mouthLowerDownLeft") + g("mouthLowerDownRight"))
    gap = gap + 0.3 * 0.5 * (g("mouthUpperUpLeft") + g("mouthUpperUpRight"))
    gap = gap + 0.3 * g("mouthFunnel")
    seal = 0.5 * (g("mouthPressLeft") + g("mouthPressRight")) + 0.5 * g("mouthRollLower")
    return np.clip(gap - 0.2 * seal, 0.0, None)
