"""StyleTalk's gaze terms (train_styletalk.GazeLossConfig), the recipe's defaults (no style
discriminator), one sync D serving generators with other pose smoothing, and the loop's
kept snapshots."""

import dataclasses

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from stylecast.engine.errors import InputError  # noqa: E402
from stylecast.engine.face import ARKIT_NAMES  # noqa: E402
from stylecast.models.checkpoint import load_model  # noqa: E402
from stylecast.models.config import DiscriminatorConfig, LossConfig, styletalk_config  # noqa: E402
from stylecast.training.loop import LAST, TrainConfig, run_training  # noqa: E402
from stylecast.training.synthetic import SyntheticDataset, sample_batch  # noqa: E402
from stylecast.training.train_styletalk import (  # noqa: E402
    STAGES,
    GazeLossConfig,
    RigLossConfig,
    StyleTalkTrainer,
    eye_look_index,
    style_d_input,
    train_styletalk,
)

pytestmark = pytest.mark.usefixtures("one_torch_thread")

TINY_D = DiscriminatorConfig(channels=8, point_channels=8, sync_dim=8, n_styles=4)
NO_RIG = RigLossConfig(vertex_weight=0.0, gap_weight=0.0)
EYES = [n for n in ARKIT_NAMES if n.startswith("eyeLook")]


@pytest.fixture(scope="module")
def data():
    config = styletalk_config("tiny")
    return SyntheticDataset(config.motion, config.content, n_styles=4, n_utterances=8,
                            frames=(24, 32), seed=1)  # fmt: skip


def test_gaze_config_validates_and_names_the_eye_look_weights():
    assert GazeLossConfig().eye_weight == 10.0 and GazeLossConfig().style_d_gaze
    with pytest.raises(InputError, match="eye_weight"):
        GazeLossConfig(eye_weight=-1.0)
    names = styletalk_config("tiny").motion.expr_names
    assert [names[i] for i in eye_look_index(names)] == EYES and len(EYES) == 8


def test_style_discriminator_input_without_gaze_zeroes_only_the_eye_look_weights():
    names = styletalk_config("tiny").motion.expr_names
    expr = torch.rand(2, 5, len(names))
    assert torch.equal(style_d_input(expr, names, GazeLossConfig()), expr)
    seen = style_d_input(expr, names, GazeLossConfig(style_d_gaze=False))
    eyes = eye_look_index(names)
    rest = [i for i in range(len(names)) if i not in eyes]
    assert (seen[..., eyes] == 0).all() and torch.equal(seen[..., rest], expr[..., rest])


def test_eye_weight_adds_its_term_and_is_recorded_in_the_checkpoint(data, tmp_path):
    config = styletalk_config("tiny")
    train = TrainConfig(steps=1, batch=2, frames=16, style_frames=16, log_every=1)
    batch = sample_batch(data, np.random.default_rng(0), 2, 16, 16, "phoneme")
    losses = LossConfig(temporal_weight=0.0)
    off = GazeLossConfig(eye_weight=0.0)
    plain = StyleTalkTrainer(config, train, losses, TINY_D, rig=NO_RIG, gaze=off).train_step(batch)
    gaze = GazeLossConfig(eye_weight=5.0)
    trainer = StyleTalkTrainer(config, train, losses, TINY_D, rig=NO_RIG, gaze=gaze)
    terms = trainer.train_step(batch)
    assert "eye_l1" not in plain and terms["eye_l1"] > 0
    # Same initial weights and batch: the totals differ by exactly the new term.
    assert terms["loss"] == pytest.approx(plain["loss"] + 5.0 * terms["eye_l1"], rel=1e-5)
    run_training(tmp_path, trainer, data, train, progress=False)
    assert load_model(tmp_path / LAST)[2]["gaze_loss"] == dataclasses.asdict(gaze)


def test_the_recipe_trains_no_style_discriminator_and_reuses_a_sync_d(data, tmp_path):
    """STYLETALK_LOSSES (lambda_style 0) skips the style_d stage; a generator with another
    pose smoothing resumes the same sync D instead of refusing its config."""
    train = TrainConfig(steps=1, batch=2, frames=16, style_frames=16)
    stages = {s: train for s in STAGES}
    config = styletalk_config("tiny")
    first = train_styletalk(tmp_path, config, data, stages, disc=TINY_D, progress=False,
                            rig=NO_RIG)  # fmt: skip
    assert set(first) == {"sync", "generator"} and not (tmp_path / "style_d").exists()
    assert load_model(tmp_path / "generator" / LAST)[0].cfg.pose_smoothing == 0.8
    sync_before = (tmp_path / "sync" / LAST / "model.safetensors").read_bytes()
    other = dataclasses.replace(config, pose_smoothing=0.5)
    again = tmp_path / "again"
    (again / "sync").mkdir(parents=True)
    (again / "sync" / LAST).symlink_to(tmp_path / "sync" / LAST)
    train_styletalk(again, other, data, stages, disc=TINY_D, progress=False, rig=NO_RIG)
    assert (again / "sync" / LAST / "model.safetensors").read_bytes() == sync_before
    assert load_model(again / "generator" / LAST)[0].cfg.pose_smoothing == 0.5


def test_loop_keeps_the_asked_snapshots(data, tmp_path):
    config = styletalk_config("tiny")
    train = TrainConfig(steps=3, batch=2, frames=16, style_frames=16, keep_steps=(2,),
                        checkpoint_every=100)  # fmt: skip
    trainer = StyleTalkTrainer(config, train, LossConfig(temporal_weight=0.0), TINY_D,
                               rig=NO_RIG)  # fmt: skip
    run_training(tmp_path, trainer, data, train, progress=False)
    assert load_model(tmp_path / "step2")[2]["step"] == 2
    assert load_model(tmp_path / LAST)[2]["step"] == 3
    with pytest.raises(InputError, match="keep_steps"):
        TrainConfig(keep_steps=(0,))
