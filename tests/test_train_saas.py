"""SAAS training: the rig mouth loss in the expression stage, the run record, and the
expression stage's style warm-up (ramp, exact resume)."""

import dataclasses
import json

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from stylecast.models.checkpoint import load_model  # noqa: E402
from stylecast.models.config import LossConfig, saas_config  # noqa: E402
from stylecast.training.loop import LAST, LOG, TrainConfig, run_training  # noqa: E402
from stylecast.training.synthetic import SyntheticDataset, sample_batch  # noqa: E402
from stylecast.training.train_saas import (  # noqa: E402
    SAASTrainer,
    read_run_record,
    write_run_record,
)

pytestmark = pytest.mark.usefixtures("one_torch_thread")

CONFIG = saas_config("tiny", "phoneme")
TRAIN = TrainConfig(steps=1, batch=4, frames=16, style_frames=32, lr=3e-3)


def batch():
    data = SyntheticDataset(CONFIG.motion, CONFIG.content, n_styles=4, n_utterances=12,
                            frames=(36, 48), seed=1)  # fmt: skip
    return sample_batch(data, np.random.default_rng(0), 4, 16, 32, "phoneme")


def test_expression_stage_learns_the_rig_mouth_terms():
    # Only the rig terms: the coefficient losses off, so their fall is the rig loss's doing.
    losses = LossConfig(rec_weight=0.0, style_weight=0.0)
    trainer = SAASTrainer(CONFIG, TRAIN, "expression", losses)
    b = batch()
    history = [trainer.train_step(b) for _ in range(8)]
    assert {"mouth_vertex", "lip_gap"} <= history[0].keys()
    mouth = [h["mouth_vertex"] + h["lip_gap"] for h in history]
    assert np.mean(mouth[-2:]) < np.mean(mouth[:2]), mouth
    total = [h["loss"] for h in history]
    expected = [2.0 * h["mouth_vertex"] + 2.0 * h["lip_gap"] for h in history]
    assert np.allclose(total, expected, rtol=1e-5)  # the configured weights, nothing else


def test_rig_terms_off_with_zero_weights_and_outside_the_expression_stage():
    off = LossConfig(rig_vertex_weight=0.0, rig_gap_weight=0.0, style_weight=0.0)
    assert SAASTrainer(CONFIG, TRAIN, "expression", off).rig_mouth is None
    assert SAASTrainer(CONFIG, TRAIN, "pose").rig_mouth is None
    terms = SAASTrainer(CONFIG, TRAIN, "expression", off).train_step(batch())
    assert "lip_gap" not in terms and "mouth_vertex" not in terms


def test_run_record_round_trip(tmp_path):
    cfg = dataclasses.replace(CONFIG, style=dataclasses.replace(CONFIG.style, codebook=False))
    losses = LossConfig(rig_gap_weight=3.5)
    trains = {"style": TRAIN, "expression": dataclasses.replace(TRAIN, steps=7)}
    write_run_record(tmp_path, cfg, trains, losses)
    assert read_run_record(tmp_path) == (cfg, trains, losses)


WARMUP = 4


def config(warmup: int = WARMUP):
    cfg = saas_config("tiny", "mel")
    return dataclasses.replace(
        cfg, expression=dataclasses.replace(cfg.expression, style_warmup=warmup)
    )


def data(cfg) -> SyntheticDataset:
    return SyntheticDataset(cfg.motion, cfg.content, n_styles=4, n_utterances=8,
                            frames=(36, 44), seed=1)  # fmt: skip


def train(folder, steps: int, cfg=None):
    cfg = cfg or config()
    t = TrainConfig(steps=steps, batch=2, frames=16, style_frames=16, log_every=1)
    run_training(folder, SAASTrainer(cfg, t, "expression"), data(cfg), t, progress=False)


def test_style_gain_ramps_in_over_the_warmup(tmp_path):
    train(tmp_path, WARMUP + 2)
    gains = [json.loads(line)["style_gain"] for line in (tmp_path / LOG).read_text().splitlines()]
    assert gains == pytest.approx([0.0, 0.25, 0.5, 0.75, 1.0, 1.0])
    model, cfg, _ = load_model(tmp_path / LAST)
    assert model.expression.style_gain == 1.0 and cfg.expression.style_warmup == WARMUP


