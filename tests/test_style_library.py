"""training/style_library.py and `stylecast style` / `stylecast generate`, with tiny untrained
models (codes and motion are checked for plumbing, not quality)."""

import json
import wave

import numpy as np
import pytest
import torch

from stylecast.cli import main
from stylecast.engine.errors import InputError
from stylecast.engine.motion import Motion, load_motion, save_motion
from stylecast.models.checkpoint import save_model
from stylecast.models.config import saas_config, styletalk_config
from stylecast.models.saas import SAAS
from stylecast.models.styletalk import StyleTalk
from stylecast.training import style_library as lib


@pytest.fixture(autouse=True)
def _threads():
    n = torch.get_num_threads()
    yield
    torch.set_num_threads(n)  # the commands set one thread


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    folder = tmp_path_factory.mktemp("models")
    torch.manual_seed(0)
    cfg = saas_config("tiny", "mel")
    save_model(folder / "saas", SAAS(cfg).eval(), cfg)
    cfg = styletalk_config("tiny", "phoneme")
    save_model(folder / "styletalk", StyleTalk(cfg).eval(), cfg)
    return folder


def _clip(frames=90, smile=0.0, seed=0):
    rng = np.random.default_rng(seed)
    expr = rng.random((frames, 52)).astype(np.float32) * 0.2
    expr[:, 43:45] += smile  # mouthSmileLeft/Right
    return Motion(np.clip(expr, 0, 1), rng.normal(0, 0.02, (frames, 6)).astype(np.float32))


def test_add_stores_clip_and_codes_that_load_back(tmp_path, models):
    enc = lib.StyleEncoders(models)
    clip = _clip()
    meta = lib.add_style("calm", clip, "motion", enc, tmp_path)
    stored = json.loads((tmp_path / "calm.json").read_text())
    assert stored == meta and set(stored["codes"]) == {"saas", "styletalk"}
    assert stored["code"] == stored["codes"]["saas"] and stored["frames"] == 90
    np.testing.assert_allclose(load_motion(tmp_path / "calm.npz").expr, clip.expr, atol=1e-6)
    again = enc.encode(lib.motion_array(clip))
    for key in ("saas", "styletalk"):
        code = lib.load_code("calm", key, lib.weights_id(models / key), tmp_path)
        np.testing.assert_allclose(code, again[key], atol=1e-5)
    with pytest.raises(InputError, match="exists"):
        lib.add_style("calm", clip, "motion", enc, tmp_path)
    with pytest.raises(InputError, match="other saas weights"):
        lib.load_code("calm", "saas", "0" * 12, tmp_path)
    with pytest.raises(InputError, match="style name"):
        lib.add_style("Bad Name", clip, "motion", enc, tmp_path)


def test_mix_interpolates_codes(tmp_path, models):
    enc = lib.StyleEncoders(models)
    a = lib.add_style("a", _clip(seed=1), "motion", enc, tmp_path)
    b = lib.add_style("b", _clip(smile=0.6, seed=2), "motion", enc, tmp_path)
    mixed = lib.mix_codes("a:3,b:1", "ab", tmp_path)
    for key in ("saas", "styletalk"):
        expect = 0.75 * np.array(a["codes"][key]) + 0.25 * np.array(b["codes"][key])
        np.testing.assert_allclose(mixed["codes"][key], expect, atol=1e-5)
        assert mixed["models"][key] == a["models"][key]
    with pytest.raises(InputError, match="> 0"):
        lib.parse_mix("a:0,b:1")
    with pytest.raises(InputError, match="no style"):
        lib.load_code("missing", "saas", None, tmp_path)


def test_cli_style_add_and_generate_frame_count(tmp_path, models):
    clip = tmp_path / "clip.npz"
    save_motion(clip, _clip())
    lib_dir = tmp_path / "styles"
    argv = ["style", "add", str(clip), "-o", "mine", "--library", str(lib_dir),
            "--models", str(models)]  # fmt: skip
    assert main(argv) == 0 and (lib_dir / "mine.json").exists()
    seconds = 1.5
    t = np.arange(int(16000 * seconds)) / 16000
    speech = (0.3 * np.sin(2 * np.pi * 180 * t) * (np.sin(2 * np.pi * 3 * t) > 0)).astype(
        np.float32
    )
    wav = tmp_path / "speech.wav"
    with wave.open(str(wav), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(16000)
        w.writeframes((speech * 32767).astype("<i2").tobytes())
    for model, suffix in (("saas", ".npz"), ("styletalk", ".csv")):
        out = tmp_path / f"out{suffix}"
        argv = ["generate", str(wav), "--style", "mine", "-o", str(out), "--model", model,
                "--models", str(models), "--library", str(lib_dir)]  # fmt: skip
        assert main(argv) == 0
        motion = load_motion(out)
        assert motion.frames == 45  # 1.5 s at 30 FPS
        assert np.isfinite(motion.expr).all() and np.isfinite(motion.pose).all()
    bad = ["generate", str(wav), "--style", "nope", "-o", str(tmp_path / "x.npz"),
           "--models", str(models), "--library", str(lib_dir)]  # fmt: skip
    assert main(bad) == 2


def test_shipped_presets_load_for_the_shipped_models():
    """assets/styles holds the 8 emotions, each with codes made by the shipped weights."""
    from stylecast.paths import assets_dir

    emotions = ("neutral", "happy", "sad", "angry", "surprised", "disgusted", "fearful",
                "contemptuous")  # fmt: skip
    models = assets_dir() / "models"
    for key in lib.MODEL_KEYS:
        model_id = lib.weights_id(models / key)
        codes = np.stack([lib.load_code(e, key, model_id) for e in emotions])
        assert codes.ndim == 2 and np.isfinite(codes).all(), key
        assert np.linalg.matrix_rank(codes) > 1  # the presets differ from each other
