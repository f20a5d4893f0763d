"""engine/recognizer.py: streaming phone ids from pocketsphinx, measured on espeak-ng speech
with known phone timings (training/tts.py); the viseme classes of engine/phonemes.py."""

from __future__ import annotations

import numpy as np
import pytest

from stylecast.engine import phonemes, recognizer
from stylecast.engine.pcm import frames_covering
from stylecast.training.timeline import phone_ids_per_frame
from stylecast.training.tts import HELD_OUT_VOICES, synthesize

SENTENCES = (
    "The quick brown fox jumps over the lazy dog, while she sells sea shells.",
    "Please bring the big blue map of Vermont, and five thin wooden chairs.",
    "Would you judge the measure of a rich voice by its pitch or its rhythm?",
)
VIS = np.array(phonemes.VISEME_OF_ID)

# Floors, well under what bench/bench_audio.py measures (docs/benchmarks.md, "audio"): frame
# agreement with the full decode 0.93 at the default look-ahead, phone accuracy 0.35,
# viseme accuracy 0.46 on held-out voices.
AGREEMENT_FLOOR = 0.85
PHONE_ACCURACY_FLOOR = 0.25
VISEME_ACCURACY_FLOOR = 0.35


@pytest.fixture(scope="module")
def speech():
    """[(audio, true ids per frame)] for three sentences in three held-out voices."""
    out = []
    for text, voice in zip(SENTENCES, HELD_OUT_VOICES[:3], strict=True):
        u = synthesize(text, voice)
        out.append((u.audio, phone_ids_per_frame(u.phones, u.n_frames)))
    return out


def stream_ids(audio: np.ndarray, sizes, lookahead=recognizer.DEFAULT_LOOKAHEAD):
    r = recognizer.PhoneRecognizer(lookahead)
    out, i, k = [], 0, 0
    while i < len(audio):
        n = sizes[k % len(sizes)]
        out.append(r.push(audio[i : i + n]))
        i, k = i + n, k + 1
    out.append(r.flush(frames_covering(len(audio))))
    return np.concatenate(out)


def test_phone_names_map_to_ids():
    assert recognizer.phone_to_id("SIL") == phonemes.SIL_ID
    assert recognizer.phone_to_id("+NSN+") == recognizer.phone_to_id("+SPN+") == phonemes.NSN_ID
    assert recognizer.phone_to_id("AA") == phonemes.PHONEME_ID["AA"]
    with pytest.raises(KeyError):
        recognizer.phone_to_id("QX")


def test_viseme_classes():
    assert len(phonemes.VISEME_OF_ID) == phonemes.N_PHONEMES
    assert set(phonemes.VISEME_OF_ID) == set(range(phonemes.N_VISEMES))
    pid = phonemes.PHONEME_ID
    assert (
        phonemes.viseme_id(pid["P"]) == phonemes.viseme_id(pid["B"]) == phonemes.viseme_id(pid["M"])
    )
    assert phonemes.viseme_id(pid["F"]) == phonemes.viseme_id(pid["V"])
    assert phonemes.viseme_id(pid["P"]) != phonemes.viseme_id(pid["AA"])
    assert phonemes.viseme_id(phonemes.SIL_ID) == phonemes.viseme_id(phonemes.NSN_ID) == 0


def test_ids_do_not_depend_on_chunk_sizes(speech):
    audio, truth = speech[0]
    ref = stream_ids(audio, [len(audio)])
    assert ref.shape == truth.shape and ref.dtype == np.int64
    for sizes in ([16], [160, 7], [533], [1600, 16000]):
        assert np.array_equal(stream_ids(audio, sizes), ref)


def test_streaming_agrees_with_the_full_decode(speech):
    agree = {0: [], recognizer.DEFAULT_LOOKAHEAD: []}
    for audio, _ in speech:
        full = recognizer.recognize_whole(audio)
        for lookahead, scores in agree.items():
            scores.append(np.mean(stream_ids(audio, [800], lookahead) == full))
    assert np.mean(agree[recognizer.DEFAULT_LOOKAHEAD]) >= AGREEMENT_FLOOR
    # the partial path settles as audio arrives: no look-ahead agrees much less
    assert np.mean(agree[0]) < np.mean(agree[recognizer.DEFAULT_LOOKAHEAD]) - 0.2


def test_accuracy_against_espeak_phones(speech):
    phone, viseme = [], []
    for audio, truth in speech:
        ids = stream_ids(audio, [533])
        phone.append(np.mean(ids == truth))
        viseme.append(np.mean(VIS[ids] == VIS[truth]))
    assert np.mean(phone) >= PHONE_ACCURACY_FLOOR
    assert np.mean(viseme) >= VISEME_ACCURACY_FLOOR
    assert np.mean(viseme) > np.mean(phone)


def test_reset_gives_a_fresh_recognizer(speech):
    (a, _), (b, _) = speech[0], speech[1]
    r = recognizer.PhoneRecognizer()
    r.push(a)
    r.reset()
    assert r.next_frame == 0
    again = np.concatenate([r.push(b), r.flush(frames_covering(len(b)))])
    assert np.array_equal(again, stream_ids(b, [len(b)]))


def test_long_sessions_restart_in_pauses(speech, monkeypatch):
    pause = np.zeros(8000, np.float32)  # 0.5 s
    audio = np.concatenate([x for a, _ in speech for x in (a, pause)])
    plain = stream_ids(audio, [4000])
    monkeypatch.setattr(recognizer, "MIN_UTTERANCE_S", 1.0)
    r = recognizer.PhoneRecognizer()
    starts, out = set(), []
    for i in range(0, len(audio), 4000):
        out.append(r.push(audio[i : i + 4000]))
        starts.add(r._utt_start)
    out.append(r.flush(frames_covering(len(audio))))
    restarted = np.concatenate(out)
    assert len(starts) >= 3  # restarted in (at least) two of the pauses
    assert restarted.shape == plain.shape
    assert np.mean(restarted == plain) > 0.8  # restarting costs little
    assert np.array_equal(stream_ids(audio, [333]), restarted)  # and stays chunk-invariant
