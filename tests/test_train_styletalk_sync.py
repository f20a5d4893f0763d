"""The lip-sync discriminator's stage: its batches, its contrastive step, that it learns to
tell in-sync windows from shifted ones and from a still mouth, and `--keep` snapshots."""

import dataclasses

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from stylecast.models.checkpoint import load_model, read_header  # noqa: E402
from stylecast.models.config import DiscriminatorConfig, styletalk_config  # noqa: E402
from stylecast.training.loop import LAST, TrainConfig, run_training  # noqa: E402
from stylecast.training.sync_study import load_sync, score_sync  # noqa: E402
from stylecast.training.synthetic import SyntheticDataset  # noqa: E402
from stylecast.training.train_styletalk import (  # noqa: E402
    LipSyncTrainer,
    sample_windows,
    still_windows,
    window_grid,
)

pytestmark = pytest.mark.usefixtures("one_torch_thread")

TINY_D = DiscriminatorConfig(channels=16, sync_dim=16, n_styles=4, sync_lr=3e-3)


@pytest.fixture(scope="module")
def data():
    config = styletalk_config("tiny", "mel")
    return SyntheticDataset(config.motion, config.content, n_styles=4, n_utterances=24,
                            frames=(60, 90), seed=3)  # fmt: skip


def test_window_grid_cuts_every_window_of_every_row():
    x = torch.arange(2 * 7 * 3).reshape(2, 7, 3)
    grid = window_grid(x, 5)
    assert grid.shape == (2, 3, 5, 3)
    assert torch.equal(grid[1, 2], x[1, 2:7])


def test_still_windows_hold_the_first_frame_and_skip_windows_that_barely_move():
    mouth = torch.zeros(2, 5, 3)
    mouth[0, :, 0] = torch.linspace(0, 0.5, 5)  # the jaw opens: a still copy is a negative
    mouth[1, :, 0] = 0.01  # already still
    held, used = still_windows(mouth)
    assert torch.equal(held[0], mouth[0, :1].expand(5, 3))
    assert used.tolist() == [True, False]


def test_sample_windows_is_deterministic_and_cuts_real_frames(data):
    a = sample_windows(data, np.random.default_rng(5), 3, 20, "mel")
    b = sample_windows(data, np.random.default_rng(5), 3, 20, "mel")
    assert a.features.shape == (3, 20, 16, 80) and a.expr.shape == (3, 20, 52)
    assert torch.equal(a.features, b.features) and torch.equal(a.expr, b.expr)
    u = next(data[i] for i in range(len(data)) if data[i].style == int(a.style[0]))
    assert a.features.dtype == torch.float32 and u.mel.shape[1:] == (16, 80)


def _trained(data, tmp_path, steps: int, disc: DiscriminatorConfig = TINY_D):
    cfg = styletalk_config("tiny", "mel")
    train = TrainConfig(steps=steps, batch=4, frames=24, style_frames=24, log_every=5)
    trainer = LipSyncTrainer(cfg, disc, train)
    losses = run_training(tmp_path, trainer, data, train, progress=False)
    return trainer, cfg, losses


def test_contrastive_sync_d_learns_to_separate_in_sync_from_shifted_and_still(data, tmp_path):
    utts = [data[i] for i in range(6)]
    trainer, cfg, _ = _trained(data, tmp_path / "untrained", 1)
    before = score_sync(trainer.model, cfg, utts, TINY_D.sync_frames)
    trainer, cfg, losses = _trained(data, tmp_path / "run", 60)
    after = score_sync(trainer.model, cfg, utts, TINY_D.sync_frames)
    far = np.mean([after["acc"][k] for k in range(5, 16)])
    assert far > 0.8 and far > np.mean([before["acc"][k] for k in range(5, 16)]) + 0.2
    assert after["acc_still"] > 0.7
    assert after["sync"] > after["late15"]
    assert losses["scale"] != pytest.approx(TINY_D.sync_scale)  # the scale is learned
    # What the eval loads: the run's sync/last with the StyleTalk config it serves.
    disc, loaded_cfg = load_sync(tmp_path / "run", TINY_D)
    assert loaded_cfg == trainer.model_config  # the generator-only fields at their old values
    again = score_sync(disc, loaded_cfg, utts, TINY_D.sync_frames)
    assert again["acc"] == after["acc"]
    assert read_header(tmp_path / "run" / LAST)["meta"]["sync_loss"] == "contrastive"


def test_the_first_bce_recipe_still_trains(data, tmp_path):
    bce = dataclasses.replace(TINY_D, sync_loss="bce")
    trainer, _, losses = _trained(data, tmp_path, 2, bce)
    assert set(losses) == {"loss", "accuracy"} and trainer.aux == {}


def test_train_command_keeps_the_asked_snapshots(tmp_path, capsys):
    from stylecast.cli import main

    before = torch.get_num_threads()
    args = ["train", "styletalk", "--out", str(tmp_path), "--preset", "tiny", "--steps", "2",
            "--batch", "2", "--frames", "16", "--keep", "1", "--no-progress"]  # fmt: skip
    try:
        assert main(args) == 0
    finally:
        torch.set_num_threads(before)
    capsys.readouterr()
    for stage in ("sync", "generator"):
        assert read_header(tmp_path / stage / "step1")["meta"]["step"] == 1


def test_train_command_anneals_the_expert_mix_when_asked(tmp_path, capsys):
    from stylecast.cli import EXIT_INPUT, main

    before = torch.get_num_threads()
    args = ["train", "styletalk", "--out", str(tmp_path), "--preset", "tiny", "--steps", "2",
            "--batch", "2", "--frames", "16", "--no-progress"]  # fmt: skip
    try:
        assert main([*args, "--expert-anneal", "2", "1"]) == 0
        assert main([*args, "--expert-anneal", "0", "1"]) == EXIT_INPUT
    finally:
        torch.set_num_threads(before)
    assert "--expert-anneal needs" in capsys.readouterr().err
    cfg = load_model(tmp_path / "generator" / LAST)[1]
    assert cfg.expert_anneal_steps == 2 and cfg.expert_temperature == 1.0
