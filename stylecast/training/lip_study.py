"""Lip closures of StyleTalk checkpoints side by side: the numbers and the figure of
docs/training.md's paired runs.

    python -m stylecast.training.lip_study --corpus data/corpus6h --split val --limit 100 \\
        runs/a/generator/last runs/b/generator/last [--figure out.png --clip 3]

For each checkpoint (or the truth): share of p/b/m closed (the eval's rule), M-LVD, share of
all frames closed, and the median over p/b/m of the smallest lip gap within each; the gaze
(share of clips with the eyes held aside, mean eyeLook* error); the style (the eval's
emotion accuracy: a classifier fitted on the truth of the other half of these clips names
the generated clip's emotion); the head (jerk, head speed ~ loudness); how much the codes
select experts in the dynamic FFNs (expert_mix); with --sync RUN, the mean P_sync of every
system's mouths by RUN's lip-sync D. Every clip gets the style code of another clip of its
style (evaluate.reference_indices).
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


# A clip "holds the gaze aside" when one eyeLook* weight averages above this over the clip
# (the truth: 1% of val clips; gaze shifts are brief, fixations move).
GAZE_ASIDE_MEAN = 0.5


@dataclass(frozen=True)
class FaceSummary:
    """One system's gaze, style and head numbers over a set of utterances."""

    gaze_aside: float  # share of clips with an eyeLook* weight averaging > GAZE_ASIDE_MEAN
    eye_look_error: float  # mean |error| of the 8 eyeLook* weights
    emotion_acc: float  # the eval's emotion accuracy, all features (expression and pose)
    emotion_acc_expr: float  # the same on expression features only
    pose_jerk: float  # mean |second difference| of the head angles, rad/frame^2
    energy_corr: float  # mean over clips of corr(head speed, loudness)


def face_summary(exprs: list[np.ndarray], poses: list[np.ndarray], utts: list) -> FaceSummary:
    """exprs (T, 52), poses (T, 6) per utterance (EvalUtterances, with truth and labels)."""
    from stylecast.engine.face import ARKIT_NAMES
    from stylecast.training.evaluate import EXPR_FEATURES, style_accuracy

    eyes = [i for i, n in enumerate(ARKIT_NAMES) if n.startswith("eyeLook")]
    aside = [e[:, eyes].mean(0).max() > GAZE_ASIDE_MEAN for e in exprs]
    pairs = list(zip(exprs, utts, strict=True))
    eye_err = [np.abs(e[:, eyes] - u.expr[:, eyes]).mean() for e, u in pairs]
    feats = np.stack([M.motion_features(e, p) for e, p in zip(exprs, poses, strict=True)])
    true_feats = np.stack([M.motion_features(u.expr, u.pose) for u in utts])
    labels = np.array([u.emotion for u in utts])
    ids = np.array([u.index for u in utts])

    def accuracy(cols) -> float:
        return style_accuracy(feats[:, cols], labels, ids, true_feats[:, cols], labels, ids)

    speed_r = [M.energy_correlation(p, u.prosody[:, 0]) for p, u in zip(poses, utts, strict=True)]
    return FaceSummary(
        gaze_aside=float(np.mean(aside)),
        eye_look_error=float(np.mean(eye_err)),
        emotion_acc=accuracy(slice(None)),
        emotion_acc_expr=accuracy(EXPR_FEATURES),
        pose_jerk=float(np.mean([M.pose_jerk(p) for p in poses])),
        energy_corr=float(np.nanmean(speed_r)),
    )


def generate_all(model_dir: str | Path, utts: list) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """A StyleTalk checkpoint's (expressions, poses) for every utterance, styled by a
    reference clip."""
    exprs, poses, _ = generate_with_mix(model_dir, utts)
    return exprs, poses


def generate_with_mix(model_dir: str | Path, utts: list):
    """generate_all's (expressions, poses) and the expert mix of the model's dynamic FFNs
    over the references' codes (expert_mix)."""
    import torch

    from stylecast.models.checkpoint import load_model
    from stylecast.training.evaluate import StyleTalkSystem, reference_indices

    system = StyleTalkSystem(load_model(Path(model_dir))[0])
    refs, _ = reference_indices(utts)
    codes = [system.code(utts[r].motion) for r in refs]
    out = [system.generate(u, c, 0) for u, c in zip(utts, codes, strict=True)]
    mix = expert_mix(system.model, torch.from_numpy(np.stack(codes)))
    return [e for e, _ in out], [p for _, p in out], mix


