"""Speaking styles of the synthetic corpus: performers × emotions × intensities (MEAD's design).

A style is one performer (a person with idiosyncrasies: how wide they articulate, jaw versus
lips, a lopsided mouth, a resting smile, visual lead or lag, blink rate, how much and how fast
their head moves...) speaking in one of eight emotions at one of three intensities.

    48 performers × 8 emotions × 3 intensities = 1152 styles

Every style has a stable integer id (`style_id = (performer * 8 + emotion) * 3 + level - 1`),
and everything about it is a pure function of that id: the same id gives the same style on
every machine, in every run. The last `N_TEST_PERFORMERS` performers are held out for the test
split (`is_test_performer`), so the models are scored on people they never saw.

Neutral at three intensities is not one style three times: for neutral the intensity is the
performer's engagement (flat, ordinary, animated), so all 1152 styles differ.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from types import MappingProxyType

import numpy as np

from stylecast.engine.errors import InputError
from stylecast.engine.face import INDEX
from stylecast.training.visemes import N_CHANNELS

EMOTIONS: tuple[str, ...] = (
    "neutral",
    "happy",
    "sad",
    "angry",
    "surprised",
    "disgusted",
    "fearful",
    "contemptuous",
)
N_EMOTIONS = len(EMOTIONS)  # 8
INTENSITIES: tuple[int, ...] = (1, 2, 3)  # MEAD's levels: weak, medium, strong
N_INTENSITIES = len(INTENSITIES)  # 3
INTENSITY_SCALE = {1: 0.45, 2: 0.72, 3: 1.0}  # fraction of the emotion's full expression

N_PERFORMERS = 48
N_TEST_PERFORMERS = 8  # the last 8 performers (ids 40..47) are never trained on
N_STYLES = N_PERFORMERS * N_EMOTIONS * N_INTENSITIES  # 1152

_PERFORMER_SEED = 0x5C7A1E  # fixes every performer's traits forever; changing it renames people


@dataclass(frozen=True)
class Performer:
    """One synthetic person's idiosyncrasies; each field's range is in its comment."""

    performer_id: int  # 0 .. N_PERFORMERS-1
    articulation: float  # 0.75 .. 1.3: gain on every viseme's distance from rest
    jaw_lip: float  # -1 .. 1: > 0 opens with the jaw, < 0 shapes with the lips
    rounding: float  # 0.7 .. 1.35: gain on lip rounding (funnel, pucker)
    asymmetry: float  # -1 .. 1: > 0 the left mouth corner works harder (and the jaw drifts left)
    smile_bias: float  # -0.12 .. 0.2: resting smile (> 0) or frown (< 0)
    lag_s: float  # -0.045 .. 0.02 s: motion relative to sound (< 0: the face leads)
    crispness: float  # 0.75 .. 1.4: > 1 sharper transitions, less coarticulation
    blink_rate: float  # 6 .. 32 blinks per minute
    blink_duration_s: float  # 0.16 .. 0.30 s, close + open
    head_amplitude: float  # 0.45 .. 1.7: gain on all head motion
    head_rhythm_hz: float  # 0.12 .. 0.45: dominant sway frequency
    nod_gain: float  # 0.3 .. 1.6: how much stressed syllables nod the head
    head_bias: tuple[float, float, float]  # mean (pitch, yaw, roll), radians, a few degrees
    brow_activity: float  # 0.2 .. 1.5: brow movement with stress and loudness
    gaze_aversion: float  # 0.05 .. 0.5: fraction of time looking away from the camera
    rest_jaw: float  # 0 .. 0.04: how far the jaw hangs at rest (the lips still meet)
    loudness_gain: float  # 0.4 .. 1.5: how much louder speech opens the jaw wider
    teeth_show: float  # 0 .. 0.12: upper lip raise while speaking
    rest_face: MappingProxyType  # blendshape -> small offset: this face's resting expression
    viseme_gains: tuple[float, ...]  # 0.75 .. 1.3 per visemes.CHANNELS: articulation habits

    def __hash__(self) -> int:  # the id names the person (rest_face is a mapping)
        return hash(("performer", self.performer_id))


@dataclass(frozen=True)
class EmotionProfile:
    """How an emotion at full intensity changes the face; `Style` scales it by intensity."""

    name: str
    offsets: MappingProxyType  # blendshape -> weight added to every frame (smile, frown...)
    articulation: float = 1.0  # multiplier on viseme amplitude
    jaw: float = 1.0  # extra multiplier on jaw opening
    speed: float = 1.0  # > 1 sharper and quicker dynamics (mouth, brows, head)
    head_amplitude: float = 1.0  # multiplier on head motion
    head_speed: float = 1.0  # multiplier on head motion frequencies
    nod: float = 1.0  # multiplier on stress nods
    blink: float = 1.0  # multiplier on blink rate
    blink_duration: float = 1.0  # multiplier on blink length (sad lids are slow)
    brow: float = 1.0  # multiplier on brow activity
    brow_emphasis: MappingProxyType = field(  # what a stressed syllable does to the brows
        default_factory=lambda: _offsets(browInnerUp=0.7, **_both("browOuterUp", 1.0))
    )
    emphasis: MappingProxyType = field(  # what the emotion adds on every stressed syllable
        default_factory=lambda: _offsets()
    )
    gaze_shift_rate: float = 1.0  # multiplier on how often the gaze moves
    gaze_down: float = 0.0  # bias of the gaze downward (0 .. 0.5)
    pose_offset: tuple[float, ...] = (0.0,) * 6  # mean (pitch, yaw, roll, tx, ty, tz)

    def __hash__(self) -> int:
        return hash(("emotion", self.name))


def _offsets(**weights: float) -> MappingProxyType:
    for name in weights:
        assert name in INDEX, name
    return MappingProxyType(dict(weights))


def _both(stem: str, value: float) -> dict[str, float]:
    """{stemLeft: value, stemRight: value}: the symmetric pair of a blendshape."""
    return {f"{stem}Left": value, f"{stem}Right": value}


EMOTION_PROFILES: dict[str, EmotionProfile] = {
    "neutral": EmotionProfile("neutral", _offsets()),
    "happy": EmotionProfile(
        "happy",
        _offsets(**_both("mouthSmile", 0.5), **_both("mouthDimple", 0.12),
                 **_both("browOuterUp", 0.1), **_both("mouthUpperUp", 0.05)),
        articulation=1.1, speed=1.15, head_amplitude=1.45, head_speed=1.25, nod=1.3,
        blink=1.1, brow=1.3, gaze_shift_rate=1.2, pose_offset=(-0.035, 0, 0.02, 0, 0, 0),
        emphasis=_offsets(**_both("mouthSmile", 0.35), **_both("cheekSquint", 0.2)),
    ),
    "sad": EmotionProfile(
        "sad",
        _offsets(**_both("mouthFrown", 0.5), browInnerUp=0.65, **_both("browDown", 0.08),
                 mouthShrugLower=0.22, **_both("eyeBlink", 0.18),
                 **_both("eyeLookDown", 0.12), **_both("mouthPress", 0.08)),
        articulation=0.78, jaw=0.8, speed=0.6, head_amplitude=0.5, head_speed=0.6, nod=0.5,
        blink=0.8, brow=0.7, gaze_shift_rate=0.6, gaze_down=0.35,
        brow_emphasis=_offsets(browInnerUp=1.0, **_both("browOuterUp", 0.2)),
        emphasis=_offsets(browInnerUp=0.3, **_both("mouthFrown", 0.2), mouthShrugLower=0.15),
        blink_duration=1.25,
        pose_offset=(0.13, 0, -0.03, 0, 0.05, 0),
    ),
    "angry": EmotionProfile(
        "angry",
        _offsets(**_both("browDown", 0.6), **_both("noseSneer", 0.2), **_both("mouthPress", 0.3),
                 **_both("eyeSquint", 0.3), jawForward=0.1, **_both("mouthFrown", 0.15),
                 **_both("mouthStretch", 0.1)),
        articulation=1.2, speed=1.5, head_amplitude=1.2, head_speed=1.4, nod=1.6, blink=0.65,
        brow=1.4, brow_emphasis=_offsets(**_both("browDown", 1.0)), gaze_shift_rate=0.7,
        emphasis=_offsets(**_both("noseSneer", 0.25), **_both("mouthStretch", 0.2), jawForward=0.1),
        blink_duration=0.9,
        pose_offset=(0.06, 0, 0, 0, 0.02, -0.06),
    ),
    "surprised": EmotionProfile(
        "surprised",
        _offsets(browInnerUp=0.6, **_both("browOuterUp", 0.65), **_both("eyeWide", 0.6),
                 mouthFunnel=0.06),
        articulation=1.1, jaw=1.4, speed=1.15, head_amplitude=1.1, head_speed=1.1, blink=0.55,
        brow=1.2, gaze_shift_rate=1.1, pose_offset=(-0.09, 0, 0, 0, -0.02, 0.05),
        emphasis=_offsets(**_both("eyeWide", 0.35), **_both("browOuterUp", 0.3), browInnerUp=0.3),
    ),
    "disgusted": EmotionProfile(
        "disgusted",
        _offsets(**_both("noseSneer", 0.65), **_both("mouthUpperUp", 0.28),
                 **_both("browDown", 0.35), **_both("mouthFrown", 0.3),
                 **_both("cheekSquint", 0.3), **_both("eyeSquint", 0.25), mouthShrugUpper=0.2),
        articulation=0.9, speed=0.9, head_amplitude=0.9, blink=1.0, brow=0.9,
        gaze_shift_rate=1.3, pose_offset=(-0.04, 0.09, 0.03, 0, 0, 0.05),
        emphasis=_offsets(**_both("noseSneer", 0.35), **_both("mouthUpperUp", 0.2)),
    ),
    "fearful": EmotionProfile(
        "fearful",
        _offsets(browInnerUp=0.55, **_both("browOuterUp", 0.3), **_both("eyeWide", 0.5),
                 **_both("mouthStretch", 0.4), **_both("mouthFrown", 0.1)),
        articulation=0.9, speed=1.3, head_amplitude=0.8, head_speed=1.7, nod=0.7, blink=1.5,
        brow=1.1, gaze_shift_rate=2.2, pose_offset=(0.04, 0, 0, 0, 0.02, 0.06),
        emphasis=_offsets(**_both("mouthStretch", 0.3), **_both("eyeWide", 0.3), browInnerUp=0.25),
        blink_duration=0.85,
    ),
    "contemptuous": EmotionProfile(
        "contemptuous",
        _offsets(mouthSmileLeft=0.55, mouthDimpleLeft=0.35, mouthPressRight=0.12,
                 eyeSquintLeft=0.12, browDownRight=0.15, **_both("eyeBlink", 0.1)),
        articulation=0.8, speed=0.8, head_amplitude=0.8, head_speed=0.8, nod=0.8, blink=0.9,
        brow=0.8, gaze_shift_rate=0.8, pose_offset=(-0.07, -0.05, 0.06, 0, 0, 0.02),
        emphasis=_offsets(mouthSmileLeft=0.3, mouthDimpleLeft=0.2),
    ),
}  # fmt: skip
assert tuple(EMOTION_PROFILES) == EMOTIONS

# The resting-face channels a performer's own face may carry, with each one's largest offset.
_REST_FACE_RANGES = {
    "browInnerUp": 0.12,
    "browOuterUpLeft": 0.08,
    "browOuterUpRight": 0.08,
    "browDownLeft": 0.08,
    "browDownRight": 0.08,
    "eyeSquintLeft": 0.1,
    "eyeSquintRight": 0.1,
    "eyeWideLeft": 0.08,
    "eyeWideRight": 0.08,
    "mouthRollLower": 0.08,
    "mouthShrugUpper": 0.08,
    "mouthDimpleLeft": 0.08,
    "mouthDimpleRight": 0.08,
    "mouthPressLeft": 0.08,
    "mouthPressRight": 0.08,
    "cheekSquintLeft": 0.06,
    "cheekSquintRight": 0.06,
}


def performer(performer_id: int) -> Performer:
    """The performer with this id; the same id always gives the same person."""
    if not isinstance(performer_id, (int, np.integer)) or not 0 <= performer_id < N_PERFORMERS:
        raise InputError(f"performer id {performer_id!r} is not in 0..{N_PERFORMERS - 1}")
    return _PERFORMERS[int(performer_id)]


def _make_performer(pid: int) -> Performer:
    rng = np.random.default_rng([_PERFORMER_SEED, pid])
    u = rng.uniform

    rest_face = {}
    for name, top in _REST_FACE_RANGES.items():  # each face keeps about a third of these
        if rng.random() < 0.35:
            rest_face[name] = round(float(u(0.3, 1.0) * top), 4)
    return Performer(
        performer_id=pid,
        articulation=float(u(0.75, 1.3)),
        jaw_lip=float(u(-1.0, 1.0)),
        rounding=float(u(0.7, 1.35)),
        asymmetry=float(u(-1.0, 1.0)),
        smile_bias=float(u(-0.12, 0.2)),
        lag_s=float(u(-0.045, 0.02)),
        crispness=float(u(0.75, 1.4)),
        blink_rate=float(np.clip(np.exp(rng.normal(np.log(15.0), 0.4)), 6.0, 32.0)),
        blink_duration_s=float(u(0.16, 0.30)),
        head_amplitude=float(np.exp(u(np.log(0.45), np.log(1.7)))),
        head_rhythm_hz=float(u(0.12, 0.45)),
        nod_gain=float(u(0.3, 1.6)),
        head_bias=(float(u(-0.05, 0.05)), float(u(-0.06, 0.06)), float(u(-0.05, 0.05))),
        brow_activity=float(u(0.2, 1.5)),
        gaze_aversion=float(u(0.05, 0.5)),
        rest_jaw=float(u(0.0, 0.04)),
        loudness_gain=float(u(0.4, 1.5)),
        teeth_show=float(u(0.0, 0.12)),
        rest_face=MappingProxyType(rest_face),
        viseme_gains=tuple(
            float(g) for g in np.clip(np.exp(rng.normal(0, 0.15, N_CHANNELS)), 0.75, 1.3)
        ),
    )


_PERFORMERS: tuple[Performer, ...] = tuple(_make_performer(i) for i in range(N_PERFORMERS))


def is_test_performer(performer_id: int) -> bool:
    """True for the held-out performers (the last N_TEST_PERFORMERS ids): test split only."""
    return performer(performer_id).performer_id >= N_PERFORMERS - N_TEST_PERFORMERS


TRAIN_PERFORMERS: tuple[int, ...] = tuple(range(N_PERFORMERS - N_TEST_PERFORMERS))  # 0..39
TEST_PERFORMERS: tuple[int, ...] = tuple(range(N_PERFORMERS - N_TEST_PERFORMERS, N_PERFORMERS))


@dataclass(frozen=True)
class Style:
    """One speaking style: a performer in an emotion at an intensity, with the merged
    parameters the performer reads. Build with `style(id)` or `style_for(...)`."""

    style_id: int  # 0 .. N_STYLES-1, stable
    performer: Performer
    emotion: str  # one of EMOTIONS
    intensity: int  # 1, 2 or 3
    profile: EmotionProfile = field(repr=False)
    level: float = field(repr=False)  # INTENSITY_SCALE[intensity]

    def __hash__(self) -> int:  # usable as a dict key; equal styles have equal ids
        return hash(("style", self.style_id))

    @property
    def performer_id(self) -> int:
        return self.performer.performer_id

    @property
    def emotion_id(self) -> int:
        return EMOTIONS.index(self.emotion)

    @property
    def is_test(self) -> bool:
        return is_test_performer(self.performer_id)

    def mix(self, multiplier: float) -> float:
        """An emotion multiplier scaled by intensity: 1 + (m - 1) * level. Neutral's
        intensity is engagement: 0.85, 1.0 or 1.15 times the performer's own liveliness."""
        if self.emotion == "neutral":
            return {1: 0.85, 2: 1.0, 3: 1.15}[self.intensity]
        return 1.0 + (multiplier - 1.0) * self.level

    def offsets(self) -> np.ndarray:
        """(52,) float32: the constant expression of this style (emotion × intensity + the
        performer's resting face and smile bias), added on top of speech."""
        out = np.zeros(len(INDEX), np.float32)
        p = self.performer
        for name, w in self._emotion_shapes(self.profile.offsets).items():
            out[INDEX[name]] += w * self.level
        for name, w in p.rest_face.items():
            out[INDEX[name]] += w
        smile, side = p.smile_bias, 1.0 + 0.4 * p.asymmetry
        if smile > 0 and self.emotion in ("sad", "angry", "disgusted", "fearful"):
            smile *= 1.0 - 0.7 * self.level  # a resting smile fades in a negative mood
        stem = "mouthSmile" if smile > 0 else "mouthFrown"
        out[INDEX[stem + "Left"]] += abs(smile) * side
        out[INDEX[stem + "Right"]] += abs(smile) * (2.0 - side)
        return out

    def emphasis(self) -> np.ndarray:
        """(52,) float32: what this style's emotion adds at the peak of a stressed
        syllable (a smile pulse when happy, a sneer when disgusted...), scaled by intensity."""
        out = np.zeros(len(INDEX), np.float32)
        for name, w in self._emotion_shapes(self.profile.emphasis).items():
            out[INDEX[name]] += w * self.level
        return out

    def _emotion_shapes(self, shapes: MappingProxyType) -> dict[str, float]:
        """An emotion's shapes, mirrored for a performer whose one-sided face is the right."""
        if self.emotion == "contemptuous" and self.performer.asymmetry < 0:
            return {_mirror(k): v for k, v in shapes.items()}
        return dict(shapes)

    def pose_offset(self) -> np.ndarray:
        """(6,) float32: the mean head pose of this style (performer habit + emotion)."""
        emo = np.asarray(self.profile.pose_offset, np.float64) * self.level
        if self.emotion == "contemptuous" and self.performer.asymmetry < 0:
            emo[1:3] *= -1.0  # yaw and roll mirror with the one-sided smile
        emo[:3] += self.performer.head_bias
        return emo.astype(np.float32)


