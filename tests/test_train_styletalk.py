"""StyleTalk's generator loss on the rig mouth: its terms, its weights in the checkpoint,
resume with other weights refused, and that it moves the lips toward the truth's closures."""

import dataclasses
import json

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from stylecast.engine.errors import InputError  # noqa: E402
from stylecast.models.checkpoint import load_model  # noqa: E402
from stylecast.models.config import DiscriminatorConfig, LossConfig, styletalk_config  # noqa: E402
from stylecast.training.loop import LAST, LOG, TrainConfig, run_training  # noqa: E402
from stylecast.training.synthetic import SyntheticDataset, sample_batch  # noqa: E402
from stylecast.training.train_styletalk import RigLossConfig, StyleTalkTrainer  # noqa: E402

pytestmark = pytest.mark.usefixtures("one_torch_thread")

TINY_D = DiscriminatorConfig(channels=8, point_channels=8, sync_dim=8, n_styles=4)
TRAIN = TrainConfig(steps=2, batch=2, frames=16, style_frames=16, log_every=1)
OFF = RigLossConfig(vertex_weight=0.0, gap_weight=0.0)


@pytest.fixture(scope="module")
def data():
    config = styletalk_config("tiny")
    return SyntheticDataset(config.motion, config.content, n_styles=4, n_utterances=8,
                            frames=(24, 32), seed=1)  # fmt: skip


def test_rig_loss_config_rejects_negative_weights():
    with pytest.raises(InputError, match="gap_weight"):
        RigLossConfig(gap_weight=-1.0)
    assert not OFF.active and RigLossConfig().active


def test_generator_step_logs_the_rig_terms_only_when_on(data):
    config = styletalk_config("tiny")
    batch = sample_batch(data, np.random.default_rng(0), 2, 16, 16, "phoneme")
    on = StyleTalkTrainer(config, TRAIN, LossConfig(), TINY_D).train_step(batch)
    off = StyleTalkTrainer(config, TRAIN, LossConfig(), TINY_D, rig=OFF).train_step(batch)
    assert on["mouth_vertex"] > 0 and on["lip_gap"] > 0
    assert "mouth_vertex" not in off and "lip_gap" not in off
    # Same seed, same batch: the totals differ by exactly the weighted rig terms.
    w = RigLossConfig()
    extra = w.vertex_weight * on["mouth_vertex"] + w.gap_weight * on["lip_gap"]
    assert on["loss"] == pytest.approx(off["loss"] + extra, rel=1e-5)


def test_checkpoint_records_the_loss_weights_and_resume_refuses_others(tmp_path, data):
    config = styletalk_config("tiny")
    rig = RigLossConfig(vertex_weight=1.5, gap_weight=0.5, closed_boost=3.0)
    trainer = StyleTalkTrainer(config, TRAIN, LossConfig(), TINY_D, rig=rig)
    run_training(tmp_path, trainer, data, TRAIN, progress=False)
    _, _, meta = load_model(tmp_path / LAST)
    assert meta["rig_loss"] == {"vertex_weight": 1.5, "gap_weight": 0.5, "closed_boost": 3.0}
    assert meta["loss"]["rec_weight"] == LossConfig().rec_weight
    assert "lip_gap" in json.loads((tmp_path / LOG).read_text().splitlines()[-1])
    longer = TrainConfig(steps=3, batch=2, frames=16, style_frames=16)
    other = StyleTalkTrainer(config, longer, LossConfig(), TINY_D, rig=RigLossConfig())
    with pytest.raises(InputError, match="rig_loss"):
        run_training(tmp_path, other, data, longer, progress=False)
    same = StyleTalkTrainer(config, longer, LossConfig(), TINY_D, rig=rig)
    run_training(tmp_path, same, data, longer, progress=False)  # the same weights resume
    assert load_model(tmp_path / LAST)[2]["step"] == 3


def test_rig_loss_pulls_the_lip_gap_toward_the_truth_on_a_fixed_batch(data):
    """A few steps on one batch: with the rig terms on, the gap error falls further than
    with them off (both start from the same weights)."""
    config = styletalk_config("tiny")
    train = TrainConfig(steps=1, batch=4, frames=24, style_frames=24, lr=3e-3)
    batch = sample_batch(data, np.random.default_rng(0), 4, 24, 24, "phoneme")
    losses = LossConfig(temporal_weight=0.0)
    gap_error = {}
    for name, rig in (("on", RigLossConfig(vertex_weight=4.0, gap_weight=4.0)), ("off", OFF)):
        trainer = StyleTalkTrainer(config, train, losses, TINY_D, rig=rig)
        for _ in range(15):
            trainer.train_step(batch)
        probe = StyleTalkTrainer(config, train, losses, TINY_D).rig_mouth
        with torch.no_grad():
            model = trainer.model.eval()
            out = model(batch.features, model.encode_style(batch.clip, batch.clip_valid))
            gap_error[name] = probe(out.expr, batch.expr).gap.item()
    assert gap_error["on"] < 0.9 * gap_error["off"], gap_error


def test_expert_temperature_anneals_linearly_then_holds_the_models_own():
    from stylecast.models.config import config_from_dict, config_to_dict
    from stylecast.training.train_styletalk import discriminator_config, expert_temperature

    cfg = dataclasses.replace(
        styletalk_config("tiny"), expert_temperature=1.0, expert_anneal_steps=100
    )
    assert expert_temperature(cfg, 0) == 30.0
    assert expert_temperature(cfg, 50) == pytest.approx(15.5)
    assert expert_temperature(cfg, 100) == expert_temperature(cfg, 5000) == 1.0
    off = styletalk_config("tiny")
    assert expert_temperature(off, 0) == expert_temperature(off, 10) == off.expert_temperature
    # A config saved before the anneal existed reads as no anneal; discriminators are
    # saved with the fields at those values, so one sync D serves either generator.
    plain = config_to_dict(cfg)
    for key in ("expert_anneal_steps", "expert_temperature_start"):
        del plain["fields"][key]
    old = config_from_dict(plain)
    assert old.expert_anneal_steps == 0 and old.expert_temperature_start == 30.0
    assert discriminator_config(cfg) == discriminator_config(off)


def test_generator_trainer_sets_the_steps_temperature_in_every_dynamic_ffn(data):
    cfg = dataclasses.replace(
        styletalk_config("tiny"), expert_temperature=1.0, expert_anneal_steps=4
    )
    trainer = StyleTalkTrainer(cfg, TRAIN, LossConfig(), TINY_D)
    layers = [
        layer.ffn_in for d in (trainer.model.lower, trainer.model.upper) for layer in d.layers
    ]
    trainer.begin_step(2)
    assert {layer.temperature for layer in layers} == {15.5}
    batch = sample_batch(data, np.random.default_rng(0), 2, 16, 16, "phoneme")
    assert trainer.train_step(batch)["expert_t"] == 15.5
    trainer.begin_step(4)
    assert {layer.temperature for layer in layers} == {1.0}
