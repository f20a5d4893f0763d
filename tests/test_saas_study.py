"""training/saas_study.py: the no-training measurements behind docs/training.md's SAAS
sections, on made-up utterances with a tiny untrained SAAS."""

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from stylecast.models.config import saas_config  # noqa: E402
from stylecast.models.saas import SAAS  # noqa: E402
from stylecast.training import saas_study as S  # noqa: E402
from stylecast.training.evaluate import EvalUtterance  # noqa: E402

pytestmark = pytest.mark.usefixtures("one_torch_thread")
FRAMES = 48


def tiny() -> SAAS:
    torch.manual_seed(0)
    model = SAAS(saas_config("tiny", "mel")).eval()
    torch.nn.init.normal_(model.expression.hyper.head_b.weight, std=0.3)  # Delta != 0
    return model


def utterance(i: int, lag: int = 1) -> EvalUtterance:
    """Loudness that jumps between speech and silence; a head whose yaw speed is the
    loudness `lag` frames earlier (so its speed ~ loudness correlation peaks at `lag`)."""
    rng = np.random.default_rng(i)
    loud = np.where(rng.random(FRAMES) < 0.6, rng.uniform(-30, -10, FRAMES), -60.0)
    pose = np.zeros((FRAMES, 6), np.float32)
    steps = np.zeros(FRAMES)
    steps[lag:] = (loud[: FRAMES - lag] + 60.0) * 1e-4
    pose[:, 1] = np.cumsum(steps)
    prosody = np.stack([loud, (loud > -60).astype(float), np.zeros(FRAMES)], axis=1)
    return EvalUtterance(
        index=i, mel=rng.normal(-4, 1, (FRAMES, 16, 80)).astype(np.float32),
        phonemes=np.zeros(FRAMES, np.int64), prosody=prosody, phones=(),
        expr=np.zeros((FRAMES, 52), np.float32), pose=pose, style_id=i % 2, performer=0,
        emotion=("happy", "sad")[i % 2], intensity=1,
    )  # fmt: skip


def test_expression_by_path_is_the_model_with_one_code_and_each_path_matters():
    model = tiny()
    feats = torch.from_numpy(utterance(0).mel)[None]
    a, b = torch.randn(1, model.cfg.style_dim), torch.randn(1, model.cfg.style_dim)
    same = S.expression_by_path(model, feats, a, a, a)
    with torch.no_grad():
        np.testing.assert_allclose(same, model(feats, a)[0].numpy(), atol=1e-6)
    for paths in ((b, a, a), (a, b, a), (a, a, b)):  # decoder, HyperStyle, initial state
        assert np.abs(S.expression_by_path(model, feats, *paths) - same).max() > 1e-5


def test_low_pass_starts_from_the_first_frame():
    still = np.full((20, 6), 0.3, np.float32)
    np.testing.assert_allclose(S.low_pass(still, 0.7, 2), still, atol=1e-6)  # no ramp from 0
    step = np.zeros((40, 6), np.float32)
    step[10:] = 1.0
    out = S.low_pass(step, 0.7, 2)[:, 0]
    assert out[10] < 0.2 and out[-1] > 0.9 and np.all(np.diff(out) >= -1e-7)


def test_ridge_probe_and_fisher_ratio():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(400, 5))
    assert S.ridge_r(x, x @ np.arange(1.0, 6.0), 200) > 0.99
    assert abs(S.ridge_r(x, rng.normal(size=400), 200)) < 0.2
    labels = np.repeat([0, 1], 50)
    apart = rng.normal(size=(100, 3)) + 5.0 * labels[:, None]
    mixed = rng.normal(size=(100, 3))
    assert S.fisher_ratio(apart, labels) > 10 * S.fisher_ratio(mixed, labels)


def test_head_study_finds_the_truths_lag_and_scores_the_predictor():
    model = tiny()
    utts = [utterance(i, lag=2) for i in range(6)]
    codes = [np.random.default_rng(i).normal(size=model.cfg.style_dim).astype(np.float32)
             for i in range(6)]  # fmt: skip
    out = S.head_study(model, utts, codes, max_lag=4)
    by_lag = out["truth_speed_loudness_r_by_lag"]
    assert max(by_lag, key=by_lag.get) == 2 and by_lag[2] > 0.9
    assert out["head_speed_loudness_r"]["truth"] < 0.5  # at lag 0 it is weak
    # a chunk's head speed is its loudness two frames earlier: mostly the same chunk's
    assert out["chunk_true_head_speed_vs_its_loudness_r"] > 0.5
    ce = out["teacher_forced_ce_nats"]
    assert set(ce) == {"audio", "silence", "another_clip_audio", "no_past_codes"}
    assert all(np.isfinite(v) and v > 0 for v in ce.values())
    assert out["uniform_ce_nats"] == pytest.approx(np.log(model.cfg.pose.codebook_size), abs=1e-3)


def spoken() -> tuple:
    """A made-up 2 s utterance: five stressed vowels between stops, a pause in the middle."""
    from stylecast.training.timeline import Phone, Utterance

    phones, t = [], 0.1
    for k in range(5):
        phones += [Phone("T", t, t + 0.08), Phone("AA", t + 0.08, t + 0.3, stress=1)]
        t += 0.3 + (0.3 if k == 2 else 0.05)
    t_audio = np.arange(int(2.2 * 16000)) / 16000
    voiced = np.zeros_like(t_audio)
    for q in phones:
        if q.phone == "AA":
            voiced[(t_audio >= q.start) & (t_audio < q.end)] = 1.0
    audio = (0.3 * voiced * np.sin(2 * np.pi * 140 * t_audio)).astype(np.float32)
    utt = Utterance(audio, 16000, tuple(phones), "made up", "test")
    pitch = np.where(np.arange(66) % 10 < 6, 140.0, 0.0)
    return utt, pitch


def test_head_variants_switch_off_only_the_named_terms():
    from stylecast.training import head, motion_signals, performer
    from stylecast.training.styles import style_for

    utt, pitch = spoken()
    style = style_for(3, "angry", 3)
    truth = performer.perform(utt, style, 7, pitch=pitch).pose
    np.testing.assert_array_equal(S.perform_head_variant(utt, style, 7, pitch), truth)
    poses = {name: S.perform_head_variant(utt, style, 7, pitch, **switches)
             for name, switches in S.HEAD_VARIANTS.items()}  # fmt: skip
    for name in ("without the nods", "without the speech jitter", "no speech-coupled term"):
        assert np.abs(poses[name] - truth).max() > 1e-4, name
    # without the speech-coupled terms the head moves less while speaking
    speed = {k: np.abs(np.diff(v[:, :3], axis=0)).mean() for k, v in poses.items()}
    assert speed["no speech-coupled term"] < speed["all terms"]
    # the switches are undone afterwards
    assert head.smooth_noise is motion_signals.smooth_noise and head.pulse is motion_signals.pulse
    assert performer.head_pose is head.head_pose


def test_head_figure_is_written(tmp_path):
    model = tiny()
    u = utterance(1)
    path = tmp_path / "head.png"
    S.head_figure(model, u, np.zeros(model.cfg.style_dim, np.float32), path)
    assert path.stat().st_size > 10_000
