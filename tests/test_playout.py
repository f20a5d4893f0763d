"""engine/playout.py: segment starts on the frame grid and between frames (exact_start),
with the audio sample-exact and the features on the same timeline."""

from __future__ import annotations

import numpy as np
import pytest

from stylecast.engine.audio import AudioFrontEnd
from stylecast.engine.clock import SAMPLES_PER_FRAME
from stylecast.engine.playout import PLAYBACK_FINISHED, SEGMENT_STARTED, Playout

RATE = 48_000


@pytest.fixture(scope="module")
def front() -> AudioFrontEnd:
    return AudioFrontEnd(phoneme_lookahead=2, mel=False)


def burst(seconds: float = 0.6, silence: float = 0.2) -> np.ndarray:
    """int16 at 48 kHz: silence, then a loud buzz (onset at `silence` s)."""
    t = np.arange(int(seconds * RATE)) / RATE
    x = 0.4 * np.sign(np.sin(2 * np.pi * 150 * t)) * (t >= silence)
    return np.round(x * 32767).astype(np.int16)


def play(front, pcm, arrival_s, exact_start, chunk=None, ticks=60, lookahead=0):
    """Push pcm (in chunks) at arrival_s, end the segment, run `ticks` frames:
    (output audio, fed loudness per frame, events)."""
    front.reset()
    playout = Playout(lookahead, 10.0, front, exact_start=exact_start)
    chunk = chunk or len(pcm)
    for a in range(0, len(pcm), chunk):
        playout.push(pcm[a : a + chunk].astype(np.float32) / 32768.0, RATE, arrival_s)
    playout.end_segment()
    out, loud, events = [], [], []
    for t in range(ticks):
        row = playout.next_input()
        loud.append(np.nan if row is None else float(row.prosody[0]))  # nan: silence fed
        pcm_t, ev = playout.play()
        out.append(pcm_t)
        events += [(t, e) for e in ev]
    return np.concatenate(out), np.array(loud), events, playout


@pytest.mark.parametrize("arrival_s", [0.05, 0.0111, 0.1])
def test_exact_start_plays_the_first_sample_delay_after_arrival(front, arrival_s):
    pcm = burst()
    out, _, events, playout = play(front, pcm, arrival_s, exact_start=True)
    first = round((arrival_s * 30 + playout.delay_frames(RATE)) * SAMPLES_PER_FRAME)
    np.testing.assert_array_equal(out[first : first + len(pcm)], pcm)  # bit-exact, 48 kHz
    assert not out[:first].any() and not out[first + len(pcm) :].any()
    ((start, _),) = [(t, e) for t, e in events if e.kind == SEGMENT_STARTED]
    ((_, finished),) = [(t, e) for t, e in events if e.kind == PLAYBACK_FINISHED]
    assert start == first // SAMPLES_PER_FRAME  # the frame the first sample plays in
    assert finished.position == pytest.approx(len(pcm) / RATE)  # the lead is not counted


def test_grid_start_waits_for_the_next_frame(front):
    pcm = burst()
    arrival = 0.05
    out, _, _, playout = play(front, pcm, arrival, exact_start=False)
    start = int(np.ceil(arrival * 30 + playout.delay_frames(RATE)))
    np.testing.assert_array_equal(out[start * SAMPLES_PER_FRAME :][: len(pcm)], pcm)
    exact, *_ = play(front, pcm, arrival, exact_start=True)
    lag = np.argmax(out != 0) - np.argmax(exact != 0)  # what the rounding cost
    assert 0 < lag < SAMPLES_PER_FRAME


def test_features_follow_the_audio_between_frames(front):
    """The lead shifts the features with the audio: the frame whose fed loudness rises is
    the one whose played audio turns loud (onset in the middle of a frame or not)."""
    for arrival in (0.0, 0.012, 0.021, 0.03):
        out, loud, *_ = play(front, burst(), arrival, exact_start=True)
        frames = out[: 60 * SAMPLES_PER_FRAME].reshape(60, -1).astype(np.float32)
        heard = int(np.argmax(np.abs(frames).mean(axis=1) > 3000))  # mostly loud
        fed = int(np.argmax(loud > -20.0))
        assert abs(heard - fed) <= 1, (arrival, heard, fed)


@pytest.mark.parametrize("lookahead", [0, 3, 5])
def test_a_lookahead_model_shows_a_frame_when_its_audio_plays(front, lookahead):
    """A model with look-ahead L shows at tick t the motion of the input fed at tick t - L;
    that input's audio must play at tick t, not at the tick it was fed (it used to: the
    sound led the lips by L frames)."""
    out, loud, events, _ = play(front, burst(), 0.0, exact_start=False, lookahead=lookahead)
    frames = out[: 60 * SAMPLES_PER_FRAME].reshape(60, -1).astype(np.float32)
    heard = int(np.argmax(np.abs(frames).mean(axis=1) > 3000))
    shown = int(np.argmax(loud > -20.0)) + lookahead  # the tick the model outputs it
    assert abs(heard - shown) <= 1, (lookahead, heard, shown)  # as in the test above
    ((start, _),) = [(t, e) for t, e in events if e.kind == SEGMENT_STARTED]
    fed_first = int(np.argmax(~np.isnan(loud)))  # the tick feeding the segment's frame 0
    assert start == fed_first + lookahead


def test_exact_start_does_not_depend_on_chunk_sizes(front):
    pcm = burst()
    a, la, ea, _ = play(front, pcm, 0.037, exact_start=True)
    b, lb, eb, _ = play(front, pcm, 0.037, exact_start=True, chunk=48)  # 1 ms chunks
    np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(la, lb)
    assert ea == eb
