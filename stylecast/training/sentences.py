"""Sentences for the corpus, made from the CMU pronouncing dictionary pocketsphinx ships.

The vocabulary is the dictionary's common, pronounceable words: alphabetic, 1 to 10
letters, with a vowel letter, among the `VOCABULARY_SIZE` most frequent by the unigram
probability of pocketsphinx's English language model (`en-us.lm.bin`), minus a small
blocklist. Sentences are 2 to 3 phrases of 2 to 5 words (function words mixed with content
words), separated by commas so the voice pauses between them, ending in a full stop (some
in "?" or "!"). From a pool of candidates, a greedy pass first picks the sentences that
cover the most not-yet-covered phonemes and common diphones; the rest are drawn at random
from the pool. Everything is deterministic by seed.

Coverage is counted on the dictionary's pronunciations (espeak-ng's can differ a little).
"""

from __future__ import annotations

import heapq
import itertools
import os
import random
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from stylecast.engine.errors import BackendError, InputError
from stylecast.engine.phonemes import CMU_PHONES

VOCABULARY_SIZE = 6000  # the most frequent dictionary words kept
N_FUNCTION_WORDS = 120  # the most frequent of those act as function words
FUNCTION_WORD_SHARE = 0.4  # chance that a word of a phrase is a function word
COMMON_DIPHONE_MASS = 0.99  # common diphones: the most frequent, covering 99% of the mass
POOL_FACTOR = 4  # candidates drawn per sentence wanted
# Words never used (a small list; the frequency cut removes most rare vulgarity).
BLOCKLIST = frozenset(
    """\
    fuck fucked fucking fucker shit shitty bitch bitches bastard cunt dick dicks cock cocks
    pussy whore slut sluts nigger nigga fag faggot retard retarded rape raped rapist porn
    porno anal anus penis vagina cum cumming jizz tits titty boob boobs dildo orgasm sex sexy
    sexual masturbate horny nazi nazis kill killed killing murder suicide terrorist
    """.split()  # noqa: SIM905
)


def cmudict_path() -> Path:
    """The CMU pronouncing dictionary inside the pocketsphinx wheel."""
    try:
        import pocketsphinx
    except ImportError as e:
        raise BackendError("pocketsphinx is not installed: pip install pocketsphinx") from e
    return Path(pocketsphinx.get_model_path()) / "en-us" / "cmudict-en-us.dict"


@dataclass(frozen=True)
class Lexicon:
    """The vocabulary: words by decreasing frequency, their CMU phones, their log-probability."""

    words: tuple[str, ...]  # most frequent first
    phones: dict[str, tuple[str, ...]]  # word -> CMU phones without stress digits
    logprob: dict[str, int]  # word -> the LM's unigram log-probability (larger = commoner)


@lru_cache(maxsize=1)
def lexicon() -> Lexicon:
    """The common pronounceable words of the pocketsphinx dictionary (loaded once)."""
    from pocketsphinx import Config, LogMath, NGramModel, set_loglevel

    path = cmudict_path()
    if not path.exists():
        raise BackendError(f"no CMU dictionary at {path}: reinstall pocketsphinx")
    set_loglevel("ERROR")
    lm_path = path.parent / "en-us.lm.bin"
    try:
        lm = NGramModel(Config(), LogMath(), os.fspath(lm_path))
    except ValueError as e:
        raise BackendError(f"cannot read the language model {lm_path}") from e
    pron: dict[str, tuple[str, ...]] = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        word, *phones = line.split()
        if "(" in word or not word.isalpha() or not word.isascii() or len(word) > 10:
            continue  # alternative pronunciations, abbreviations with dots, long words
        if word in BLOCKLIST or not any(c in "aeiouy" for c in word):
            continue
        if len(word) == 1 and word not in ("a", "i"):
            continue
        if len(phones) > len(word) + 1:
            continue  # spelled out: an abbreviation ("atm", "etc")
        pron[word] = tuple(p.rstrip("012") for p in phones)
    unknown = lm.prob(["<unk>"])
    logprob = {w: lm.prob([w]) for w in pron}
    words = sorted((w for w in pron if logprob[w] > unknown), key=lambda w: (-logprob[w], w))
    words = words[:VOCABULARY_SIZE]
    return Lexicon(tuple(words), {w: pron[w] for w in words}, {w: logprob[w] for w in words})


def sentence_phones(sentence: str, lex: Lexicon | None = None) -> list[str]:
    """CMU phones of SENTENCE by the dictionary, with SIL at commas and full stops."""
    lex = lex or lexicon()
    out: list[str] = []
    for token in sentence.lower().replace(",", " , ").replace(".", " . ").split():
        word = token.strip("?!")
        if word in (",", "."):
            out.append("SIL")
        elif word in lex.phones:
            out.extend(lex.phones[word])
        else:
            raise InputError(f"word {word!r} of {sentence!r} is not in the vocabulary")
    return out


def diphones(phones: list[str]) -> set[tuple[str, str]]:
    """Pairs of neighbouring phones, across words but not across pauses."""
    return {(a, b) for a, b in itertools.pairwise(phones) if "SIL" not in (a, b)}


