"""A contact sheet of one performer in the 8 emotions (weak and strong), through the renderer.

    python scripts/plot_emotions.py [--performer 5] [--out docs/performer_emotions.png]

Each cell is the frame of the stressed vowel nearest the middle of the sentence (the mouth
is moving); the last column is the strong emotion at rest, in the pause before speaking.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import cv2
import numpy as np

from stylecast.engine.avatar import load_avatar
from stylecast.engine.face import FPS
from stylecast.engine.render import Renderer
from stylecast.training import tts
from stylecast.training.performer import perform
from stylecast.training.styles import EMOTIONS, INTENSITIES, style_for
from stylecast.training.timeline import Phone, Utterance
from stylecast.training.visemes import VOWELS

SENTENCE = "I never thought we would see them again."
CELL = 160  # pixels


def with_lead(utt: Utterance, lead_s: float = 0.8) -> Utterance:
    sr = utt.sample_rate
    phones = tuple(Phone(p.phone, p.start + lead_s, p.end + lead_s, p.stress) for p in utt.phones)
    audio = np.concatenate([np.zeros(int(lead_s * sr), np.float32), utt.audio])
    return Utterance(audio, sr, phones, utt.text, utt.voice)


def caption(img: np.ndarray, text: str) -> np.ndarray:
    out = img.copy()
    for colour, width in (((0, 0, 0), 3), ((255, 255, 255), 1)):
        cv2.putText(out, text, (5, CELL - 7), cv2.FONT_HERSHEY_SIMPLEX, 0.42, colour, width)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--performer", type=int, default=5)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--out", type=Path, default=Path("docs/performer_emotions.png"))
    args = ap.parse_args()

    utt = with_lead(tts.synthesize(SENTENCE, tts.VOICES[0]))
    stressed = [p for p in utt.phones if p.phone in VOWELS and p.stress == 1]
    middle = 0.5 * (0.8 + utt.duration)
    vowel = min(stressed, key=lambda p: abs(p.start - middle))
    speak_frame = int((vowel.start + vowel.end) / 2 * FPS)
    rest_frame = int(0.6 * FPS)
    renderer = Renderer(load_avatar("default"), size=CELL)
    rows = []
    for emotion in EMOTIONS:
        cells = []
        for level in (INTENSITIES[0], INTENSITIES[-1]):
            st = style_for(args.performer, emotion, level)
            m = perform(utt, st, args.seed)
            img = renderer.render(m.expr[speak_frame], m.pose[speak_frame])
            cells.append(caption(img, f"{emotion} {level}"))
        img = renderer.render(m.expr[rest_frame], m.pose[rest_frame])
        cells.append(caption(img, f"{emotion} 3, at rest"))
        rows.append(np.concatenate(cells, axis=1))
    renderer.close()
    sheet = np.concatenate(rows, axis=0)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(
        str(args.out), cv2.cvtColor(sheet, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_PNG_COMPRESSION, 9]
    )
    print(f"wrote {args.out} ({args.out.stat().st_size / 1e6:.2f} MB)")


if __name__ == "__main__":
    main()
