"""Measurements behind docs/training.md's SAAS sections that need no training.

    python -m stylecast.training.saas_study head runs/saas-20h-v4/pose/last \\
        --corpus data/corpus20h --limit 80
    python -m stylecast.training.saas_study style runs/saas-20h-v4/pose/last \\
        --corpus data/corpus20h --limit 150 --every 3
    python -m stylecast.training.saas_study head-terms --corpus data/corpus20h --limit 80

head: why the head does not follow the loudness. The truth's head speed ~ loudness
correlation by lag; the same r of the truth's own pose sent through the model's pose
codebook and through its low-pass; what the pose predictor's audio input carries (ridge
probes, the first half of the clips fitted, the second half scored); the predictor's
teacher-forced cross-entropy of the true next codes with the clip's audio, silence,
another clip's audio, and no past codes.

head-terms: where the truth's correlation comes from. The split's first utterances are
performed again (performer.perform with the corpus's seed) with terms of training/head.py
switched off, and each variant's head speed ~ loudness r is measured, as it is and after the
SAAS pose low-pass.

style: which path of the expression model carries the style. The codes' spread by emotion
(Fisher ratio, a classifier on the codes), then the emotion accuracy of the generated
expression when the decoder's code input, HyperStyle or the style LSTM's initial state is
fed the pool's mean code instead of the reference's, and with the decoder's code scaled
about the mean.

Both print JSON; every clip is driven by another clip's code (evaluate.reference_indices).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from unittest import mock

import numpy as np
import torch
import torch.nn.functional as F

from stylecast.engine.errors import InputError
from stylecast.models.checkpoint import load_model
from stylecast.models.sampling import smooth_pose
from stylecast.training import head, performer, prosody, styles
from stylecast.training import metrics as M
from stylecast.training.corpus import SAMPLE_RATE, CorpusReader
from stylecast.training.evaluate import (
    EXPR_FEATURES,
    SAASSystem,
    load_eval_set,
    reference_indices,
    style_accuracy,
)

LOUDNESS_FLOOR_DB = -60.0
STYLE_ARMS = {  # which paths get the reference's code (r) or the pool's mean code (m):
    "all paths the reference": "rrr",  # decoder input, HyperStyle, style LSTM initial state
    "all paths the mean": "mmm",
    "decoder input the mean": "mrr",
    "HyperStyle the mean": "rmr",
    "style LSTM initial state the mean": "rrm",
    "decoder input only the reference": "rmm",
}


HEAD_VARIANTS = {  # head.py terms kept (True) or switched off
    "all terms": {},
    "without the nods": {"nods": False},
    "without the speech jitter": {"jitter": False},
    "without nods and jitter": {"nods": False, "jitter": False},
    "without the pitch lift": {"pitch_lift": False},
    "no speech-coupled term": {"nods": False, "jitter": False, "pitch_lift": False,
                               "speaking": False},
}  # fmt: skip


def ridge_r(x: np.ndarray, y: np.ndarray, n_fit: int, alpha: float = 10.0) -> float:
    """Pearson r on rows n_fit.. of a ridge regression of y on x fitted on rows ..n_fit
    (standardised columns, unpenalised intercept)."""
    mu, sd = x[:n_fit].mean(0), x[:n_fit].std(0) + 1e-6
    a = np.c_[(x - mu) / sd, np.ones(len(x))]
    penalty = alpha * np.eye(a.shape[1])
    penalty[-1, -1] = 0.0
    w = np.linalg.solve(a[:n_fit].T @ a[:n_fit] + penalty, a[:n_fit].T @ y[:n_fit])
    return float(np.corrcoef(a[n_fit:] @ w, y[n_fit:])[0, 1])


def low_pass(pose: np.ndarray, alpha: float, poles: int) -> np.ndarray:
    """The model's causal pose low-pass, started from the first frame (not from rest, so no
    start-up ramp)."""
    t = torch.from_numpy(np.asarray(pose, np.float32))[None]
    return (smooth_pose(t - t[:, :1], alpha, poles) + t[:, :1])[0].numpy()


def _mean(values) -> float:
    v = np.asarray(values, np.float64)
    v = v[np.isfinite(v)]
    return round(float(v.mean()), 4) if len(v) else float("nan")


@torch.no_grad()
def head_study(model, utts: list, codes: list[np.ndarray], max_lag: int = 8) -> dict:
    """utts: EvalUtterances (at least 4), codes: each one's style code (D,)."""
    p = model.cfg.pose
    fpt = p.frames_per_token
    pad = torch.full_like(torch.from_numpy(utts[0].mel[:1])[None], model.cfg.content.mel_pad_value)
    silence = model.audio_encoder(pad)[0, 0]  # z_a of a silent frame (d_audio,)
    z_all = [model.audio_encoder(torch.from_numpy(u.mel)[None])[0] for u in utts]
    half = len(utts) // 2
    r = {"truth": [], "truth_codebook": [], "truth_low_pass": []}
    lags, auto = [], []
    frame_z, frame_loud, chunk_z, chunk_loud, chunk_speed = [], [], [], [], []
    chunk_prev_loud, chunk_code_speed = [], []
    ce = {"audio": [], "silence": [], "another_clip_audio": [], "no_past_codes": []}
    n_frame_fit = n_chunk_fit = 0
    for i, u in enumerate(utts):
        if i == half:
            n_frame_fit, n_chunk_fit = len(frame_loud), len(chunk_loud)
        frames = u.frames // fpt * fpt
        if frames < 2 * fpt:
            continue
        loud = np.maximum(u.prosody[:frames, 0], LOUDNESS_FLOOR_DB)
        truth = u.pose[:frames].astype(np.float32)
        vq = model.pose_vq(torch.from_numpy(truth)[None])
        r["truth"].append(M.energy_correlation(truth, loud))
        r["truth_codebook"].append(M.energy_correlation(vq.recon[0].numpy(), loud))
        smooth = low_pass(truth, p.smoothing, p.smoothing_poles)
        r["truth_low_pass"].append(M.energy_correlation(smooth, loud))
        speed = M.head_speed(truth)
        code_speed = M.head_speed(vq.recon[0].numpy())
        lags.append(M.lagged_correlations(speed, loud, max_lag))
        auto.append(M.lagged_correlations(loud, loud, max_lag)[max_lag + 1 :])
        z = z_all[i][:frames]
        frame_z.append(z.numpy())
        frame_loud.append(loud)
        for k in range(1, frames // fpt):  # chunk k is chosen from the audio of chunk k - 1
            chunk_z.append(z[(k - 1) * fpt : k * fpt].numpy().ravel())
            chunk_loud.append(loud[k * fpt : (k + 1) * fpt].mean())
            chunk_speed.append(speed[k * fpt : (k + 1) * fpt].mean())
            chunk_prev_loud.append(loud[(k - 1) * fpt : k * fpt].mean())
            chunk_code_speed.append(code_speed[k * fpt + 1 : (k + 1) * fpt].mean())  # within
        style = torch.from_numpy(codes[i])[None]
        other = z_all[(i + half) % len(utts)][:frames]
        if len(other) < frames:
            other = torch.cat([other, silence.expand(frames - len(other), -1)])
        tokens = vq.indices
        for name, audio in (("audio", z), ("silence", silence.expand(frames, -1)),
                            ("another_clip_audio", other)):  # fmt: skip
            logits = model.pose_logits(audio[None], style, tokens)[0]
            ce[name].append(F.cross_entropy(logits, tokens[0]).item())
        history, audio = model.pose_contexts(z[None], tokens)
        k = tokens.shape[1]
        logits = model.pose_predictor(
            torch.full_like(history[0], p.start_token), audio[0], style.expand(k, -1)
        )
        ce["no_past_codes"].append(F.cross_entropy(logits, tokens[0]).item())
    x_frames, y_frames = np.concatenate(frame_z), np.concatenate(frame_loud)
    chunk_z, chunk_loud, chunk_speed = map(np.asarray, (chunk_z, chunk_loud, chunk_speed))

    def r_of(a, b) -> float:
        return round(float(np.corrcoef(a, b)[0, 1]), 3)

    return {
        "head_speed_loudness_r": {k: _mean(v) for k, v in r.items()},
        "truth_speed_loudness_r_by_lag": dict(
            zip(
                range(-max_lag, max_lag + 1), np.round(np.nanmean(lags, 0), 3).tolist(), strict=True
            )
        ),
        "loudness_autocorrelation_by_lag": dict(
            zip(range(1, max_lag + 1), np.round(np.nanmean(auto, 0), 3).tolist(), strict=True)
        ),
        "chunk_true_head_speed_vs_its_loudness_r": r_of(chunk_speed, chunk_loud),
        "chunk_true_head_speed_vs_previous_chunk_loudness_r": r_of(chunk_speed, chunk_prev_loud),
        "chunk_true_head_speed_vs_its_code_decoded_r": r_of(chunk_speed, chunk_code_speed),
        "probe_frame_audio_to_its_loudness_r": round(ridge_r(x_frames, y_frames, n_frame_fit), 3),
        "probe_previous_chunk_audio_to_chunk_loudness_r": round(
            ridge_r(chunk_z, chunk_loud, n_chunk_fit), 3
        ),
        "probe_previous_chunk_audio_to_chunk_true_head_speed_r": round(
            ridge_r(chunk_z, chunk_speed, n_chunk_fit), 3
        ),
        "teacher_forced_ce_nats": {k: _mean(v) for k, v in ce.items()},
        "uniform_ce_nats": round(float(np.log(p.codebook_size)), 3),
    }


@torch.no_grad()
def head_figure(model, u, code: np.ndarray, path: Path, seed: int = 0) -> None:
    """One utterance over time: the loudness, and the head speed of the truth, of the truth
    through the pose codebook, of the truth through the low-pass, and of the model (sampled)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    p = model.cfg.pose
    frames = u.frames // p.frames_per_token * p.frames_per_token
    truth = u.pose[:frames].astype(np.float32)
    through_codes = model.pose_vq(torch.from_numpy(truth)[None]).recon[0].numpy()
    _, generated = SAASSystem(model, codebook=model.cfg.style.codebook).generate(u, code, seed)
    t = np.arange(frames) / 30.0
    deg = 180.0 / np.pi * 30.0  # rad/frame -> deg/s
    fig, (top, bottom) = plt.subplots(2, 1, figsize=(10, 4.6), sharex=True,
                                      gridspec_kw={"height_ratios": [1, 2]})  # fmt: skip
    top.plot(t, np.maximum(u.prosody[:frames, 0], LOUDNESS_FLOOR_DB), color="0.3", lw=1)
    top.set_ylabel("loudness dBFS")
    for label, pose, style in (
        ("truth", truth, dict(color="k", lw=1.4)),
        ("truth through the pose codebook", through_codes, dict(color="tab:orange", lw=1)),
        ("truth through the low-pass", low_pass(truth, p.smoothing, p.smoothing_poles),
         dict(color="tab:blue", lw=1)),
        ("model (sampled)", generated[:frames], dict(color="tab:red", lw=1, ls="--")),
    ):  # fmt: skip
        r = M.energy_correlation(pose, u.prosody[:frames, 0])
        bottom.plot(t, M.head_speed(pose) * deg, label=f"{label} (r {r:+.2f})", **style)
    bottom.set_ylabel("head speed deg/s")
    bottom.set_xlabel("seconds")
    bottom.legend(fontsize=8, loc="upper right")
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


def perform_head_variant(
    utt, style, seed: int, pitch: np.ndarray, *, nods: bool = True, jitter: bool = True,
    pitch_lift: bool = True, speaking: bool = True,
) -> np.ndarray:  # fmt: skip
    """performer.perform's head pose (T, 6) with terms of head.head_pose switched off: the
    nods on stressed syllables (their pulses zeroed), the speech jitter (head_pose's second
    smooth_noise draw zeroed), the pitch lift (pitch_z = 0 in the head only) and the
    speaking gate of sway, jitter, pitch lift and breath (speaking = 0 in the head only).
    Every random draw is still made, so the other terms keep their values, except that a
    nod's emphasis reads pitch_z: without the pitch lift other nods may be drawn."""
    draws = [0]
    noise, pulse, head_pose = head.smooth_noise, head.pulse, performer.head_pose

    def smooth_noise(*args, **kwargs):
        out = noise(*args, **kwargs)
        draws[0] += 1
        return out * 0.0 if (not jitter and draws[0] == 2) else out

    def nod_pulse(*args, **kwargs):
        return pulse(*args, **kwargs) * (1.0 if nods else 0.0)

    def pose_of(rng, n, style, speaking_, loud_z, pitch_z, stressed, pauses):
        draws[0] = 0
        speaking_ = speaking_ if speaking else np.zeros_like(speaking_)
        pitch_z = pitch_z if pitch_lift else np.zeros_like(pitch_z)
        return head_pose(rng, n, style, speaking_, loud_z, pitch_z, stressed, pauses)

    with (
        mock.patch.object(head, "smooth_noise", smooth_noise),
        mock.patch.object(head, "pulse", nod_pulse),
        mock.patch.object(performer, "head_pose", pose_of),
    ):
        return performer.perform(utt, style, seed, pitch=pitch).pose


def head_terms_study(root: Path, split: str = "val", limit: int = 80) -> dict:
    """The variants of HEAD_VARIANTS on the split's first `limit` utterances."""
    reader = CorpusReader(root, split)
    seeds: dict[int, int] = {}
    for shard in reader.shards:
        if len(seeds) >= limit:
            break
        with np.load(Path(root) / f"{shard['name']}.npz", allow_pickle=False) as z:
            seeds.update(zip(z["index"].tolist(), z["seed"].tolist(), strict=True))
    r = {name: {"as performed": [], "low-passed 0.7 x 2": [], "low-passed 0.5 x 1": []}
         for name in HEAD_VARIANTS}  # fmt: skip
    differs, stored = [], []
    for k, u in enumerate(reader):
        if k >= limit:
            break
        n = u.n_frames
        loud = prosody.frame_prosody(u.audio, n)[:, 0]  # the eval's loudness
        stored.append(M.energy_correlation(u.pose, loud))
        pitch = prosody.pitch_hz(u.audio, SAMPLE_RATE, n)
        for name, switches in HEAD_VARIANTS.items():
            pose = perform_head_variant(
                u.utterance(), styles.style(u.style_id), seeds[u.index], pitch, **switches
            )
            if name == "all terms":  # the stored audio is 16-bit: near, not equal
                differs.append(float(np.abs(pose[:, :3] - u.pose[:, :3]).max()))
            row = r[name]
            row["as performed"].append(M.energy_correlation(pose, loud))
            row["low-passed 0.7 x 2"].append(M.energy_correlation(low_pass(pose, 0.7, 2), loud))
            row["low-passed 0.5 x 1"].append(M.energy_correlation(low_pass(pose, 0.5, 1), loud))
    return {
        "head_speed_loudness_r": {
            name: {k: _mean(v) for k, v in row.items()} for name, row in r.items()
        },
        "stored_truth_r": _mean(stored),
        "max_angle_difference_from_the_stored_truth_rad": round(max(differs), 4),
    }


@torch.no_grad()
def expression_by_path(
    model, features: torch.Tensor, decoder_code, hyper_code, initial_code
) -> np.ndarray:
    """SAAS expression (T, n_expr) of one clip with each style path fed its own code (1, D):
    the decoder's concatenated input, HyperStyle, the style LSTM's initial state. With the
    same code everywhere it is model(features, code)."""
    e = model.expression
    z = model.audio_encoder(features)
    state = e.zero_state(1)
    h0, c0 = e.initial_style_state(initial_code)
    canonical, _ = e.canonical(z, (state.can_h, state.can_c))
    stylised, _, _ = e.style_lstm(z, h0, c0, e.hyper(e.read_style(hyper_code)))
    latent = canonical + stylised
    if e.audio_skip is not None and e.skip_gain != 0.0:
        latent = latent + e.skip_gain * e.audio_skip(z)
    cond = e.read_style(decoder_code)[:, None, :].expand(-1, z.shape[1], -1)
    out = e.decoder(torch.cat([latent, cond], dim=-1))
    return (torch.sigmoid(out) if e.activation == "sigmoid" else out)[0].numpy()


def fisher_ratio(codes: np.ndarray, labels: np.ndarray) -> float:
    """Between-class over within-class scatter (traces) of the codes."""
    mu = codes.mean(0)
    between = within = 0.0
    for c in np.unique(labels):
        x = codes[labels == c]
        between += len(x) * float(((x.mean(0) - mu) ** 2).sum())
        within += float(((x - x.mean(0)) ** 2).sum())
    return between / max(within, 1e-12)


def style_study(model, utts: list, pool: list, refs: list[int], scales=(2.0, 3.0)) -> dict:
    system = SAASSystem(model, codebook=model.cfg.style.codebook)
    codes = np.stack([system.code(c.motion) for c in pool])
    mean = torch.from_numpy(codes.mean(0))[None]
    ids = np.array([u.index for u in utts])
    emotion = np.array([u.emotion for u in utts])
    pool_ids = np.array([c.index for c in pool])
    pool_emotion = np.array([c.emotion for c in pool])
    pool_feats = np.stack([M.motion_features(c.expr, c.pose) for c in pool])[:, EXPR_FEATURES]
    where = {c.index: j for j, c in enumerate(pool)}
    own = codes[[where[i] for i in ids]]
    out = {
        "code_norm": round(float(np.linalg.norm(codes, axis=1).mean()), 2),
        "code_emotion_fisher_ratio": round(fisher_ratio(codes, pool_emotion), 3),
        "code_emotion_accuracy": round(
            style_accuracy(own, emotion, ids, codes, pool_emotion, pool_ids), 3
        ),
    }

    def accuracy(exprs: list[np.ndarray]) -> float:
        feats = np.stack(
            [M.motion_features(e, np.zeros((len(e), 6)))[EXPR_FEATURES] for e in exprs]
        )
        return round(style_accuracy(feats, emotion, ids, pool_feats, pool_emotion, pool_ids), 3)

    reference = None
    for name, arm in STYLE_ARMS.items():
        exprs = []
        for i, u in enumerate(utts):
            ref = torch.from_numpy(codes[refs[i]])[None]
            paths = [ref if a == "r" else mean for a in arm]
            exprs.append(expression_by_path(model, torch.from_numpy(u.mel)[None], *paths))
        reference = reference if reference is not None else exprs
        change = np.mean([np.abs(a - b).mean() for a, b in zip(exprs, reference, strict=True)])
        out[name] = {
            "emotion_accuracy": accuracy(exprs),
            "mean_abs_change": round(float(change), 4),
        }
    for k in scales:
        exprs = []
        for i, u in enumerate(utts):
            ref = torch.from_numpy(codes[refs[i]])[None]
            scaled = mean + k * (ref - mean)
            exprs.append(expression_by_path(model, torch.from_numpy(u.mel)[None], scaled, ref, ref))
        out[f"decoder code at mean + {k:g} x (code - mean)"] = {"emotion_accuracy": accuracy(exprs)}
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("study", choices=("head", "style", "head-terms"))
    p.add_argument("checkpoint", type=Path, nargs="?", help="a SAAS checkpoint (pose trained)")
    p.add_argument("--corpus", type=Path, required=True)
    p.add_argument("--split", default="val")
    p.add_argument("--limit", type=int, default=80)
    p.add_argument("--every", type=int, default=1)
    p.add_argument("--figure", type=Path, default=None, help="head: plot one utterance here")
    p.add_argument("--figure-utterance", type=int, default=0, help="its position in the set")
    args = p.parse_args(argv)
    torch.set_num_threads(1)
    if args.study == "head-terms":
        result = head_terms_study(args.corpus, args.split, args.limit)
        print(json.dumps(result, indent=1))
        return 0
    if args.checkpoint is None:
        raise InputError(f"the {args.study} study needs a SAAS checkpoint folder")
    model = load_model(args.checkpoint)[0].eval()
    utts, pool = load_eval_set(args.corpus, args.split, args.limit, args.every)
    refs, _ = reference_indices(utts, pool)
    if args.study == "head":
        system = SAASSystem(model, codebook=model.cfg.style.codebook)
        codes = [system.code(pool[j].motion) for j in refs]
        result = head_study(model, utts, codes)
        if args.figure is not None:
            k = args.figure_utterance
            head_figure(model, utts[k], codes[k], args.figure, seed=1000 * utts[k].index)
    else:
        result = style_study(model, utts, pool, refs)
    print(json.dumps({"checkpoint": str(args.checkpoint), **result}, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
