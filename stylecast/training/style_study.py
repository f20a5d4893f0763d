"""Why the performer is not recognised in generated motion: measurements on an evaluation's
saved arrays (`stylecast eval --out DIR` writes DIR/style_arrays.npz).

    python -m stylecast.training.style_study runs/eval-20h/ship --corpus data/corpus20h \
        --card docs/model-card.md

All classifiers are the eval's own (`evaluate.style_accuracy`: standardised logistic
regression on `metrics.motion_features`, 2 folds, fitted on the ground truth of every split
clip outside the scored fold) unless said otherwise. Five questions:

1. *What makes performers separable in the truth?* Accuracy on the truth with one feature
   kind (clip mean, std, mean |speed|) or one channel group alone, and with it left out.
2. *Is the classifier fair to generated motion?* The truth low-passed (a smoother model),
   and the truth with one channel group replaced by a system's generated group.
3. *Does the generated motion carry the performer at all?* A classifier fitted on the
   system's own generated clips (the other fold), so no truth-vs-model shift can hide it.
4. *Does the style code carry it?* A linear probe on each split clip's own code.
5. *Which statistics carry it?* Per feature, the spread of the performers' means over the
   spread within a performer (emotion removed): on the truth and on each system's output.
"""

from __future__ import annotations

import argparse
import json
import logging
from pathlib import Path

import numpy as np

from stylecast.engine.errors import InputError
from stylecast.engine.face import ARKIT_NAMES, LOWER_FACE_MASK
from stylecast.training import metrics as M
from stylecast.training.evaluate import style_accuracy, write_card_section

log = logging.getLogger(__name__)

ARRAYS = "style_arrays.npz"
CHANNELS = (*ARKIT_NAMES, "pitch", "yaw", "roll", "tx", "ty", "tz")  # motion_features' order
N_CHANNELS = len(CHANNELS)  # 58 = 52 expression weights + 6 pose values
STATS = ("mean", "std", "speed")  # motion_features' three blocks of N_CHANNELS
SMOOTHING = (1.0, 2.0, 3.0)  # Gaussian sigmas, frames, of the low-passed truth
LABELS = ("performer", "emotion")


def channel_groups() -> dict[str, np.ndarray]:
    """Channel indices (into CHANNELS) of the face's parts, by name."""

    def named(*stems: str) -> np.ndarray:
        return np.array([i for i, n in enumerate(ARKIT_NAMES) if n.startswith(stems)])

    groups = {
        "mouth (lower face)": np.flatnonzero(LOWER_FACE_MASK),
        "eyelids (blink)": named("eyeBlink"),
        "gaze": named("eyeLook"),
        "brows, squint, cheeks, nose": named(
            "eyeSquint", "eyeWide", "brow", "cheekSquint", "noseSneer"
        ),
        "head pose": np.arange(len(ARKIT_NAMES), N_CHANNELS),
    }
    assert sorted(np.concatenate(list(groups.values()))) == list(range(N_CHANNELS))
    return groups


def columns(channels: np.ndarray, stats: tuple[str, ...] = STATS) -> np.ndarray:
    """Feature columns of these channels' statistics."""
    return np.concatenate([STATS.index(s) * N_CHANNELS + np.asarray(channels) for s in stats])


def fisher_ratio(features: np.ndarray, performer: np.ndarray, emotion: np.ndarray) -> np.ndarray:
    """(N, F) -> (F,): variance of the performers' mean over the mean variance within a
    performer, after removing each emotion's mean (how much a feature tells performers
    apart, the emotion aside)."""
    x = np.asarray(features, np.float64).copy()
    for e in np.unique(emotion):
        x[emotion == e] -= x[emotion == e].mean(0)
    people = np.unique(performer)
    means = np.stack([x[performer == p].mean(0) for p in people])
    within = np.mean([x[performer == p].var(0) for p in people], axis=0)
    return means.var(0) / np.maximum(within, 1e-12)


def smoothed_features(expr: list, pose: list, sigma: float) -> np.ndarray:
    """motion_features of clips low-passed by a Gaussian of `sigma` frames."""
    from scipy.ndimage import gaussian_filter1d

    return np.stack([M.motion_features(gaussian_filter1d(e, sigma, axis=0, mode="nearest"),
                                       gaussian_filter1d(p, sigma, axis=0, mode="nearest"))
                     for e, p in zip(expr, pose, strict=True)])  # fmt: skip


def _load(eval_dir: Path) -> tuple[dict, dict]:
    path = eval_dir / ARRAYS
    try:
        with np.load(path, allow_pickle=False) as z:
            arrays = {k: z[k] for k in z.files}
    except (OSError, ValueError) as e:
        raise InputError(f"{path}: not an eval's style arrays ({e}); run stylecast eval") from e
    results = json.loads((eval_dir / "results.json").read_text())
    return arrays, results


