"""The procedural performer: timed phones + prosody -> ARKit-52 expression + head pose at
30 FPS, under a speaking style. This is the ground truth every motion model learns from.

    from stylecast.training.performer import perform
    from stylecast.training.styles import style_for
    motion = perform(utt, style_for(3, "happy", 2), seed=7)
    motion.expr  # (T, 52) float32 in [0, 1], T = utt.n_frames
    motion.pose  # (T, 6) float32: pitch, yaw, roll (rad), tx, ty, tz (inter-ocular units)

Layers, in order (each module's docstring has the details):
  mouth   visemes.py: Cohen-Massaro coarticulation of phone targets, scaled by the
          performer (articulation, jaw vs lips, rounding, asymmetry, lag) and emotion, wider
          on loud and stressed syllables; then hard contacts (p/b/m seal the lips, f/v
          lower lip to upper teeth) and rest in silence
  face    the style's constant expression (emotion × intensity, the performer's resting
          face), slow micro-motion, eye squint that follows the smile
  eyes    upper_face.py: blinks (style rate, never overlapping), brow emphasis on stressed
          loud syllables, gaze fixations and saccades with counter-rotation against the head
  head    head.py: drift, sway, speech jitter, nods, breathing, bounded and smooth
Deterministic: the same (phones, prosody, style, seed) gives the same motion.
Cost: about 1-2 ms per second of speech on one core.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

import numpy as np

from stylecast.engine.errors import InputError
from stylecast.engine.face import FPS, INDEX, N_EXPR, N_POSE
from stylecast.engine.phonemes import NSN, PHONEME_ID, SIL
from stylecast.training import prosody
from stylecast.training.head import head_pose
from stylecast.training.motion_signals import envelope, smooth_noise
from stylecast.training.styles import Style
from stylecast.training.timeline import Phone, Utterance
from stylecast.training.upper_face import (
    blink_curve,
    blink_events,
    brow_layer,
    emphasis_layer,
    gaze,
    gaze_layer,
)
from stylecast.training.visemes import CH, N_CHANNELS, VOWELS, coarticulate, to_arkit

JAW_MAX = 0.7  # jawOpen saturates softly towards this (a wide-open shout)
PAUSE_MIN_S = 0.15  # silences at least this long inside an utterance count as pauses
LIP_CHANNELS = ("close", "press", "roll_lower", "roll_upper", "lower_down", "upper_up",
                "stretch", "spread", "shrug_lower", "shrug_upper")  # fmt: skip


class PerformedMotion(NamedTuple):
    """What the performer produces for one utterance."""

    expr: np.ndarray  # (T, 52) float32 in [0, 1], ARKit order (stylecast.engine.face)
    pose: np.ndarray  # (T, 6) float32: pitch, yaw, roll rad; tx, ty, tz inter-ocular units
    blinks: np.ndarray  # (K, 2) float32: start and end of each blink, seconds


def perform(
    utt: Utterance,
    style: Style,
    seed: int,
    *,
    loudness: np.ndarray | None = None,
    pitch: np.ndarray | None = None,
) -> PerformedMotion:
    """Perform an utterance in a style. T = utt.n_frames (30 FPS).

    loudness (T,) dBFS and pitch (T,) Hz (0 = unvoiced) are computed from utt.audio when not
    given. The random stream is seeded by (seed, style.style_id).
    """
    n = utt.n_frames
    if loudness is None:
        loudness = prosody.loudness_db(utt.audio, utt.sample_rate, n)
    if pitch is None:
        pitch = prosody.pitch_hz(utt.audio, utt.sample_rate, n)
    rng = np.random.default_rng([int(seed), style.style_id])
    return perform_phones(utt.phones, n, loudness, style, rng, pitch_per_frame=pitch)


def perform_phones(
    phones: Sequence[Phone],
    n_frames: int,
    loudness_per_frame: np.ndarray,
    style: Style,
    rng: np.random.Generator,
    *,
    pitch_per_frame: np.ndarray | None = None,
) -> PerformedMotion:
    """Perform timed phones in a style, for callers with their own prosody.

    phones: CMU phones (no stress digit) or SIL, timed in seconds; gaps are silence.
    loudness_per_frame: (n_frames,) RMS level in dB (only differences matter: it is taken
    relative to the median over speech frames). pitch_per_frame: (n_frames,) Hz, 0 where
    unvoiced; None = flat. rng: the only source of randomness.
    """
    _check(phones, n_frames, loudness_per_frame, pitch_per_frame)
    p = style.performer
    duration = n_frames / FPS
    speech = _speech_mask(phones, n_frames)
    speaking = envelope(speech, 0.12)  # (T,) smooth 0..1
    loud_z = _relative(np.asarray(loudness_per_frame, np.float64), speech, scale=8.0)
    pitch_z = np.zeros(n_frames)
    if pitch_per_frame is not None:
        f0 = np.asarray(pitch_per_frame, np.float64)
        voiced = f0 > 0
        semitones = 12 * np.log2(np.where(voiced, f0, 1.0) / 100.0)
        pitch_z = np.where(voiced, _relative(semitones, voiced, scale=3.0), 0.0)
    stressed = [(q.start, q.end) for q in phones if q.phone in VOWELS and q.stress == 1]
    pauses = _pause_starts(phones, duration)

    expr, bilabial = _mouth(phones, n_frames, style, speaking, loud_z)
    expr += style.offsets()
    expr += _micro_motion(rng, n_frames, speaking)
    expr += brow_layer(rng, n_frames, stressed, loud_z, pitch_z, style)
    expr += emphasis_layer(n_frames, stressed, loud_z, style)

    pose = head_pose(rng, n_frames, style, speaking, loud_z, pitch_z, stressed, pauses)
    h, v = gaze(rng, n_frames, pose, 1.0 - speaking, style)
    expr += gaze_layer(h, v)

    for side in ("Left", "Right"):  # the eyes squint with a smile (Duchenne)
        smile = np.clip(expr[:, INDEX["mouthSmile" + side]], 0.0, 1.0)
        expr[:, INDEX["eyeSquint" + side]] += 0.45 * smile
        expr[:, INDEX["cheekSquint" + side]] += 0.55 * smile

    rate = p.blink_rate * style.mix(style.profile.blink)
    blink_s = p.blink_duration_s * style.mix(style.profile.blink_duration)
    blinks = blink_events(rng, duration, rate, blink_s, pauses)
    closure = blink_curve(n_frames, blinks, rng)
    for side in ("Left", "Right"):
        lid = np.clip(expr[:, INDEX["eyeBlink" + side]], 0.0, 1.0)
        expr[:, INDEX["eyeBlink" + side]] = lid + (1.0 - lid) * closure
        expr[:, INDEX["eyeWide" + side]] *= 1.0 - closure

    _seal_lips(expr, bilabial)
    expr = np.clip(expr, 0.0, 1.0).astype(np.float32)
    return PerformedMotion(expr, pose.astype(np.float32), blinks.astype(np.float32))


def _seal_lips(expr: np.ndarray, bilabial: np.ndarray) -> None:
    """In place, last: whatever the emotion layers added, p/b/m still seal the lips (lip
    raisers and funnel let go, mouthClose meets jawOpen)."""
    keep = 1.0 - 0.95 * bilabial
    for name in ("mouthLowerDownLeft", "mouthLowerDownRight", "mouthUpperUpLeft",
                 "mouthUpperUpRight", "mouthFunnel"):  # fmt: skip
        expr[:, INDEX[name]] *= keep
    jaw = expr[:, INDEX["jawOpen"]]
    expr[:, INDEX["mouthClose"]] = np.maximum(expr[:, INDEX["mouthClose"]], bilabial * jaw)


def _mouth(
    phones: Sequence[Phone], n: int, style: Style, speaking: np.ndarray, loud_z: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """(T, 52) lower face from coarticulated visemes, scaled by style and loudness, with the
    bilabial and labiodental contacts enforced; and (T,) the bilabial closure envelope."""
    p = style.performer
    rest = np.zeros(N_CHANNELS)
    rest[CH["jaw"]] = rest[CH["close"]] = p.rest_jaw  # jaw hangs a little, lips still meet
    crisp = p.crispness * style.mix(style.profile.speed)
    ch, bilabial, labiodental = coarticulate(
        phones, n, rest=rest, crispness=crisp, lag_s=p.lag_s, rounding=p.rounding
    )
    art = p.articulation * style.mix(style.profile.articulation)
    loud = np.clip(1.0 + 0.18 * p.loudness_gain * loud_z, 0.6, 1.5)  # (T,)
    jaw_gain = art * (1.0 + 0.3 * p.jaw_lip) * style.mix(style.profile.jaw) * loud
    lip_gain = art * (1.0 - 0.3 * p.jaw_lip)
    dev = (ch - rest) * np.asarray(p.viseme_gains)
    dev[:, CH["jaw"]] *= jaw_gain
    dev[:, [CH[c] for c in LIP_CHANNELS]] *= lip_gain
    dev[:, [CH["funnel"], CH["pucker"]]] *= art
    ch = rest + dev
    ch[:, CH["jaw"]] = JAW_MAX * np.tanh(ch[:, CH["jaw"]] / JAW_MAX)  # gains stack; cap softly
    ch[:, CH["upper_up"]] += p.teeth_show * speaking

    # hard contacts, whatever the neighbours and gains did
    b = bilabial
    ch[:, CH["jaw"]] = (1 - b) * ch[:, CH["jaw"]] + b * np.minimum(ch[:, CH["jaw"]], rest[0] + 0.03)
    for c in ("lower_down", "upper_up", "funnel"):
        ch[:, CH[c]] *= 1.0 - 0.95 * b
    ch[:, CH["press"]] = np.maximum(ch[:, CH["press"]], 0.3 * b)
    ld = labiodental
    ch[:, CH["jaw"]] = (1 - ld) * ch[:, CH["jaw"]] + ld * np.minimum(ch[:, CH["jaw"]], 0.1)
    ch[:, CH["roll_lower"]] = np.maximum(ch[:, CH["roll_lower"]], 0.45 * ld)
    ch[:, CH["upper_up"]] = np.maximum(ch[:, CH["upper_up"]], 0.12 * ld)
    ch[:, CH["lower_down"]] *= 1.0 - 0.9 * ld
    # the lips meet when mouthClose matches jawOpen: at rest and at bilabials; rounding
    # that anticipates speech from silence protrudes closed lips instead of opening them
    seal = np.maximum(b, 1.0 - speaking)
    funnel = ch[:, CH["funnel"]].copy()
    ch[:, CH["funnel"]] = funnel * (1.0 - seal)
    ch[:, CH["pucker"]] = np.maximum(ch[:, CH["pucker"]], 0.7 * funnel * seal)
    ch[:, CH["close"]] = np.maximum(ch[:, CH["close"]], seal * ch[:, CH["jaw"]])
    return to_arkit(np.clip(ch, 0.0, 1.0), p.asymmetry), b


def _micro_motion(rng: np.random.Generator, n: int, speaking: np.ndarray) -> np.ndarray:
    """(T, 52) small slow wandering of brows, lids, cheeks and mouth corners: a face is
    never still."""
    out = np.zeros((n, N_EXPR))
    names = ("browInnerUp", "browOuterUpLeft", "browOuterUpRight", "eyeSquintLeft",
             "eyeSquintRight", "mouthSmileLeft", "mouthSmileRight", "cheekSquintLeft",
             "cheekSquintRight", "noseSneerLeft", "noseSneerRight", "mouthDimpleLeft",
             "mouthDimpleRight")  # fmt: skip
    noise = smooth_noise(rng, n, 0.6, len(names)) * 0.015
    for k, name in enumerate(names):
        out[:, INDEX[name]] = np.abs(noise[:, k])
    jaw = np.abs(smooth_noise(rng, n, 0.8)[:, 0]) * 0.006 * (1.0 - speaking)
    out[:, INDEX["jawOpen"]] += jaw
    out[:, INDEX["mouthClose"]] += jaw  # resting lips stay together
    return out


def _speech_mask(phones: Sequence[Phone], n: int) -> np.ndarray:
    """(T,) bool: frames whose centre lies inside a non-silent phone."""
    mask = np.zeros(n, bool)
    centres = (np.arange(n) + 0.5) / FPS
    for q in phones:
        if q.phone not in (SIL, NSN):
            mask[(centres >= q.start) & (centres < q.end)] = True
    return mask


def _pause_starts(phones: Sequence[Phone], duration: float) -> list[float]:
    """Start times of silences ≥ PAUSE_MIN_S after speech (explicit SIL or gaps)."""
    out, last_end = [], None
    for q in sorted(phones, key=lambda q: q.start):
        if q.phone in (SIL, NSN):
            continue
        if last_end is not None and q.start - last_end >= PAUSE_MIN_S:
            out.append(last_end)
        last_end = q.end
    if last_end is not None and duration - last_end >= PAUSE_MIN_S:
        out.append(last_end)
    return out


def _relative(x: np.ndarray, mask: np.ndarray, scale: float) -> np.ndarray:
    """(x - median over mask) / scale, clipped to [-2, 2]; zeros when the mask is empty."""
    if not mask.any():
        return np.zeros_like(x)
    return np.clip((x - np.median(x[mask])) / scale, -2.0, 2.0)


def _check(phones, n_frames, loudness, pitch) -> None:
    if not isinstance(n_frames, (int, np.integer)) or n_frames < 1:
        raise InputError(f"n_frames must be a positive integer, got {n_frames!r}")
    for name, arr in (("loudness_per_frame", loudness), ("pitch_per_frame", pitch)):
        if arr is not None and np.shape(arr) != (n_frames,):
            raise InputError(f"{name} must have shape ({n_frames},), got {np.shape(arr)}")
    for q in phones:
        if q.phone not in PHONEME_ID:
            raise InputError(f"unknown phone {q.phone!r}; expected a CMU phone, SIL or NSN")
        if not q.end > q.start:
            raise InputError(f"phone {q.phone!r} has end {q.end} <= start {q.start}")


assert N_POSE == 6