def _mirror(name: str) -> str:
    if name.endswith("Left"):
        return name[:-4] + "Right"
    if name.endswith("Right"):
        return name[:-5] + "Left"
    return name


def style_id_of(performer_id: int, emotion: str, intensity: int) -> int:
    """The stable id of (performer, emotion, intensity); raises InputError on bad values."""
    performer(performer_id)
    if emotion not in EMOTIONS:
        raise InputError(f"emotion {emotion!r} is not one of {', '.join(EMOTIONS)}")
    if intensity not in INTENSITIES:
        raise InputError(f"intensity {intensity!r} is not one of 1, 2, 3")
    return (int(performer_id) * N_EMOTIONS + EMOTIONS.index(emotion)) * N_INTENSITIES + (
        intensity - 1
    )


def style(style_id: int) -> Style:
    """The style with this id (0 .. N_STYLES-1)."""
    if not isinstance(style_id, (int, np.integer)) or not 0 <= style_id < N_STYLES:
        raise InputError(f"style id {style_id!r} is not in 0..{N_STYLES - 1}")
    sid = int(style_id)
    pid, rest = divmod(sid, N_EMOTIONS * N_INTENSITIES)
    emotion_idx, level_idx = divmod(rest, N_INTENSITIES)
    emotion = EMOTIONS[emotion_idx]
    intensity = INTENSITIES[level_idx]
    return Style(
        style_id=sid,
        performer=_PERFORMERS[pid],
        emotion=emotion,
        intensity=intensity,
        profile=EMOTION_PROFILES[emotion],
        level=INTENSITY_SCALE[intensity],
    )


def style_for(performer_id: int, emotion: str, intensity: int) -> Style:
    """The style of a performer in an emotion at an intensity (1 weak .. 3 strong)."""
    return style(style_id_of(performer_id, emotion, intensity))


def all_styles() -> tuple[Style, ...]:
    """Every style, in id order."""
    return tuple(style(i) for i in range(N_STYLES))
