"""The procedural performer: lip contacts, rest in silence, blinks, head pose, determinism,
jaw by vowel height, range, speed, and that styles can be told apart from motion alone."""

import time

import numpy as np
import pytest

from stylecast.engine.errors import InputError
from stylecast.engine.face import FPS, INDEX, N_EXPR, N_POSE
from stylecast.training.performer import PerformedMotion, perform, perform_phones
from stylecast.training.style_probe import probe, random_speech
from stylecast.training.styles import EMOTIONS, N_STYLES, performer, style, style_for
from stylecast.training.timeline import SAMPLE_RATE, Phone, Utterance
from stylecast.training.visemes import BILABIALS, LABIODENTALS, lip_opening

# "(pause) bob bought a map (pause) five people moved, maybe (pause) we see you (pause)"
SCRIPT = (
    "SIL:0.8 B:0.06 AA1:0.15 B:0.07 B:0.05 AO1:0.14 T:0.06 AH:0.05 M:0.07 AE1:0.13 P:0.08 "
    "SIL:0.6 F:0.09 AY1:0.18 V:0.07 P:0.07 IY1:0.12 P:0.06 AH:0.05 L:0.06 M:0.06 UW1:0.16 "
    "V:0.06 D:0.05 M:0.06 EY1:0.15 B:0.05 IY:0.1 SIL:0.8 W:0.06 IY1:0.12 S:0.1 IY1:0.14 "
    "Y:0.05 UW1:0.2 SIL:0.9"
)


def make_phones(script: str = SCRIPT) -> tuple[tuple[Phone, ...], float]:
    phones, t = [], 0.0
    for item in script.split():
        name, dur = item.split(":")
        stress = int(name[-1]) if name[-1].isdigit() else 0
        name = name.rstrip("012")
        phones.append(Phone(name, t, t + float(dur), stress))
        t += float(dur)
    return tuple(phones), t


def loudness_for(phones, n_frames) -> np.ndarray:
    centres = (np.arange(n_frames) + 0.5) / FPS
    loud = np.full(n_frames, -60.0, np.float32)
    for p in phones:
        m = (centres >= p.start) & (centres < p.end)
        loud[m] = -60.0 if p.phone == "SIL" else -18.0 if p.phone[0] in "AEIOU" else -30.0
    return loud


def run(s, seed=0, script=SCRIPT) -> tuple[PerformedMotion, tuple[Phone, ...]]:
    phones, dur = make_phones(script)
    n = int(np.ceil(dur * FPS))
    rng = np.random.default_rng(seed)
    return perform_phones(phones, n, loudness_for(phones, n), s, rng), phones


# a spread of styles: every emotion, strong intensity, performers with extreme traits
STYLES = [style_for(p, e, 3) for p, e in zip(range(0, 48, 6), EMOTIONS, strict=True)] + [
    style(i) for i in (0, 1, 500, N_STYLES - 1)
]


def centre_frame(p: Phone, s) -> int:
    """The frame showing the middle of phone p (the performer's lag shifts it)."""
    return int(np.floor(((p.start + p.end) / 2 + s.performer.lag_s) * FPS))


@pytest.mark.parametrize("s", STYLES, ids=lambda s: f"style{s.style_id}")
def test_bilabials_close_the_lips(s):
    m, phones = run(s)
    checked = 0
    for p in phones:
        if p.phone in BILABIALS:
            f = centre_frame(p, s)
            e = m.expr[f]
            assert e[INDEX["jawOpen"]] < 0.1, (p, e[INDEX["jawOpen"]])
            assert e[INDEX["mouthClose"]] >= e[INDEX["jawOpen"]] - 0.01
            assert lip_opening(e) < 0.02, (p, lip_opening(e))
            checked += 1
    assert checked == 10


@pytest.mark.parametrize("s", STYLES[:4], ids=lambda s: f"style{s.style_id}")
def test_labiodentals_tuck_the_lower_lip(s):
    m, phones = run(s)
    for p in phones:
        if p.phone in LABIODENTALS:
            e = m.expr[centre_frame(p, s)]
            assert e[INDEX["mouthRollLower"]] > 0.35
            assert e[INDEX["jawOpen"]] < 0.15


@pytest.mark.parametrize("s", STYLES, ids=lambda s: f"style{s.style_id}")
def test_mouth_rests_closed_in_silence(s):
    m, phones = run(s)
    centres = (np.arange(len(m.expr)) + 0.5) / FPS
    speaking = np.zeros(len(m.expr), bool)
    resting = np.zeros(len(m.expr), bool)
    for p in phones:
        inside = (centres >= p.start) & (centres < p.end)
        if p.phone == "SIL":
            resting |= (centres >= p.start + 0.3) & (centres < p.end - 0.2)
        else:
            speaking |= inside
    assert resting.sum() > 20
    jaw = m.expr[:, INDEX["jawOpen"]]
    assert jaw[resting].max() < 0.08
    assert lip_opening(m.expr[resting]).max() < 0.1
    assert np.percentile(jaw[speaking], 90) > jaw[resting].mean() + 0.05  # it does talk


