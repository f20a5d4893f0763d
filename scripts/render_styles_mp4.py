"""Render two styles speaking the same sentence side by side, with the sound, to an MP4.

    python scripts/render_styles_mp4.py [--left 0] [--right 0] [--out docs/performer_styles.mp4]

Speech from espeak-ng (training/tts.py), motion from the procedural performer, frames from
the default avatar through the renderer (engine/render.py). `--left/--right` are style ids;
by default one performer, happy (strong) on the left and sad (strong) on the right.
`--frames DIR` also writes a strip of frames as a PNG for a quick look.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import cv2
import numpy as np

from stylecast.engine.avatar import load_avatar
from stylecast.engine.render import Renderer
from stylecast.engine.video import VideoWriter
from stylecast.training import tts
from stylecast.training.performer import perform
from stylecast.training.styles import style, style_id_of
from stylecast.training.timeline import Phone, Utterance

SENTENCE = "Bob bought a map of Boston. Five people moved, maybe, but we stayed home."
SIZE = 256  # pixels per face


def with_pauses(utt: Utterance, lead_s: float = 0.5, tail_s: float = 0.7) -> Utterance:
    """The utterance with silence added before and after."""
    sr = utt.sample_rate
    pad = lambda s: np.zeros(int(s * sr), np.float32)  # noqa: E731
    phones = tuple(
        Phone(p.phone, p.start + lead_s, p.end + lead_s, p.stress, p.word_start) for p in utt.phones
    )
    audio = np.concatenate([pad(lead_s), utt.audio, pad(tail_s)])
    return Utterance(audio, sr, phones, utt.text, utt.voice)


def label(frame: np.ndarray, text: str) -> np.ndarray:
    out = frame.copy()
    cv2.putText(out, text, (6, SIZE - 8), cv2.FONT_HERSHEY_SIMPLEX, 0.42, (0, 0, 0), 3)
    cv2.putText(out, text, (6, SIZE - 8), cv2.FONT_HERSHEY_SIMPLEX, 0.42, (255, 255, 255), 1)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--left", type=int, default=style_id_of(5, "happy", 3))
    ap.add_argument("--right", type=int, default=style_id_of(5, "sad", 3))
    ap.add_argument("--seed", type=int, default=3)
    ap.add_argument("--voice", default=tts.VOICES[0].name)
    ap.add_argument("--text", default=SENTENCE)
    ap.add_argument("--out", type=Path, default=Path("docs/performer_styles.mp4"))
    ap.add_argument("--frames", type=Path, default=None, help="also write a PNG strip here")
    args = ap.parse_args()

    utt = with_pauses(tts.synthesize(args.text, tts.voice(args.voice)))
    renderer = Renderer(load_avatar("default"), size=SIZE)
    sides = []
    for sid in (args.left, args.right):
        st = style(sid)
        motion = perform(utt, st, args.seed)
        frames = renderer.render_batch(motion.expr, motion.pose)  # (T, SIZE, SIZE, 3)
        text = f"performer {st.performer_id}, {st.emotion} {st.intensity}"
        sides.append([label(f, text) for f in frames])
    renderer.close()
    video = [np.concatenate(pair, axis=1) for pair in zip(*sides, strict=True)]
    args.out.parent.mkdir(parents=True, exist_ok=True)
    with VideoWriter(
        args.out, 2 * SIZE, SIZE, audio=utt.audio, audio_rate=utt.sample_rate, crf=26
    ) as writer:
        for frame in video:
            writer.write(frame)
    print(f"wrote {args.out} ({args.out.stat().st_size / 1e6:.2f} MB, {len(video)} frames)")
    if args.frames:
        args.frames.mkdir(parents=True, exist_ok=True)
        picks = np.linspace(10, len(video) - 10, 6).astype(int)
        strip = np.concatenate([video[i] for i in picks], axis=0)
        path = args.frames / "performer_styles_frames.png"
        cv2.imwrite(str(path), cv2.cvtColor(strip, cv2.COLOR_RGB2BGR))
        print(f"wrote {path} (frames {list(picks)})")


if __name__ == "__main__":
    main()