def expert_mix(model, codes) -> dict[str, float]:
    """How much the style code selects experts in the dynamic FFNs: over the codes (N, D),
    the mean largest mixing weight (1/K: uniform), its std across codes, and the mean
    entropy of the weights as a share of log K (1: uniform), pooled over every layer of
    both decoders."""
    import torch

    top, spread, entropy = [], [], []
    with torch.no_grad():
        for decoder in (model.lower, model.upper):
            for layer in decoder.layers:
                pi = layer.ffn_in.mixing_weights(codes)  # (N, K)
                top.append(pi.max(-1).values.mean())
                spread.append(pi.max(-1).values.std())
                h = -(pi * pi.clamp(min=1e-12).log()).sum(-1) / np.log(pi.shape[-1])
                entropy.append(h.mean())
    return {
        "expert_top": float(np.mean(top)),
        "expert_top_std": float(np.mean(spread)),
        "expert_entropy": float(np.mean(entropy)),
    }


def sync_scores(sync_run: str | Path, exprs: list[np.ndarray], utts: list) -> float:
    """Mean P_sync of the mouths against their audio by a run's lip-sync D (the eval's
    `sync_confidence`); meaningful with a contrastive sync D (docs/training.md)."""
    from stylecast.training.evaluate import load_sync_discriminator, sync_confidence

    disc = load_sync_discriminator(sync_run)
    return float(
        np.nanmean([sync_confidence(*disc, e, u) for e, u in zip(exprs, utts, strict=True)])
    )


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


def plot_faces(frames: dict[str, np.ndarray], title: str, path: str | Path) -> None:
    """One rendered frame per label, side by side (the gaze figure)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(frames), figsize=(2.4 * len(frames), 2.8))
    for ax, (label, image) in zip(np.atleast_1d(axes), frames.items(), strict=True):
        ax.imshow(image)
        ax.set_title(label, fontsize=8)
        ax.axis("off")
    fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def render_faces(exprs: dict[str, np.ndarray], size: int = 256) -> dict[str, np.ndarray]:
    """label -> expr (52,) rendered on the default avatar without head pose."""
    from stylecast.engine.avatar import load_avatar
    from stylecast.engine.render import Renderer

    with Renderer(load_avatar("default"), size) as renderer:
        return {k: renderer.render(e, np.zeros(6, np.float32)).copy() for k, e in exprs.items()}


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("models", nargs="+", help="StyleTalk checkpoint folders; LABEL=DIR names one")
    p.add_argument("--corpus", required=True)
    p.add_argument("--split", default="val", choices=("val", "test"))
    p.add_argument("--limit", type=int, default=100, help="first N utterances of the split")
    p.add_argument("--every", type=int, default=1, help="every N-th utterance of the split")
    p.add_argument("--figure", help="PNG of the lip gap on one utterance")
    p.add_argument("--clip", type=int, default=3, help="which utterance the figure shows")
    p.add_argument("--faces", help="PNG of one frame of --clip rendered for each system")
    p.add_argument("--frame", type=int, default=40, help="which frame --faces shows")
    p.add_argument("--sync", help="StyleTalk run whose lip-sync D scores every system")
    args = p.parse_args(argv)

    import torch

    from stylecast.engine.avatar import load_avatar
    from stylecast.training.evaluate import load_split

    torch.set_num_threads(1)
    rig = load_avatar("default").rig
    utts = load_split(args.corpus, args.split, limit=args.limit, every=args.every)
    truths, phones = [u.expr for u in utts], [u.phones for u in utts]

    def report(name: str, exprs: list, poses: list, extra: dict | None = None) -> None:
        lips = asdict(lip_summary(exprs, truths, phones, rig))
        face = asdict(face_summary(exprs, poses, utts))
        if args.sync:
            lips["sync"] = sync_scores(args.sync, exprs, utts)
        print(json.dumps({"system": name, **lips, **face, **(extra or {})}), flush=True)

    report("truth", truths, [u.pose for u in utts])
    curves = {"truth": truths[args.clip]}
    for item in args.models:
        label, _, folder = item.rpartition("=")
        exprs, poses, mix = generate_with_mix(folder, utts)
        curves[label or folder] = exprs[args.clip]
        report(label or folder, exprs, poses, mix)
    if args.figure:
        plot_gaps(utts[args.clip], dict(list(curves.items())[1:]), rig, args.figure)
    if args.faces:
        faces = render_faces({k: e[min(args.frame, len(e) - 1)] for k, e in curves.items()})
        title = f"val utterance {utts[args.clip].index}, frame {args.frame}, no head pose"
        plot_faces(faces, title, args.faces)


if __name__ == "__main__":
    main()
