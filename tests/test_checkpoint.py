"""Model configs to JSON and back, and safetensors checkpoints with strict loading."""

import json

import pytest

torch = pytest.importorskip("torch")

from safetensors.torch import load_file, save_file  # noqa: E402

from stylecast.engine.errors import FormatError, InputError  # noqa: E402
from stylecast.models.checkpoint import (  # noqa: E402
    CONFIG,
    WEIGHTS,
    build_model,
    load_model,
    save_model,
)
from stylecast.models.config import (  # noqa: E402
    ContentConfig,
    DiscriminatorConfig,
    LossConfig,
    MotionSpec,
    PoseConfig,
    config_from_dict,
    config_to_dict,
    saas_config,
    styletalk_config,
)
from stylecast.models.sampling import stream  # noqa: E402

pytestmark = pytest.mark.usefixtures("one_torch_thread")


ALL_CONFIGS = [
    *(styletalk_config(p, f) for p in ("default", "small", "tiny") for f in ("phoneme", "mel")),
    *(saas_config(p, f) for p in ("default", "small", "tiny") for f in ("phoneme", "mel")),
    DiscriminatorConfig(),
    LossConfig(),
]


@pytest.mark.parametrize("config", ALL_CONFIGS, ids=lambda c: type(c).__name__)
def test_config_json_round_trip_is_exact(config):
    data = json.loads(json.dumps(config_to_dict(config)))
    assert config_from_dict(data) == config


def test_config_from_dict_names_unknown_and_missing_keys():
    data = config_to_dict(styletalk_config("tiny"))
    data["fields"]["n_expertz"] = 8
    del data["fields"]["n_experts"]
    with pytest.raises(
        FormatError, match=r"unknown keys \['n_expertz'\].*missing keys \['n_experts'\]"
    ):
        config_from_dict(data)
    bad = config_to_dict(saas_config("tiny"))
    bad["fields"]["pose"]["top_k"] = "twenty"
    with pytest.raises(FormatError, match=r"pose\.top_k"):
        config_from_dict(bad)
    with pytest.raises(FormatError, match="unknown config type"):
        config_from_dict({"type": "GPTConfig", "fields": {}})


def test_configs_validate_once_with_clear_errors():
    with pytest.raises(InputError, match="lower_names not in expr_names"):
        MotionSpec(lower_names=("jawOpen", "mouthSmile"))
    with pytest.raises(InputError, match="frontend"):
        ContentConfig("wav2vec")
    with pytest.raises(InputError, match="top_k"):
        PoseConfig(codebook_size=10, top_k=20)
    bad = config_to_dict(saas_config("tiny"))
    bad["fields"]["expression"]["hyper_layers"] = [1, 9]
    with pytest.raises(FormatError, match="hyper_layers"):
        config_from_dict(bad)


def test_default_styletalk_is_about_22m_parameters():
    model = build_model(styletalk_config())
    n = sum(p.numel() for p in model.parameters())
    assert 20e6 < n < 25e6, n


@pytest.mark.parametrize("make", [styletalk_config, saas_config], ids=["styletalk", "saas"])
def test_save_load_round_trip_gives_the_same_model(tmp_path, make):
    torch.manual_seed(0)
    config = make("tiny")
    model = build_model(config).eval()
    save_model(tmp_path, model, config, meta={"step": 7})
    loaded, loaded_config, meta = load_model(tmp_path)
    assert loaded_config == config and meta == {"step": 7}
    assert type(loaded) is type(model) and not loaded.training
    for key, value in model.state_dict().items():
        assert torch.equal(loaded.state_dict()[key], value), key
    x = torch.randint(0, 41, (1, 6)) if config.content.frontend == "phoneme" else None
    if x is None:
        x = torch.randn(1, 6, 16, 80)
    style = torch.randn(1, 32)
    a, b = stream(model, x, style), stream(loaded, x, style)
    assert torch.equal(a.expr, b.expr) and torch.equal(a.pose, b.pose)


def test_strict_load_names_missing_and_unexpected_keys(tmp_path):
    config = styletalk_config("tiny")
    save_model(tmp_path, build_model(config), config)
    tensors = load_file(str(tmp_path / WEIGHTS))
    removed = "lower_head.weight"
    del tensors[removed]
    tensors["extra.bias"] = torch.zeros(3)
    save_file(tensors, str(tmp_path / WEIGHTS))
    with pytest.raises(FormatError) as err:
        load_model(tmp_path)
    assert removed in str(err.value) and "extra.bias" in str(err.value)


def test_load_refuses_wrong_shapes_and_bad_files(tmp_path):
    config = styletalk_config("tiny")
    save_model(tmp_path, build_model(config), config)
    tensors = load_file(str(tmp_path / WEIGHTS))
    tensors["pose_head.0.bias"] = torch.zeros(5)
    save_file(tensors, str(tmp_path / WEIGHTS))
    with pytest.raises(FormatError, match=r"pose_head.0.bias: \(5,\)"):
        load_model(tmp_path)
    (tmp_path / WEIGHTS).write_bytes(b"not safetensors")
    with pytest.raises(FormatError, match="safetensors"):
        load_model(tmp_path)
    header = json.loads((tmp_path / CONFIG).read_text())
    header["version"] = 99
    (tmp_path / CONFIG).write_text(json.dumps(header))
    with pytest.raises(FormatError, match="version"):
        load_model(tmp_path)
    with pytest.raises(FormatError, match="not a model checkpoint"):
        load_model(tmp_path / "nowhere")
