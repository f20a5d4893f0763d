"""Retrained SAAS ablations: each repeats the run's record but the part it removes."""

import dataclasses

import pytest

torch = pytest.importorskip("torch")

from stylecast.engine.errors import InputError  # noqa: E402
from stylecast.models.checkpoint import load_model  # noqa: E402
from stylecast.models.config import LossConfig, saas_config  # noqa: E402
from stylecast.training.ablation import main, run_ablation  # noqa: E402
from stylecast.training.loop import LAST, TrainConfig  # noqa: E402
from stylecast.training.synthetic import SyntheticDataset  # noqa: E402
from stylecast.training.train_saas import read_run_record, train_saas  # noqa: E402

pytestmark = pytest.mark.usefixtures("one_torch_thread")

STEPS = 2


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """A finished tiny SAAS run (all three stages, 2 steps each) and its data."""
    folder = tmp_path_factory.mktemp("saas")
    config = saas_config("tiny", "phoneme")
    data = SyntheticDataset(config.motion, config.content, n_styles=4, n_utterances=8,
                            frames=(36, 44), seed=1)  # fmt: skip
    train = TrainConfig(steps=STEPS, batch=2, frames=16, style_frames=16, seed=3)
    losses = LossConfig(style_weight=0.5)
    train_saas(folder, config, data, {s: train for s in ("style", "expression", "pose")},
               losses, progress=False)  # fmt: skip
    return folder, data


def weights(folder, prefix: str) -> dict:
    model, _, _ = load_model(folder)
    return {k: v for k, v in model.state_dict().items() if k.startswith(prefix)}


def meta_of(folder) -> dict:
    return load_model(folder)[2]


def same(a: dict, b: dict) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_run_record_holds_what_the_stages_were_trained_with(run):
    folder, _ = run
    cfg, trains, losses = read_run_record(folder)
    assert cfg == load_model(folder / "pose" / LAST)[1]
    assert trains["expression"].seed == 3 and trains["pose"].steps == STEPS
    assert losses.style_weight == 0.5


def test_no_hyperstyle_retrains_expression_from_the_run_style_stage(run, tmp_path):
    folder, data = run
    run_ablation("no-hyperstyle", folder, tmp_path, data)
    model, cfg, meta = load_model(tmp_path / "expression" / LAST)
    assert meta["step"] == STEPS and cfg.style.codebook
    hyper = model.expression.hyper
    assert float(hyper.head_b.weight.abs().max()) == 0.0 == float(hyper.head_b.bias.abs().max())
    extractor = "style_extractor."
    assert same(weights(tmp_path / "expression" / LAST, extractor),
                weights(folder / "style" / LAST, extractor))  # fmt: skip
    # The expression branches did train: they left the style stage's initial weights.
    assert not same(weights(tmp_path / "expression" / LAST, "expression.decoder."),
                    weights(folder / "style" / LAST, "expression.decoder."))  # fmt: skip
    # The run's style stage is adopted (extractor and its optimiser state), not retrained.
    assert meta_of(tmp_path / "style" / LAST)["style_from"] == str(folder / "style" / LAST)
    assert not (tmp_path / "pose").exists()
    assert read_run_record(tmp_path) == read_run_record(folder)  # nothing else changed


def test_no_codebook_then_both_removed_reusing_its_style_stage(run, tmp_path):
    folder, data = run
    solo = tmp_path / "no-codebook"
    run_ablation("no-codebook", folder, solo, data, pose=True)
    model, cfg, _ = load_model(solo / "pose" / LAST)
    assert not cfg.style.codebook and model.style_extractor.vq is None
    assert float(model.expression.hyper.head_b.weight.abs().max()) > 0  # HyperStyle kept
    assert read_run_record(solo)[0] == cfg
    log = (solo / "style" / "log.jsonl").read_text()
    assert '"vq": 0.0' in log  # no VQ loss without the codebook

    both = tmp_path / "both"
    run_ablation("no-codebook-no-hyperstyle", folder, both, data, style_from=solo)
    model, cfg, _ = load_model(both / "expression" / LAST)
    assert not cfg.style.codebook
    assert float(model.expression.hyper.head_b.weight.abs().max()) == 0.0
    assert same(weights(both / "expression" / LAST, "style_extractor."),
                weights(solo / "style" / LAST, "style_extractor."))  # fmt: skip
    assert meta_of(both / "style" / LAST)["style_from"] == str(solo / "style" / LAST)
    run_cfg, trains, losses = read_run_record(folder)
    no_codebook = dataclasses.replace(
        run_cfg, style=dataclasses.replace(run_cfg.style, codebook=False)
    )
    assert read_run_record(both) == (no_codebook, trains, losses)


def test_both_removed_adopts_a_style_stage_made_with_other_expression_switches(run, tmp_path):
    """--style-from may name a no-codebook folder trained for a run with another expression
    config (an older run without the audio skip): the result keeps this run's config."""
    folder, data = run
    run_cfg, trains, losses = read_run_record(folder)
    old = dataclasses.replace(
        run_cfg,
        style=dataclasses.replace(run_cfg.style, codebook=False),
        expression=dataclasses.replace(run_cfg.expression, audio_skip=False),
    )
    source = tmp_path / "old-no-codebook"
    train_saas(source, old, data, trains, losses, progress=False)
    both = tmp_path / "both"
    run_ablation("no-codebook-no-hyperstyle", folder, both, data, style_from=source)
    model, cfg, _ = load_model(both / "expression" / LAST)
    assert cfg.expression.audio_skip and model.expression.audio_skip is not None
    assert cfg == dataclasses.replace(old, expression=run_cfg.expression)
    assert same(weights(both / "expression" / LAST, "style_extractor."),
                weights(source / "style" / LAST, "style_extractor."))  # fmt: skip


def test_ablation_refuses_an_unfinished_style_stage(run, tmp_path):
    folder, data = run
    with pytest.raises(InputError, match=f"not {STEPS + 5}"):
        run_ablation("no-hyperstyle", folder, tmp_path, data, steps=STEPS + 5)
    with pytest.raises(InputError, match=r"run\.json"):
        run_ablation("no-codebook", tmp_path / "nothing", tmp_path / "out", data)
    with pytest.raises(InputError, match="ablation must be one of"):
        run_ablation("no-audio", folder, tmp_path, data)


def test_command_line_refuses_style_from_for_no_hyperstyle(tmp_path):
    with pytest.raises(InputError, match="--style-from"):
        main(["no-hyperstyle", "--run", str(tmp_path), "--corpus", str(tmp_path), "--out",
              str(tmp_path), "--style-from", str(tmp_path)])  # fmt: skip
