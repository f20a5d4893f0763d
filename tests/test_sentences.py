"""training/sentences.py: corpus sentences from the CMU dictionary, covering the phonemes."""

import pytest

from stylecast.engine.errors import InputError
from stylecast.training.sentences import (
    BLOCKLIST,
    common_diphones,
    coverage,
    generate_sentences,
    lexicon,
    sentence_phones,
)


@pytest.fixture(scope="module")
def sentences():
    return generate_sentences(2400, seed=0)


def test_at_least_2000_distinct_sentences_with_pauses(sentences):
    assert len(sentences) == len(set(sentences)) == 2400
    for s in sentences:
        assert s[0].isupper() and s[-1] in ".?!"
        assert s.count(",") >= 1  # phrases, so the voice pauses
        assert 4 <= len(s.split()) <= 16


def test_covers_all_phonemes_and_nearly_all_common_diphones(sentences):
    cov = coverage(sentences)
    assert cov.phonemes == 39
    assert cov.n_common_diphones > 400
    assert cov.common_diphones >= 0.98 * cov.n_common_diphones
    # the greedy head alone already covers what random sentences need far more of
    head = coverage(sentences[:150])
    assert head.phonemes == 39 and head.common_diphones >= 0.95 * cov.n_common_diphones


def test_deterministic_by_seed():
    a, b = generate_sentences(300, seed=7), generate_sentences(300, seed=7)
    assert a == b
    assert len(set(a) & set(generate_sentences(300, seed=8))) < 10


def test_vocabulary_is_common_clean_and_pronounceable():
    lex = lexicon()
    assert len(lex.words) == len(set(lex.words)) >= 5000
    assert {"the", "and", "house", "water"} <= set(lex.words)
    assert not set(lex.words) & BLOCKLIST
    assert all(w.isalpha() and any(c in "aeiouy" for c in w) for w in lex.words)
    assert all(len(lex.phones[w]) <= len(w) + 1 for w in lex.words)  # nothing spelled out


def test_sentence_phones_and_unknown_words():
    assert sentence_phones("The cat, sat.") == [
        "DH",
        "AH",
        "K",
        "AE",
        "T",
        "SIL",
        "S",
        "AE",
        "T",
        "SIL",
    ]
    assert ("K", "AE") in common_diphones()
    with pytest.raises(InputError, match="zzxq"):
        sentence_phones("a zzxq")
    with pytest.raises(InputError):
        generate_sentences(0)
