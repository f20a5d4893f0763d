"""Speech with exact phone timings: espeak-ng through its C API.

`synthesize(text, voice)` returns an `Utterance` (see `training/timeline.py`): 16 kHz float32
audio and the CMU phones espeak-ng spoke, each with the sample-exact start and end that
espeak-ng's phoneme events report. The PyPI wrappers only shell out and give no timings, so
this module binds `libespeak-ng.so.1` with ctypes:

- `espeak_Initialize(AUDIO_OUTPUT_SYNCHRONOUS, ..., espeakINITIALIZE_PHONEME_EVENTS)`: audio
  and events come back through the synth callback, in the calling thread.
- `espeak_SetVoiceByName("en-us+m3")` and `espeak_SetParameter` (rate, pitch, range) pick
  the speaker; `espeak_Synth` speaks; each callback brings a block of 22,050 Hz int16
  samples and a list of events (PHONEME, WORD, SENTENCE, END) whose `sample` field is the
  position in samples from the start of the utterance.
- `espeak_TextToPhonemes` gives the same phonemes as a string with stress marks; the two
  sequences are aligned to give each vowel its stress.

espeak-ng holds global state, so there is one synthesizer per process (`Synthesizer.get()`,
calls serialised by a lock); run several processes to synthesize in parallel. Part of that
state is the pitch flutter, which runs on from one utterance to the next: the same text and
voice give bit-identical samples only in a fresh process with the same history (timings
agree to under 2 ms regardless). training/corpus.py makes each shard in a fresh process.

The voice table (`VOICES`) is deterministic: English accents x espeak-ng voice variants x
speaking rate x pitch x pitch range, each voice's name spelling out its settings.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import difflib
import random
import threading
from dataclasses import dataclass

import numpy as np
import soxr

from stylecast.engine.errors import BackendError, InputError
from stylecast.engine.phonemes import CMU_PHONES, SIL
from stylecast.training.timeline import SAMPLE_RATE, Phone, Utterance

ESPEAK_RATE = 22_050  # espeak-ng's native output rate, Hz

# --- the C API (espeak-ng/speak_lib.h) -------------------------------------------------
AUDIO_OUTPUT_SYNCHRONOUS = 2
INITIALIZE_PHONEME_EVENTS = 0x0001
INITIALIZE_DONT_EXIT = 0x8000
CHARS_UTF8 = 1
POS_CHARACTER = 1
EVENT_LIST_TERMINATED, EVENT_WORD, EVENT_SENTENCE, EVENT_END, EVENT_PHONEME = 0, 1, 2, 5, 7
PARAM_RATE, PARAM_PITCH, PARAM_RANGE = 1, 3, 4


class _Event(ctypes.Structure):
    """espeak_EVENT."""

    _fields_ = (
        ("type", ctypes.c_int),
        ("unique_identifier", ctypes.c_uint),
        ("text_position", ctypes.c_int),  # 1-based character position in the text
        ("length", ctypes.c_int),
        ("audio_position", ctypes.c_int),  # milliseconds
        ("sample", ctypes.c_int),  # samples at ESPEAK_RATE from the start of the utterance
        ("user_data", ctypes.c_void_p),
        ("id", ctypes.c_char * 8),  # PHONEME: the mnemonic, NUL-terminated unless 8 bytes
    )


_SynthCallback = ctypes.CFUNCTYPE(
    ctypes.c_int, ctypes.POINTER(ctypes.c_short), ctypes.c_int, ctypes.POINTER(_Event)
)

# --- espeak-ng English phoneme mnemonics -> CMU phones ---------------------------------
# Each mnemonic espeak-ng's English voices emit (en, en-us, en-gb-*, en-029, en-us-nyc),
# mapped to one or two CMU phones; two when CMU spells the sound as two (syllabic l and n,
# r-coloured diphthongs of non-rhotic accents). "" merges the phone into the one before.
ESPEAK_TO_CMU: dict[str, tuple[str, ...]] = {
    # consonants
    "p": ("P",), "b": ("B",), "t": ("T",), "d": ("D",), "k": ("K",), "g": ("G",),
    "f": ("F",), "v": ("V",), "T": ("TH",), "D": ("DH",), "s": ("S",), "z": ("Z",),
    "S": ("SH",), "Z": ("ZH",), "h": ("HH",), "tS": ("CH",), "dZ": ("JH",),
    "m": ("M",), "n": ("N",), "N": ("NG",), "l": ("L",), "r": ("R",), "w": ("W",),
    "j": ("Y",),
    "t#": ("T",),  # flapped t (US "water")
    "d#": ("D",),  # flapped d
    "t2": ("T",),  # t before a vowel-initial word
    "t[": ("T",),  # dental t
    "?": ("T",),  # glottal stop standing for t
    "x": ("K",),  # Scottish "loch"; CMU writes K
    "w#": ("W",),  # Scottish "wh"
    "l/": ("L",), "l#": ("L",),  # dark / syllable-final l
    "r-": ("R",),  # linking r
    "n-": ("AH", "N"),  # syllabic n ("button": B AH T AH N)
    "m-": ("AH", "M"),  # syllabic m
    "@L": ("AH", "L"),  # syllabic l ("little": L IH T AH L)
    ";": ("",),  # palatal glide between a front vowel and the next: part of that vowel
    # vowels
    "@": ("AH",), "@2": ("AH",), "@5": ("AH",), "@-": ("AH",), "a#": ("AH",), "V": ("AH",),
    "3": ("ER",), "3:": ("ER",), "VR": ("ER",), "IR": ("ER",),
    "a": ("AE",), "aa": ("AE",), "a2": ("AE",),
    "A:": ("AA",), "A#": ("AA",), "0": ("AA",), "0#": ("AA",), "A@": ("AA", "R"),
    "O": ("AO",), "O:": ("AO",), "O2": ("AO",), "O@": ("AO", "R"), "o@": ("AO", "R"),
    "OI": ("OY",),
    "e": ("EH",), "E": ("EH",), "E2": ("EH",), "e@": ("EH", "R"),
    "eI": ("EY",), "eI#": ("EY",),
    "i": ("IY",), "i:": ("IY",),
    "I": ("IH",), "I2": ("IH",), "I#": ("IH",),
    "i@": ("IH", "R"), "i@3": ("IH", "R"), "I@": ("IH", "R"),
    "U": ("UH",), "U@": ("UH", "R"), "u:": ("UW",), "u": ("UW",),
    "oU": ("OW",), "oU#": ("OW",), "@U": ("OW",), "o:": ("OW",),
    "aI": ("AY",), "aI2": ("AY",), "aI@": ("AY", "ER"), "aI3": ("AY", "ER"),
    "aU": ("AW",), "aU@": ("AW", "ER"),
}  # fmt: skip
CMU_VOWELS = frozenset(p for p in CMU_PHONES if p[0] in "AEIOU")
_STRESS_MARKS = {"'": 1, ",": 2, "%": 0, "=": 0}
assert all(set(v) <= {*CMU_PHONES, ""} for v in ESPEAK_TO_CMU.values())
_SECOND_SHARE = 0.4  # share of a two-phone mnemonic's duration given to its second phone


# --- voices ------------------------------------------------------------------------------
@dataclass(frozen=True)
class Voice:
    """One synthetic speaker: an espeak-ng English voice, a variant and three settings."""

    accent: str  # espeak-ng voice name ("en-us", "en-gb-x-rp", ...)
    variant: str  # espeak-ng variant file in voices/!v ("m3", "f2", "Andy", ...)
    rate: int  # speaking rate, words per minute (espeak-ng default 175)
    pitch: int  # base pitch 0..100 (default 50)
    range: int  # pitch range 0..100 (default 50; 0 = monotone)

    def __post_init__(self) -> None:
        if not (80 <= self.rate <= 450 and 0 <= self.pitch <= 100 and 0 <= self.range <= 100):
            raise InputError(
                f"voice settings rate={self.rate}, pitch={self.pitch}, range={self.range}: "
                "expected rate 80..450 words per minute, pitch and range 0..100"
            )

    @property
    def name(self) -> str:
        return f"{self.accent}+{self.variant}-r{self.rate}-p{self.pitch}-g{self.range}"

    @property
    def espeak_name(self) -> str:
        return f"{self.accent}+{self.variant}"


# espeak-ng voice names; "en" is British English (espeak-ng lists it as en-gb).
ACCENTS = (
    "en-us", "en", "en-gb-x-rp", "en-gb-scotland", "en-gb-x-gbclan", "en-gb-x-gbcwmd",
    "en-029", "en-us-nyc",
)  # fmt: skip
# Human-sounding variants (no whisper, robot, croak or "demonic" ones). The last group is
# only used by held-out voices, so the corpus's test split has timbres no training voice has.
TRAIN_VARIANTS = (
    "m1", "m2", "m3", "m4", "m5", "m6", "m7", "m8", "f1", "f2", "f3", "f4", "adam", "Alex",
    "Andy", "antonio", "benjamin", "boris", "caleb", "david", "ed", "edward", "Gene",
    "gustave", "Jacky", "john", "Lee", "linda", "Mario", "max", "Michael", "Mike",
    "norbert", "paul", "quincy", "rob", "steph", "Annie", "belinda", "klatt2",
)  # fmt: skip
HELD_OUT_VARIANTS = ("f5", "Andrea", "Alicia", "miguel", "travis", "Storm", "klatt4", "pablo")
RATES = (140, 155, 170, 185, 200)  # words per minute
PITCHES = (30, 40, 50, 60, 70)
RANGES = (25, 45, 65, 85)
N_TRAIN_VOICES = 80
N_HELD_OUT_VOICES = 16


def _voice_table() -> tuple[tuple[Voice, ...], tuple[Voice, ...]]:
    """(train voices, held-out voices), the same on every machine (a fixed-seed draw)."""
    rng = random.Random(20240521)

    def draw(variants: tuple[str, ...], n: int) -> list[Voice]:
        voices: list[Voice] = []
        seen: set[tuple[str, int]] = set()
        i = 0
        while len(voices) < n:
            variant = variants[i % len(variants)]
            pitch = rng.choice(PITCHES)
            if (variant, pitch) in seen:  # same timbre and pitch would sound alike
                continue
            seen.add((variant, pitch))
            accent = ACCENTS[(i + i // len(variants)) % len(ACCENTS)]
            voices.append(Voice(accent, variant, rng.choice(RATES), pitch, rng.choice(RANGES)))
            i += 1
        return voices

    return tuple(draw(TRAIN_VARIANTS, N_TRAIN_VOICES)), tuple(
        draw(HELD_OUT_VARIANTS, N_HELD_OUT_VOICES)
    )


TRAIN_VOICES, HELD_OUT_VOICES = _voice_table()
VOICES: tuple[Voice, ...] = TRAIN_VOICES + HELD_OUT_VOICES  # 96 voices
VOICE_BY_NAME: dict[str, Voice] = {v.name: v for v in VOICES}
assert len(VOICE_BY_NAME) == len(VOICES)


def voice(name: str) -> Voice:
    """The voice of the table named NAME (see `Voice.name`)."""
    try:
        return VOICE_BY_NAME[name]
    except KeyError:
        raise InputError(
            f"unknown voice {name!r}; expected one of the {len(VOICES)} table voices, e.g. "
            f"{VOICES[0].name!r}"
        ) from None


# --- the synthesizer ---------------------------------------------------------------------
@dataclass(frozen=True)
class _RawPhone:
    mnemonic: str  # espeak-ng's name ("aI", "_:" for a pause)
    sample: int  # start, in samples at ESPEAK_RATE
    text_position: int  # the character the phone came from (identifies its word)


class Synthesizer:
    """The process's espeak-ng. Get it with `Synthesizer.get()`; never construct twice."""

    _instance: Synthesizer | None = None
    _lock = threading.Lock()  # guards _instance and every call into the library

    @classmethod
    def get(cls) -> Synthesizer:
        with cls._lock:
            if cls._instance is None:
                cls._instance = cls()
            return cls._instance

    def __init__(self) -> None:
        assert Synthesizer._instance is None, "one espeak-ng per process: use Synthesizer.get()"
        path = ctypes.util.find_library("espeak-ng") or "libespeak-ng.so.1"
        try:
            lib = ctypes.CDLL(path)
        except OSError as e:
            raise BackendError(
                f"cannot load {path}: install the Debian package libespeak-ng1 ({e})"
            ) from e
        lib.espeak_Initialize.restype = ctypes.c_int
        lib.espeak_Initialize.argtypes = (ctypes.c_int, ctypes.c_int, ctypes.c_char_p, ctypes.c_int)
        lib.espeak_SetVoiceByName.argtypes = (ctypes.c_char_p,)
        lib.espeak_SetParameter.argtypes = (ctypes.c_int, ctypes.c_int, ctypes.c_int)
        lib.espeak_Synth.argtypes = (
            ctypes.c_void_p, ctypes.c_size_t, ctypes.c_uint, ctypes.c_int, ctypes.c_uint,
            ctypes.c_uint, ctypes.c_void_p, ctypes.c_void_p,
        )  # fmt: skip
        lib.espeak_TextToPhonemes.restype = ctypes.c_char_p
        lib.espeak_TextToPhonemes.argtypes = (
            ctypes.POINTER(ctypes.c_char_p),
            ctypes.c_int,
            ctypes.c_int,
        )
        rate = lib.espeak_Initialize(
            AUDIO_OUTPUT_SYNCHRONOUS, 0, None, INITIALIZE_PHONEME_EVENTS | INITIALIZE_DONT_EXIT
        )
        if rate != ESPEAK_RATE:
            raise BackendError(f"espeak-ng initialised at {rate} Hz, expected {ESPEAK_RATE} Hz")
        self._lib = lib
        self._chunks: list[np.ndarray] = []
        self._phones: list[_RawPhone] = []
        self._end_sample = 0
        self._callback = _SynthCallback(self._on_synth)  # kept alive as long as self
        lib.espeak_SetSynthCallback(self._callback)
        self._voice: Voice | None = None

    def _on_synth(self, wav, n_samples, events) -> int:
        if n_samples > 0:
            self._chunks.append(np.ctypeslib.as_array(wav, (n_samples,)).copy())
        i = 0
        while (ev := events[i]).type != EVENT_LIST_TERMINATED:
            if ev.type == EVENT_PHONEME:
                self._phones.append(_RawPhone(ev.id.decode(), ev.sample, ev.text_position))
            elif ev.type == EVENT_END:
                self._end_sample = max(self._end_sample, ev.sample)
            i += 1
        return 0  # 0 = go on

    def _set_voice(self, v: Voice) -> None:
        if v == self._voice:
            return
        if self._lib.espeak_SetVoiceByName(v.espeak_name.encode()) != 0:
            raise BackendError(f"espeak-ng has no voice {v.espeak_name!r} (espeak-ng-data?)")
        for param, value in ((PARAM_RATE, v.rate), (PARAM_PITCH, v.pitch), (PARAM_RANGE, v.range)):
            self._lib.espeak_SetParameter(param, value, 0)
        self._voice = v

    def _stressed_phonemes(self, text: bytes) -> list[tuple[str, int]]:
        """The phonemes espeak-ng reads TEXT as, each with its stress (0, 1, 2)."""
        ptr = ctypes.c_char_p(text)
        out: list[tuple[str, int]] = []
        while ptr.value:
            clause = self._lib.espeak_TextToPhonemes(ctypes.byref(ptr), CHARS_UTF8, 0) or b""
            out.extend(_parse_phoneme_string(clause.decode()))
        return out

    def synthesize(self, text: str, v: Voice | str) -> Utterance:
        """TEXT spoken by voice V: 16 kHz float32 audio and its timed CMU phones."""
        if not text.strip():
            raise InputError(f"nothing to say: text {text!r} is empty")
        v = voice(v) if isinstance(v, str) else v
        with Synthesizer._lock:
            return self._synthesize(text, v)

    def _synthesize(self, text: str, v: Voice) -> Utterance:
        self._set_voice(v)
        data = text.encode()
        self._chunks, self._phones, self._end_sample = [], [], 0
        err = self._lib.espeak_Synth(
            data, len(data) + 1, 0, POS_CHARACTER, 0, CHARS_UTF8, None, None
        )
        if err != 0:
            raise BackendError(f"espeak_Synth failed with error {err} on {text!r}")
        raw_phones = self._phones
        audio22 = np.concatenate(self._chunks) if self._chunks else np.zeros(0, np.int16)
        n22 = max(len(audio22), self._end_sample)
        audio22 = np.pad(audio22, (0, n22 - len(audio22)))
        stresses = _align_stress(raw_phones, self._stressed_phonemes(data))
        audio = soxr.resample(audio22.astype(np.float32) / 32768.0, ESPEAK_RATE, SAMPLE_RATE, "HQ")
        audio = np.clip(audio, -1.0, 1.0).astype(np.float32)
        phones = _cmu_phones(raw_phones, stresses, n22, len(audio) / SAMPLE_RATE)
        return Utterance(audio, SAMPLE_RATE, phones, text, v.name)