def study(arrays: dict, truth_motion: tuple[list, list] | None = None) -> dict:
    """Every measurement of the module docstring -> a JSON-able dict. truth_motion: the
    evaluated utterances' (expr list, pose list), in arrays["utterances"] order, for the
    low-passed truth (skipped when None)."""
    pool_x, pool_ids = arrays["pool_features"], arrays["pool"]
    pool_y = {k: arrays[f"pool_{k}"] for k in (*LABELS, "performer_emotion", "style")}
    ids = arrays["utterances"]
    where = {int(i): k for k, i in enumerate(pool_ids)}
    if any(int(i) not in where for i in ids):
        raise InputError("style arrays: evaluated utterances missing from the pool")
    at = np.array([where[int(i)] for i in ids])
    y = {k: v[at] for k, v in pool_y.items()}
    groups = channel_groups()
    everything = np.arange(len(STATS) * N_CHANNELS)

    def on_truth(cols: np.ndarray, key: str, x: np.ndarray | None = None) -> float:
        """The eval's classifier (fitted on the pool's truth) on features x of the
        evaluated clips (default: their truth)."""
        x = pool_x[at] if x is None else x
        return style_accuracy(x[:, cols], y[key], ids, pool_x[:, cols], pool_y[key], pool_ids)

    def own_kind(x: np.ndarray, key: str) -> float:
        """Fitted on the other fold of the same kind of motion."""
        return style_accuracy(x, y[key], ids, x, y[key], ids)

    out: dict = {"clips": len(ids), "pool": len(pool_ids), "chance": {}, "truth": {}}
    for key in (*LABELS, "performer_emotion", "style"):
        out["chance"][key] = 1.0 / len(np.unique(pool_y[key]))
        out["truth"][key] = on_truth(everything, key)
    intensity = pool_y["style"] % 3  # style id = (performer * 8 + emotion) * 3 + level - 1
    out["truth"]["intensity"] = style_accuracy(pool_x[at], intensity[at], ids, pool_x,
                                               intensity, pool_ids)  # fmt: skip
    ablation: dict = {}
    for key in LABELS:
        rows = {}
        for s in STATS:
            cols = columns(np.arange(N_CHANNELS), (s,))
            rows[f"{s} only"] = on_truth(cols, key)
            rows[f"without {s}"] = on_truth(np.setdiff1d(everything, cols), key)
        for g, ch in groups.items():
            rows[f"{g} only"] = on_truth(columns(ch), key)
        for g in ("mouth (lower face)", "head pose"):
            cols = columns(groups[g])
            rows[f"without {g}"] = on_truth(np.setdiff1d(everything, cols), key)
        rows["head pose means only"] = on_truth(columns(groups["head pose"], ("mean",)), key)
        ablation[key] = rows
    out["truth_ablation"] = ablation

    if truth_motion is not None:
        out["truth_smoothed"] = {}
        for sigma in SMOOTHING:
            x = smoothed_features(*truth_motion, sigma)
            out["truth_smoothed"][str(sigma)] = {k: on_truth(everything, k, x) for k in LABELS}
    out["truth_own_kind"] = {k: own_kind(pool_x[at], k) for k in LABELS}

    fisher_truth = fisher_ratio(pool_x[at], y["performer"], y["emotion"])
    top = np.argsort(-fisher_truth)[:8]
    names = [f"{STATS[c // N_CHANNELS]} {CHANNELS[c % N_CHANNELS]}" for c in top]
    out["fisher"] = {"features": names, "truth": fisher_truth[top].tolist(),
                     "truth_median": float(np.median(fisher_truth)), "systems": {}}  # fmt: skip
    out["systems"] = {}
    for k, name in enumerate(arrays["names"].tolist()):
        x = arrays[f"system{k}_features"]
        if not np.isfinite(x).all() or np.ptp(x, axis=0).max() == 0:
            continue  # nothing to classify (a face that never moves)
        row: dict = {"own_kind": {key: own_kind(x, key) for key in LABELS}}
        row["eval"] = {key: on_truth(everything, key, x) for key in LABELS}
        row["swap"] = {}  # the truth with this group from the system
        for g, ch in groups.items():
            a = pool_x[at].copy()
            a[:, columns(ch)] = x[:, columns(ch)]
            row["swap"][g] = {key: on_truth(everything, key, a) for key in LABELS}
        mouth = columns(groups["mouth (lower face)"])
        b = x.copy()
        b[:, mouth] = pool_x[at][:, mouth]
        row["true_mouth"] = {key: on_truth(everything, key, b) for key in LABELS}
        codes = arrays.get(f"system{k}_codes")
        if codes is not None:
            row["code_probe"] = {key: style_accuracy(codes, pool_y[key], pool_ids, codes,
                                                     pool_y[key], pool_ids)
                                 for key in (*LABELS, "performer_emotion")}  # fmt: skip
        fisher = fisher_ratio(x, y["performer"], y["emotion"])
        out["fisher"]["systems"][name] = {"top": fisher[top].tolist(),
                                          "median": float(np.median(fisher))}  # fmt: skip
        out["systems"][name] = row
    return out


