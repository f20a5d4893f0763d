"""`stylecast eval`: every motion system on a corpus split (by default the test split:
unseen performers 40-47 and unseen voices), side by side.

Systems: the ground truth itself and a face that does not move (the training clips' mean
expression and pose) as reference rows, the rule-based viseme baseline driven the way the
engine drives it (recognized phonemes + prosody from the audio, neutral style), StyleTalk,
SAAS, two SAAS knock-outs of a trained model (HyperStyle offsets set to 0; style code pooled
from the extractor's tokens before the codebook), retrained ablations (expression only) and
any further checkpoints (e.g. the other front end). Each learned model gets its style code
from a *reference clip*: another utterance of the same style (performer x emotion x
intensity) where the split has one, else of the same performer and emotion; never the
utterance being generated.

Metrics (training/metrics.py): M-LVD, F-LVD, lip sync without a learned judge (correlation
of the lip gap with loudness, and the lag at which it peaks), how much the lips move
relative to the truth, the lip-sync discriminator's confidence, bilabial closure rate;
emotion and performer accuracy of classifiers trained on the split's ground-truth motion
(2-fold: trained on one half's ground truth, applied to the other half's generated
motion); style-code retrieval; pose diversity across samples, jerk, and correlation of
head speed with loudness; and a style-code interpolation figure.
"""

from __future__ import annotations

import copy
import json
import logging
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from stylecast.engine.audio import mel_windows
from stylecast.engine.baseline import BaselineMotion
from stylecast.engine.errors import InputError
from stylecast.engine.face import ARKIT_NAMES, INDEX
from stylecast.engine.motion_backend import MotionInputs
from stylecast.models.checkpoint import WEIGHTS, load_model, load_state_strict, read_weights
from stylecast.models.config import DiscriminatorConfig, SAASConfig, StyleTalkConfig
from stylecast.models.losses import LipSyncDiscriminator, sync_probability
from stylecast.models.sampling import generate_saas, pose_token_count
from stylecast.training import metrics as M
from stylecast.training.corpus import CorpusReader
from stylecast.training.prosody import frame_prosody

log = logging.getLogger(__name__)

SYNC_STRIDE = 5  # frames between the starts of scored lip-sync windows
# Columns of metrics.motion_features that describe expression (not pose): 3 blocks of 58.
EXPR_FEATURES = np.concatenate([b * 58 + np.arange(52) for b in range(3)])
# The clip means of the 52 expression weights alone: what a classifier reads when neither
# how smooth the motion is nor the head may count (style_study.py: a jerky generated head
# or smoothed lips move the std/speed features off the truth's range).
EXPR_MEANS = np.arange(52)


@dataclass
class EvalUtterance:
    """One corpus utterance with the inputs every system needs."""

    index: int
    mel: np.ndarray  # (T, 16, 80) log-mel windows (as the live front end computes them)
    phonemes: np.ndarray  # (T,) int64 recognized ids (what the engine gets live)
    prosody: np.ndarray  # (T, 3) loudness dBFS, voicing, pitch (engine/prosody.py)
    phones: tuple  # true timed phones (for the bilabial spans)
    expr: np.ndarray  # (T, 52) ground truth
    pose: np.ndarray  # (T, 6) ground truth
    style_id: int
    performer: int
    emotion: str
    intensity: int

    @property
    def frames(self) -> int:
        return len(self.expr)

    @property
    def motion(self) -> np.ndarray:
        return np.concatenate([self.expr, self.pose], axis=1).astype(np.float32)


@dataclass
class StyleClip:
    """A split utterance's motion and style labels only: the pool that style references,
    code retrieval and the style classifiers draw from (the whole split, even when only a
    subsample is generated)."""

    index: int
    expr: np.ndarray
    pose: np.ndarray
    style_id: int
    performer: int
    emotion: str
    intensity: int

    @property
    def motion(self) -> np.ndarray:
        return np.concatenate([self.expr, self.pose], axis=1).astype(np.float32)


def load_split(
    root: str | Path, split: str = "test", limit: int | None = None, every: int = 1
) -> list:
    """The split's utterances: every `every`-th in corpus order (an even subsample that
    keeps every performer and emotion), at most `limit` of them."""
    return load_eval_set(root, split, limit, every)[0]