def synthesize(text: str, v: Voice | str) -> Utterance:
    """TEXT spoken by the table voice V, with exact phone timings (the process's espeak-ng)."""
    return Synthesizer.get().synthesize(text, v)


# --- from espeak-ng's phonemes to CMU phones -------------------------------------------
_MNEMONICS_BY_LENGTH = sorted(ESPEAK_TO_CMU, key=len, reverse=True)


def _parse_phoneme_string(s: str) -> list[tuple[str, int]]:
    """espeak-ng's phoneme string ("h@l'oU w'3:ld") -> [(mnemonic, stress)]: longest match
    against the known mnemonics; a stress mark applies to the next vowel."""
    out: list[tuple[str, int]] = []
    stress, i = 0, 0
    while i < len(s):
        ch = s[i]
        if ch in _STRESS_MARKS:
            stress = _STRESS_MARKS[ch]
            i += 1
            continue
        if ch.isspace():
            i += 1
            continue
        for m in _MNEMONICS_BY_LENGTH:
            if s.startswith(m, i):
                vowel = ESPEAK_TO_CMU[m][0] in CMU_VOWELS
                out.append((m, stress if vowel else 0))
                if vowel:
                    stress = 0
                i += len(m)
                break
        else:
            i += 1  # a mark this table does not know (length, tie): it carries no phone
    return out