def test_open_vowels_open_the_jaw_more_than_close_vowels():
    script = " ".join(f"SIL:0.3 T:0.06 {v}1:0.16 T:0.06" for v in ("AA", "IY", "AE", "UW") * 2)
    ratios = []
    for s in STYLES:
        m, phones = run(s, script=script + " SIL:0.4")
        jaw = {v: [] for v in ("AA", "IY", "AE", "UW")}
        for p in phones:
            if p.phone in jaw:
                jaw[p.phone].append(m.expr[centre_frame(p, s), INDEX["jawOpen"]])
        open_ = np.mean(jaw["AA"] + jaw["AE"])
        close = np.mean(jaw["IY"] + jaw["UW"])
        assert open_ > close + 0.05, (s, open_, close)
        ratios.append(open_ / close)
    assert np.median(ratios) > 1.8


def test_anticipatory_rounding():
    """The lips round on the consonants before a rounded vowel, not before a spread one."""
    s = style_for(2, "neutral", 2)
    pucker = {}
    for v in ("UW", "IY"):
        m, phones = run(s, script=f"SIL:0.5 S:0.09 T:0.06 R:0.06 {v}1:0.2 SIL:0.5")
        f = centre_frame(phones[1], s)  # the S, two phones before the vowel
        pucker[v] = m.expr[f, INDEX["mouthPucker"]]
    assert pucker["UW"] > pucker["IY"] + 0.1


def blink_count(x: np.ndarray, threshold: float = 0.5) -> int:
    above = x > threshold
    return int(np.sum(above[1:] & ~above[:-1]) + above[0])


def test_blinks_never_overlap_and_follow_the_style_rate():
    phones, dur = make_phones(" ".join([SCRIPT] * 6))
    n = int(np.ceil(dur * FPS))
    loud = loudness_for(phones, n)
    rates = {}
    for pid in sorted(range(48), key=lambda i: performer(i).blink_rate)[::15]:  # slow .. fast
        s = style_for(pid, "neutral", 2)  # neutral engagement 1.0: the performer's own rate
        counts = []
        for seed in range(3):
            m = perform_phones(phones, n, loud, s, np.random.default_rng(seed))
            ev = m.blinks.astype(np.float64)
            assert np.all(ev[1:, 0] >= ev[:-1, 1] + 0.2), "blinks overlap"
            assert np.all((ev[:, 1] - ev[:, 0] >= 0.1) & (ev[:, 1] - ev[:, 0] <= 0.301))
            lid = m.expr[:, INDEX["eyeBlinkLeft"]]
            inside = (ev[:, 0] > 0.2) & (ev[:, 1] < dur - 0.2)
            assert blink_count(lid) == len(ev) or abs(blink_count(lid) - inside.sum()) <= 1
            counts.append(len(ev))
        rates[s.performer.blink_rate] = np.mean(counts) * 60.0 / dur
    expected = np.array(list(rates))
    measured = np.array(list(rates.values()))
    assert np.all(np.abs(measured / expected - 1.0) < 0.4), rates
    assert np.all(np.diff(measured) > 0), rates  # faster blinkers blink more


@pytest.mark.parametrize("s", STYLES, ids=lambda s: f"style{s.style_id}")
def test_pose_is_bounded_and_smooth(s):
    phones, dur = make_phones(" ".join([SCRIPT] * 3))
    n = int(np.ceil(dur * FPS))
    for seed in range(3):
        m = perform_phones(phones, n, loudness_for(phones, n), s, np.random.default_rng(seed))
        deg = np.degrees(m.pose[:, :3])
        assert np.abs(deg[:, 0]).max() < 12 and np.abs(deg[:, 1]).max() < 20
        assert np.abs(deg[:, 2]).max() < 10 and np.abs(m.pose[:, 3:]).max() < 0.3
        assert np.abs(np.diff(deg, axis=0)).max() < 1.8  # degrees per frame (54 deg/s)
        assert np.abs(np.diff(m.pose[:, 3:], axis=0)).max() < 0.02
        assert deg.std(axis=0).max() > 0.3  # and it does move


