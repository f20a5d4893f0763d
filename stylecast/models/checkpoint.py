"""Checkpoints: weights in safetensors, configuration in JSON; never pickle.

A model checkpoint is a folder with `model.safetensors` and `config.json`
({"format": "stylecast-model", "version": 1, "model": "SAAS", "config": {...}, "meta": {...}}).
`load_model` rebuilds the model from the config and loads the weights strictly: a missing,
unexpected or mis-shaped tensor raises `FormatError` naming it.

Training state (optimisers, auxiliary networks, RNG, step) goes beside it in
`train_state.safetensors` + `train_state.json` so that runs resume exactly.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file
from torch import Tensor, nn

from stylecast.engine.errors import FormatError
from stylecast.models.config import SAASConfig, StyleTalkConfig, config_from_dict, config_to_dict
from stylecast.models.saas import SAAS
from stylecast.models.styletalk import StyleTalk

FORMAT = "stylecast-model"
VERSION = 1
WEIGHTS = "model.safetensors"
CONFIG = "config.json"
TRAIN_WEIGHTS = "train_state.safetensors"
TRAIN_JSON = "train_state.json"

MODEL_CLASSES: dict[type, type[nn.Module]] = {StyleTalkConfig: StyleTalk, SAASConfig: SAAS}


def build_model(config: StyleTalkConfig | SAASConfig) -> nn.Module:
    """The model a config describes, freshly initialised."""
    return MODEL_CLASSES[type(config)](config)


def state_tensors(module: nn.Module, prefix: str = "") -> dict[str, Tensor]:
    """Contiguous CPU copies of a module's persistent state, keyed for safetensors."""
    return {prefix + k: v.detach().cpu().contiguous() for k, v in module.state_dict().items()}


def load_state_strict(module: nn.Module, tensors: dict[str, Tensor], where: str) -> None:
    """Load tensors into module; raises FormatError naming missing, unexpected or
    mis-shaped keys (nothing is loaded then)."""
    expected = module.state_dict()
    missing = sorted(set(expected) - set(tensors))
    unexpected = sorted(set(tensors) - set(expected))
    wrong = sorted(
        f"{k}: {tuple(tensors[k].shape)} != {tuple(v.shape)}"
        for k, v in expected.items()
        if k in tensors and tensors[k].shape != v.shape
    )
    if missing or unexpected or wrong:
        raise FormatError(
            f"{where} does not match {type(module).__name__}: missing keys {missing}, "
            f"unexpected keys {unexpected}, wrong shapes {wrong}"
        )
    module.load_state_dict(tensors, strict=True)


def save_model(
    directory: str | Path,
    model: nn.Module,
    config: StyleTalkConfig | SAASConfig,
    meta: dict | None = None,
) -> Path:
    """Write model.safetensors + config.json into `directory` (created); returns it."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    save_file(state_tensors(model), str(directory / WEIGHTS))
    header = {
        "format": FORMAT,
        "version": VERSION,
        "model": type(model).__name__,
        "config": config_to_dict(config),
        "meta": meta or {},
    }
    (directory / CONFIG).write_text(json.dumps(header, indent=2) + "\n")
    return directory


def read_header(directory: str | Path) -> dict:
    """The parsed config.json of a model checkpoint, checked for format and version."""
    path = Path(directory) / CONFIG
    try:
        header = json.loads(path.read_text())
    except FileNotFoundError as e:
        raise FormatError(f"no {CONFIG} in {directory}: not a model checkpoint") from e
    except json.JSONDecodeError as e:
        raise FormatError(f"{path} is not valid JSON: {e}") from e
    if not isinstance(header, dict) or header.get("format") != FORMAT:
        raise FormatError(f"{path}: expected format {FORMAT!r}, got {header.get('format')!r}")
    if header.get("version") != VERSION:
        raise FormatError(f"{path}: version {header.get('version')!r}, this reads {VERSION}")
    return header


def load_model(directory: str | Path) -> tuple[nn.Module, StyleTalkConfig | SAASConfig, dict]:
    """Rebuild a model from its checkpoint folder: (model in eval mode, config, meta)."""
    header = read_header(directory)
    config = config_from_dict(header["config"])
    if type(config) not in MODEL_CLASSES:
        raise FormatError(f"{directory}: config {type(config).__name__} is not a model config")
    model = build_model(config)
    if header.get("model") != type(model).__name__:
        raise FormatError(
            f"{directory}: header says model {header.get('model')!r} but the config builds "
            f"{type(model).__name__}"
        )
    load_state_strict(model, read_weights(Path(directory) / WEIGHTS), str(directory))
    return model.eval(), config, header.get("meta", {})


def read_weights(path: Path) -> dict[str, Tensor]:
    """All tensors of a safetensors file; FormatError when missing or unreadable."""
    try:
        return load_file(str(path))
    except FileNotFoundError as e:
        raise FormatError(f"missing weights file {path}") from e
    except (SafetensorError, OSError) as e:
        raise FormatError(f"{path} is not a readable safetensors file: {e}") from e


# ---------------------------------------------------------------- training state


def save_training_state(
    directory: str | Path,
    step: int,
    modules: dict[str, nn.Module],
    optimizers: dict[str, torch.optim.Optimizer],
    info: dict | None = None,
) -> None:
    """Everything besides the model needed to resume: auxiliary modules, optimiser moments,
    torch's RNG state and the step, as safetensors + JSON."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    tensors: dict[str, Tensor] = {"rng.torch": torch.get_rng_state()}
    for name, module in modules.items():
        tensors.update(state_tensors(module, f"module.{name}."))
    groups: dict[str, list] = {}
    for name, opt in optimizers.items():
        sd = opt.state_dict()
        groups[name] = sd["param_groups"]
        for index, slots in sd["state"].items():
            for slot, value in slots.items():
                value = torch.as_tensor(value)
                tensors[f"optim.{name}.{index}.{slot}"] = value.detach().cpu().contiguous()
    save_file(tensors, str(directory / TRAIN_WEIGHTS))
    record = {"step": step, "param_groups": groups, "info": info or {}}
    (directory / TRAIN_JSON).write_text(json.dumps(record, indent=2) + "\n")


def load_training_state(
    directory: str | Path,
    modules: dict[str, nn.Module],
    optimizers: dict[str, torch.optim.Optimizer],
) -> dict:
    """Restore what save_training_state wrote; returns its JSON record (step, info)."""
    directory = Path(directory)
    try:
        record = json.loads((directory / TRAIN_JSON).read_text())
    except (FileNotFoundError, json.JSONDecodeError) as e:
        raise FormatError(f"{directory}: no readable {TRAIN_JSON}: {e}") from e
    tensors = read_weights(directory / TRAIN_WEIGHTS)
    for name, module in modules.items():
        prefix = f"module.{name}."
        own = {k[len(prefix) :]: v for k, v in tensors.items() if k.startswith(prefix)}
        load_state_strict(module, own, f"{directory} ({name})")
    for name, opt in optimizers.items():
        if name not in record["param_groups"]:
            raise FormatError(f"{directory}: no optimiser state named {name!r}")
        prefix = f"optim.{name}."
        state: dict[int, dict[str, Tensor]] = {}
        for key, value in tensors.items():
            if key.startswith(prefix):
                index, slot = key[len(prefix) :].split(".", 1)
                state.setdefault(int(index), {})[slot] = value
        opt.load_state_dict({"state": state, "param_groups": record["param_groups"][name]})
    torch.set_rng_state(tensors["rng.torch"])
    return record
