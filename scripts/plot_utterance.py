"""Plot one performed utterance: waveform, phones, jaw and lips, blinks and brows, head pose.

    python scripts/plot_utterance.py [--style 3] [--seed 7] [--out docs/performer_utterance.png]

Speech comes from espeak-ng (training/tts.py). Bilabials (p, b, m) are shaded: the lip
opening must drop to 0 there; in pauses the mouth must rest closed.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np

from stylecast.engine.face import FPS, INDEX
from stylecast.training import tts
from stylecast.training.performer import perform
from stylecast.training.styles import style, style_id_of
from stylecast.training.timeline import Phone, Utterance
from stylecast.training.visemes import BILABIALS, LABIODENTALS, lip_opening

SENTENCE = "Bob bought a map of Boston. Five people moved, maybe, but we stayed home."


def with_pauses(utt: Utterance, lead_s: float = 0.6, tail_s: float = 0.8) -> Utterance:
    """The utterance with silence added before and after, as a corpus clip would have."""
    sr = utt.sample_rate
    audio = np.concatenate(
        [np.zeros(int(lead_s * sr), np.float32), utt.audio, np.zeros(int(tail_s * sr), np.float32)]
    )
    phones = tuple(
        Phone(p.phone, p.start + lead_s, p.end + lead_s, p.stress, p.word_start) for p in utt.phones
    )
    return Utterance(audio, sr, phones, utt.text, utt.voice)


def plot(utt: Utterance, style_id: int, seed: int, out: Path) -> None:
    st = style(style_id)
    m = perform(utt, st, seed)
    t = (np.arange(utt.n_frames) + 0.5) / FPS
    ratios = [1.2, 0.6, 1.6, 1.0, 1.0, 1.4]
    fig, axes = plt.subplots(6, 1, figsize=(13, 12), sharex=True, height_ratios=ratios)
    ax = axes[0]
    ta = np.arange(len(utt.audio)) / utt.sample_rate
    ax.plot(ta, utt.audio, lw=0.4, color="0.3")
    ax.set_ylabel("waveform")
    ax.set_title(
        f'"{utt.text}"  —  style {st.style_id}: performer {st.performer_id}, {st.emotion}, '
        f"intensity {st.intensity}  (voice {utt.voice}, seed {seed})",
        fontsize=9,
    )
    ax = axes[1]
    for p in utt.phones:
        colour = (
            "tab:red" if p.phone in BILABIALS else "tab:green" if p.phone in LABIODENTALS else None
        )
        if colour:
            for a in axes[:4]:
                a.axvspan(p.start, p.end, color=colour, alpha=0.15, lw=0)
        if p.phone != "SIL":
            ax.text(0.5 * (p.start + p.end), 0.5 + 0.25 * (p.stress == 1), p.phone,
                    ha="center", va="center", fontsize=7)  # fmt: skip
        ax.axvline(p.start, color="0.85", lw=0.5)
    ax.set_yticks([])
    ax.set_ylabel("phones")
    ax = axes[2]
    mouth = ("jawOpen", "mouthClose", "mouthPucker", "mouthRollLower")
    colours = ("tab:blue", "tab:orange", "tab:purple", "tab:green")
    for name, colour in zip(mouth, colours, strict=True):
        ax.plot(t, m.expr[:, INDEX[name]], color=colour, label=name, lw=1.2)
    ax.plot(t, lip_opening(m.expr), "k--", lw=1.0, label="lip opening (estimate)")
    ax.set_ylabel("mouth")
    ax.legend(fontsize=7, ncol=5, loc="upper right")
    ax = axes[3]
    ax.plot(t, m.expr[:, INDEX["eyeBlinkLeft"]], label="eyeBlinkLeft")
    ax.plot(t, m.expr[:, INDEX["browInnerUp"]], label="browInnerUp")
    ax.plot(t, m.expr[:, INDEX["browOuterUpLeft"]], label="browOuterUpLeft")
    ax.plot(t, m.expr[:, INDEX["browDownLeft"]], label="browDownLeft")
    for s, e in m.blinks:
        ax.axvspan(s, e, color="0.8", alpha=0.5, lw=0)
    ax.set_ylabel("eyes, brows")
    ax.legend(fontsize=7, ncol=4, loc="upper right")
    ax = axes[4]
    for name in ("eyeLookOutLeft", "eyeLookInLeft", "eyeLookUpLeft", "eyeLookDownLeft",
                 "mouthSmileLeft", "eyeSquintLeft"):  # fmt: skip
        ax.plot(t, m.expr[:, INDEX[name]], label=name, lw=1)
    ax.set_ylabel("gaze, smile")
    ax.legend(fontsize=7, ncol=6, loc="upper right")
    ax = axes[5]
    for k, name in enumerate(("pitch", "yaw", "roll")):
        ax.plot(t, np.degrees(m.pose[:, k]), label=f"{name} (deg)")
    ax2 = ax.twinx()
    for k, name in enumerate(("tx", "ty", "tz")):
        ax2.plot(t, m.pose[:, 3 + k], ls=":", label=f"{name} (IOD)")
    ax.set_ylabel("head rotation, degrees")
    ax2.set_ylabel("translation, IOD")
    ax.legend(fontsize=7, loc="upper left")
    ax2.legend(fontsize=7, loc="upper right")
    ax.set_xlabel("seconds")
    fig.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=90)
    print(f"wrote {out}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--style", type=int, default=style_id_of(5, "happy", 2), help="style id")
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--voice", default=tts.VOICES[0].name)
    ap.add_argument("--text", default=SENTENCE)
    ap.add_argument("--out", type=Path, default=Path("docs/performer_utterance.png"))
    args = ap.parse_args()
    utt = with_pauses(tts.synthesize(args.text, tts.voice(args.voice)))
    plot(utt, args.style, args.seed, args.out)


if __name__ == "__main__":
    main()
