"""Training scaffolding: synthetic data, batches, smoke runs that learn, exact resume."""

import json

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from stylecast.engine.errors import InputError  # noqa: E402
from stylecast.models.checkpoint import load_model  # noqa: E402
from stylecast.models.config import (  # noqa: E402
    DiscriminatorConfig,
    LossConfig,
    saas_config,
    styletalk_config,
)
from stylecast.training.loop import LAST, LOG, TrainConfig, run_training  # noqa: E402
from stylecast.training.synthetic import (  # noqa: E402
    MotionDataset,
    SyntheticDataset,
    sample_batch,
)
from stylecast.training.train_saas import SAASTrainer, train_saas  # noqa: E402
from stylecast.training.train_styletalk import (  # noqa: E402
    LipSyncTrainer,
    StyleTalkTrainer,
    sync_windows,
)

pytestmark = pytest.mark.usefixtures("one_torch_thread")


TINY_D = DiscriminatorConfig(channels=8, point_channels=8, sync_dim=8, n_styles=4)


def dataset(config) -> SyntheticDataset:
    return SyntheticDataset(config.motion, config.content, n_styles=4, n_utterances=12,
                            frames=(36, 48), seed=1)  # fmt: skip


def test_synthetic_dataset_follows_the_protocol_and_batches_are_seeded():
    config = styletalk_config("tiny", "mel")
    data = dataset(config)
    assert isinstance(data, MotionDataset)
    u = data[0]
    assert u.phonemes.shape == (u.frames,) and u.mel.shape == (u.frames, 16, 80)
    assert u.expr.shape == (u.frames, 52) and u.pose.shape == (u.frames, 6)
    a = sample_batch(data, np.random.default_rng([0, 5]), 3, 24, 32, "mel")
    b = sample_batch(data, np.random.default_rng([0, 5]), 3, 24, 32, "mel")
    assert torch.equal(a.features, b.features) and torch.equal(a.clip, b.clip)
    assert a.features.shape == (3, 24, 16, 80) and a.clip.shape == (3, 32, 58)
    assert a.clip_valid[:, :24].all()
    with pytest.raises(InputError, match="frames"):
        sample_batch(data, np.random.default_rng(0), 2, 500, 32, "mel")


def test_sync_windows_pair_true_and_shifted_audio():
    config = styletalk_config("tiny")
    batch = sample_batch(dataset(config), np.random.default_rng(0), 4, 32, 32, "phoneme")
    mouth, audio, label = sync_windows(batch, config.motion.lower_index, 5, torch.Generator())
    assert mouth.shape == (4, 5, len(config.motion.lower_index)) and audio.shape == (4, 5)
    assert label.tolist() == [1.0, 0.0, 1.0, 0.0]


def fixed_batch_losses(trainer, batch, steps: int) -> list[float]:
    return [trainer.train_step(batch)["loss"] for _ in range(steps)]


def test_styletalk_smoke_run_reduces_the_loss_on_a_fixed_batch():
    config = styletalk_config("tiny")
    train = TrainConfig(steps=1, batch=4, frames=24, style_frames=24, lr=3e-3)
    batch = sample_batch(dataset(config), np.random.default_rng(0), 4, 24, 24, "phoneme")
    losses = LossConfig(temporal_weight=0.0)  # the GAN term is not monotone
    trainer = StyleTalkTrainer(config, train, losses, TINY_D)
    history = fixed_batch_losses(trainer, batch, 12)
    assert np.mean(history[-3:]) < 0.8 * np.mean(history[:3]), history


def test_styletalk_step_with_all_discriminators_runs():
    config = styletalk_config("tiny")
    train = TrainConfig(steps=1, batch=4, frames=24, style_frames=24)
    batch = sample_batch(dataset(config), np.random.default_rng(0), 4, 24, 24, "phoneme")
    from stylecast.models.losses import LipSyncDiscriminator, StyleDiscriminator

    sync_d = LipSyncDiscriminator(TINY_D, config.content, len(config.motion.lower_index))
    style_d = StyleDiscriminator(TINY_D, 52)
    trainer = StyleTalkTrainer(config, train, LossConfig(), TINY_D, sync_d, style_d)
    out = trainer.train_step(batch)
    assert {"rec", "triplet", "temporal_g", "temporal_d", "sync", "style"} <= set(out)
    assert all(np.isfinite(v) for v in out.values())
    assert all(p.grad is None for p in sync_d.parameters())  # frozen