def _pct(v: float) -> str:
    return f"{v:.0%}"


def markdown(s: dict) -> str:
    """The study as markdown tables (for the model card)."""
    c, t = s["chance"], s["truth"]
    lines = [
        f"On the truth of the {s['clips']} evaluated clips (classifier fitted on the other "
        f"fold's share of all {s['pool']}): performer {_pct(t['performer'])} (chance "
        f"{_pct(c['performer'])}), emotion {_pct(t['emotion'])}, performer × emotion "
        f"{_pct(t['performer_emotion'])} (chance {c['performer_emotion']:.1%}), exact style "
        f"{_pct(t['style'])} (chance {c['style']:.1%}), intensity {_pct(t['intensity'])} "
        "(chance 33%).",
        "",
        "| truth, features used | performer | emotion |",
        "|---|---|---|",
    ]
    ab = s["truth_ablation"]
    for k in ab["performer"]:
        lines.append(f"| {k} | {_pct(ab['performer'][k])} | {_pct(ab['emotion'][k])} |")
    if "truth_smoothed" in s:
        for sigma, v in s["truth_smoothed"].items():
            lines.append(f"| all, truth low-passed (Gaussian σ {sigma} frames) | "
                         f"{_pct(v['performer'])} | {_pct(v['emotion'])} |")  # fmt: skip
    names = list(s["systems"])
    lines += ["", "| system | " + " | ".join(names) + " |", "|---|" + "---|" * len(names)]

    def row(label: str, get) -> None:
        cells = []
        for n in names:
            try:
                cells.append(get(s["systems"][n]))
            except KeyError:
                cells.append("no style encoder")
        lines.append(f"| {label} | " + " | ".join(cells) + " |")

    row(
        "performer / emotion, the eval's classifier (truth-fitted)",
        lambda r: f"{_pct(r['eval']['performer'])} / {_pct(r['eval']['emotion'])}",
    )
    row(
        "performer / emotion, fitted on the system's own output",
        lambda r: f"{_pct(r['own_kind']['performer'])} / {_pct(r['own_kind']['emotion'])}",
    )
    for g in channel_groups():
        row(
            f"truth with the generated {g}: performer / emotion",
            lambda r, g=g: "{} / {}".format(*(_pct(r["swap"][g][k]) for k in LABELS)),
        )
    row(
        "generated with the true mouth: performer / emotion",
        lambda r: "{} / {}".format(*(_pct(r["true_mouth"][k]) for k in LABELS)),
    )
    row("style code, linear probe: performer / emotion / performer × emotion",
        lambda r: " / ".join(_pct(r["code_probe"][k])
                             for k in ("performer", "emotion", "performer_emotion")))  # fmt: skip
    own = s["truth_own_kind"]
    lines += ["", f"(The truth fitted on its own other fold: performer {_pct(own['performer'])}, "
              f"emotion {_pct(own['emotion'])}.)", ""]  # fmt: skip
    f = s["fisher"]
    lines += ["| feature (top for performers on the truth) | truth | " + " | ".join(names) + " |",
              "|---|---|" + "---|" * len(names)]  # fmt: skip
    for i, feat in enumerate(f["features"]):
        cells = [f"{f['systems'][n]['top'][i]:.2f}" for n in names]
        lines.append(f"| {feat} | {f['truth'][i]:.2f} | " + " | ".join(cells) + " |")
    cells = [f"{f['systems'][n]['median']:.2f}" for n in names]
    lines.append(f"| median of all 174 | {f['truth_median']:.2f} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m stylecast.training.style_study",
                                description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)  # fmt: skip
    p.add_argument("eval_dir", type=Path, help="a `stylecast eval --out` folder")
    p.add_argument("--corpus", help="the eval's corpus: adds the low-passed truth rows")
    p.add_argument("--split", default="test")
    p.add_argument("--card", type=Path, help="write the tables into this file's "
                   "<!-- style-study:begin/end --> section")  # fmt: skip
    args = p.parse_args(argv)
    import torch  # the classifiers' optimiser: small problems, one thread is fastest

    torch.set_num_threads(1)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    arrays, _ = _load(args.eval_dir)
    motion = None
    if args.corpus:
        from stylecast.training.corpus import CorpusReader

        want = {int(i): k for k, i in enumerate(arrays["utterances"])}
        expr, pose = [None] * len(want), [None] * len(want)
        for u in CorpusReader(args.corpus, args.split):
            if u.index in want:
                expr[want[u.index]], pose[want[u.index]] = u.expr, u.pose
        if any(e is None for e in expr):
            raise InputError(f"{args.corpus} {args.split}: not the eval's utterances")
        motion = (expr, pose)
    result = study(arrays, motion)
    (args.eval_dir / "style_study.json").write_text(json.dumps(result, indent=1) + "\n")
    text = markdown(result)
    print(text)
    if args.card:
        write_card_section(args.card, text, tag="style-study")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