def test_emotions_change_the_dynamics():
    """Sad moves slower and smaller than happy and angry: head and jaw."""
    phones, dur = make_phones(" ".join([SCRIPT] * 2))
    n = int(np.ceil(dur * FPS))
    loud = loudness_for(phones, n)
    head, jaw = {}, {}
    for e in ("sad", "happy", "angry"):
        h, j = [], []
        for pid in range(0, 40, 5):
            m = perform_phones(phones, n, loud, style_for(pid, e, 3), np.random.default_rng(pid))
            h.append(np.degrees(m.pose[:, :3]).std(axis=0).sum())
            j.append(np.abs(np.diff(m.expr[:, INDEX["jawOpen"]])).mean())
        head[e], jaw[e] = np.mean(h), np.mean(j)
    assert head["sad"] < 0.7 * min(head["happy"], head["angry"]), head
    assert jaw["sad"] < 0.8 * min(jaw["happy"], jaw["angry"]), jaw


def test_values_shapes_and_determinism():
    s = style_for(9, "surprised", 3)
    a, _ = run(s, seed=4)
    b, _ = run(s, seed=4)
    c, _ = run(s, seed=5)
    assert a.expr.dtype == np.float32 and a.pose.dtype == np.float32
    assert a.expr.shape[1] == N_EXPR and a.pose.shape[1] == N_POSE
    assert a.expr.min() >= 0.0 and a.expr.max() <= 1.0
    np.testing.assert_array_equal(a.expr, b.expr)
    np.testing.assert_array_equal(a.pose, b.pose)
    assert not np.array_equal(a.expr, c.expr)
    # the lower face is driven by the phones, not the seed
    jaw = INDEX["jawOpen"]
    assert np.corrcoef(a.expr[:, jaw], c.expr[:, jaw])[0, 1] > 0.95


def synthetic_utterance() -> Utterance:
    phones, dur = make_phones()
    n = int(dur * SAMPLE_RATE)
    t = np.arange(n) / SAMPLE_RATE
    audio = np.zeros(n, np.float32)
    for p in phones:
        m = (t >= p.start) & (t < p.end)
        if p.phone[0] in "AEIOU":
            audio[m] = 0.3 * np.sign(np.sin(2 * np.pi * 120 * t[m])) * np.sin(np.pi * 120 * t[m])
        elif p.phone != "SIL":
            audio[m] = 0.03 * np.random.default_rng(0).standard_normal(m.sum())
    return Utterance(audio, SAMPLE_RATE, phones, "test", "synthetic")


def test_perform_an_utterance_and_speed():
    utt = synthetic_utterance()
    s = style_for(12, "happy", 2)
    m = perform(utt, s, seed=3)
    assert m.expr.shape == (utt.n_frames, N_EXPR) and m.pose.shape == (utt.n_frames, N_POSE)
    np.testing.assert_array_equal(m.expr, perform(utt, s, seed=3).expr)
    start = time.perf_counter()
    for seed in range(5):
        perform(utt, s, seed)
    per_second = (time.perf_counter() - start) / 5 / utt.duration
    assert per_second < 0.02, f"{per_second * 1e3:.1f} ms per second of speech"


@pytest.mark.parametrize(
    "phones, n",
    [((), 30), ((), 1), ((Phone("AA", 0.0, 0.5),), 3), ((Phone("M", 0.9, 2.0),), 30)],
)
def test_degenerate_inputs_give_a_rest_face(phones, n):
    m = perform_phones(phones, n, np.full(n, -30.0), style(5), np.random.default_rng(0))
    assert m.expr.shape == (n, N_EXPR) and m.pose.shape == (n, N_POSE)
    assert np.isfinite(m.expr).all() and np.isfinite(m.pose).all()


def test_bad_input_is_an_input_error():
    s = style(0)
    rng = np.random.default_rng(0)
    with pytest.raises(InputError, match="unknown phone"):
        perform_phones([Phone("QQ", 0.0, 0.1)], 10, np.zeros(10), s, rng)
    with pytest.raises(InputError, match="shape"):
        perform_phones([Phone("AA", 0.0, 0.1)], 10, np.zeros(7), s, rng)
    with pytest.raises(InputError, match="n_frames"):
        perform_phones([], 0, np.zeros(0), s, rng)


def test_styles_are_told_apart_from_motion_on_unseen_sentences():
    """The fast version of bench/bench_performer.py: 96 styles fitted on 5 babbled
    sentences, scored on 3 others (babble varies more between sentences than English)."""
    rng = np.random.default_rng(11)
    speech = [random_speech(rng, 2.5) for _ in range(8)]
    chosen = [style_for(p, e, i) for p in range(0, 48, 8) for e in EMOTIONS for i in (2, 3)]
    result = probe(chosen, speech[:5], speech[5:])
    assert result.accuracy["emotion"] > 0.9, result
    assert result.accuracy["performer"] > 0.7, result  # chance 1/6
    assert result.accuracy["style"] > 30 * result.chance["style"], result  # chance 1/96
    assert result.dynamics_accuracy["emotion"] > 0.6, result  # not only the resting face