def load_eval_set(
    root: str | Path, split: str = "test", limit: int | None = None, every: int = 1
) -> tuple[list[EvalUtterance], list[StyleClip]]:
    """(the utterances to generate: as load_split, the style pool: every utterance of the
    split as a StyleClip)."""
    if every < 1:
        raise InputError(f"every must be >= 1, got {every}")
    out, pool = [], []
    for k, u in enumerate(CorpusReader(root, split)):
        pool.append(StyleClip(u.index, u.expr, u.pose, u.style_id, u.performer, u.emotion,
                              u.intensity))  # fmt: skip
        if (limit is not None and len(out) >= limit) or k % every:
            continue
        n = u.n_frames
        out.append(
            EvalUtterance(
                index=u.index,
                mel=mel_windows(u.audio),
                phonemes=u.phonemes_recognized,
                prosody=frame_prosody(u.audio, n),
                phones=u.phones,
                expr=u.expr,
                pose=u.pose,
                style_id=u.style_id,
                performer=u.performer,
                emotion=u.emotion,
                intensity=u.intensity,
            )
        )
    return out, pool


def reference_indices(utts: list, pool: list | None = None) -> tuple[list[int], dict[str, int]]:
    """For each utterance, the position in `pool` (default: utts) of another clip of its
    style, else of the same performer and emotion, else of the same emotion, else any
    other, chosen deterministically from the utterance's index; and how many fell in each
    case. Never the utterance itself (its own motion is the answer)."""
    pool = utts if pool is None else pool
    tiers = (
        ("same style", lambda u, v: v.style_id == u.style_id),
        (
            "same performer+emotion",
            lambda u, v: (v.performer, v.emotion) == (u.performer, u.emotion),
        ),
        ("same emotion", lambda u, v: v.emotion == u.emotion),
        ("another clip", lambda u, v: True),
    )
    refs, kinds = [], {name: 0 for name, _ in tiers}
    for u in utts:
        for name, match in tiers:
            pick = [j for j, v in enumerate(pool) if v.index != u.index and match(u, v)]
            if pick:
                kinds[name] += 1
                refs.append(pick[(7 * u.index) % len(pick)])
                break
        else:
            raise InputError(f"style references need >= 2 utterances, got {len(pool)}")
    return refs, kinds


def _clip(motion: np.ndarray, max_frames: int) -> tuple[torch.Tensor, torch.Tensor]:
    m = torch.from_numpy(motion[:max_frames])[None]
    return m, torch.ones(m.shape[:2], dtype=torch.bool)


# ---------------------------------------------------------------- systems


def model_features(frontend: str, u: EvalUtterance) -> torch.Tensor:
    """The utterance's input for a model with this front end: (1, T) phoneme ids or
    (1, T, 16, 80) log-mel windows."""
    if frontend == "phoneme":
        return torch.from_numpy(u.phonemes.astype(np.int64))[None]
    return torch.from_numpy(u.mel)[None]


class Baseline:
    """engine/baseline.py, fed per frame exactly as a session feeds it, neutral style."""

    name = "baseline (visemes)"
    deterministic_pose = False

    def __init__(self) -> None:
        self.model = BaselineMotion()
        self.style = self.model.styles["neutral"][None]

    def code(self, motion: np.ndarray) -> None:
        return None  # fixed presets: no style encoder

    def generate(self, u: EvalUtterance, code, seed: int) -> tuple[np.ndarray, np.ndarray]:
        rng = np.random.default_rng(seed)
        state = self.model.init_state(1)
        exprs, poses = [], []
        for t in range(u.frames):
            noise = rng.random((1, self.model.noise_dim), dtype=np.float32)
            inputs = MotionInputs(u.mel[t : t + 1], u.phonemes[t : t + 1],
                                  u.prosody[t : t + 1], noise)  # fmt: skip
            out = self.model.step(inputs, self.style, state)
            state = out.state
            exprs.append(out.expr[0])
            poses.append(out.pose[0])
        return np.stack(exprs), np.stack(poses)


