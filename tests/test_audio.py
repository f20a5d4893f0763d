"""engine/audio.py and engine/pcm.py: input validation, streaming resampling, and the
front end's contract: streaming output = whole-utterance output, frame timing, reset."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.signal
import soxr
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from stylecast.engine import audio
from stylecast.engine.errors import InputError
from stylecast.engine.pcm import (
    SAMPLE_RATE,
    StreamResampler,
    frame_start,
    frames_covering,
    validate_pcm,
)


def speechlike(seconds: float, rate: int = SAMPLE_RATE, seed: int = 0) -> np.ndarray:
    """Syllables of a glottal pulse train through two formant resonators, with fricative
    noise and pauses: voiced, unvoiced and silent frames, all deterministic."""
    rng = np.random.default_rng(seed)
    n = int(seconds * rate)
    t = np.arange(n) / rate
    f0 = 110 + 40 * np.sin(2 * np.pi * 0.7 * t)
    pulses = np.diff(np.floor(np.cumsum(f0) / rate), prepend=0.0)
    voiced = pulses
    for f, bw in ((600 + 200 * rng.random(), 80), (1500 + 500 * rng.random(), 120)):
        r = np.exp(-np.pi * bw / rate)
        voiced = scipy.signal.lfilter(
            [1 - r], [1, -2 * r * np.cos(2 * np.pi * f / rate), r * r], voiced
        )
    syllable = np.sin(np.pi * (t * 4 % 1)) ** 2  # 4 syllables per second
    pause = (t % 1.5) < 1.1  # a 0.4 s pause every 1.5 s
    noisy = ((t * 4) % 1) > 0.8  # a fricative at the end of each syllable
    x = voiced * syllable * ~noisy + 0.05 * rng.standard_normal(n) * noisy
    x = 0.5 * x * pause / np.max(np.abs(x))
    return x.astype(np.float32)


@pytest.fixture(scope="module")
def clip() -> np.ndarray:
    return speechlike(3.0, seed=1)


@pytest.fixture(scope="module")
def whole(clip) -> audio.AudioFeatures:
    return audio.features_for_audio(clip)


def stream(front: audio.AudioFrontEnd, x: np.ndarray, sizes, rate=SAMPLE_RATE):
    """Push x in chunks of the given sizes (cycled), then flush; return the frames."""
    out, i, k = [], 0, 0
    while i < len(x):
        n = sizes[k % len(sizes)]
        out += front.push(x[i : i + n], rate)
        i, k = i + n, k + 1
    return out + front.flush()


def as_arrays(frames):
    mel = np.stack([f.mel for f in frames])
    phon = np.array([f.phoneme for f in frames])
    pros = np.array([[f.loudness, f.voicing, f.pitch] for f in frames], np.float32)
    return mel, phon, pros


# --- input validation -------------------------------------------------------------------
@pytest.mark.parametrize(
    ("pcm", "rate", "match"),
    [
        (np.zeros(10, np.float32), 7_999, "7999 Hz is not supported"),
        (np.zeros(10, np.float32), 96_000, "96000 Hz is not supported"),
        (np.zeros(10, np.float32), 16000.0, "integer number of Hz"),
        (np.zeros(10, np.float32), True, "integer number of Hz"),
        (np.zeros(10, np.float64), 16_000, "dtype must be int16 or float32; got float64"),
        (np.zeros(10, np.int32), 16_000, "got int32"),
        (np.zeros((10, 3), np.int16), 16_000, r"got \(10, 3\)"),
        (np.zeros((2, 10, 1), np.int16), 16_000, "shape"),
        (np.array([0.0, np.nan], np.float32), 16_000, "NaN"),
        (np.array([0.0, np.inf], np.float32), 16_000, "NaN or infinite"),
        (np.array([0.0, 3000.0], np.float32), 16_000, "int16-scaled"),
        ([0.0, 0.1], 16_000, "numpy array"),
    ],
)
def test_bad_input_is_refused_with_a_clear_message(pcm, rate, match):
    with pytest.raises(InputError, match=match):
        validate_pcm(pcm, rate)
    with pytest.raises(InputError, match=match):
        audio.AudioFrontEnd().push(pcm, rate)


def test_int16_stereo_is_scaled_and_downmixed():
    pcm = np.array([[16384, -16384], [32767, 32767], [-32768, 0]], np.int16)
    np.testing.assert_allclose(validate_pcm(pcm, 44_100), [0.0, 32767 / 32768, -0.5])
    assert validate_pcm(pcm[:, :1], 8_000).shape == (3,)
    assert validate_pcm(np.zeros(0, np.int16), 48_000).shape == (0,)


@pytest.mark.parametrize("lookahead", [-1, 31, 2.5, True])
def test_bad_phoneme_lookahead_is_refused(lookahead):
    with pytest.raises(InputError, match="phoneme look-ahead"):
        audio.AudioFrontEnd(phoneme_lookahead=lookahead)


def test_rate_change_within_a_segment_is_refused():
    front = audio.AudioFrontEnd()
    front.push(np.zeros(480, np.int16), 48_000)
    with pytest.raises(InputError, match="changed from 48000 to 16000"):
        front.push(np.zeros(160, np.int16), 16_000)
    front.flush()
    front.push(np.zeros(160, np.int16), 16_000)  # a new segment may use another rate


# --- resampling -------------------------------------------------------------------------
@pytest.mark.parametrize("rate", [8_000, 22_050, 44_100, 48_000])
@given(seed=st.integers(0, 2**31))
@settings(max_examples=5, deadline=None)
def test_resampler_streams_without_clicks(rate, seed):
    amplitude, f = 0.8, 440.0
    x = (amplitude * np.sin(2 * np.pi * f * np.arange(rate) / rate)).astype(np.float32)
    rng = np.random.default_rng(seed)
    resampler, out, i = StreamResampler(), [], 0
    while i < len(x):
        n = int(rng.choice([1, 7, 160, 441, 1000, 4800]))
        out.append(resampler.push(x[i : i + n], rate))
        i += n
    y = np.concatenate([*out, resampler.flush()])
    ref = soxr.resample(x, rate, SAMPLE_RATE)
    assert len(y) == len(ref) == SAMPLE_RATE
    np.testing.assert_allclose(y, ref, atol=1e-6)
    # no clicks: the steepest step is that of the ideal sine (ignoring the two edges)
    steepest = amplitude * 2 * np.pi * f / SAMPLE_RATE
    assert np.max(np.abs(np.diff(y[200:-200]))) < 1.02 * steepest


def test_16k_passes_through_untouched():
    x = np.random.default_rng(0).uniform(-1, 1, 1000).astype(np.float32)
    assert np.array_equal(StreamResampler().push(x, SAMPLE_RATE), x)


# --- the front end ----------------------------------------------------------------------
def test_whole_utterance_shapes(clip, whole):
    t = frames_covering(len(clip))
    assert t == int(np.ceil(len(clip) / SAMPLE_RATE * 30)) == 90
    assert whole.mel.shape == (t, audio.MEL_FRAMES, 80) and whole.mel.dtype == np.float32
    assert whole.phonemes.shape == (t,) and whole.phonemes.dtype == np.int64
    assert whole.prosody.shape == (t, 3) and whole.prosody.dtype == np.float32
    assert whole.mel.min() >= -4 and whole.mel.max() <= 4
    assert ((whole.phonemes >= 0) & (whole.phonemes < 41)).all()
    # the pauses (1.1..1.5 s, 2.6..3.0 s) are silent, the syllables are not
    t_s = (np.arange(t) + 0.5) / 30
    loud = whole.prosody[:, 0]
    assert loud[(t_s > 1.2) & (t_s < 1.4)].max() < -90
    assert loud[t_s < 1.0].max() > -25 and np.mean(loud[t_s < 1.0] > -60) > 0.5


def test_mel_windows_alone_equal_the_front_end(clip, whole):
    np.testing.assert_allclose(audio.mel_windows(clip), whole.mel, atol=1e-5)
    assert audio.mel_windows(clip[:100]).shape == (1, audio.MEL_FRAMES, 80)
    assert audio.mel_windows(np.zeros(0, np.float32)).shape == (0, audio.MEL_FRAMES, 80)


@given(
    sizes=st.sampled_from([[16], [160], [528], [1600], [16000], [1, 333, 7000, 50]])
    | st.lists(st.integers(1, 8000), min_size=1, max_size=6)
)
@settings(
    max_examples=8, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
def test_streaming_equals_whole_utterance(clip, whole, sizes):
    # chunks of 1 ms, 10 ms, 33 ms, 100 ms, 1 s and random mixes
    mel, phon, pros = as_arrays(stream(audio.AudioFrontEnd(), clip, sizes))
    np.testing.assert_allclose(mel, whole.mel, atol=1e-5)
    np.testing.assert_allclose(pros, whole.prosody, atol=1e-5, rtol=1e-6)
    assert np.array_equal(phon, whole.phonemes)  # fed in fixed blocks: exact


@pytest.mark.parametrize("rate", [8_000, 44_100, 48_000])
def test_other_rates_and_stereo_int16(rate):
    x = speechlike(2.0, rate, seed=2)
    pcm = (np.stack([x, 0.5 * x], axis=1) * 32767).astype(np.int16)  # (n, 2)
    frames = stream(audio.AudioFrontEnd(), pcm, [rate // 50], rate)  # 20 ms chunks
    resampled = soxr.resample(pcm.mean(axis=1).astype(np.float32) / 32768, rate, SAMPLE_RATE)
    assert [f.index for f in frames] == list(range(frames_covering(len(resampled))))
    ref = audio.features_for_audio(resampled)
    mel, _, pros = as_arrays(frames)
    np.testing.assert_allclose(mel, ref.mel, atol=1e-4)
    np.testing.assert_allclose(pros[:, 0], ref.prosody[:, 0], atol=1e-3)


def test_lookahead_constants():
    assert audio.MEL_LOOKAHEAD == 3 and audio.PROSODY_LOOKAHEAD == 1
    front = audio.AudioFrontEnd()
    assert front.lookahead == max(audio.MEL_LOOKAHEAD, audio.PHONEME_LOOKAHEAD)
    assert front.lookahead_ms == pytest.approx(1000 * front.lookahead / 30)
    # each frame's mel window and prosody window end within its declared look-ahead
    for t in range(30):
        last_mel = audio.mel_anchor(t) + audio.MEL_FRAMES - audio.MEL_BEFORE - 1
        assert last_mel * 200 + 400 <= frame_start(t + 1 + audio.MEL_LOOKAHEAD)
        assert audio.prosody_centre(t) + 400 <= frame_start(t + 1 + audio.PROSODY_LOOKAHEAD)


@pytest.mark.parametrize("phoneme_lookahead", [0, 3, 5])
def test_frame_t_is_emitted_exactly_when_its_lookahead_is_in(phoneme_lookahead):
    x = speechlike(0.6, seed=3)
    front = audio.AudioFrontEnd(phoneme_lookahead=phoneme_lookahead)
    lookahead = front.lookahead
    emitted_at = {}
    for n in range(0, len(x), 5):  # 5 samples = 0.3 ms per push
        for f in front.push(x[n : n + 5], SAMPLE_RATE):
            emitted_at[f.index] = min(n + 5, len(x))
    for t, n in emitted_at.items():
        need = frame_start(t + 1 + lookahead)
        assert need <= n < need + 5, (t, n, need)
    expected = [t for t in range(100) if frame_start(t + 1 + lookahead) <= len(x)]
    assert sorted(emitted_at) == expected
    tail = front.flush()
    assert [f.index for f in tail] == list(range(len(expected), frames_covering(len(x))))


def test_flush_ends_the_segment_and_reset_forgets(clip, whole):
    front = audio.AudioFrontEnd()
    front.push(speechlike(1.0, seed=4), SAMPLE_RATE)
    front.reset()  # barge-in: as if new
    mel, phon, pros = as_arrays(stream(front, clip, [800]))
    np.testing.assert_allclose(mel, whole.mel, atol=1e-5)
    np.testing.assert_allclose(pros, whole.prosody, atol=1e-5, rtol=1e-6)
    assert np.array_equal(phon, whole.phonemes)
    # after a flush the next push starts again at frame 0, with the same mel and prosody
    again = stream(front, clip, [800])
    assert again[0].index == 0 and len(again) == len(whole.phonemes)
    np.testing.assert_allclose(as_arrays(again)[0], whole.mel, atol=1e-5)
    assert front.flush() == [] and front.push(np.zeros(0, np.int16), 16_000) == []
    # a front end reused for whole utterances answers as a fresh one
    front.push(speechlike(0.5, seed=5), SAMPLE_RATE)
    reused = audio.features_for_audio(clip, front=front)
    np.testing.assert_allclose(reused.mel, whole.mel, atol=1e-5)
    assert np.array_equal(reused.phonemes, whole.phonemes)


def test_a_front_end_without_mel_is_sooner_and_gives_the_same_phonemes_and_prosody(clip):
    full = audio.AudioFrontEnd(phoneme_lookahead=2)
    lean = audio.AudioFrontEnd(phoneme_lookahead=2, mel=False)
    assert full.lookahead == audio.MEL_LOOKAHEAD == 3
    assert lean.lookahead == 2  # max(prosody 1, phoneme 2): no mel window to wait for
    a = stream(full, clip, [533])
    b = stream(lean, clip, [533])
    mel_a, phon_a, pros_a = as_arrays(a)
    mel_b, phon_b, pros_b = as_arrays(b)
    assert np.array_equal(phon_a, phon_b)
    np.testing.assert_array_equal(pros_a, pros_b)
    assert np.all(mel_b == audio.SILENT_MEL) and mel_a.std() > 0.5
    # and each frame comes out as soon as its (shorter) look-ahead is in
    x = speechlike(0.6, seed=3)
    lean = audio.AudioFrontEnd(phoneme_lookahead=2, mel=False)
    for n in range(0, len(x), 40):
        for f in lean.push(x[n : n + 40], SAMPLE_RATE):
            need = frame_start(f.index + 1 + 2)
            assert need <= n + 40 < need + 40


def test_a_front_end_without_phonemes_runs_no_recognizer_and_gives_the_same_frames(clip):
    full = audio.AudioFrontEnd()  # mel + phonemes, look-ahead 3
    lean = audio.AudioFrontEnd(phonemes=False)
    assert lean._recognizer is None and not lean.recognizes
    assert lean.lookahead == full.lookahead == audio.MEL_LOOKAHEAD
    sizes = [320, 7, 1600, 533]
    a, b = stream(full, clip, sizes), stream(lean, clip, sizes)
    assert [f.index for f in a] == [f.index for f in b]
    mel_a, phon_a, pros_a = as_arrays(a)
    mel_b, phon_b, pros_b = as_arrays(b)
    np.testing.assert_array_equal(mel_a, mel_b)
    np.testing.assert_array_equal(pros_a, pros_b)
    assert np.all(phon_b == audio.NO_PHONEME) and len(set(phon_a.tolist())) > 3
    # each frame leaves on the same push as with the recognizer (mel decides: 3 frames)
    x = speechlike(0.6, seed=3)
    full, lean = audio.AudioFrontEnd(), audio.AudioFrontEnd(phonemes=False)
    for n in range(0, len(x), 40):
        got = [f.index for f in lean.push(x[n : n + 40], SAMPLE_RATE)]
        assert got == [f.index for f in full.push(x[n : n + 40], SAMPLE_RATE)]
    # with neither mel nor phonemes only prosody's look-ahead is left; reset still works
    bare = audio.AudioFrontEnd(mel=False, phonemes=False)
    assert bare.lookahead == audio.PROSODY_LOOKAHEAD == 1
    bare.push(x, SAMPLE_RATE)
    bare.reset()
    again = bare.push(clip, SAMPLE_RATE) + bare.flush()
    assert again[0].index == 0 and len(again) == len(phon_a)
    np.testing.assert_array_equal(as_arrays(again)[2], pros_a)
