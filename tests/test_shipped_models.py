"""The shipped motion models (assets/models) agree with their model card, their exports and
the command that ships them (scripts/ship_models.sh)."""

import hashlib
import json
import subprocess
from pathlib import Path

import pytest

from stylecast.paths import REPO_ROOT, assets_dir

CARD = REPO_ROOT / "docs" / "model-card.md"
KEYS = ("saas", "styletalk")


def _shipped(key: str) -> Path:
    folder = assets_dir() / "models" / key
    if not (folder / "model.safetensors").exists():
        pytest.skip(f"no shipped checkpoint in {folder}")
    return folder


@pytest.mark.parametrize("key", KEYS)
def test_the_card_names_the_shipped_weights(key):
    """Retrained weights without a re-written card fail here: the card quotes the first 12
    hex digits of each shipped model.safetensors' sha256."""
    folder = _shipped(key)
    digest = hashlib.sha256((folder / "model.safetensors").read_bytes()).hexdigest()[:12]
    assert digest in CARD.read_text(), f"docs/model-card.md does not name {key} weights {digest}"


@pytest.mark.parametrize("key", KEYS)
def test_shipped_checkpoint_loads_and_its_export_and_presets_follow_it(key):
    torch = pytest.importorskip("torch")
    from stylecast.models.checkpoint import load_model
    from stylecast.training.style_library import weights_id

    folder = _shipped(key)
    model, _, _ = load_model(folder)
    assert type(model).__name__.lower() == key
    n = sum(p.numel() for p in model.parameters())
    assert 1e5 < n < 5e7 and all(torch.isfinite(p).all() for p in model.parameters())
    manifest = json.loads((assets_dir() / "onnx" / key / "manifest.json").read_text())
    digest = hashlib.sha256((folder / "model.safetensors").read_bytes()).hexdigest()
    assert manifest["source"]["sha256"]["model.safetensors"] == digest
    presets = sorted((assets_dir() / "styles").glob("*.json"))
    assert len(presets) >= 8
    for p in presets:
        assert json.loads(p.read_text())["models"][key] == weights_id(folder), p.name


def test_ship_script_refuses_unfinished_runs(tmp_path):
    """scripts/ship_models.sh checks both checkpoints before it copies anything."""
    script = REPO_ROOT / "scripts" / "ship_models.sh"
    empty = tmp_path / "run"
    empty.mkdir()
    env = {"PATH": "/usr/bin:/bin", "STYLECAST_ASSETS": str(tmp_path / "assets")}
    res = subprocess.run(["bash", str(script), str(empty), str(empty)], env=env,
                         capture_output=True, text=True)  # fmt: skip
    assert res.returncode == 2 and "pose/last/model.safetensors" in res.stderr
    assert not (tmp_path / "assets").exists()
    usage = subprocess.run(["bash", str(script)], env=env, capture_output=True, text=True)
    assert usage.returncode == 2 and "SAAS_RUN STYLETALK_RUN" in usage.stderr
