"""The phoneme inventory the models read: StyleTalk's CMU set, one id per video frame.

39 CMU phones (stress digits removed) plus SIL (silence) and NSN (noise) = 41 ids.
"""

from __future__ import annotations

CMU_PHONES: tuple[str, ...] = (
    "AA", "AE", "AH", "AO", "AW", "AY", "B", "CH", "D", "DH", "EH", "ER", "EY", "F", "G",
    "HH", "IH", "IY", "JH", "K", "L", "M", "N", "NG", "OW", "OY", "P", "R", "S", "SH", "T",
    "TH", "UH", "UW", "V", "W", "Y", "Z", "ZH",
)  # fmt: skip
SIL = "SIL"
NSN = "NSN"
PHONEMES: tuple[str, ...] = (SIL, *CMU_PHONES, NSN)  # id 0 = SIL, ids 1..39 phones, 40 = NSN
N_PHONEMES = len(PHONEMES)  # 41
assert N_PHONEMES == 41
PHONEME_ID: dict[str, int] = {p: i for i, p in enumerate(PHONEMES)}
SIL_ID = PHONEME_ID[SIL]
NSN_ID = PHONEME_ID[NSN]


def phoneme_id(phone: str) -> int:
    """Id of a CMU phone; stress digits (AH0, AH1) are dropped. Raises KeyError if unknown."""
    return PHONEME_ID[phone.rstrip("012").upper()]


# Visemes: phones that look alike on the lips share a class. The 15 classes of the MPEG-4 /
# Oculus lip-sync set, used to score recognizers by what a viewer can see: mistaking P for B
# costs nothing on screen, mistaking P for AA does.
VISEMES: tuple[str, ...] = (
    "sil",  # silence and noise: mouth at rest
    "PP",  # p b m: lips pressed together
    "FF",  # f v: lower lip to upper teeth
    "TH",  # th dh: tongue between the teeth
    "DD",  # t d: tongue tip on the ridge, jaw almost closed
    "kk",  # k g ng hh: back of the tongue, lips neutral
    "CH",  # ch jh sh zh: lips pushed forward
    "SS",  # s z: teeth close, lips spread
    "nn",  # n l: tongue tip up, jaw slightly open
    "RR",  # r er: lips slightly rounded
    "aa",  # aa ae ah ay aw: open jaw
    "E",  # eh ey: mid-open, spread
    "I",  # ih iy y: close, spread
    "O",  # ao ow oy: rounded, open
    "U",  # uh uw w: rounded, close
)
N_VISEMES = len(VISEMES)  # 15
VISEME_ID: dict[str, int] = {v: i for i, v in enumerate(VISEMES)}
_VISEME_OF_PHONE: dict[str, str] = {
    SIL: "sil", NSN: "sil",
    "P": "PP", "B": "PP", "M": "PP",
    "F": "FF", "V": "FF",
    "TH": "TH", "DH": "TH",
    "T": "DD", "D": "DD",
    "K": "kk", "G": "kk", "NG": "kk", "HH": "kk",
    "CH": "CH", "JH": "CH", "SH": "CH", "ZH": "CH",
    "S": "SS", "Z": "SS",
    "N": "nn", "L": "nn",
    "R": "RR", "ER": "RR",
    "AA": "aa", "AE": "aa", "AH": "aa", "AY": "aa", "AW": "aa",
    "EH": "E", "EY": "E",
    "IH": "I", "IY": "I", "Y": "I",
    "AO": "O", "OW": "O", "OY": "O",
    "UH": "U", "UW": "U", "W": "U",
}  # fmt: skip
assert set(_VISEME_OF_PHONE) == set(PHONEMES)
# (N_PHONEMES,) viseme id of each phoneme id: VISEME_OF_ID[phoneme_id] -> viseme id
VISEME_OF_ID: tuple[int, ...] = tuple(VISEME_ID[_VISEME_OF_PHONE[p]] for p in PHONEMES)


def viseme_id(phoneme: int) -> int:
    """Viseme class id (index into VISEMES) of a phoneme id. Raises IndexError if unknown."""
    return VISEME_OF_ID[phoneme]