@lru_cache(maxsize=1)
def common_diphones() -> frozenset[tuple[str, str]]:
    """Diphones inside and across words, weighted by word frequency; the most frequent ones
    that together make COMMON_DIPHONE_MASS of all."""
    lex = lexicon()
    weight: dict[tuple[str, str], float] = {}
    top = lex.words[:N_FUNCTION_WORDS]
    for w in lex.words:
        p = 10.0 ** (lex.logprob[w] / 1e5)  # relative frequency (log base is irrelevant)
        ph = lex.phones[w]
        pairs = list(itertools.pairwise(ph))
        pairs += [(f[-1], ph[0]) for f in (lex.phones[t] for t in top[:30])]  # across words
        for d in pairs:
            weight[d] = weight.get(d, 0.0) + p
    ranked = sorted(weight.items(), key=lambda kv: (-kv[1], kv[0]))
    total, acc, keep = sum(weight.values()), 0.0, []
    for d, wt in ranked:
        if acc >= COMMON_DIPHONE_MASS * total:
            break
        keep.append(d)
        acc += wt
    return frozenset(keep)


def _draw_sentence(rng: random.Random, lex: Lexicon, function: list[str], content: list[str],
                   content_cum: list[float]) -> str:  # fmt: skip
    phrases = []
    for _ in range(rng.choice((2, 2, 3, 3, 3))):
        n = rng.randint(2, 5)
        words = [
            rng.choice(function)
            if rng.random() < FUNCTION_WORD_SHARE
            else rng.choices(content, cum_weights=content_cum)[0]
            for _ in range(n)
        ]
        phrases.append(" ".join("I" if w == "i" else w for w in words))
    text = ", ".join(phrases)
    end = rng.choices((".", "?", "!"), (0.8, 0.1, 0.1))[0]
    return text[0].upper() + text[1:] + end


def generate_sentences(n: int = 3000, seed: int = 0) -> list[str]:
    """N distinct sentences, the first chosen greedily for phoneme and diphone coverage."""
    if n < 1:
        raise InputError(f"number of sentences must be >= 1, got {n}")
    return list(_generate(n, seed))


@lru_cache(maxsize=4)
def _generate(n: int, seed: int) -> tuple[str, ...]:
    lex = lexicon()
    rng = random.Random(seed)
    function = list(lex.words[:N_FUNCTION_WORDS])
    content = list(lex.words[N_FUNCTION_WORDS:])
    # flatten the frequency distribution so rare phones still show up: weight ~ rank^-0.5
    content_cum = list(itertools.accumulate(1.0 / (i + 10) ** 0.5 for i in range(len(content))))
    pool: list[str] = []
    seen: set[str] = set()
    while len(pool) < POOL_FACTOR * n:
        s = _draw_sentence(rng, lex, function, content, content_cum)
        if s not in seen:
            seen.add(s)
            pool.append(s)
    targets = {(p,) for p in CMU_PHONES} | set(common_diphones())
    units = [{(p,) for p in ph} | diphones(ph) for ph in (sentence_phones(s, lex) for s in pool)]
    # lazy greedy: a candidate's gain only shrinks as coverage grows, so a stale gain from
    # the heap is an upper bound; re-score the top one until it stays on top
    chosen: list[int] = []
    taken = [False] * len(pool)
    uncovered = set(targets)
    heap = [(-len(u & uncovered), i) for i, u in enumerate(units)]
    heapq.heapify(heap)
    while uncovered and heap and len(chosen) < n:
        _, i = heapq.heappop(heap)
        gain = len(units[i] & uncovered)
        if heap and gain < -heap[0][0]:
            heapq.heappush(heap, (-gain, i))
            continue
        if gain == 0:
            break
        chosen.append(i)
        taken[i] = True
        uncovered -= units[i]
    rest = [i for i in range(len(pool)) if not taken[i]]
    rng.shuffle(rest)
    return tuple(pool[i] for i in chosen + rest[: n - len(chosen)])


@dataclass(frozen=True)
class Coverage:
    """How much of the phoneme inventory a set of sentences covers (dictionary phones)."""

    n_sentences: int
    n_words: int  # running words
    phonemes: int  # of the 39 CMU phones
    diphones: int  # distinct phone pairs seen (of 39 x 39 = 1521)
    common_diphones: int  # common diphones seen
    n_common_diphones: int  # common diphones in all

    def __str__(self) -> str:
        return (
            f"{self.n_sentences} sentences, {self.n_words} words: {self.phonemes}/39 phonemes, "
            f"{self.common_diphones}/{self.n_common_diphones} common diphones "
            f"({100 * self.common_diphones / self.n_common_diphones:.1f}%), "
            f"{self.diphones}/1521 diphones in all"
        )


def coverage(sentences: list[str]) -> Coverage:
    lex = lexicon()
    phones: set[str] = set()
    pairs: set[tuple[str, str]] = set()
    n_words = 0
    for s in sentences:
        ph = sentence_phones(s, lex)
        phones.update(p for p in ph if p != "SIL")
        pairs |= diphones(ph)
        n_words += len(s.split())
    common = common_diphones()
    return Coverage(
        len(sentences), n_words, len(phones), len(pairs), len(pairs & common), len(common)
    )
