"""Lip closures of StyleTalk checkpoints side by side: the numbers and the figure of
docs/training.md's paired runs.

    python -m stylecast.training.lip_study --corpus data/corpus6h --split val --limit 100 \\
        runs/a/generator/last runs/b/generator/last [--figure out.png --clip 3]

For each checkpoint (or the truth): share of p/b/m closed (the eval's rule), M-LVD, share of
all frames closed, and the median over p/b/m of the smallest lip gap within each. Every
clip gets the style code of another clip of its style (evaluate.reference_indices).
"""

from __future__ import annotations

import argparse
import json
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from stylecast.training import metrics as M


@dataclass(frozen=True)
class LipSummary:
    """One system's lip numbers over a set of utterances."""

    bilabials: int  # p/b/m phones scored
    closed: float  # share of them with the lips closed at least once (within +-1 frame)
    m_lvd_mm: float  # mean mouth-vertex L2 to the truth, mm
    frames_closed: float  # share of all frames with the lips closed
    median_min_gap_mm: float  # median over p/b/m of the smallest inner-lip gap, mm


def lip_summary(exprs: list[np.ndarray], truths: list[np.ndarray], phones: list, rig) -> LipSummary:
    """exprs, truths: per utterance (T, 52); phones: per utterance the timed true phones."""
    closed_below = M.closed_threshold(rig)
    closed = total = 0
    gaps, frames_closed, lvd = [], [], []
    for e, truth, ph in zip(exprs, truths, phones, strict=True):
        opening = M.lip_opening(e, rig)
        spans = M.bilabial_frames(ph, len(e))
        c, t = M.closure_rate(opening, spans, closed_below)
        closed, total = closed + c, total + t
        gaps += [opening[s].min() for s in spans]
        frames_closed.append(opening < closed_below)
        lvd.append(M.mouth_lvd(e, truth, rig))
    return LipSummary(
        bilabials=total,
        closed=closed / max(total, 1),
        m_lvd_mm=float(np.mean(lvd)) * M.MM_PER_UNIT,
        frames_closed=float(np.concatenate(frames_closed).mean()),
        median_min_gap_mm=float(np.median(gaps)) * M.MM_PER_UNIT if gaps else float("nan"),
    )


def generate_all(model_dir: str | Path, utts: list) -> list[np.ndarray]:
    """A StyleTalk checkpoint's expression for every utterance, styled by a reference clip."""
    from stylecast.models.checkpoint import load_model
    from stylecast.training.evaluate import StyleTalkSystem, reference_indices

    system = StyleTalkSystem(load_model(Path(model_dir))[0])
    refs, _ = reference_indices(utts)
    pairs = zip(utts, refs, strict=True)
    return [system.generate(u, system.code(utts[r].motion), 0)[0] for u, r in pairs]


def plot_gaps(utt, curves: dict[str, np.ndarray], rig, path: str | Path) -> None:
    """Inner-lip gap over time of the truth and each labelled expression; p/b/m shaded."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(10, 3.2))
    t = np.arange(utt.frames) / M.FPS
    for s in M.bilabial_frames(utt.phones, utt.frames):
        ax.axvspan(s[0] / M.FPS, (s[-1] + 1) / M.FPS, color="0.85")
    ax.plot(t, M.lip_opening(utt.expr, rig) * M.MM_PER_UNIT, "k", lw=2, label="truth")
    for label, e in curves.items():
        ax.plot(t, M.lip_opening(e, rig) * M.MM_PER_UNIT, label=label)
    ax.axhline(M.closed_threshold(rig) * M.MM_PER_UNIT, color="r", ls="--", lw=1,
               label="closed below")  # fmt: skip
    ax.set_xlabel("s")
    ax.set_ylabel("inner-lip gap, mm")
    ax.set_xlim(0, t[-1])
    ax.set_title(f"utterance {utt.index}: grey = true p/b/m (±1 frame)")
    ax.legend(fontsize=8, ncol=5, loc="upper right")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("models", nargs="+", help="StyleTalk checkpoint folders; LABEL=DIR names one")
    p.add_argument("--corpus", required=True)
    p.add_argument("--split", default="val", choices=("val", "test"))
    p.add_argument("--limit", type=int, default=100, help="first N utterances of the split")
    p.add_argument("--figure", help="PNG of the lip gap on one utterance")
    p.add_argument("--clip", type=int, default=3, help="which utterance the figure shows")
    args = p.parse_args(argv)

    import torch

    from stylecast.engine.avatar import load_avatar
    from stylecast.training.evaluate import load_split

    torch.set_num_threads(1)
    rig = load_avatar("default").rig
    utts = load_split(args.corpus, args.split, limit=args.limit)
    truths, phones = [u.expr for u in utts], [u.phones for u in utts]
    print(json.dumps({"system": "truth", **asdict(lip_summary(truths, truths, phones, rig))}))
    curves = {}
    for item in args.models:
        label, _, folder = item.rpartition("=")
        exprs = generate_all(folder, utts)
        curves[label or folder] = exprs[args.clip]
        print(json.dumps({"system": label or folder,
                          **asdict(lip_summary(exprs, truths, phones, rig))}))  # fmt: skip
    if args.figure:
        plot_gaps(utts[args.clip], curves, rig, args.figure)


if __name__ == "__main__":
    main()
