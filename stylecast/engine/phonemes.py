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
