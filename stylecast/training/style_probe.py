"""Can a style be recognised from the motion alone? A check of the performer's promise that
"the same style speaking different sentences looks the same, different styles are told
apart".

Per clip, summary statistics of each of the 58 channels (52 expression + 6 pose): mean,
standard deviation and mean absolute frame-to-frame velocity. A shrunk linear discriminant
(nearest class mean under the pooled within-class covariance) is fitted on clips of some
sentences and scored on clips of *other* sentences of the same styles. Used by
bench/bench_performer.py and tests/test_performer.py.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from stylecast.engine.face import FPS
from stylecast.engine.phonemes import CMU_PHONES
from stylecast.training.performer import PerformedMotion, perform_phones
from stylecast.training.styles import Style
from stylecast.training.timeline import Phone
from stylecast.training.visemes import VOWELS


@dataclass(frozen=True)
class Speech:
    """Timed phones with per-frame prosody: what `perform_phones` reads."""

    phones: tuple[Phone, ...]
    n_frames: int
    loudness: np.ndarray  # (n_frames,) dB
    pitch: np.ndarray  # (n_frames,) Hz, 0 unvoiced


def random_speech(rng: np.random.Generator, seconds: float = 3.5) -> Speech:
    """Babble with speech-like timing: words of 1-3 (C)V(C) syllables, pauses between
    phrases, silence at both ends; loudness and pitch per frame to match. Not English, but
    every phone class occurs, which is what the performer reacts to."""
    consonants = [p for p in CMU_PHONES if p not in VOWELS]
    vowels = sorted(VOWELS)
    phones: list[Phone] = []
    t = rng.uniform(0.25, 0.5)
    stressed: list[tuple[float, float]] = []
    while t < seconds - 0.5:
        for _ in range(rng.integers(2, 6)):  # a phrase of words
            for s in range(rng.integers(1, 4)):  # syllables of a word
                stress = int(s == 0 and rng.random() < 0.7)
                parts = [consonants[rng.integers(len(consonants))]] if rng.random() < 0.8 else []
                parts.append(vowels[rng.integers(len(vowels))])
                if rng.random() < 0.4:
                    parts.append(consonants[rng.integers(len(consonants))])
                for k, ph in enumerate(parts):
                    is_v = ph in VOWELS
                    d = rng.uniform(0.07, 0.16) * (1.3 if is_v and stress else 1.0)
                    d = d if is_v else rng.uniform(0.04, 0.09)
                    phones.append(Phone(ph, t, t + d, stress if is_v else 0, s == 0 and k == 0))
                    if is_v and stress:
                        stressed.append((t, t + d))
                    t += d
        t += rng.uniform(0.2, 0.55)  # pause between phrases
    n = int(np.ceil((t + rng.uniform(0.3, 0.6)) * FPS))
    centres = (np.arange(n) + 0.5) / FPS
    loud = np.full(n, -60.0)
    pitch = np.zeros(n)
    f0 = rng.uniform(95, 220)
    for q in phones:
        m = (centres >= q.start) & (centres < q.end)
        vowel = q.phone in VOWELS
        loud[m] = (-20.0 if vowel else -32.0) + 3.0 * q.stress + rng.normal(0, 1.5)
        if vowel or q.phone in ("M", "N", "NG", "L", "R", "W", "Y", "Z", "V"):
            decline = 1.0 - 0.15 * q.start / max(t, 1e-3)
            pitch[m] = f0 * decline * (1.15 if q.stress else 1.0)
    return Speech(tuple(phones), n, loud.astype(np.float32), pitch.astype(np.float32))


def perform_speech(speech: Speech, style: Style, seed: int) -> PerformedMotion:
    rng = np.random.default_rng([seed, style.style_id])
    return perform_phones(
        speech.phones, speech.n_frames, speech.loudness, style, rng, pitch_per_frame=speech.pitch
    )


def clip_features(motion: PerformedMotion) -> np.ndarray:
    """(174,) float64: per channel of [expr | pose] the mean, std and mean |velocity|."""
    x = np.concatenate([motion.expr, motion.pose], axis=1).astype(np.float64)  # (T, 58)
    vel = np.abs(np.diff(x, axis=0))
    return np.concatenate([x.mean(0), x.std(0), vel.mean(0)])


class LinearDiscriminant:
    """Nearest class mean under a shrunk pooled within-class covariance (LDA)."""

    def __init__(self, shrinkage: float = 0.1) -> None:
        self.shrinkage = shrinkage  # blend of the covariance towards its diagonal mean
        self.classes: np.ndarray | None = None
        self.means: np.ndarray | None = None  # (K, D) whitened class means
        self.whiten: np.ndarray | None = None  # (D, D)
        self.centre: np.ndarray | None = None
        self.scale: np.ndarray | None = None

    def fit(self, x: np.ndarray, y: np.ndarray) -> LinearDiscriminant:
        self.centre, self.scale = x.mean(0), x.std(0) + 1e-9
        z = (x - self.centre) / self.scale
        self.classes = np.unique(y)
        means = np.stack([z[y == c].mean(0) for c in self.classes])
        resid = z - means[np.searchsorted(self.classes, y)]
        cov = resid.T @ resid / max(len(z) - len(self.classes), 1)
        cov = (1 - self.shrinkage) * cov + self.shrinkage * np.eye(len(cov)) * np.trace(cov) / len(
            cov
        )
        evals, evecs = np.linalg.eigh(cov)
        self.whiten = evecs / np.sqrt(np.maximum(evals, 1e-9))
        self.means = means @ self.whiten
        return self

    def predict(self, x: np.ndarray) -> np.ndarray:
        assert self.whiten is not None and self.means is not None and self.classes is not None
        w = ((x - self.centre) / self.scale) @ self.whiten  # (N, D)
        d = (w**2).sum(1)[:, None] - 2 * w @ self.means.T + (self.means**2).sum(1)[None]
        return self.classes[np.argmin(d, axis=1)]


@dataclass(frozen=True)
class ProbeResult:
    accuracy: dict[str, float]  # label -> held-out-sentence accuracy, all features
    dynamics_accuracy: dict[str, float]  # the same without the per-channel means
    chance: dict[str, float]  # label -> 1 / number of classes
    n_train: int  # clips fitted
    n_test: int  # clips scored


def probe(
    styles: Sequence[Style],
    train_speech: Sequence[Speech],
    test_speech: Sequence[Speech],
    seed: int = 0,
) -> ProbeResult:
    """Perform every speech item in every style, fit on train_speech clips, score on
    test_speech clips (different sentences): accuracy for performer, emotion, style id,
    with all features and with the dynamics alone (std and velocity, no means: a style
    must show in how the face moves, not only in where it rests)."""

    def featurise(items: Sequence[Speech], offset: int) -> tuple[np.ndarray, np.ndarray]:
        feats, labels = [], []
        for s in styles:
            for k, sp in enumerate(items):
                feats.append(clip_features(perform_speech(sp, s, seed + offset + k)))
                labels.append((s.performer_id, s.emotion_id, s.style_id))
        return np.stack(feats), np.array(labels)

    x_tr, y_tr = featurise(train_speech, 0)
    x_te, y_te = featurise(test_speech, 1000)
    acc, dyn, chance = {}, {}, {}
    n_channels = x_tr.shape[1] // 3
    for col, name in enumerate(("performer", "emotion", "style")):
        model = LinearDiscriminant().fit(x_tr, y_tr[:, col])
        acc[name] = float(np.mean(model.predict(x_te) == y_te[:, col]))
        model = LinearDiscriminant().fit(x_tr[:, n_channels:], y_tr[:, col])
        dyn[name] = float(np.mean(model.predict(x_te[:, n_channels:]) == y_te[:, col]))
        chance[name] = 1.0 / len(np.unique(y_tr[:, col]))
    return ProbeResult(acc, dyn, chance, len(x_tr), len(x_te))