def test_a_resumed_warmup_equals_a_straight_one(tmp_path):
    train(tmp_path / "straight", WARMUP + 1)
    train(tmp_path / "resumed", 2)  # stopped inside the warm-up
    train(tmp_path / "resumed", WARMUP + 1)
    a = load_model(tmp_path / "straight" / LAST)[0].state_dict()
    b = load_model(tmp_path / "resumed" / LAST)[0].state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_without_warmup_nothing_is_ramped(tmp_path):
    train(tmp_path, 2, config(0))
    records = [json.loads(line) for line in (tmp_path / LOG).read_text().splitlines()]
    assert all("style_gain" not in r for r in records)


def test_a_run_adopts_another_runs_style_stage(tmp_path):
    from stylecast.engine.errors import InputError
    from stylecast.training.train_saas import train_saas

    old = saas_config("tiny", "mel")
    t = TrainConfig(steps=2, batch=2, frames=16, style_frames=16)
    stages = {s: t for s in ("style", "expression", "pose")}
    train_saas(tmp_path / "a", old, data(old), stages, progress=False)
    new = dataclasses.replace(old, expression=dataclasses.replace(old.expression, style_norm=True))
    train_saas(tmp_path / "b", new, data(new), stages, progress=False, style_from=tmp_path / "a")
    a, _, _ = load_model(tmp_path / "a" / "style" / LAST)
    b, cfg, meta = load_model(tmp_path / "b" / "pose" / LAST)
    assert cfg == new and meta["step"] == 2
    for key, value in a.style_extractor.state_dict().items():
        assert torch.equal(b.style_extractor.state_dict()[key], value), key
    other = dataclasses.replace(old, style=dataclasses.replace(old.style, commitment=0.5))
    with pytest.raises(InputError, match="style extractor"):
        train_saas(tmp_path / "c", other, data(other), stages, progress=False,
                   style_from=tmp_path / "a")  # fmt: skip
    with pytest.raises(InputError, match="step"):
        longer = {s: dataclasses.replace(t, steps=3) for s in stages}
        train_saas(tmp_path / "d", new, data(new), longer, progress=False,
                   style_from=tmp_path / "a")  # fmt: skip


@pytest.mark.parametrize("dropout", [0.0, 0.999999])
def test_history_dropout_hides_the_past_codes_from_the_predictor(dropout):
    cfg = saas_config("tiny", "mel")
    cfg = dataclasses.replace(cfg, pose=dataclasses.replace(cfg.pose, history_dropout=dropout))
    trainer = SAASTrainer(cfg, TRAIN, "pose")
    b = sample_batch(data(cfg), np.random.default_rng(0), 4, 16, 32, "mel")
    embed = trainer.model.pose_predictor.token.weight
    ces = []
    for scale in (1.0, 30.0):  # the real codes' embeddings (not the start token's) scaled
        with torch.no_grad():
            embed[: cfg.pose.codebook_size] *= scale
        torch.manual_seed(0)
        ces.append(float(trainer._pose_terms(b)["ce"]))
    if dropout > 0.5:
        assert abs(ces[0] - ces[1]) < 1e-3  # never sees a real past code (EMA moves a bit)
    else:
        assert abs(ces[0] - ces[1]) > 1e-2


def test_a_faded_skip_ramps_to_zero_and_is_gone_in_use(tmp_path):
    cfg = saas_config("tiny", "mel")
    cfg = dataclasses.replace(
        cfg, expression=dataclasses.replace(cfg.expression, skip_fade_start=1, skip_fade_end=3)
    )
    train(tmp_path, 4, cfg)
    gains = [json.loads(line)["skip_gain"] for line in (tmp_path / LOG).read_text().splitlines()]
    assert gains == pytest.approx([1.0, 1.0, 0.5, 0.0])
    model, _, _ = load_model(tmp_path / LAST)
    assert model.expression.skip_gain == 0.0
    x = torch.randn(1, 6, 16, 80)
    style = torch.randn(1, cfg.style_dim)
    with torch.no_grad():
        before = model(x, style)
        model.expression.audio_skip.weight.normal_()  # the skip's weights do not matter
        assert torch.equal(model(x, style), before)