class MeanFace:
    """A reference that does not move: every frame is the mean expression and pose of
    training clips. What M-LVD / F-LVD give for sitting on the average mouth."""

    name = "static mean face (reference)"
    deterministic_pose = True

    def __init__(self, expr: np.ndarray, pose: np.ndarray) -> None:
        self.expr = np.asarray(expr, np.float32)
        self.pose = np.asarray(pose, np.float32)

    @classmethod
    def from_corpus(cls, root: str | Path, split: str = "train", shards: int = 12) -> MeanFace:
        """The mean over `shards` of the split's shards, evenly spaced (all frames of each)."""
        reader = CorpusReader(root, split)
        picked = reader.shards[:: max(len(reader.shards) // shards, 1)][:shards]
        total, expr, pose = 0, 0.0, 0.0
        for s in picked:
            with np.load(reader.root / f"{s['name']}.npz", allow_pickle=False) as z:
                e, p = z["expr"].astype(np.float64), z["pose"].astype(np.float64)
            expr, pose, total = expr + e.sum(0), pose + p.sum(0), total + len(e)
        if total == 0:
            raise InputError(f"{root} {split}: no frames for the mean face")
        return cls(expr / total, pose / total)

    def code(self, motion: np.ndarray) -> None:
        return None

    def generate(self, u: EvalUtterance, code, seed: int) -> tuple[np.ndarray, np.ndarray]:
        return np.repeat(self.expr[None], u.frames, 0), np.repeat(self.pose[None], u.frames, 0)


class StyleTalkSystem:
    name = "StyleTalk"
    deterministic_pose = True

    def __init__(self, model, name: str | None = None, pose: bool = True) -> None:
        self.model = model.eval()
        self.cfg: StyleTalkConfig = model.cfg
        self.name = name or self.name
        self.has_pose = pose

    @torch.no_grad()
    def code(self, motion: np.ndarray) -> np.ndarray:
        clip, valid = _clip(motion, self.cfg.max_style_frames)
        return self.model.encode_style(clip, valid)[0].numpy()

    def _features(self, u: EvalUtterance) -> torch.Tensor:
        return model_features(self.cfg.content.frontend, u)

    @torch.no_grad()
    def generate(self, u: EvalUtterance, code: np.ndarray, seed: int):
        out = self.model(self._features(u), torch.from_numpy(code)[None])
        return out.expr[0].numpy(), out.pose[0].numpy()


class SAASSystem:
    name = "SAAS"
    deterministic_pose = False

    def __init__(
        self, model, codebook: bool = True, name: str | None = None, pose: bool = True
    ) -> None:
        """pose=False: the model's pose branch is untrained (an expression-only ablation):
        its pose columns are left empty."""
        self.model = model.eval()
        self.cfg: SAASConfig = model.cfg
        self.codebook = codebook
        self.name = name or self.name
        self.has_pose = pose

    @torch.no_grad()
    def code(self, motion: np.ndarray) -> np.ndarray:
        clip, valid = _clip(motion, self.cfg.style.max_frames)
        if self.codebook:
            return self.model.extract_style(clip, valid).code[0].numpy()
        return unquantized_code(self.model.style_extractor, clip, valid)[0].numpy()

    def _features(self, u: EvalUtterance) -> torch.Tensor:
        return model_features(self.cfg.content.frontend, u)

    @torch.no_grad()
    def generate(self, u: EvalUtterance, code: np.ndarray, seed: int):
        k = pose_token_count(u.frames, self.cfg.pose.frames_per_token)
        g = torch.Generator().manual_seed(seed)
        uniform = torch.rand(1, k, generator=g)
        out = generate_saas(self.model, self._features(u), torch.from_numpy(code)[None], uniform)
        return out.expr[0].numpy(), out.pose[0].numpy()


def without_hyperstyle(model):
    """A copy of a SAAS model whose HyperStyle offsets are 0 (its B head zeroed): the style
    branch becomes a plain LSTM started from the style code."""
    m = copy.deepcopy(model)
    with torch.no_grad():
        m.expression.hyper.head_b.weight.zero_()
        m.expression.hyper.head_b.bias.zero_()
    return m


def unquantized_code(extractor, clip: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
    """StyleExtractor's code with the codebook skipped: its tokens pooled as they are."""
    s = extractor.cfg
    b, frames, _ = clip.shape
    n_win = -(-frames // s.window_frames)
    pad = n_win * s.window_frames - frames
    clip = F.pad(clip, (0, 0, 0, pad))
    valid = F.pad(valid, (0, pad), value=False)
    x = clip.reshape(b * n_win, s.window_frames, -1)
    key_pad = ~valid.reshape(b * n_win, s.window_frames)
    h = extractor.encoder(extractor.position(extractor.inp(x)), key_pad)
    tokens = extractor.down(h.transpose(1, 2)).transpose(1, 2).reshape(b, -1, s.d_model)
    token_valid = valid.reshape(b, -1, s.frames_per_token)[..., 0]
    return extractor.pool(tokens, token_valid)


def load_sync_discriminator(run_dir: str | Path) -> tuple[LipSyncDiscriminator, StyleTalkConfig]:
    """The lip-sync discriminator of a StyleTalk run (RUN/sync/last)."""
    from stylecast.models.checkpoint import read_header
    from stylecast.models.config import config_from_dict

    folder = Path(run_dir) / "sync" / "last"
    cfg = config_from_dict(read_header(folder)["config"])
    disc = LipSyncDiscriminator(DiscriminatorConfig(), cfg.content, len(cfg.motion.lower_index))
    load_state_strict(disc, read_weights(folder / WEIGHTS), str(folder))
    return disc.eval(), cfg


@torch.no_grad()
def sync_confidence(disc, cfg: StyleTalkConfig, expr: np.ndarray, u: EvalUtterance) -> float:
    """Mean P_sync = (cos + 1) / 2 over windows of sync_frames frames, every SYNC_STRIDE."""
    n = disc_frames = DiscriminatorConfig().sync_frames
    starts = np.arange(0, u.frames - n + 1, SYNC_STRIDE)
    if len(starts) == 0:
        return float("nan")
    idx = starts[:, None] + np.arange(disc_frames)
    mouth = torch.from_numpy(expr[idx][..., list(cfg.motion.lower_index)].astype(np.float32))
    if cfg.content.frontend == "phoneme":
        audio = torch.from_numpy(u.phonemes.astype(np.int64)[idx])
    else:
        audio = torch.from_numpy(u.mel[idx])
    return float(sync_probability(disc(mouth, audio)).mean())


# ---------------------------------------------------------------- style classifier


def _fit_logistic(x: np.ndarray, y: np.ndarray, n_classes: int, l2: float = 1e-2):
    """Standardised multinomial logistic regression (LBFGS): returns predict(x) -> labels."""
    mean, std = x.mean(0), x.std(0) + 1e-6
    xt = torch.from_numpy((x - mean) / std).float()
    yt = torch.from_numpy(y).long()
    w = torch.zeros(x.shape[1], n_classes, requires_grad=True)
    b = torch.zeros(n_classes, requires_grad=True)
    opt = torch.optim.LBFGS([w, b], max_iter=100, line_search_fn="strong_wolfe")

    def closure():
        opt.zero_grad()
        loss = F.cross_entropy(xt @ w + b, yt) + l2 * (w * w).sum()
        loss.backward()
        return loss

    opt.step(closure)

    def predict(z: np.ndarray) -> np.ndarray:
        with torch.no_grad():
            return (torch.from_numpy((z - mean) / std).float() @ w + b).argmax(-1).numpy()

    return predict


def style_accuracy(
    gen_feats: np.ndarray,
    labels: np.ndarray,
    ids: np.ndarray,
    pool_feats: np.ndarray,
    pool_labels: np.ndarray,
    pool_ids: np.ndarray,
) -> float:
    """2-fold over the evaluated clips (alternating within each class, so both folds hold
    every class): a classifier fitted on the ground-truth features of every pool clip
    outside the fold (ids: corpus indices) labels the fold's generated features; the
    share it gets right. The pool may be the evaluated clips themselves."""
    classes = np.unique(np.concatenate([pool_labels, labels]))
    y, pool_y = np.searchsorted(classes, labels), np.searchsorted(classes, pool_labels)
    fold = np.zeros(len(y), np.int64)
    for c in np.unique(y):
        members = np.flatnonzero(y == c)
        fold[members] = np.arange(len(members)) % 2
    hits = 0
    for f in (0, 1):
        test = fold == f
        fit = ~np.isin(pool_ids, ids[test])
        predict = _fit_logistic(pool_feats[fit], pool_y[fit], len(classes))
        hits += int((predict(gen_feats[test]) == y[test]).sum())
    return hits / len(y)


# ---------------------------------------------------------------- the run


def evaluate(
    utts: list[EvalUtterance],
    systems: list,
    rig,
    sync: tuple | None = None,
    pose_samples: int = 3,
    seed: int = 0,
    diversity_utts: int | None = None,
    pool: list | None = None,
) -> dict:
    """Every metric for every system (plus the ground truth) -> {row name: {metric: value}}.
    Pose diversity draws `pose_samples` samples of the first `diversity_utts` utterances
    (all when None); every other metric reads the first sample of every utterance.
    pool (StyleClips, default: utts): where style references come from, whose codes the
    retrieval columns search, and whose ground truth the style classifiers are fitted on."""
    started = time.perf_counter()
    pool = utts if pool is None else pool
    refs, ref_kinds = reference_indices(utts, pool)
    closed_below = M.closed_threshold(rig)
    ids = np.array([u.index for u in utts])
    pool_ids = np.array([c.index for c in pool])
    labels = {"emotion": np.array([u.emotion for u in utts]),
              "performer": np.array([u.performer for u in utts])}  # fmt: skip
    pool_labels = {"emotion": np.array([c.emotion for c in pool]),
                   "performer": np.array([c.performer for c in pool]),
                   "style": np.array([c.style_id for c in pool])}  # fmt: skip
    for lab in (labels, pool_labels):  # the style up to its intensity
        lab["performer_emotion"] = np.char.add(lab["performer"].astype(str),
                                               np.char.add(":", lab["emotion"]))  # fmt: skip
    pool_feats = np.stack([M.motion_features(c.expr, c.pose) for c in pool])
    # what style_study.py reads: features and labels of the pool, each system's generated
    # features and own codes (saved by the CLI as style_arrays.npz)
    arrays = {"utterances": ids, "pool": pool_ids, "pool_features": pool_feats}
    arrays.update({f"pool_{k}": v for k, v in pool_labels.items()})

    def accuracies(gen_feats: np.ndarray, row: dict, pose: bool = True) -> None:
        """Style classifiers on generated features: emotion and performer (all features,
        and expression only), emotion from the expression means alone, performer x
        emotion (all features)."""
        plan = [(k, s, c) for k in ("emotion", "performer")
                for s, c in (("_expr", EXPR_FEATURES), ("", slice(None)))]  # fmt: skip
        plan += [("emotion", "_means", EXPR_MEANS), ("performer_emotion", "", slice(None))]
        for key, suffix, cols in plan:
            if isinstance(cols, slice) and not pose:
                continue  # pose features of an untrained pose branch
            row[f"{key}_acc{suffix}"] = style_accuracy(
                gen_feats[:, cols], labels[key], ids, pool_feats[:, cols],
                pool_labels[key], pool_ids)  # fmt: skip

    true_movement = float(np.mean([M.lip_opening(u.expr, rig).std() for u in utts]))
    n_diverse = len(utts) if diversity_utts is None else min(diversity_utts, len(utts))
    rows: dict[str, dict] = {}

    def lipsync(name: str, exprs: list[np.ndarray]) -> dict:
        closed = total = 0
        sync_r, lags, movement = [], [], []
        for u, e in zip(utts, exprs, strict=True):
            opening = M.lip_opening(e, rig)
            c, t = M.closure_rate(opening, M.bilabial_frames(u.phones, u.frames), closed_below)
            closed, total = closed + c, total + t
            r, lag = M.lip_sync_offset(opening, u.prosody[:, 0])
            sync_r.append(r)
            lags.append(lag)
            movement.append(opening.std())
        row = {
            "lip_loudness_r": _nanmean(sync_r),
            "lip_offset": _nanmean(np.abs(lags)),
            "lip_lag_signed": _nanmean(lags),  # > 0: the lips late on average
            "lip_movement": float(np.mean(movement)) / max(true_movement, 1e-12),
            "m_lvd_mm": float(
                np.mean([M.mouth_lvd(e, u.expr, rig) for u, e in zip(utts, exprs, strict=True)])
            )
            * M.MM_PER_UNIT,
            "f_lvd_mm": float(
                np.mean([M.face_lvd(e, u.expr, rig) for u, e in zip(utts, exprs, strict=True)])
            )
            * M.MM_PER_UNIT,
            "closure": closed / max(total, 1),
            "bilabials": total,
        }
        if sync is not None:
            scores = [sync_confidence(*sync, e, u) for u, e in zip(utts, exprs, strict=True)]
            row["sync"] = float(np.nanmean(scores))
        return row

    def pose_row(poses: list[np.ndarray]) -> dict:
        return {
            "pose_jerk": float(np.mean([M.pose_jerk(p) for p in poses])),
            "energy_corr": float(
                np.nanmean(
                    [
                        M.energy_correlation(p, u.prosody[:, 0])
                        for u, p in zip(utts, poses, strict=True)
                    ]
                )
            ),
        }

    gt = lipsync("ground truth", [u.expr for u in utts])
    for k in (3, 15):  # what a mouth k frames late scores on the judge-free sync measure
        late = [M.lip_sync_offset(M.lip_opening(np.roll(u.expr, k, axis=0), rig), u.prosody[:, 0])
                for u in utts]  # fmt: skip
        gt[f"lip_loudness_r_late{k}"] = _nanmean([r for r, _ in late])
        gt[f"lip_offset_late{k}"] = _nanmean([abs(lag) for _, lag in late])
    gt.update(pose_row([u.pose for u in utts]))
    accuracies(np.stack([M.motion_features(u.expr, u.pose) for u in utts]), gt)
    if sync is not None:  # what an out-of-sync mouth scores: the ground truth 15 frames late
        shifted = [np.roll(u.expr, 15, axis=0) for u in utts]
        scores = [sync_confidence(*sync, e, u) for u, e in zip(utts, shifted, strict=True)]
        gt["sync_shifted"] = float(np.nanmean(scores))
    gt["seconds"] = time.perf_counter() - started
    rows["ground truth (reference)"] = gt

    for system in systems:
        log.info("evaluating %s on %d utterances", system.name, len(utts))
        t0 = time.perf_counter()
        own = [system.code(c.motion) for c in pool]  # each pool clip's own code (retrieval)
        codes = [own[r] for r in refs]  # the reference clip's code drives generation
        exprs, poses, diversity = [], [], []
        has_pose = getattr(system, "has_pose", True)
        n_samples = pose_samples if has_pose and not system.deterministic_pose else 1
        for i, u in enumerate(utts):
            n = n_samples if i < n_diverse else 1
            seeds = [seed * 100_003 + 97 * u.index + s for s in range(n)]
            samples = [system.generate(u, codes[i], s) for s in seeds]
            exprs.append(samples[0][0])
            poses.append(samples[0][1])
            if i < n_diverse:
                diversity.append(M.pose_diversity(np.stack([p for _, p in samples])))
        row = lipsync(system.name, exprs)
        row["has_pose"] = has_pose
        if has_pose:
            row.update(pose_row(poses))
            row["pose_diversity"] = float(np.mean(diversity))
        gen_feats = np.stack([M.motion_features(e, p) for e, p in zip(exprs, poses, strict=True)])
        accuracies(gen_feats, row, has_pose)
        k = len(rows) - 1  # the system's number in `arrays`: rows[0] is the ground truth
        arrays[f"system{k}_features"] = gen_feats
        if own[0] is not None:
            c = np.stack(own)
            arrays[f"system{k}_codes"] = c
            for key in ("style", "emotion"):
                hits, queries = M.nearest_neighbour_accuracy(c, pool_labels[key])
                row[f"retrieval_{key}"] = hits / max(queries, 1)
                row[f"retrieval_{key}_queries"] = queries
        row["seconds"] = time.perf_counter() - t0
        log.info("%s: %.0f s", system.name, row["seconds"])
        rows[system.name] = row
    arrays["names"] = np.array(list(rows)[1:])  # system k's row name is names[k]
    return {"rows": rows, "arrays": arrays, "references": ref_kinds, "utterances": len(utts),
            "frames": int(sum(u.frames for u in utts)), "closed_below": closed_below,
            "pool": len(pool), "diversity_utterances": n_diverse, "pose_samples": pose_samples,
            "seconds": time.perf_counter() - started}  # fmt: skip


def _nanmean(values) -> float:
    """Mean of the finite values; nan when there are none (a mouth that never moves)."""
    v = np.asarray(values, np.float64)
    v = v[np.isfinite(v)]
    return float(v.mean()) if len(v) else float("nan")


# ---------------------------------------------------------------- interpolation


def interpolation_study(
    utts: list[EvalUtterance], systems: list, emotions=("happy", "sad"), steps: int = 11
) -> dict:
    """Blend the mean style codes of two emotions (over the split's clips) in `steps` steps
    and drive one utterance with each blend: per system, the mean of a few named weights
    along the path and the size of each step (even steps = a smooth path)."""
    names = ("mouthSmileLeft", "mouthFrownLeft", "browInnerUp", "jawOpen")
    u = max(utts, key=lambda v: v.frames)
    alphas = np.linspace(0.0, 1.0, steps)
    out: dict = {"alphas": alphas.tolist(), "names": list(names), "systems": {}}
    for system in systems:
        codes = {e: np.mean([system.code(v.motion) for v in utts if v.emotion == e], axis=0)
                 for e in emotions}  # fmt: skip
        path = []
        for a in alphas:
            code = ((1 - a) * codes[emotions[0]] + a * codes[emotions[1]]).astype(np.float32)
            path.append(system.generate(u, code, 0)[0])
        path = np.stack(path)  # (K, T, 52)
        sizes = M.step_sizes(path)
        out["systems"][system.name] = {
            "curves": {n: path[:, :, INDEX[n]].mean(axis=1).tolist() for n in names},
            "step_sizes": sizes.tolist(),
            "max_over_mean_step": float(sizes.max() / max(sizes.mean(), 1e-12)),
            "total_change": float(np.abs(path[-1] - path[0]).mean()),
        }
    return out


def plot_interpolation(study: dict, path: str | Path) -> None:
    """The interpolation study as a PNG (needs matplotlib, from the [dev] extra)."""
    try:
        import matplotlib
    except ImportError:
        log.warning("no matplotlib (pip install 'stylecast[dev]'): %s not drawn", path)
        return

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    systems = study["systems"]
    fig, axes = plt.subplots(2, len(systems), figsize=(5 * len(systems), 6), squeeze=False)
    a = study["alphas"]
    for col, (name, s) in enumerate(systems.items()):
        ax = axes[0, col]
        for n, curve in s["curves"].items():
            ax.plot(a, curve, marker="o", label=n)
        ax.set_title(f"{name}: happy -> sad code")
        ax.set_xlabel("blend weight of the second code")
        ax.set_ylabel("mean weight over the utterance")
        ax.legend(fontsize=7)
        ax = axes[1, col]
        ax.bar(np.array(a[1:]) - 0.05, s["step_sizes"], width=0.08)
        ax.set_title(f"mean |change| per step (max/mean {s['max_over_mean_step']:.2f})")
        ax.set_xlabel("blend weight")
    fig.tight_layout()
    fig.savefig(path, dpi=80)
    plt.close(fig)


# ---------------------------------------------------------------- report

COLUMNS = (
    ("m_lvd_mm", "M-LVD mm ↓", "{:.2f}"),
    ("f_lvd_mm", "F-LVD mm ↓", "{:.2f}"),
    ("lip_loudness_r", "lip gap ~ loudness r ↑", "{:.2f}"),
    ("lip_offset", "lip offset frames ↓", "{:.1f}"),
    ("lip_movement", "lip movement × truth", "{:.2f}"),
    ("sync", "sync D conf", "{:.3f}"),
    ("closure", "p/b/m closed ↑", "{:.0%}"),
    ("emotion_acc", "emotion acc ↑", "{:.0%}"),
    ("performer_acc", "performer acc ↑", "{:.0%}"),
    ("emotion_acc_expr", "emotion acc, expr only ↑", "{:.0%}"),
    ("emotion_acc_means", "emotion acc, expr means ↑", "{:.0%}"),
    ("performer_emotion_acc", "performer × emotion acc ↑", "{:.0%}"),
    ("retrieval_style", "code retrieval: style", "{:.0%}"),
    ("retrieval_emotion", "code retrieval: emotion", "{:.0%}"),
    ("pose_diversity", "pose diversity rad", "{:.4f}"),
    ("pose_jerk", "pose jerk rad/f² ↓", "{:.5f}"),
    ("energy_corr", "head speed ~ loudness r", "{:.2f}"),
)
POSE_COLUMNS = (
    "pose_diversity",
    "pose_jerk",
    "energy_corr",
    "emotion_acc",
    "performer_acc",
    "performer_emotion_acc",
)
WHY_EMPTY = {
    "sync": "no sync D given",
    "retrieval_style": "no style encoder",
    "retrieval_emotion": "no style encoder",
    "pose_diversity": "reference",
    "lip_loudness_r": "lips still",
    "lip_offset": "lips still",
}


def markdown_table(results: dict, extra_rows: dict[str, str] | None = None) -> str:
    """The results as a markdown table; extra_rows: {row name: why it is empty}."""
    head = "| system | " + " | ".join(c[1] for c in COLUMNS) + " |"
    lines = [head, "|" + "---|" * (len(COLUMNS) + 1)]
    for name, row in results["rows"].items():
        cells = []
        for key, _, fmt in COLUMNS:
            v = row.get(key)
            why = WHY_EMPTY.get(key, "n/a")
            if row.get("has_pose") is False and key in POSE_COLUMNS:
                why = "pose not trained"
            cells.append(fmt.format(v) if v is not None and v == v else why)
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    for name, why in (extra_rows or {}).items():
        lines.append(f"| {name} | " + " | ".join([why] * len(COLUMNS)) + " |")
    return "\n".join(lines)


def write_card_section(card: str | Path, body: str, tag: str = "eval") -> None:
    """Replace the text between <!-- {tag}:begin --> and <!-- {tag}:end --> in the card
    (appended at the end when the markers are missing)."""
    card = Path(card)
    begin, end = f"<!-- {tag}:begin -->", f"<!-- {tag}:end -->"
    text = card.read_text() if card.exists() else ""
    block = f"{begin}\n{body.rstrip()}\n{end}"
    if begin in text and end in text:
        text = text[: text.index(begin)] + block + text[text.index(end) + len(end) :]
    else:
        text = text.rstrip() + ("\n\n" if text else "") + block + "\n"
    card.write_text(text)


def system_for(checkpoint: str | Path, name: str | None = None, pose: bool = True):
    """The evaluation system for a checkpoint folder, StyleTalk or SAAS by its config.
    pose=False: an expression-only checkpoint (a retrained ablation whose pose branch was
    never trained): its pose columns stay empty."""
    model, cfg, _ = load_model(Path(checkpoint))
    if isinstance(cfg, SAASConfig):
        return SAASSystem(model, name=name, pose=pose)
    return StyleTalkSystem(model, name=name, pose=pose)


def parse_labelled(items: list[str] | None, flag: str) -> list[tuple[str, Path]]:
    """["LABEL=DIR", ...] -> [(label, dir)]; a missing checkpoint is an InputError."""
    out = []
    for item in items or []:
        label, sep, folder = item.partition("=")
        if not sep or not label.strip() or not folder:
            raise InputError(f"{flag} takes LABEL=CHECKPOINT_DIR, got {item!r}")
        if not (Path(folder) / WEIGHTS).is_file():
            raise InputError(f"{flag} {item!r}: no {WEIGHTS} in {folder}")
        out.append((label.strip(), Path(folder)))
    return out


def load_systems(
    saas: str | None,
    styletalk: str | None,
    knockouts: bool = True,
    saas_no_hyperstyle: str | None = None,
    extra: list[tuple[str, Path]] = (),
    ablations: list[tuple[str, Path]] = (),
    saas_name: str | None = None,
    baseline: bool = True,
) -> list:
    """Baseline, StyleTalk, SAAS (+ its knock-outs), then `extra` full systems and
    expression-only `ablations`, each (row name, checkpoint folder). baseline=False leaves
    the viseme baseline out (a run that only scores rows to --merge elsewhere)."""
    systems: list = [Baseline()] if baseline else []
    if styletalk:
        systems.append(system_for(styletalk))
    if saas:
        main = system_for(saas, saas_name)
        systems.append(main)
        if knockouts and isinstance(main, SAASSystem):
            systems.append(
                SAASSystem(main.model, codebook=False, name="SAAS, codebook skipped (knock-out)")
            )
            systems.append(SAASSystem(without_hyperstyle(main.model),
                                      name="SAAS, HyperStyle Δ = 0 (knock-out)"))  # fmt: skip
    if saas_no_hyperstyle:
        ablations = [("SAAS without HyperStyle (expression retrained)", saas_no_hyperstyle),
                     *ablations]  # fmt: skip
    systems += [system_for(folder, name) for name, folder in extra]
    systems += [system_for(folder, name, pose=False) for name, folder in ablations]
    names = [s.name for s in systems]
    if len(set(names)) != len(names):
        raise InputError(f"two systems share a row name: {names}")
    return systems


LATER_KEYS = ("sync_weights",)  # protocol keys that results.json files before them lack


def merge_rows(results: dict, path: str | Path, renames: dict[str, str] | None = None) -> list[str]:
    """Append to results["rows"] the rows of an earlier results.json that this one does not
    have, after checking both were made under the same protocol (results["protocol"]);
    returns the names added. The reference rows (ground truth, baseline, mean face) are
    the same system on the same utterances, so this run's are kept. renames: {row name in
    the earlier file: the name to show} (an earlier "StyleTalk" next to a new one)."""
    path = Path(path)
    try:
        other = json.loads(path.read_text())
    except (OSError, ValueError) as e:
        raise InputError(f"--merge {path}: not a results.json ({e})") from e
    renames = {k: v for k, v in (renames or {}).items() if k in other.get("rows", {})}
    other["rows"] = {renames.get(k, k): v for k, v in other.get("rows", {}).items()}
    mine, theirs = results.get("protocol"), other.get("protocol")
    if mine is None or theirs is None:
        raise InputError(f"--merge {path}: no protocol recorded, cannot check it matches")
    # Keys added to the protocol later (LATER_KEYS) are compared only where both files have
    # them: older files could not record them.
    keys = (set(mine) | set(theirs)) - {k for k in LATER_KEYS if k not in mine or k not in theirs}
    diff = sorted(k for k in keys if mine.get(k) != theirs.get(k))
    if diff:
        raise InputError(f"--merge {path}: made under another protocol (differs in {diff})")
    added = [n for n in other["rows"] if n not in results["rows"]]
    for name in added:
        results["rows"][name] = other["rows"][name]
    results.setdefault("merged", {})[str(path)] = added
    return added


def save_json(obj: dict, path: str | Path) -> None:
    Path(path).write_text(json.dumps(obj, indent=1, default=float) + "\n")


__all__ = ["ARKIT_NAMES", "evaluate", "load_split", "markdown_table"]