def _align_stress(raw: list[_RawPhone], stressed: list[tuple[str, int]]) -> list[int]:
    """Stress of each of RAW's phones, from the aligned stressed phoneme string; 0 where the
    two sequences disagree."""
    a = [p.mnemonic for p in raw]
    b = [m for m, _ in stressed]
    out = [0] * len(raw)
    matcher = difflib.SequenceMatcher(a=a, b=b, autojunk=False)
    for block in matcher.get_matching_blocks():
        for k in range(block.size):
            out[block.a + k] = stressed[block.b + k][1]
    return out


def _cmu_phones(
    raw: list[_RawPhone], stresses: list[int], n22: int, duration: float
) -> tuple[Phone, ...]:
    """Timed CMU phones covering [0, duration]: pauses and gaps become SIL, zero-length
    phones are dropped, two-phone mnemonics are split, glides merge into the phone before."""
    scale = 1.0 / ESPEAK_RATE
    segs: list[list] = []  # [phone, start, end, stress, word_start]
    last_word = None
    for k, p in enumerate(raw):
        end_sample = raw[k + 1].sample if k + 1 < len(raw) else n22
        start, end = p.sample * scale, min(end_sample, n22) * scale
        if end <= start:
            continue
        if p.mnemonic.startswith("_"):
            segs.append([SIL, start, end, 0, False])
            continue
        try:
            cmu = ESPEAK_TO_CMU[p.mnemonic]
        except KeyError:
            raise BackendError(
                f"espeak-ng phoneme {p.mnemonic!r} has no CMU mapping in ESPEAK_TO_CMU"
            ) from None
        if cmu == ("",):
            if segs:
                segs[-1][2] = end
            continue
        word_start = p.text_position != last_word
        last_word = p.text_position
        if len(cmu) == 1:
            segs.append(
                [cmu[0], start, end, stresses[k] if cmu[0] in CMU_VOWELS else 0, word_start]
            )
        else:
            mid = end - (end - start) * _SECOND_SHARE
            s0 = stresses[k] if cmu[0] in CMU_VOWELS else 0
            segs.append([cmu[0], start, mid, s0, word_start])
            segs.append([cmu[1], mid, end, 0, False])
    # SIL before the first phone and after the last; neighbouring SILs merged
    if not segs:
        return (Phone(SIL, 0.0, duration),)
    if segs[0][1] > 0:
        segs.insert(0, [SIL, 0.0, segs[0][1], 0, False])
    if segs[-1][2] < duration:
        segs.append([SIL, segs[-1][2], duration, 0, False])
    merged: list[list] = []
    for s in segs:
        if merged and s[0] == SIL and merged[-1][0] == SIL:
            merged[-1][2] = s[2]
        else:
            merged.append(s)
    while merged[-1][1] >= duration:  # resampling rounds the length by under one sample
        merged.pop()
    merged[-1][2] = duration
    return tuple(Phone(ph, float(a), float(b), int(st), bool(ws)) for ph, a, b, st, ws in merged)
