"""SAAS training: the expression stage's style warm-up (ramp, exact resume)."""

import dataclasses
import json

import pytest

torch = pytest.importorskip("torch")

from stylecast.models.checkpoint import load_model  # noqa: E402
from stylecast.models.config import saas_config  # noqa: E402
from stylecast.training.loop import LAST, LOG, TrainConfig, run_training  # noqa: E402
from stylecast.training.synthetic import SyntheticDataset  # noqa: E402
from stylecast.training.train_saas import SAASTrainer  # noqa: E402

pytestmark = pytest.mark.usefixtures("one_torch_thread")

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