def test_lip_sync_trainer_learns():
    config = styletalk_config("tiny")
    train = TrainConfig(steps=1, batch=8, frames=24, style_frames=24, lr=3e-3)
    batch = sample_batch(dataset(config), np.random.default_rng(0), 8, 24, 24, "phoneme")
    trainer = LipSyncTrainer(config, TINY_D, train)
    trainer.generator.manual_seed(0)
    first = trainer.train_step(batch)["loss"]
    for _ in range(10):
        trainer.generator.manual_seed(0)  # the same pairs each time
        last = trainer.train_step(batch)["loss"]
    assert last < first


@pytest.mark.parametrize(
    ("stage", "terms"),
    [("style", ("rec", "class")), ("expression", ("rec",)), ("pose", ("rec", "ce"))],
)
def test_saas_stage_smoke_run_reduces_its_losses(stage, terms):
    """The stage's deterministic terms fall (VQ restarts and the triplet margin are noisy)."""
    config = saas_config("tiny", "phoneme")
    train = TrainConfig(steps=1, batch=4, frames=16, style_frames=32, lr=3e-3)
    batch = sample_batch(dataset(config), np.random.default_rng(0), 4, 16, 32, "phoneme")
    trainer = SAASTrainer(config, train, stage, LossConfig(style_weight=0.0))
    history = [sum(out[t] for t in terms) for out in (trainer.train_step(batch) for _ in range(8))]
    assert np.mean(history[-2:]) < np.mean(history[:2]), history


def test_stopped_and_resumed_run_equals_a_straight_run(tmp_path):
    config = styletalk_config("tiny")
    data = dataset(config)

    def run(folder, steps):
        train = TrainConfig(steps=steps, batch=2, frames=16, style_frames=16, lr=1e-3,
                            log_every=1, checkpoint_every=2)  # fmt: skip
        trainer = StyleTalkTrainer(config, train, LossConfig(), TINY_D)
        run_training(folder, trainer, data, train, progress=False)
        return trainer

    straight = run(tmp_path / "a", 4)
    run(tmp_path / "b", 2)
    resumed = run(tmp_path / "b", 4)
    for (key, a), b in zip(
        straight.model.state_dict().items(), resumed.model.state_dict().values(), strict=True
    ):
        assert torch.equal(a, b), key
    for a, b in zip(straight.temporal.parameters(), resumed.temporal.parameters(), strict=True):
        assert torch.equal(a, b)
    lines = [json.loads(x) for x in (tmp_path / "b" / LOG).read_text().splitlines()]
    assert [x["step"] for x in lines] == [1, 2, 3, 4]
    _, _, meta = load_model(tmp_path / "b" / LAST)
    assert meta["step"] == 4


def test_resume_refuses_another_config(tmp_path):
    data = dataset(styletalk_config("tiny"))
    train = TrainConfig(steps=1, batch=2, frames=16, style_frames=16)
    run_training(tmp_path, StyleTalkTrainer(styletalk_config("tiny"), train, disc=TINY_D),
                 data, train, progress=False)  # fmt: skip
    other = StyleTalkTrainer(styletalk_config("tiny", "mel"), train, disc=TINY_D)
    with pytest.raises(InputError, match="different model config"):
        longer = TrainConfig(steps=2, batch=2, frames=16, style_frames=16)
        run_training(tmp_path, other, data, longer, progress=False)


def test_saas_three_stages_chain_into_one_checkpoint(tmp_path):
    config = saas_config("tiny", "phoneme")
    train = TrainConfig(steps=2, batch=2, frames=16, style_frames=16)
    stages = {s: train for s in ("style", "expression", "pose")}
    train_saas(tmp_path, config, dataset(config), stages, progress=False)
    model, loaded_config, meta = load_model(tmp_path / "pose" / LAST)
    assert loaded_config == config and meta["step"] == 2
    # The pose stage started from the style stage's extractor and left it unchanged.
    style_stage, _, _ = load_model(tmp_path / "style" / LAST)
    for key, value in style_stage.style_extractor.state_dict().items():
        assert torch.equal(model.style_extractor.state_dict()[key], value), key
