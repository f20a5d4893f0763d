"""`stylecast train`: one command per model family, resumable, clear errors."""

import json

import pytest

torch = pytest.importorskip("torch")

from stylecast.cli import EXIT_INPUT, main  # noqa: E402
from stylecast.models.checkpoint import load_model  # noqa: E402


@pytest.fixture(autouse=True)
def _restore_torch_threads():
    """The command sets torch's thread count for the process; put it back."""
    before = torch.get_num_threads()
    yield
    torch.set_num_threads(before)


@pytest.mark.parametrize("model", ["styletalk", "saas"])
def test_train_command_writes_a_loadable_checkpoint(tmp_path, capsys, model):
    args = ["train", model, "--out", str(tmp_path), "--preset", "tiny", "--steps", "1",
            "--batch", "2", "--frames", "16", "--no-progress"]  # fmt: skip
    assert main(args) == 0
    results = json.loads(capsys.readouterr().out)
    last_stage = "generator" if model == "styletalk" else "pose"
    assert last_stage in results
    loaded, _, meta = load_model(tmp_path / last_stage / "last")
    assert meta["step"] == 1 and type(loaded).__name__ == (
        "StyleTalk" if model == "styletalk" else "SAAS"
    )
    assert main(args) == 0  # resuming a finished run does nothing and succeeds


def test_train_command_rejects_windows_longer_than_style_clips(tmp_path, capsys):
    args = ["train", "saas", "--out", str(tmp_path), "--preset", "tiny", "--frames", "999"]
    assert main(args) == EXIT_INPUT
    assert "--frames must be in [1, 64]" in capsys.readouterr().err


def test_train_saas_style_norm_switch_reaches_the_model_and_the_run_record(tmp_path, capsys):
    from stylecast.training.train_saas import read_run_record

    base = ["train", "saas", "--preset", "tiny", "--steps", "1", "--batch", "2", "--frames",
            "16", "--no-progress"]  # fmt: skip
    assert main([*base, "--out", str(tmp_path / "on"), "--style-norm"]) == 0
    assert main([*base, "--out", str(tmp_path / "off")]) == 0
    capsys.readouterr()
    on, off = (load_model(tmp_path / k / "pose" / "last") for k in ("on", "off"))
    assert on[1].expression.style_norm and not off[1].expression.style_norm
    assert on[0].expression.style_norm is not None and off[0].expression.style_norm is None
    assert read_run_record(tmp_path / "on")[0] == on[1]
